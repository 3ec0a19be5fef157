"""Signing inside a PKCS#11 token: the private key never leaves it (docs/keys.md).

The keys here are ``cryptography`` private-key objects whose ``sign`` calls the token, so the JWS
code signs with them exactly as with a key read from a file (``SigningKey``). Ed25519 signs with
``CKM_EDDSA`` (PKCS#11 3.0 Current Mechanisms; SoftHSM2 >= 2.6 has it). P-256 signs with
``CKM_ECDSA`` over a SHA-256 digest made here: the token returns ``r || s``, each 32 bytes
big-endian (PKCS#11 Current Mechanisms, "ECDSA"), which is already JWS's ES256 form (RFC 7518
§3.4); ``sign`` hands ``cryptography``'s DER form to joserfc, which turns it back into ``r || s``.
Nothing here can export the private key.

One read-write session per token, opened and logged in at the first use and kept for the process:
a login belongs to the whole application, not to one session (PKCS#11 Base, ``C_Login``: a second
login fails with ``CKR_USER_ALREADY_LOGGED_IN``), and one session must not be used by two threads
at once, so every call on a token holds that token's lock. A later open with another PIN is
refused as a wrong PIN.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from pinwarden.document import KeyStoreError
from pinwarden.hsm._uri import Pkcs11Uri

if TYPE_CHECKING:
    import pkcs11

__all__ = ["TokenPrivateKey", "generate_token_key", "open_token_key"]

_P256 = "secp256r1"
_ED25519_OID = "1.3.101.112"  # RFC 8410 §3, as CKA_EC_PARAMS of an Edwards key (PKCS#11 3.0)


def _pkcs11() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise KeyStoreError(
            "a pkcs11: key needs python-pkcs11: pip install 'pinwarden[hsm]'"
        ) from None
    return pkcs11


def _refuse_private_export(*_: object, **__: object) -> NoReturn:
    raise KeyStoreError("the private key stays in the PKCS#11 token; it cannot be exported")


class _OpenToken:
    """A logged-in session on one token, the lock that serialises calls on it, the PIN's digest."""

    def __init__(self, session: pkcs11.Session, pin: bytes) -> None:
        self.session = session
        self.lock = threading.RLock()
        self.pin_digest = hashlib.sha256(pin).digest()


_OPEN_TOKENS: dict[tuple[str, str, str | None], _OpenToken] = {}
_OPEN_TOKENS_LOCK = threading.Lock()


class _TokenKey:
    """The token side of a key: its token's session and its private-key object."""

    def __init__(self, token: _OpenToken, private: Any, uri: Pkcs11Uri) -> None:
        self._token = token
        self._private = private
        self.uri = uri

    def sign(self, data: bytes, mechanism: Any) -> bytes:
        with self._token.lock, _token_errors(self.uri):
            return bytes(self._private.sign(data, mechanism=mechanism))


class TokenEd25519Key(ed25519.Ed25519PrivateKey):
    """An Ed25519 private key in a token: signs there, never exported."""

    def __init__(self, token: _TokenKey, public: ed25519.Ed25519PublicKey) -> None:
        self._token = token
        self._public = public

    def sign(self, data: bytes | bytearray | memoryview) -> bytes:
        return self._token.sign(bytes(data), _pkcs11().Mechanism.EDDSA)

    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self._public

    private_bytes = private_bytes_raw = _refuse_private_export

    def __copy__(self) -> TokenEd25519Key:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> TokenEd25519Key:
        return self


class TokenP256Key(ec.EllipticCurvePrivateKey):
    """A P-256 private key in a token: ECDSA with SHA-256 there, never exported."""

    def __init__(self, token: _TokenKey, public: ec.EllipticCurvePublicKey) -> None:
        self._token = token
        self._public = public

    def sign(
        self,
        data: bytes | bytearray | memoryview,
        signature_algorithm: ec.EllipticCurveSignatureAlgorithm,
    ) -> bytes:
        if not isinstance(signature_algorithm, ec.ECDSA) or not isinstance(
            signature_algorithm.algorithm, hashes.SHA256
        ):
            raise KeyStoreError("a P-256 key in a token signs ECDSA with SHA-256 (ES256) only")
        raw = self._token.sign(hashlib.sha256(bytes(data)).digest(), _pkcs11().Mechanism.ECDSA)
        if len(raw) != 64:
            raise KeyStoreError(f"{self._token.uri.token}: an ECDSA signature of {len(raw)} bytes")
        r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        return encode_dss_signature(r, s)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public.curve

    @property
    def key_size(self) -> int:
        return self._public.key_size

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise KeyStoreError("the online key in a token signs; it does no key exchange")

    private_bytes = private_numbers = _refuse_private_export

    def __copy__(self) -> TokenP256Key:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> TokenP256Key:
        return self


TokenPrivateKey = TokenEd25519Key | TokenP256Key


@contextmanager
def _token_errors(uri: Pkcs11Uri) -> Iterator[None]:
    """PKCS#11 failures as one ``KeyStoreError`` line naming the token and a next step."""
    pkcs11 = _pkcs11()
    where = f"token {uri.token!r}"
    try:
        yield
    except pkcs11.PinIncorrect:
        raise KeyStoreError(f"{where}: wrong PIN") from None
    except pkcs11.PinLocked:
        raise KeyStoreError(f"{where}: the user PIN is locked; unlock it with the SO PIN") from None
    except pkcs11.NoSuchToken:
        raise KeyStoreError(f"no token labelled {uri.token!r} in {uri.module_path}") from None
    except pkcs11.MultipleTokensReturned:
        raise KeyStoreError(f"several tokens are labelled {uri.token!r}: add serial=") from None
    except pkcs11.MechanismInvalid:
        raise KeyStoreError(f"{where} cannot sign with this key's algorithm") from None
    except pkcs11.PKCS11Error as error:
        name = type(error).__name__
        detail = str(error).splitlines()[0][:200] if str(error) else name
        raise KeyStoreError(f"{where} ({uri.module_path}): {detail}") from None


