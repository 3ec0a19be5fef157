"""Key directories: the offline one that holds the root keys, and the online copy a server holds.

Layout (docs/spec.md §9, "Key directory")::

    DIR/                     0700
      keyring.json           the current signed keyring: ship it in apps, serve it to clients
      keyrings/<N>.json      every signed keyring version N, for clients walking N -> N+1
      keys/<kid>.pem         private keys, scrypt-encrypted key files (docs/keys.md), 0600
      keys/<kid>.pkcs11      or: a reference to an online key kept in a PKCS#11 token

A ``KeyDirectory`` holds the root keys and the online keys and belongs on an offline machine: its
root keys sign every keyring (docs/spec.md §1: offline root keys, k of n). An
``OnlineKeyDirectory`` is what a pin server holds: the keyrings and the online keys only, copied
there by ``export_online``. It has no way to read a root key, and ``root_key_files`` lets a server
refuse to run beside one: whoever takes the server must not get the root threshold, or they could
publish keyring N+1 with their own keys and every client would walk to it.

Which key is a root key and which an online key is read from ``keyring.json``; nothing else is
stored. Every change publishes keyring N+1 only after checking that ``update_keyring`` accepts
it, then removes the private keys it retired. Key material is never printed or logged.

An online key may live in a PKCS#11 token (``pinwarden.hsm``, imported only when such a key is
met): its directory entry is the reference, and the secret that opens it is the token's PIN.
"""

from __future__ import annotations

import dataclasses
import hmac
import os
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from pinwarden._files import write_new_file
from pinwarden.document._errors import DocumentError, KeyStoreError
from pinwarden.document._keys import (
    KeyringKey,
    Passphrase,
    SigningKey,
    needs_rewrap,
    passphrase_bytes,
)
from pinwarden.document._model import Keyring
from pinwarden.document._signing import sign_keyring
from pinwarden.document._verifier import load_keyring, update_keyring

if TYPE_CHECKING:
    from pinwarden.hsm import KeyReference

__all__ = ["DEFAULT_KEYRING_LIFETIME", "KeyDirectory", "OnlineKeyDirectory"]

DEFAULT_KEYRING_LIFETIME = timedelta(days=365)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the first byte; never replace an existing file."""
    try:
        write_new_file(path, data, mode)
    except FileExistsError:
        raise KeyStoreError(f"{path} exists; not overwriting it") from None
    except OSError as error:
        raise KeyStoreError(f"cannot create {path}: {error.strerror or error}") from None


def _replace_file(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` at once (a staged file renamed over it): a reader sees old or new."""
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    staging.unlink(missing_ok=True)
    _write_new(staging, data, mode)
    os.replace(staging, path)


def _copy_file(source: Path, target: Path, mode: int) -> None:
    """Copy ``source`` to a new ``target``; an identical ``target`` is left as it is."""
    try:
        data = source.read_bytes()
    except OSError as error:
        raise KeyStoreError(f"cannot read {source}: {error.strerror}") from None
    if target.exists():
        if target.read_bytes() != data:
            raise KeyStoreError(f"{target} differs from {source}; not overwriting it")
        return
    _write_new(target, data, mode)


