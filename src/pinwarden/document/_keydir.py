"""Key directories: the offline one that holds the root keys, and the online copy a server holds.

Layout (docs/spec.md §9, "Key directory")::

    DIR/                     0700
      keyring.json           the current signed keyring: ship it in apps, serve it to clients
      keyrings/<N>.json      every signed keyring version N, for clients walking N -> N+1
      keys/<kid>.pem         private keys, PKCS#8 encrypted, 0600

A ``KeyDirectory`` holds the root keys and the online keys and belongs on an offline machine: its
root keys sign every keyring (design brief, "Signed document": offline root keys, k of n). An
``OnlineKeyDirectory`` is what a pin server holds: the keyrings and the online keys only, copied
there by ``export_online``. It has no way to read a root key, and ``root_key_files`` lets a server
refuse to run beside one: whoever takes the server must not get the root threshold, or they could
publish keyring N+1 with their own keys and every client would walk to it.

Which key is a root key and which an online key is read from ``keyring.json``; nothing else is
stored. Every change publishes keyring N+1 only after checking that ``update_keyring`` accepts
it, then removes the private keys it retired. Key material is never printed or logged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pinwarden._files import write_new_file
from pinwarden.document._errors import DocumentError, KeyStoreError
from pinwarden.document._keys import KeyringKey, Passphrase, SigningKey
from pinwarden.document._model import Keyring
from pinwarden.document._signing import sign_keyring
from pinwarden.document._verifier import load_keyring, update_keyring

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

    def export_online(self, target: str | os.PathLike[str]) -> Keyring:
        """Copy every keyring and the current online keys (still encrypted) into ``target``.

        What a server's key directory gets, at ``pinwarden init`` and after each rotation done
        here: never a root key. A ``target`` that already holds keyrings must hold this
        directory's keyring history up to its own version (it is the same deployment, and older);
        the walk from its keyring to the current one is checked as a client would check it. The
        new ``keyring.json`` replaces the old only once the online keys it names are in place;
        then the online keys it retired are removed.
        """
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
            _copy_file(self._key_path(key.kid), destination._key_path(key.kid), 0o600)
        destination._replace_keyring(self.keyring_bytes(current.version))
        if held is not None:
            destination._remove_keys(held.online_keys, keep=current)
        return current

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
        staging = self.path / f".keyring.json.{os.getpid()}"
        staging.unlink(missing_ok=True)
        _write_new(staging, raw, 0o644)
        os.replace(staging, self.keyring_path)

    def _remove_keys(self, retired: Sequence[KeyringKey], *, keep: Keyring) -> None:
        kept = {key.kid for key in (*keep.root_keys, *keep.online_keys)}
        for key in retired:
            if key.kid not in kept:
                self._key_path(key.kid).unlink(missing_ok=True)

    def _read_signers(
        self, public_keys: Sequence[KeyringKey], role: str, passphrase: Passphrase
    ) -> list[SigningKey]:
        signers = []
        for public in public_keys:
            path = self._key_path(public.kid)
            try:
                data = path.read_bytes()
            except OSError as error:
                raise KeyStoreError(f"cannot read {role} key {path}: {error.strerror}") from None
            signer = SigningKey.from_pem(data, passphrase, kid=public.kid)
            if signer.public() != public:
                raise KeyStoreError(f"{path} does not hold the {role} key the keyring names")
            signers.append(signer)
        return signers


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
    ) -> Keyring:
        """Make the root and online keys and publish keyring v1, signed by every root key."""
        if self.exists():
            raise KeyStoreError(f"{self.path} already holds a keyring; rotate it instead")
        roots = [SigningKey.generate(algorithm) for _ in range(root_keys)]
        onlines = [SigningKey.generate(algorithm) for _ in range(online_keys)]
        keyring = self._build(1, roots, root_threshold, onlines, online_threshold, lifetime)
        self._make_layout()
        return self._publish(None, keyring, roots, passphrase, new_keys=[*roots, *onlines])

    def root_signers(self, passphrase: Passphrase) -> list[SigningKey]:
        """The root keys of the current keyring, decrypted: they sign keyrings."""
        return self._read_signers(self.current_keyring().root_keys, "root", passphrase)

    def rotate_online(
        self, passphrase: Passphrase, *, lifetime: timedelta = DEFAULT_KEYRING_LIFETIME
    ) -> Keyring:
        """Replace the online keys: keyring N+1 with new online keys and the same roots.

        Pin sets must then be signed again with the new keys (and name the new keyring version):
        ``export_online`` to the server, then re-sign there. Also the way to renew a keyring
        before it expires.
        """
        current = self.current_keyring()
        roots = self.root_signers(passphrase)
        algorithm = current.online_keys[0].algorithm
        onlines = [SigningKey.generate(algorithm) for _ in current.online_keys]
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
        onlines = self.online_signers(passphrase)
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
        onlines: Sequence[SigningKey],
        online_threshold: int,
        lifetime: timedelta,
    ) -> Keyring:
        expires = datetime.now(timezone.utc) + lifetime
        return Keyring(
            version,
            expires,
            tuple(key.public() for key in roots),
            root_threshold,
            tuple(key.public() for key in onlines),
            online_threshold,
        )

    def _publish(
        self,
        current: Keyring | None,
        keyring: Keyring,
        signers: Sequence[SigningKey],
        passphrase: Passphrase,
        *,
        new_keys: Sequence[SigningKey],
    ) -> Keyring:
        raw = sign_keyring(keyring, signers)
        # Publish only what a client would accept.
        published = load_keyring(raw) if current is None else update_keyring(current, raw)
        for key in new_keys:
            _write_new(self._key_path(key.kid), key.to_pem(passphrase), 0o600)
        try:
            # O_EXCL on the versioned file: of two concurrent rotations, one fails here.
            _write_new(self._keyring_file(keyring.version), raw, 0o644)
        except KeyStoreError:
            for key in new_keys:
                self._key_path(key.kid).unlink(missing_ok=True)
            raise
        self._replace_keyring(raw)
        if current is not None:
            self._remove_keys((*current.root_keys, *current.online_keys), keep=keyring)
        return published