def _open_token(uri: Pkcs11Uri, pin: bytes) -> _OpenToken:
    """The logged-in session on ``uri``'s token: opened at the first call, then reused."""
    pkcs11 = _pkcs11()
    if not os.path.isfile(uri.module_path):
        raise KeyStoreError(f"the PKCS#11 library {uri.module_path} does not exist")
    try:
        user_pin = pin.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyStoreError("the PIN is not UTF-8 text") from None
    key = (uri.module_path, uri.token, uri.serial)
    with _OPEN_TOKENS_LOCK:
        token = _OPEN_TOKENS.get(key)
        if token is None:
            with _token_errors(uri):
                library = pkcs11.lib(uri.module_path)
                found = library.get_token(token_label=uri.token, token_serial=uri.serial)
                token = _OpenToken(found.open(rw=True, user_pin=user_pin), pin)
            _OPEN_TOKENS[key] = token
        elif not hmac.compare_digest(token.pin_digest, hashlib.sha256(pin).digest()):
            raise KeyStoreError(f"token {uri.token!r}: wrong PIN")
        return token


def _selector(uri: Pkcs11Uri) -> dict[Any, Any]:
    attribute = _pkcs11().Attribute
    found: dict[Any, Any] = {}
    if uri.object_label is not None:
        found[attribute.LABEL] = uri.object_label
    if uri.object_id is not None:
        found[attribute.ID] = uri.object_id
    return found


def _public_of(session: pkcs11.Session, uri: Pkcs11Uri) -> tuple[str, Any]:
    """The key's algorithm and public key, read from the token's public-key object."""
    pkcs11 = _pkcs11()
    attribute = pkcs11.Attribute
    matches = list(
        session.get_objects({attribute.CLASS: pkcs11.ObjectClass.PUBLIC_KEY, **_selector(uri)})
    )
    if len(matches) != 1:
        raise KeyStoreError(
            f"token {uri.token!r} holds {len(matches)} public keys that match {uri}; "
            "it needs exactly one beside the private key"
        )
    key_type = matches[0][attribute.KEY_TYPE]
    point = _octet_string(bytes(matches[0][attribute.EC_POINT]))
    if key_type == pkcs11.KeyType.EC_EDWARDS and len(point) == 32:
        return "EdDSA", ed25519.Ed25519PublicKey.from_public_bytes(point)
    if key_type == pkcs11.KeyType.EC and len(point) == 65:
        try:
            return "ES256", ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError:
            pass
    raise KeyStoreError(f"{uri} is neither an Ed25519 nor a P-256 key")


def _octet_string(der: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the point (PKCS#11 Current Mechanisms, EC and
    Edwards public key objects)."""
    if len(der) >= 2 and der[0] == 0x04 and der[1] == len(der) - 2 and der[1] < 0x80:
        return der[2:]
    raise KeyStoreError("the token's CKA_EC_POINT is not a short DER OCTET STRING")


def open_token_key(uri: Pkcs11Uri, pin: bytes) -> tuple[str, TokenPrivateKey]:
    """The algorithm and the signing key that ``uri`` names, logged in with ``pin``."""
    pkcs11 = _pkcs11()
    token = _open_token(uri, pin)
    with token.lock, _token_errors(uri):
        algorithm, public = _public_of(token.session, uri)
        privates = list(
            token.session.get_objects(
                {pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY, **_selector(uri)}
            )
        )
    if len(privates) != 1:
        count = len(privates)
        raise KeyStoreError(f"token {uri.token!r} holds {count} private keys matching {uri}")
    token_key = _TokenKey(token, privates[0], uri)
    if algorithm == "EdDSA":
        return algorithm, TokenEd25519Key(token_key, public)
    return algorithm, TokenP256Key(token_key, public)


def generate_token_key(uri: Pkcs11Uri, pin: bytes, algorithm: str) -> None:
    """Make a key pair for ``algorithm`` in the token, labelled and identified as ``uri`` says,
    the private half sensitive and not extractable; refuse if the token already holds an object
    that ``uri`` names."""
    pkcs11 = _pkcs11()
    token = _open_token(uri, pin)
    with token.lock, _token_errors(uri):
        if list(token.session.get_objects(_selector(uri))):
            raise KeyStoreError(f"token {uri.token!r} already holds an object matching {uri}")
        curve, key_type, mechanism = (
            (_ED25519_OID, pkcs11.KeyType.EC_EDWARDS, pkcs11.Mechanism.EC_EDWARDS_KEY_PAIR_GEN)
            if algorithm == "EdDSA"
            else (_P256, pkcs11.KeyType.EC, pkcs11.Mechanism.EC_KEY_PAIR_GEN)
        )
        parameters = token.session.create_domain_parameters(
            key_type,
            {pkcs11.Attribute.EC_PARAMS: pkcs11.util.ec.encode_named_curve_parameters(curve)},
            local=True,
        )
        template = {pkcs11.Attribute.EXTRACTABLE: False, pkcs11.Attribute.SENSITIVE: True}
        parameters.generate_keypair(
            store=True,
            label=uri.object_label,
            id=uri.object_id or os.urandom(16),
            mechanism=mechanism,
            private_template=template,
        )
