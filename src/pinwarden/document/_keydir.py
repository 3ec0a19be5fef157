"""A directory that holds a deployment's document keys and every keyring it has published.

Layout (docs/spec.md, "Key directory")::

    DIR/                     0700
      keyring.json           the current signed keyring: ship it in apps, serve it to clients
      keyrings/<N>.json      every signed keyring version N, for clients walking N -> N+1
      keys/<kid>.pem         private keys (root and online), PKCS#8 encrypted, 0600

Which key is a root key and which an online key is read from ``keyring.json``; nothing else is
stored. Every change publishes keyring N+1 only after checking that ``update_keyring`` accepts
it, then removes the private keys it retired. Key material is never printed or logged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pinwarden.document._errors import DocumentError, KeyStoreError
from pinwarden.document._keys import Passphrase, SigningKey
from pinwarden.document._model import Keyring
from pinwarden.document._signing import sign_keyring
from pinwarden.document._verifier import load_keyring, update_keyring

__all__ = ["DEFAULT_KEYRING_LIFETIME", "KeyDirectory"]

DEFAULT_KEYRING_LIFETIME = timedelta(days=365)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from the first byte; never replace an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeyStoreError(f"{path} exists; not overwriting it") from None
    except OSError as error:
        raise KeyStoreError(f"cannot create {path}: {error.strerror or error}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class KeyDirectory:
    """The root keys, online keys and keyring history of one deployment, in one directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def keyring_path(self) -> Path:
        return self.path / "keyring.json"

    def _key_path(self, kid: str) -> Path:
        return self.path / "keys" / f"{kid}.pem"

    def exists(self) -> bool:
        return self.keyring_path.exists()

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
        for directory in (self.path, self.path / "keys", self.path / "keyrings"):
            try:
                directory.mkdir(mode=0o700, parents=directory == self.path, exist_ok=True)
            except OSError as error:
                raise KeyStoreError(f"cannot create {directory}: {error.strerror}") from None
        return self._publish(None, keyring, roots, passphrase, new_keys=[*roots, *onlines])

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
        path = self.path / "keyrings" / f"{int(version)}.json"
        try:
            return path.read_bytes()
        except OSError as error:
            raise KeyStoreError(f"no keyring v{version} in {self.path}: {error.strerror}") from None

    def online_signers(self, passphrase: Passphrase) -> list[SigningKey]:
        """The online keys of the current keyring, decrypted: they sign pin sets."""
        return self._signers(self.current_keyring(), "online", passphrase)

    def root_signers(self, passphrase: Passphrase) -> list[SigningKey]:
        """The root keys of the current keyring, decrypted: they sign keyrings."""
        return self._signers(self.current_keyring(), "root", passphrase)

    def rotate_online(
        self, passphrase: Passphrase, *, lifetime: timedelta = DEFAULT_KEYRING_LIFETIME
    ) -> Keyring:
        """Replace the online keys: keyring N+1 with new online keys and the same roots.

        Pin sets must then be signed again with the new keys (and name the new keyring version).
        Also the way to renew a keyring before it expires.
        """
        current = self.current_keyring()
        roots = self._signers(current, "root", passphrase)
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
        old_roots = self._signers(current, "root", passphrase)
        count = len(current.root_keys) if root_keys is None else root_keys
        new_roots = [
            SigningKey.generate(algorithm or current.root_keys[0].algorithm) for _ in range(count)
        ]
        onlines = self._signers(current, "online", passphrase)
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

    def _signers(self, keyring: Keyring, role: str, passphrase: Passphrase) -> list[SigningKey]:
        public_keys, _ = keyring.role(role)
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
            _write_new(self.path / "keyrings" / f"{keyring.version}.json", raw, 0o644)
        except KeyStoreError:
            for key in new_keys:
                self._key_path(key.kid).unlink(missing_ok=True)
            raise
        staging = self.path / f".keyring.json.{os.getpid()}"
        staging.unlink(missing_ok=True)
        _write_new(staging, raw, 0o644)
        os.replace(staging, self.keyring_path)
        if current is not None:
            kept = {key.kid for key in (*keyring.root_keys, *keyring.online_keys)}
            for old in (*current.root_keys, *current.online_keys):
                if old.kid not in kept:
                    self._key_path(old.kid).unlink(missing_ok=True)
        return published
