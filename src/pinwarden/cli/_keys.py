"""``pinwarden keys``: the key directory that signs pin sets (docs/spec.md §9, "Key directory").

Run on an offline machine: ``init`` makes root and online keys and keyring v1; ``rotate-online``
and ``rotate-root`` publish keyring N+1; ``export-online`` copies the keyrings and the online keys,
never a root key, to a pin server's key directory; ``show`` prints the current keyring. Private
keys are written encrypted with the passphrase (env var, 0600 file or prompt; never an argument)
and are never printed.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from pinwarden.cli._common import EXIT_OK, CommandError, print_json
from pinwarden.cli._secrets import add_passphrase_options, read_new_passphrase, read_passphrase
from pinwarden.document import (
    ALGORITHMS,
    DocumentError,
    KeyDirectory,
    Keyring,
    KeyStoreError,
    OnlineKeyDirectory,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="make and rotate the keys that sign pin sets",
        description="Root keys (k of n) sign keyrings; online keys sign pin sets. Every change "
        "publishes the next keyring version in DIR/keyrings/ and DIR/keyring.json.",
    )
    commands = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    init = commands.add_parser("init", help="make root and online keys and keyring v1")
    _add_dir(init)
    init.add_argument("--root-keys", type=int, default=3, help="number of root keys (3)")
    init.add_argument("--root-threshold", type=int, default=2, help="root keys needed (2)")
    init.add_argument("--online-keys", type=int, default=1, help="number of online keys (1)")
    init.add_argument("--online-threshold", type=int, default=1, help="online keys needed (1)")
    init.add_argument("--algorithm", choices=ALGORITHMS, default="EdDSA")
    _add_lifetime(init)
    add_passphrase_options(init, required=True)
    init.set_defaults(handler=_init)

    online = commands.add_parser(
        "rotate-online", help="replace the online keys (keyring N+1); also renews the keyring"
    )
    _add_dir(online)
    _add_lifetime(online)
    add_passphrase_options(online, required=True)
    online.set_defaults(handler=_rotate_online)

    root = commands.add_parser(
        "rotate-root", help="replace the root keys (keyring N+1 signed by old and new roots)"
    )
    _add_dir(root)
    root.add_argument("--root-keys", type=int, help="number of new root keys (as before)")
    root.add_argument("--root-threshold", type=int, help="new root threshold (as before)")
    root.add_argument("--algorithm", choices=ALGORITHMS, help="algorithm of the new root keys")
    _add_lifetime(root)
    add_passphrase_options(root, required=True)
    root.set_defaults(handler=_rotate_root)

    export = commands.add_parser(
        "export-online",
        help="copy the keyrings and the online keys (never a root key) to a server's key directory",
        description="Copies DIR/keyring.json, DIR/keyrings/ and the current online keys (still "
        "encrypted) into TARGET, e.g. the server's DATA/keys, after init and after each "
        "rotation; retired online keys are removed from TARGET. No passphrase is needed.",
    )
    _add_dir(export)
    export.add_argument("--to", required=True, metavar="TARGET", help="the server's key directory")
    export.set_defaults(handler=_export_online)

    show = commands.add_parser("show", help="print the current keyring (public keys only)")
    _add_dir(show)
    show.set_defaults(handler=_show)


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", required=True, metavar="DIR", help="the key directory")


def _add_lifetime(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lifetime-days", type=int, default=365, help="days until the new keyring expires (365)"
    )


def _lifetime(args: argparse.Namespace) -> timedelta:
    if args.lifetime_days < 1:
        raise CommandError("--lifetime-days must be at least 1")
    return timedelta(days=args.lifetime_days)


def _summary(directory: OnlineKeyDirectory, keyring: Keyring) -> int:
    print_json(
        {
            "keyring": str(directory.keyring_path),
            "version": keyring.version,
            "expires": keyring.to_json()["expires"],
            "root": {
                "threshold": keyring.root_threshold,
                "keys": [f"{key.kid} ({key.algorithm})" for key in keyring.root_keys],
            },
            "online": {
                "threshold": keyring.online_threshold,
                "keys": [f"{key.kid} ({key.algorithm})" for key in keyring.online_keys],
            },
        }
    )
    return EXIT_OK


def _run_on_directory(args: argparse.Namespace, action: Any) -> int:
    """Run ``action(directory)`` and report its key-store or document error as one line."""
    directory = KeyDirectory(args.dir)
    try:
        return _summary(directory, action(directory))
    except (KeyStoreError, DocumentError) as error:
        raise CommandError(str(error)) from None


def _init(args: argparse.Namespace) -> int:
    if KeyDirectory(args.dir).exists():
        raise CommandError(f"{args.dir} already holds a keyring; use rotate-online or rotate-root")
    lifetime = _lifetime(args)
    passphrase = _passphrase(args, new=True)
    return _run_on_directory(
        args,
        lambda directory: directory.init(
            passphrase,
            root_keys=args.root_keys,
            root_threshold=args.root_threshold,
            online_keys=args.online_keys,
            online_threshold=args.online_threshold,
            algorithm=args.algorithm,
            lifetime=lifetime,
        ),
    )


def _passphrase(args: argparse.Namespace, *, new: bool = False) -> bytes:
    passphrase = read_new_passphrase(args) if new else read_passphrase(args)
    if passphrase is None:  # only with --no-passphrase, which these commands do not offer
        raise CommandError("the key directory needs a passphrase")
    return passphrase


def _rotate_online(args: argparse.Namespace) -> int:
    lifetime = _lifetime(args)
    passphrase = _passphrase(args)
    return _run_on_directory(
        args, lambda directory: directory.rotate_online(passphrase, lifetime=lifetime)
    )


def _rotate_root(args: argparse.Namespace) -> int:
    lifetime = _lifetime(args)
    passphrase = _passphrase(args)
    return _run_on_directory(
        args,
        lambda directory: directory.rotate_root(
            passphrase,
            root_keys=args.root_keys,
            root_threshold=args.root_threshold,
            algorithm=args.algorithm,
            lifetime=lifetime,
        ),
    )


def _show(args: argparse.Namespace) -> int:
    return _run_on_directory(args, lambda directory: directory.current_keyring())


def _export_online(args: argparse.Namespace) -> int:
    try:
        keyring = OnlineKeyDirectory(args.dir).export_online(args.to)
    except (KeyStoreError, DocumentError) as error:
        raise CommandError(str(error)) from None
    return _summary(OnlineKeyDirectory(args.to), keyring)
