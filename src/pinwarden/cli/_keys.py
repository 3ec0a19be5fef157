"""``pinwarden keys``: the key directory that signs pin sets (docs/spec.md §9, "Key directory";
docs/keys.md).

Run on an offline machine: ``init`` makes root and online keys and keyring v1; ``rotate-online``
and ``rotate-root`` publish keyring N+1; ``export-online`` copies the keyrings and the online keys,
never a root key, to a pin server's key directory, re-encrypted under the server's own
passphrase; ``rewrap`` rewrites older key files under scrypt; ``show`` prints the current keyring.
On the machine with the token, ``pkcs11-key`` makes or names an online key in a PKCS#11 token and
writes its reference (public) for ``init``/``rotate-online --online-key``. Private keys are
written encrypted with the passphrase (env var, 0600 file or prompt; never an argument) and are
never printed.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pinwarden._files import write_new_file
from pinwarden.cli._common import EXIT_OK, CommandError, print_json
from pinwarden.cli._secrets import (
    add_passphrase_options,
    given_passphrase,
    read_new_passphrase,
    read_passphrase,
)
from pinwarden.document import (
    ALGORITHMS,
    DocumentError,
    KeyDirectory,
    Keyring,
    KeyStoreError,
    OnlineKeyDirectory,
)

if TYPE_CHECKING:
    from pinwarden.hsm import KeyReference

_SERVER = "server-"


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
    _add_online_key(init)
    _add_lifetime(init)
    add_passphrase_options(init, required=True)
    init.set_defaults(handler=_init)

    online = commands.add_parser(
        "rotate-online", help="replace the online keys (keyring N+1); also renews the keyring"
    )
    _add_dir(online)
    _add_online_key(online)
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
        description="Copies DIR/keyring.json, DIR/keyrings/ and the current online keys into "
        "TARGET, e.g. the server's DATA/keys, after init and after each rotation; retired "
        "online keys are removed from TARGET. From the offline directory, each online key "
        "file is opened with the offline passphrase and written under the server's own "
        "passphrase (--server-passphrase-env/-file), so the offline passphrase never leaves "
        "the offline machine. From a server copy, the files are copied as they are (or "
        "re-encrypted under a new server passphrase when both are given). Keys in a PKCS#11 "
        "token are copied as their references.",
    )
    _add_dir(export)
    export.add_argument("--to", required=True, metavar="TARGET", help="the server's key directory")
    add_passphrase_options(export, required=True, what="passphrase of DIR's key files")
    add_passphrase_options(
        export, required=True, prefix=_SERVER, what="server's passphrase for TARGET's key files"
    )
    export.set_defaults(handler=_export_online)

    rewrap = commands.add_parser(
        "rewrap",
        help="rewrite key files of an earlier release (PBKDF2) as scrypt key files",
        description="Each key file of the current keyring in DIR/keys that is still PKCS#8 "
        "with PBKDF2 is rewritten, same passphrase, as a memory-hard scrypt key file "
        "(docs/keys.md). Works on an offline directory and on a server's DATA/keys.",
    )
    _add_dir(rewrap)
    add_passphrase_options(rewrap, required=True)
    rewrap.set_defaults(handler=_rewrap)

    token = commands.add_parser(
        "pkcs11-key",
        help="make or name an online key in a PKCS#11 token and write its reference",
        description="On the machine with the token: opens the token that URI names "
        "(pkcs11:token=LABEL;object=KEY?module-path=/path/to/library.so, RFC 7512) with the "
        "user PIN, makes the key with --generate or reads an existing one, and writes OUT: the "
        "URI and the public key, no secret. Take OUT to the offline machine: pinwarden keys "
        "rotate-online --online-key OUT (or keys init --online-key OUT).",
    )
    token.add_argument("uri", metavar="URI", help="pkcs11: URI of the key (no PIN in it)")
    token.add_argument("--out", required=True, metavar="OUT", help="the reference file to write")
    token.add_argument(
        "--generate", choices=ALGORITHMS, metavar="ALG", help="make the key first: EdDSA or ES256"
    )
    add_passphrase_options(token, required=True, what="token's user PIN")
    token.set_defaults(handler=_pkcs11_key)

    show = commands.add_parser("show", help="print the current keyring (public keys only)")
    _add_dir(show)
    show.set_defaults(handler=_show)


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", required=True, metavar="DIR", help="the key directory")


def _add_online_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--online-key",
        metavar="FILE",
        help="the online key is the key in a PKCS#11 token that FILE names (a reference "
        "written by pinwarden keys pkcs11-key), not a new key file",
    )


def _online_key(args: argparse.Namespace) -> KeyReference | None:
    """The key reference ``--online-key FILE`` names, read (no token is opened here)."""
    if args.online_key is None:
        return None
    from pinwarden.hsm import KeyReference

    try:
        data = Path(args.online_key).read_bytes()
    except OSError as error:
        raise CommandError(
            f"cannot read --online-key {args.online_key!r}: {error.strerror}"
        ) from None
    except ValueError:
        raise CommandError("--online-key: not a usable file name") from None
    try:
        return KeyReference.from_bytes(data, f"--online-key {args.online_key!r}")
    except KeyStoreError as error:
        raise CommandError(str(error)) from None


def _add_lifetime(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lifetime-days", type=int, default=365, help="days until the new keyring expires (365)"
    )


_MAX_LIFETIME_DAYS = 36_500  # a keyring that outlives any app holding it is a mistake


def _lifetime(args: argparse.Namespace) -> timedelta:
    if not 1 <= args.lifetime_days <= _MAX_LIFETIME_DAYS:
        raise CommandError(f"--lifetime-days must be from 1 to {_MAX_LIFETIME_DAYS}")
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
    online_key = _online_key(args)
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
            online_key=online_key,
        ),
    )


def _passphrase(args: argparse.Namespace, *, new: bool = False) -> bytes:
    passphrase = read_new_passphrase(args) if new else read_passphrase(args)
    if passphrase is None:  # only with --no-passphrase, which these commands do not offer
        raise CommandError("the key directory needs a passphrase")
    return passphrase


def _rotate_online(args: argparse.Namespace) -> int:
    lifetime = _lifetime(args)
    online_key = _online_key(args)
    passphrase = _passphrase(args)
    return _run_on_directory(
        args,
        lambda directory: directory.rotate_online(
            passphrase, lifetime=lifetime, online_key=online_key
        ),
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
    source = OnlineKeyDirectory(args.dir)
    try:
        # From the offline directory, a key file is always re-encrypted for the server.
        rewrap = bool(source.root_key_files()) and bool(source.online_key_files())
        server_passphrase = given_passphrase(args, _SERVER)
        passphrase = None
        if rewrap or server_passphrase is not None:
            passphrase = read_passphrase(args)
            if server_passphrase is None:
                server_passphrase = read_new_passphrase(args, prefix=_SERVER)
        keyring = source.export_online(
            args.to, passphrase=passphrase, server_passphrase=server_passphrase
        )
    except (KeyStoreError, DocumentError) as error:
        raise CommandError(str(error)) from None
    return _summary(OnlineKeyDirectory(args.to), keyring)


def _rewrap(args: argparse.Namespace) -> int:
    passphrase = _passphrase(args)
    try:
        rewritten = OnlineKeyDirectory(args.dir).rewrap(passphrase)
    except (KeyStoreError, DocumentError) as error:
        raise CommandError(str(error)) from None
    print_json({"rewrapped": [str(path) for path in rewritten]})
    return EXIT_OK


def _pkcs11_key(args: argparse.Namespace) -> int:
    from pinwarden.hsm import Pkcs11Uri, generate_token_key, reference_to

    out = Path(args.out)
    if out.exists():
        raise CommandError(f"{out} exists; not overwriting it")
    pin = _passphrase(args)
    try:
        uri = Pkcs11Uri.parse(args.uri)
        if args.generate:
            generate_token_key(uri, pin, args.generate)
        reference = reference_to(uri, pin)
        write_new_file(out, reference.to_bytes(), 0o644)
    except KeyStoreError as error:
        raise CommandError(str(error)) from None
    except OSError as error:
        raise CommandError(f"cannot create {out}: {error.strerror or error}") from None
    print_json(
        {
            "reference": str(out),
            "uri": str(uri),
            "key": f"{reference.public.kid} ({reference.public.algorithm})",
        }
    )
    return EXIT_OK
