"""Signing pin sets with the key directory's online keys, and mirroring keyrings into the database.

The private keys stay in the key directory, encrypted with the passphrase
(``pinwarden.document.KeyDirectory``); the server decrypts the online keys once at start and keeps
them in memory only. The database holds the signed keyrings (served to clients walking their
keyring forward) and a record of each public key.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pinwarden.document import (
    KeyDirectory,
    Keyring,
    PinSet,
    PinSetRule,
    SigningKey,
    load_keyring,
    sign_pinset,
)
from pinwarden.server._models import KeyringRecord, SigningKeyRecord, utc_now
from pinwarden.server._publish import PinSetDraft, SignedPinSet

__all__ = ["KeyDirectorySigner", "pinset_of", "sync_keyrings"]


def pinset_of(draft: PinSetDraft, keyring_version: int) -> PinSet:
    """The document model of a draft (rule snapshots to ``PinSetRule``)."""
    rules = tuple(
        PinSetRule(rule["pattern"], tuple(pin["pin"] for pin in rule["pins"]), rule["mode"])
        for rule in draft.rules
    )
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


class KeyDirectorySigner:
    """Signs with the online keys of the key directory's current keyring.

    Before each signature it checks the directory's keyring version (one small file read) and, if
    the keyring was rotated (``pinwarden keys …``, another replica, or ``rotate_online``), unlocks
    the new online keys: a pin set is never signed with keys the current keyring has dropped.
    """

    def __init__(self, key_dir: Path, passphrase: bytes) -> None:
        self._directory = KeyDirectory(key_dir)
        self._passphrase = passphrase
        self._lock = threading.Lock()
        self.keyring: Keyring = self._directory.current_keyring()
        self._signers = self._directory.online_signers(passphrase)

    def _current(self) -> tuple[Keyring, list[SigningKey]]:
        with self._lock:
            keyring = self._directory.current_keyring()
            if keyring.version != self.keyring.version:
                self._signers = self._directory.online_signers(self._passphrase)
                self.keyring = keyring
            return self.keyring, self._signers

    def sign_pinset(self, draft: PinSetDraft) -> SignedPinSet:
        keyring, signers = self._current()
        pinset = pinset_of(draft, keyring.version)
        return SignedPinSet(sign_pinset(pinset, signers), keyring.version)

    def record_keyrings(self, session: Session) -> None:
        sync_keyrings(session, self._directory.path)

    def rotate_online(self) -> Keyring:
        """Keyring N+1 with new online keys (signed by the root keys in the directory)."""
        with self._lock:
            self.keyring = self._directory.rotate_online(self._passphrase)
            self._signers = self._directory.online_signers(self._passphrase)
            return self.keyring


def sync_keyrings(session: Session, key_dir: Path) -> Keyring:
    """Copy every keyring version of the key directory into the database; record its keys.

    Idempotent: run at ``init`` and at every start, so a keyring rotated offline with the key
    commands is served once the server restarts.
    """
    directory = KeyDirectory(key_dir)
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