class OnlineKeyDirectory:
    """The keyrings and online keys of one deployment: all a pin server needs, and all it gets.

    Its only decryption is ``online_signers``; it cannot make or sign a keyring.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def keyring_path(self) -> Path:
        return self.path / "keyring.json"

    def _key_path(self, kid: str) -> Path:
        return self.path / "keys" / f"{kid}.pem"

    def _reference_path(self, kid: str) -> Path:
        return self.path / "keys" / f"{kid}.pkcs11"

    def _keyring_file(self, version: int) -> Path:
        return self.path / "keyrings" / f"{int(version)}.json"

    def exists(self) -> bool:
        return self.keyring_path.exists()

    def current_keyring(self) -> Keyring:
        """The current keyring, checked to carry its own root threshold."""
        try:
            return load_keyring(self.keyring_path.read_bytes())
        except OSError as error:
            raise KeyStoreError(f"cannot read {self.keyring_path}: {error.strerror}") from None
        except DocumentError as error:
            raise KeyStoreError(f"{self.keyring_path} is not a valid keyring: {error}") from None

    def keyring_bytes(self, version: int) -> bytes:
        """The signed keyring ``version`` exactly as published: what a walking client fetches."""
        try:
            return self._keyring_file(version).read_bytes()
        except OSError as error:
            raise KeyStoreError(f"no keyring v{version} in {self.path}: {error.strerror}") from None

    def online_signers(self, passphrase: Passphrase) -> list[SigningKey]:
        """The online keys of the current keyring, decrypted: they sign pin sets."""
        return self._read_signers(self.current_keyring().online_keys, "online", passphrase)

    def online_key_files(self) -> list[Path]:
        """The key files of the current online keys (not the keys held in a token)."""
        online = self.current_keyring().online_keys
        return [path for key in online if (path := self._key_path(key.kid)).exists()]

    def root_key_files(self) -> list[Path]:
        """The files here that hold a root key of any keyring version (none, on a server).

        Only the file names are looked at (key ids); no key is read.
        """
        current = self.current_keyring()
        roots: set[str] = set()
        for version in range(1, current.version + 1):
            try:
                keyring = load_keyring(self.keyring_bytes(version))
            except DocumentError as error:
                raise KeyStoreError(f"keyring v{version} in {self.path}: {error}") from None
            roots.update(key.kid for key in keyring.root_keys)
        return sorted(path for kid in roots if (path := self._key_path(kid)).exists())

    def export_online(
        self,
        target: str | os.PathLike[str],
        *,
        passphrase: Passphrase | None = None,
        server_passphrase: Passphrase | None = None,
    ) -> Keyring:
        """Copy every keyring and the current online keys into ``target``: never a root key.

        What a server's key directory gets, at ``pinwarden init`` and after each rotation done
        here. With ``passphrase`` and ``server_passphrase``, each online key file is opened with
        the first and written under the second, so the server never holds a file that the
        offline passphrase opens (``pinwarden keys export-online``); without them the files are
        copied as they are (a server copy to a server). A key in a token is copied as its
        reference. A ``target`` that already holds keyrings must hold this directory's keyring
        history up to its own version (it is the same deployment, and older); the walk from its
        keyring to the current one is checked as a client would check it. The new
        ``keyring.json`` replaces the old only once the online keys it names are in place; then
        the online keys it retired are removed.
        """
        if (passphrase is None) != (server_passphrase is None):
            raise KeyStoreError("re-encrypting the online keys needs both passphrases")
        if passphrase is not None and server_passphrase is not None:
            if _same_secret(passphrase, server_passphrase):
                raise KeyStoreError(
                    "the server passphrase must differ from the offline passphrase: a stolen "
                    "server would otherwise open the root key files too"
                )
        current = self.current_keyring()
        destination = OnlineKeyDirectory(target)
        if destination.path.resolve() == self.path.resolve():
            raise KeyStoreError(f"{self.path}: cannot export a key directory into itself")
        held = destination.current_keyring() if destination.exists() else None
        if held is not None:
            if held.version > current.version:
                raise KeyStoreError(
                    f"{destination.path} holds keyring v{held.version}, newer than "
                    f"v{current.version} in {self.path}"
                )
            if destination.keyring_bytes(held.version) != self.keyring_bytes(held.version):
                raise KeyStoreError(
                    f"{destination.path} holds another deployment's keyring v{held.version}"
                )
            if destination.root_key_files():
                raise KeyStoreError(f"{destination.path} holds root keys; it is not a server copy")
        self._check_history(held, current)
        destination._make_layout()
        for version in range(1, current.version + 1):
            _copy_file(self._keyring_file(version), destination._keyring_file(version), 0o644)
        for key in current.online_keys:
            self._export_key(key, destination, passphrase, server_passphrase)
        destination._replace_keyring(self.keyring_bytes(current.version))
        if held is not None:
            destination._remove_keys(held.online_keys, keep=current)
        return current

    def _export_key(
        self,
        key: KeyringKey,
        destination: OnlineKeyDirectory,
        passphrase: Passphrase | None,
        server_passphrase: Passphrase | None,
    ) -> None:
        """One online key into ``destination``: its reference, its file, or its file re-encrypted
        (left alone where ``destination`` already holds that key under the server passphrase)."""
        if self._reference_path(key.kid).exists():
            _copy_file(self._reference_path(key.kid), destination._reference_path(key.kid), 0o644)
            return
        if passphrase is None or server_passphrase is None:
            _copy_file(self._key_path(key.kid), destination._key_path(key.kid), 0o600)
            return
        if destination._key_path(key.kid).exists():
            destination._read_signers([key], "online", server_passphrase)  # or KeyStoreError
            return
        (signer,) = self._read_signers([key], "online", passphrase)
        _write_new(destination._key_path(key.kid), signer.to_pem(server_passphrase), 0o600)

    def _check_history(self, held: Keyring | None, current: Keyring) -> None:
        """Walk from ``held`` (else keyring v1) to ``current`` one verified step at a time."""
        try:
            trusted = held or load_keyring(self.keyring_bytes(1))
            for version in range(trusted.version + 1, current.version + 1):
                trusted = update_keyring(trusted, self.keyring_bytes(version))
        except DocumentError as error:
            raise KeyStoreError(f"the keyrings in {self.path} do not walk: {error}") from None

    def _make_layout(self) -> None:
        for directory in (self.path, self.path / "keys", self.path / "keyrings"):
            try:
                directory.mkdir(mode=0o700, parents=directory == self.path, exist_ok=True)
            except OSError as error:
                raise KeyStoreError(f"cannot create {directory}: {error.strerror}") from None

    def _replace_keyring(self, raw: bytes) -> None:
        _replace_file(self.keyring_path, raw, 0o644)

    def _remove_keys(self, retired: Sequence[KeyringKey], *, keep: Keyring) -> None:
        kept = {key.kid for key in (*keep.root_keys, *keep.online_keys)}
        for key in retired:
            if key.kid not in kept:
                self._key_path(key.kid).unlink(missing_ok=True)
                self._reference_path(key.kid).unlink(missing_ok=True)

    def record_token_key(self, reference: KeyReference) -> KeyringKey:
        """Make ``reference`` the way to reach the current online key whose public key it has
        (``pinwarden init``/``serve --online-key``): written as ``keys/<kid>.pkcs11``, in place
        of the key file if there was one."""
        current = self.current_keyring()
        online = {key.fingerprint: key for key in current.online_keys}
        public = online.get(reference.public.fingerprint)
        if public is None:
            raise KeyStoreError(
                f"{reference.uri} is not an online key of keyring v{current.version} in "
                f"{self.path}: name it in a keyring first, offline "
                "(pinwarden keys rotate-online --online-key FILE)"
            )
        self._make_layout()
        recorded = dataclasses.replace(reference, public=public)  # the keyring's key id
        _replace_file(self._reference_path(public.kid), recorded.to_bytes(), 0o644)
        self._key_path(public.kid).unlink(missing_ok=True)
        return public

    def rewrap(self, passphrase: Passphrase) -> list[Path]:
        """Rewrite each key file of the current keyring still in the older PKCS#8 (PBKDF2) form
        as a scrypt key file under the same passphrase; the files rewritten."""
        current = self.current_keyring()
        rewritten = []
        for public in (*current.root_keys, *current.online_keys):
            path = self._key_path(public.kid)
            try:
                if not path.exists() or not needs_rewrap(path.read_bytes()):
                    continue
            except OSError as error:
                raise KeyStoreError(f"cannot read {path}: {error.strerror}") from None
            (signer,) = self._read_signers([public], "current", passphrase)
            _replace_file(path, signer.to_pem(passphrase), 0o600)
            rewritten.append(path)
        return rewritten

    def _read_signers(
        self, public_keys: Sequence[KeyringKey], role: str, passphrase: Passphrase
    ) -> list[SigningKey]:
        signers = []
        for public in public_keys:
            path = self._key_path(public.kid)
            reference = self._reference_path(public.kid)
            if not path.exists() and reference.exists():
                path = reference
                signer = _token_signer(reference, public, passphrase)
            else:
                try:
                    data = path.read_bytes()
                except OSError as error:
                    raise KeyStoreError(
                        f"cannot read {role} key {path}: {error.strerror}"
                    ) from None
                signer = SigningKey.from_pem(data, passphrase, kid=public.kid)
            if signer.public() != public:
                raise KeyStoreError(f"{path} does not hold the {role} key the keyring names")
            signers.append(signer)
        return signers


def _new_online_keys(
    count: int, algorithm: str, in_token: KeyReference | None
) -> list[SigningKey | KeyReference]:
    """``count`` new online key files, or the one key in a token that ``in_token`` names."""
    if in_token is None:
        return [SigningKey.generate(algorithm) for _ in range(count)]
    if count != 1:
        raise KeyStoreError(
            f"a key in a token replaces exactly one online key; this keyring has {count}"
        )
    return [in_token]


def _public_of(key: SigningKey | KeyReference | KeyringKey) -> KeyringKey:
    if isinstance(key, SigningKey):
        return key.public()
    return key if isinstance(key, KeyringKey) else key.public


def _same_secret(first: Passphrase, second: Passphrase) -> bool:
    return hmac.compare_digest(passphrase_bytes(first), passphrase_bytes(second))


def _token_signer(reference_path: Path, public: KeyringKey, pin: Passphrase) -> SigningKey:
    """The signer of the key in a token that ``reference_path`` names, opened with ``pin``."""
    from pinwarden.hsm import KeyReference, token_signer  # only where a token key is met

    try:
        data = reference_path.read_bytes()
    except OSError as error:
        raise KeyStoreError(f"cannot read {reference_path}: {error.strerror}") from None
    reference = KeyReference.from_bytes(data, str(reference_path))
    if reference.public != public:
        raise KeyStoreError(f"{reference_path} names another key than the keyring's {public.kid}")
    return token_signer(reference.uri, passphrase_bytes(pin), kid=public.kid)


class KeyDirectory(OnlineKeyDirectory):
    """The root keys, online keys and keyring history of one deployment: keep it offline.

    A server gets only ``export_online``'s copy (``pinwarden keys export-online``).
    """

    def init(
        self,
        passphrase: Passphrase,
        *,
        root_keys: int = 3,
        root_threshold: int = 2,
        online_keys: int = 1,
        online_threshold: int = 1,
        algorithm: str = "EdDSA",
        lifetime: timedelta = DEFAULT_KEYRING_LIFETIME,
        online_key: KeyReference | None = None,
    ) -> Keyring:
        """Make the root and online keys and publish keyring v1, signed by every root key.

        ``online_key``: the one online key is that key in a PKCS#11 token, not a new file.
        """
        if self.exists():
            raise KeyStoreError(f"{self.path} already holds a keyring; rotate it instead")
        roots = [SigningKey.generate(algorithm) for _ in range(root_keys)]
        onlines = _new_online_keys(online_keys, algorithm, online_key)
        keyring = self._build(1, roots, root_threshold, onlines, online_threshold, lifetime)
        self._make_layout()
        return self._publish(None, keyring, roots, passphrase, new_keys=[*roots, *onlines])

    def root_signers(self, passphrase: Passphrase) -> list[SigningKey]:
        """The root keys of the current keyring, decrypted: they sign keyrings."""
        return self._read_signers(self.current_keyring().root_keys, "root", passphrase)

    def rotate_online(
        self,
        passphrase: Passphrase,
        *,
        lifetime: timedelta = DEFAULT_KEYRING_LIFETIME,
        online_key: KeyReference | None = None,
    ) -> Keyring:
        """Replace the online keys: keyring N+1 with new online keys and the same roots.

        Pin sets must then be signed again with the new keys (and name the new keyring version):
        ``export_online`` to the server, then re-sign there. Also the way to renew a keyring
        before it expires. ``online_key``: the new online key is that key in a PKCS#11 token.
        """
        current = self.current_keyring()
        roots = self.root_signers(passphrase)
        algorithm = current.online_keys[0].algorithm
        onlines = _new_online_keys(len(current.online_keys), algorithm, online_key)
        keyring = self._build(
            current.version + 1,
            roots,
            current.root_threshold,
            onlines,
            current.online_threshold,
            lifetime,
        )
        return self._publish(current, keyring, roots, passphrase, new_keys=onlines)

    def rotate_root(
        self,
        passphrase: Passphrase,
        *,
        root_keys: int | None = None,
        root_threshold: int | None = None,
        algorithm: str | None = None,
        lifetime: timedelta = DEFAULT_KEYRING_LIFETIME,
    ) -> Keyring:
        """Replace every root key: keyring N+1 signed by the old and the new root keys.

        The online keys stay. The old root keys are deleted once N+1 is published; clients still at
        N reach N+1 because the old root threshold signed it.
        """
        current = self.current_keyring()
        old_roots = self.root_signers(passphrase)
        count = len(current.root_keys) if root_keys is None else root_keys
        new_roots = [
            SigningKey.generate(algorithm or current.root_keys[0].algorithm) for _ in range(count)
        ]
        onlines = list(current.online_keys)
        keyring = self._build(
            current.version + 1,
            new_roots,
            current.root_threshold if root_threshold is None else root_threshold,
            onlines,
            current.online_threshold,
            lifetime,
        )
        return self._publish(
            current, keyring, [*old_roots, *new_roots], passphrase, new_keys=new_roots
        )

    @staticmethod
    def _build(
        version: int,
        roots: Sequence[SigningKey],
        root_threshold: int,
        onlines: Sequence[SigningKey | KeyReference | KeyringKey],
        online_threshold: int,
        lifetime: timedelta,
    ) -> Keyring:
        expires = datetime.now(timezone.utc) + lifetime
        return Keyring(
            version,
            expires,
            tuple(key.public() for key in roots),
            root_threshold,
            tuple(_public_of(key) for key in onlines),
            online_threshold,
        )

    def _publish(
        self,
        current: Keyring | None,
        keyring: Keyring,
        signers: Sequence[SigningKey],
        passphrase: Passphrase,
        *,
        new_keys: Sequence[SigningKey | KeyReference],
    ) -> Keyring:
        raw = sign_keyring(keyring, signers)
        # Publish only what a client would accept.
        published = load_keyring(raw) if current is None else update_keyring(current, raw)
        written: list[Path] = []
        try:
            for key in new_keys:
                if isinstance(key, SigningKey):
                    path, data, mode = self._key_path(key.kid), key.to_pem(passphrase), 0o600
                else:
                    path, data, mode = self._reference_path(key.public.kid), key.to_bytes(), 0o644
                _write_new(path, data, mode)
                written.append(path)
            # O_EXCL on the versioned file: of two concurrent rotations, one fails here.
            _write_new(self._keyring_file(keyring.version), raw, 0o644)
        except KeyStoreError:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        self._replace_keyring(raw)
        if current is not None:
            self._remove_keys((*current.root_keys, *current.online_keys), keep=keyring)
        return published
