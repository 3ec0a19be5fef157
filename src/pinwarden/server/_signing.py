"""Signing pin sets with the online keys of the server's key directory; mirroring its keyrings.

The server's key directory is an ``OnlineKeyDirectory``: the signed keyrings and the online keys,
copied there from the offline key directory by ``pinwarden keys export-online`` and encrypted
with the server's own passphrase (never the offline one), or, for a key in a PKCS#11 token, a
reference to it: then the secret the server is given is the token's PIN, signatures are made in
the token and the server never sees the private key (docs/keys.md). The root keys never reach the
server (docs/server.md, "Production set-up"): nothing here can read one, and a key directory
holding one is refused, so taking the server never yields the root threshold that makes keyrings.
The server decrypts the online key files at start and keeps them in memory only. The database
holds the signed keyrings (served to clients walking their keyring forward) and a record of each
public key.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pinwarden.document import (
    Keyring,
    KeyringKey,
    KeyStoreError,
    OnlineKeyDirectory,
    PinSet,
    PinSetRule,
    SigningKey,
    load_keyring,
    sign_pinset,
)
from pinwarden.server._models import KeyringRecord, SigningKeyRecord, utc_now
from pinwarden.server._publish import PinSetDraft, SignedPinSet

__all__ = [
    "KeyDirectorySigner",
    "pinset_of",
    "record_token_key",
    "refuse_root_keys",
    "sync_keyrings",
]


def pinset_of(draft: PinSetDraft, keyring_version: int) -> PinSet:
    """The document model of a draft (its rule snapshots as ``PinSetRule``)."""
    rules = tuple(PinSetRule(rule.pattern, rule.pin_values, rule.mode) for rule in draft.rules)
    return PinSet(
        draft.channel,
        draft.version,
        draft.issued,
        draft.expires,
        draft.refresh_after,
        draft.report_uri,
        rules,
        keyring_version,
    )


def refuse_root_keys(directory: OnlineKeyDirectory) -> None:
    """Raise ``KeyStoreError`` if the server's key directory holds a root key (by file name)."""
    found = directory.root_key_files()
    if found:
        raise KeyStoreError(
            f"{directory.path} holds root private keys ({', '.join(path.name for path in found)}): "
            "a server must never hold them. Move that directory to an offline machine and give "
            f"the server only the online keys: pinwarden keys export-online --dir OFFLINE "
            f"--to {directory.path} --server-passphrase-file FILE (docs/keys.md)"
        )


def record_token_key(key_dir: Path, uri: str, pin: bytes) -> KeyringKey:
    """Sign with the key in a PKCS#11 token that ``uri`` names (``init``/``serve --online-key``):
    it must be an online key of the key directory's current keyring; its reference replaces the
    key file or reference there. Opens the token with ``pin`` to read the public key."""
    from pinwarden.hsm import Pkcs11Uri, reference_to  # the pinwarden[hsm] extra, only here

    reference = reference_to(Pkcs11Uri.parse(uri), pin)
    return OnlineKeyDirectory(key_dir).record_token_key(reference)


class KeyDirectorySigner:
    """Signs with the online keys of the server key directory's current keyring.

    Before each signature it checks the directory's keyring version (one small file read) and, if
    the keyring was rotated (offline, then ``pinwarden keys export-online`` here), unlocks the new
    online keys: a pin set is never signed with keys the current keyring has dropped. It refuses
    a directory that holds a root key, at start and at each keyring change. ``passphrase``
    opens the online key files, or is the PIN of the token that holds the online key.
    """

    def __init__(self, key_dir: Path, passphrase: bytes) -> None:
        self._directory = OnlineKeyDirectory(key_dir)
        self._passphrase = passphrase
        self._lock = threading.Lock()
        self.keyring, self._signers = self._unlock()

    def _unlock(self) -> tuple[Keyring, list[SigningKey]]:
        keyring = self._directory.current_keyring()
        refuse_root_keys(self._directory)
        return keyring, self._directory.online_signers(self._passphrase)

    def current(self) -> Keyring:
        """The key directory's current keyring; its online keys unlocked if it changed."""
        return self._current()[0]

    def _current(self) -> tuple[Keyring, list[SigningKey]]:
        with self._lock:
            if self._directory.current_keyring().version != self.keyring.version:
                self.keyring, self._signers = self._unlock()
            return self.keyring, self._signers

    def sign_pinset(self, draft: PinSetDraft) -> SignedPinSet:
        keyring, signers = self._current()
        pinset = pinset_of(draft, keyring.version)
        return SignedPinSet(sign_pinset(pinset, signers), keyring.version)

    def record_keyrings(self, session: Session) -> None:
        sync_keyrings(session, self._directory.path)


def sync_keyrings(session: Session, key_dir: Path) -> Keyring:
    """Copy every keyring version of the key directory into the database; record its keys.

    Idempotent: run at ``init``, at every start and before each signature, so a keyring rotated
    offline and exported here is served from the first pin set that names it.
    """
    directory = OnlineKeyDirectory(key_dir)
    current = directory.current_keyring()
    stored = set(session.scalars(select(KeyringRecord.version)))
    for version in range(1, current.version + 1):
        if version not in stored:
            raw = directory.keyring_bytes(version)
            keyring = load_keyring(raw)
            session.add(KeyringRecord(version=version, body=raw, expires_at=keyring.expires))
    known = {row.key_id: row for row in session.scalars(select(SigningKeyRecord))}
    roles = [("root", key) for key in current.root_keys] + [
        ("online", key) for key in current.online_keys
    ]
    for role, key in roles:
        if key.kid not in known:
            session.add(
                SigningKeyRecord(
                    key_id=key.kid, role=role, algorithm=key.algorithm, public_jwk=key.to_jwk()
                )
            )
    current_ids = {key.kid for _, key in roles}
    for kid, row in known.items():
        if kid not in current_ids and row.retired_at is None:
            row.retired_at = utc_now()
    return current
