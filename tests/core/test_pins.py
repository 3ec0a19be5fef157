"""Pin computation and parsing (issue 2, pin core)."""

from __future__ import annotations

import base64
import hashlib

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from pinwarden import (
    InvalidPinError,
    UnsupportedKeyMaterial,
    load_all_key_material,
    parse_pin,
    parse_pins,
    pin_digest,
    spki_pin,
)
from pinwarden._pins import spki_pin_of_der


def _expected_pin(public_key: object) -> str:
    spki = public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="module")
def certificate() -> x509.Certificate:
    ca = trustme.CA()
    pem = ca.issue_cert("pins.example").cert_chain_pems[0].bytes()
    return x509.load_pem_x509_certificate(pem)


def test_certificate_object_pem_and_der_give_the_same_pin(certificate: x509.Certificate) -> None:
    expected = _expected_pin(certificate.public_key())
    assert spki_pin(certificate) == expected
    assert spki_pin(certificate.public_bytes(serialization.Encoding.PEM)) == expected
    der = certificate.public_bytes(serialization.Encoding.DER)
    assert spki_pin(der) == expected
    assert spki_pin_of_der(der) == expected


@pytest.mark.parametrize(
    "make_key",
    [
        lambda: ec.generate_private_key(ec.SECP256R1()),
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ed25519.Ed25519PrivateKey.generate,
    ],
    ids=["p256", "rsa2048", "ed25519"],
)
def test_private_key_public_key_and_csr_share_one_pin(make_key: object) -> None:
    key = make_key()  # type: ignore[operator]
    expected = _expected_pin(key.public_key())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "backup")]))
        .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256())
    )
    pem_private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem_public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for material in (
        key,
        key.public_key(),
        csr,
        pem_private,
        pem_public,
        csr.public_bytes(serialization.Encoding.PEM),
    ):
        assert spki_pin(material) == expected


def test_two_different_keys_never_share_a_pin() -> None:
    first = ec.generate_private_key(ec.SECP256R1())
    second = ec.generate_private_key(ec.SECP256R1())
    assert spki_pin(first) != spki_pin(second)


def test_a_chain_file_lists_every_certificate_in_order() -> None:
    ca = trustme.CA()
    intermediate = ca.create_child_ca()
    leaf = intermediate.issue_cert("chain.example")
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    objects = load_all_key_material(chain)
    assert [spki_pin(o) for o in objects] == [
        spki_pin(blob.bytes()) for blob in leaf.cert_chain_pems
    ]
    with pytest.raises(UnsupportedKeyMaterial, match="holds 2 objects"):
        spki_pin(chain)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"not a key at all", "neither PEM nor DER"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n", "truncated"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "could not be read"),
        (b"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", "not a certificate"),
    ],
)
def test_unreadable_material_is_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(UnsupportedKeyMaterial, match=message):
        spki_pin(data)


def test_encrypted_private_key_is_refused_with_advice() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(UnsupportedKeyMaterial, match="encrypted"):
        spki_pin(pem)


DIGEST = bytes(range(32))
B64 = base64.b64encode(DIGEST).decode()


@pytest.mark.parametrize(
    "spelling",
    [f"sha256/{B64}", f"SHA256/{B64}", B64, f'pin-sha256="{B64}"', f'  pin-sha256 = "{B64}" '],
)
def test_every_accepted_spelling_parses_to_the_canonical_pin(spelling: str) -> None:
    assert parse_pin(spelling) == f"sha256/{B64}"
    assert pin_digest(spelling) == DIGEST


def test_bare_base64_containing_a_slash_is_not_mistaken_for_an_algorithm() -> None:
    digest = b"\xff" * 32  # base64 of 0xff bytes is all '/'
    bare = base64.b64encode(digest).decode()
    assert bare.startswith("////")
    assert pin_digest(bare) == digest


@pytest.mark.parametrize(
    "bad, message",
    [
        (f"sha1/{base64.b64encode(bytes(20)).decode()}", "only sha256"),
        (f"sha384/{base64.b64encode(bytes(48)).decode()}", "only sha256"),
        ("sha256/" + base64.b64encode(bytes(31)).decode(), "31 bytes"),
        ("sha256/" + base64.b64encode(bytes(33)).decode(), "33 bytes"),
        ("sha256/not*base64", "not valid base64"),
        ("sha256/", "empty"),
        ("", "empty"),
        ('pin-sha256=""', "empty"),
    ],
)
def test_anything_but_a_sha256_digest_is_refused(bad: str, message: str) -> None:
    with pytest.raises(InvalidPinError, match=message):
        parse_pin(bad)


def test_a_non_string_pin_is_refused() -> None:
    with pytest.raises(InvalidPinError, match="string"):
        parse_pin(DIGEST)  # type: ignore[arg-type]


def test_parse_pins_keeps_order_and_drops_duplicates() -> None:
    other = base64.b64encode(bytes(32)).decode()
    assert parse_pins([B64, f"sha256/{other}", f"sha256/{B64}"]) == (
        f"sha256/{B64}",
        f"sha256/{other}",
    )


HEX = DIGEST.hex()
HEX_PAIRS = ":".join(f"{byte:02X}" for byte in DIGEST)


@pytest.mark.parametrize(
    "fingerprint",
    [
        HEX,
        HEX.upper(),
        HEX_PAIRS,
        f"sha256:{HEX_PAIRS}",
        f"SHA256={HEX}",
        f"sha-256: {HEX_PAIRS}",
        f"sha256/{HEX}",
        f"  {HEX_PAIRS}  ",
        bytes(20).hex(),  # SHA-1
        "sha1:" + ":".join(["ab"] * 20),
    ],
)
def test_a_hex_certificate_fingerprint_is_refused_with_how_to_get_a_pin(fingerprint: str) -> None:
    """Before: 'decodes to 48 bytes' or 'not valid base64', with no word of what to do."""
    with pytest.raises(InvalidPinError) as raised:
        parse_pins([fingerprint])
    message = str(raised.value)
    assert "hex fingerprint, not an SPKI pin" in message
    assert "whole certificate" in message
    assert "`pinwarden pin HOST` or `pinwarden pin cert.pem`" in message


def test_a_sha256_hex_fingerprint_message_shows_the_base64_spelling_of_the_digest() -> None:
    with pytest.raises(InvalidPinError, match=f"write it as sha256/{B64}"):
        parse_pin(HEX_PAIRS)


def test_the_base64_pin_of_the_same_digest_twin_is_accepted() -> None:
    assert parse_pin(f"sha256/{B64}") == f"sha256/{B64}"


@pytest.mark.parametrize(
    "hostile",
    [
        HEX + "\x00",
        HEX[:-1] + "\ud800",
        HEX * 100_000,
        ":".join(["ab"] * 100_000),
        "sha256:" + ":" * 10_000,
        "\x00" * 64,
        "g" * 64,
    ],
    ids=["nul", "lone-surrogate", "huge-hex", "huge-pairs", "colons", "nuls", "not-hex"],
)
def test_hostile_pin_text_is_one_clear_invalid_pin_error(hostile: str) -> None:
    with pytest.raises(InvalidPinError) as raised:
        parse_pin(hostile)
    assert "\n" not in str(raised.value)


def test_a_huge_pin_is_quoted_short_in_its_error() -> None:
    with pytest.raises(InvalidPinError) as raised:
        parse_pin("A" * 1_000_000)
    assert len(str(raised.value)) < 300
    assert "1000000 characters" in str(raised.value)
