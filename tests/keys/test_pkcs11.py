"""The online signing key in a PKCS#11 token, for real against SoftHSM2 (docs/keys.md).

The walk of the docs: a key made in the token (``keys pkcs11-key``), named in keyring v1 offline
(``keys init --online-key``), exported, ``pinwarden init`` on the server, a pin set published
and signed in the token, verified by ``pinwarden verify`` and by the TypeScript verifier; then the
online key rotated to a new key in the token through the offline root keys, the server signing
with it without a restart.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from pinwarden.document import (
    KeyDirectory,
    KeyStoreError,
    OnlineKeyDirectory,
    SignatureError,
    load_keyring,
    verify_pinset,
)
from pinwarden.document._encoding import format_time
from pinwarden.hsm import Pkcs11Uri, generate_token_key, token_signer
from pinwarden.server._signing import record_token_key
from tests.keys.keys_harness import (
    SoftToken,
    pin_server_services,
    pinwarden,
    publish_disabled_rule,
    resign,
)

OFFLINE_PASSPHRASE = "offline passphrase, for the test"
REPO = Path(__file__).resolve().parents[2]
VERDICTS_SCRIPT = REPO / "js" / "dist" / "scripts" / "verdicts.js"


def _make_token_key(
    capsys: pytest.CaptureFixture[str], token: SoftToken, tmp_path: Path, algorithm: str
) -> tuple[str, Path]:
    """``pinwarden keys pkcs11-key URI --generate ALG``: the URI and the reference file."""
    label = f"online-{uuid.uuid4().hex[:10]}"
    uri, reference = token.uri(label), tmp_path / f"{label}.json"
    status, out, err = pinwarden(
        capsys,
        "keys", "pkcs11-key", uri, "--generate", algorithm, "--out", str(reference),
        "--passphrase-env", "PW_PIN",
    )  # fmt: skip
    assert status == 0, err
    assert json.loads(out)["key"].endswith(f"({algorithm})")
    return uri, reference


@pytest.fixture
def token_env(soft_token: SoftToken, monkeypatch: pytest.MonkeyPatch) -> SoftToken:
    """The token, its PIN in $PW_PIN and the offline passphrase in $PW_OFFLINE."""
    monkeypatch.setenv("PW_PIN", soft_token.pin)
    monkeypatch.setenv("PW_OFFLINE", OFFLINE_PASSPHRASE)
    return soft_token


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_a_pin_set_signed_in_the_token_verifies_and_survives_an_online_rotation(
    algorithm: str, token_env: SoftToken, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    offline, export, data = tmp_path / "offline", tmp_path / "export", tmp_path / "data"
    _, reference = _make_token_key(capsys, token_env, tmp_path, algorithm)
    status, _, err = pinwarden(
        capsys,
        "keys", "init", "--dir", str(offline), "--online-key", str(reference),
        "--algorithm", algorithm, "--passphrase-env", "PW_OFFLINE",
    )  # fmt: skip
    assert status == 0, err
    online_kid = load_keyring((offline / "keyring.json").read_bytes()).online_keys[0].kid
    assert (offline / "keys" / f"{online_kid}.pkcs11").is_file()
    assert not (offline / "keys" / f"{online_kid}.pem").exists()  # no private key file at all
    status, _, err = pinwarden(
        capsys, "keys", "export-online", "--dir", str(offline), "--to", str(export),
        "--passphrase-env", "PW_OFFLINE", "--server-passphrase-env", "PW_PIN",
    )  # fmt: skip
    assert status == 0, err
    status, _, err = pinwarden(
        capsys, "init", "--data", str(data), "--keys-from", str(export),
        "--passphrase-env", "PW_PIN",
    )  # fmt: skip
    assert status == 0, err
    assert not list((data / "keys" / "keys").glob("*.pem"))  # the server holds no private key

    shipped = offline / "keyrings" / "1.json"
    with pin_server_services(data, token_env.pin.encode()) as services:
        signed_v1 = publish_disabled_rule(services, "app")
        document = tmp_path / "pinset-v1.json"
        document.write_bytes(signed_v1)
        status, out, err = pinwarden(capsys, "verify", str(document), "--keyring", str(shipped))
        assert status == 0, err
        assert json.loads(out)["keyring_version"] == 1

        # Rotation to a new key in the token, through the offline root keys.
        _, new_reference = _make_token_key(capsys, token_env, tmp_path, algorithm)
        status, _, err = pinwarden(
            capsys, "keys", "rotate-online", "--dir", str(offline),
            "--online-key", str(new_reference), "--passphrase-env", "PW_OFFLINE",
        )  # fmt: skip
        assert status == 0, err
        status, _, err = pinwarden(
            capsys, "keys", "export-online", "--dir", str(offline), "--to", str(data / "keys"),
            "--passphrase-env", "PW_OFFLINE", "--server-passphrase-env", "PW_PIN",
        )  # fmt: skip
        assert status == 0, err
        signed_v2 = resign(services, "app")

    rotated = tmp_path / "pinset-v2.json"
    rotated.write_bytes(signed_v2)
    v2 = offline / "keyrings" / "2.json"
    status, out, err = pinwarden(
        capsys, "verify", str(rotated), "--keyring", str(shipped), "--next-keyring", str(v2)
    )
    assert status == 0, err
    assert json.loads(out)["keyring_version"] == 2
    # The negative twin: keyring v2 no longer trusts the first key in the token.
    keyring_v2 = load_keyring(v2.read_bytes())
    with pytest.raises(SignatureError):
        verify_pinset(signed_v1, keyring=keyring_v2)
    _typescript_accepts(tmp_path, shipped, [v2], signed_v2)


def _typescript_accepts(tmp_path: Path, keyring: Path, walk: list[Path], document: bytes) -> None:
    """The TypeScript verifier in js/ accepts ``document``, and refuses it tampered."""
    node = shutil.which("node")
    if node is None or not VERDICTS_SCRIPT.is_file():
        pytest.skip("the TypeScript verifier needs node and a built js/ (cd js && npm run build)")
    vectors = tmp_path / "vectors"
    vectors.mkdir()
    tampered = document.replace(b'"signature":"', b'"signature":"A', 1)
    for name, body in (("signed-in-token", document), ("tampered", tampered)):
        vector = {
            "keyring": keyring.read_text(),
            "keyrings": [path.read_text() for path in walk],
            "document": body.decode(),
            "now": format_time(datetime.now(timezone.utc)),
            "min_version": 0,
        }
        (vectors / f"{name}.json").write_text(json.dumps(vector))
    ran = subprocess.run(
        [node, str(VERDICTS_SCRIPT), str(vectors)], capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    verdicts = json.loads(ran.stdout)
    assert verdicts["signed-in-token"] == "valid"
    assert verdicts["tampered"] != "valid"


def test_init_with_a_token_key_signs_and_a_wrong_pin_is_one_line(
    token_env: SoftToken,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uri, _ = _make_token_key(capsys, token_env, tmp_path, "ES256")
    monkeypatch.setenv("PW_WRONG_PIN", "0000")
    status, _, err = pinwarden(
        capsys, "init", "--data", str(tmp_path / "refused"), "--online-key", uri,
        "--passphrase-env", "PW_WRONG_PIN",
    )  # fmt: skip
    assert status != 0
    assert err.count("\n") == 1 and "wrong PIN" in err and "Traceback" not in err
    # The accepted twin: init --online-key URI (development root keys), serve with the PIN.
    data = tmp_path / "data"
    status, _, err = pinwarden(
        capsys, "init", "--data", str(data), "--online-key", uri, "--passphrase-env", "PW_PIN"
    )
    assert status == 0, err
    with pin_server_services(data, token_env.pin.encode()) as services:
        signed = publish_disabled_rule(services, "app")
    keyring = load_keyring((data / "keys" / "keyring.json").read_bytes())
    assert keyring.online_keys[0].algorithm == "ES256"
    assert verify_pinset(signed, keyring=keyring).channel == "app"


def test_the_token_key_signs_but_is_never_exported(token_env: SoftToken) -> None:
    uri = Pkcs11Uri.parse(token_env.uri())
    generate_token_key(uri, token_env.pin.encode(), "EdDSA")
    signer = token_signer(uri, token_env.pin.encode())
    with pytest.raises(KeyStoreError, match="stays in the PKCS#11 token"):
        signer.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    with pytest.raises(KeyStoreError, match="stays in the PKCS#11 token"):
        signer.to_pem("a passphrase")
    with pytest.raises(KeyStoreError, match="already holds"):
        generate_token_key(uri, token_env.pin.encode(), "EdDSA")  # never a second key so named


@pytest.mark.parametrize(
    "uri, problem",
    [
        ("pkcs11:token=t;object=k?module-path=/lib.so&pin-value=1234", "a PIN is never written"),
        ("pkcs11:token=t;object=k?module-path=/lib.so&pin-source=file:/p", "a PIN is never"),
        ("pkcs11:token=t;object=k", "needs ?module-path"),
        ("pkcs11:token=t;object=k?module-path=lib.so", "needs ?module-path"),
        ("pkcs11:object=k?module-path=/lib.so", "needs token="),
        ("pkcs11:token=t?module-path=/lib.so", "needs object="),
        ("pkcs11:token=t;token=u;object=k?module-path=/lib.so", "names token twice"),
        ("pkcs11:token=t;object=k;slot-id=1?module-path=/lib.so", "has the attribute"),
        ("pkcs11:token=t;object=k;type=public?module-path=/lib.so", "type other than private"),
        ("pkcs11:token=t%00;object=k?module-path=/lib.so", "control characters"),
        ("pkcs11:token=t%FF;object=k?module-path=/lib.so", "not UTF-8"),
        ("pkcs11:token=t\ud800;object=k?module-path=/lib.so", "percent-encoded"),
        ("pkcs11:token=t;object=k;id=?module-path=/lib.so", "empty id"),
        ("pkcs11:token=" + "t" * 3000 + ";object=k?module-path=/lib.so", "longer than"),
        ("file:/etc/passwd", "must start with"),
        ("", "must start with"),
    ],
)
def test_a_pkcs11_uri_is_read_strictly(uri: str, problem: str) -> None:
    with pytest.raises(KeyStoreError, match=re.escape(problem)):
        Pkcs11Uri.parse(uri)


def test_a_pkcs11_uri_reads_back_the_same() -> None:
    parsed = Pkcs11Uri.parse(
        "PKCS11:token=my%20token;id=%01%02;object=k?module-path=/usr/lib/x%20y.so"
    )
    assert (parsed.token, parsed.object_id, parsed.module_path) == (
        "my token",
        b"\1\2",
        "/usr/lib/x y.so",
    )
    assert Pkcs11Uri.parse(str(parsed)) == parsed


@pytest.mark.parametrize(
    "change, problem",
    [
        (
            lambda uri: uri.replace("token=pinwarden-test", "token=no-such-token"),
            "no token labelled",
        ),
        (lambda uri: uri.replace("object=", "object=missing-"), "holds 0 public keys"),
        (lambda uri: uri.replace("module-path=/", "module-path=/nonexistent/"), "does not exist"),
    ],
)
def test_a_token_key_that_is_not_there_is_one_line(
    change: Any,
    problem: str,
    token_env: SoftToken,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    uri, _ = _make_token_key(capsys, token_env, tmp_path, "ES256")
    status, _, err = pinwarden(
        capsys, "keys", "pkcs11-key", change(uri), "--out", str(tmp_path / "ref.json"),
        "--passphrase-env", "PW_PIN",
    )  # fmt: skip
    assert status != 0 and problem in err and err.count("\n") == 1
    assert not (tmp_path / "ref.json").exists()


def test_serve_online_key_names_the_keyrings_token_key_and_refuses_another(
    token_env: SoftToken,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uri, _ = _make_token_key(capsys, token_env, tmp_path, "EdDSA")
    data = tmp_path / "data"
    status, _, err = pinwarden(
        capsys, "init", "--data", str(data), "--online-key", uri, "--passphrase-env", "PW_PIN"
    )
    assert status == 0, err
    (reference,) = (data / "keys" / "keys").glob("*.pkcs11")
    reference.unlink()  # e.g. a key directory copied without it
    with pytest.raises(KeyStoreError, match="cannot read online key"):
        OnlineKeyDirectory(data / "keys").online_signers(token_env.pin)
    other_uri, _ = _make_token_key(capsys, token_env, tmp_path, "EdDSA")
    for options, problem in (
        (["--online-key", other_uri, "--passphrase-env", "PW_PIN"], "is not an online key"),
        (["--online-key", uri, "--no-signing"], "cannot go with --no-signing"),
        (["--online-key", uri + "&pin-value=1", "--passphrase-env", "PW_PIN"], "never written"),
    ):
        status, _, err = pinwarden(capsys, "serve", "--data", str(data), "--port", "1", *options)
        assert status != 0 and problem in err and err.count("\n") == 1, err
    # The accepted twin: the reference ``serve --online-key`` records, signing in the token.
    record_token_key(data / "keys", uri, token_env.pin.encode())
    assert reference.is_file()
    with pin_server_services(data, token_env.pin.encode()) as services:
        signed = publish_disabled_rule(services, "app")
    keyring = load_keyring((data / "keys" / "keyring.json").read_bytes())
    assert verify_pinset(signed, keyring=keyring).keyring_version == 1


@pytest.fixture(scope="module")
def offline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("offline") / "keys"
    KeyDirectory(path).init(OFFLINE_PASSPHRASE, root_keys=1, root_threshold=1)
    return path


_URI = "pkcs11:token=t;object=k?module-path=/lib.so"
_JWK = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "not a pkcs11 key reference"),
        (b"\x00\xff", "not a pkcs11 key reference"),
        (b"[" * 100_000, "not a pkcs11 key reference"),
        (b" " * 9000, "larger than 8192 bytes"),
        (json.dumps({"pkcs11": _URI, "kid": "k"}).encode(), 'exactly "pkcs11", "kid"'),
        (
            json.dumps(
                {"pkcs11": _URI, "kid": "k", "jwk": {**_JWK, "alg": "EdDSA", "d": "x"}}
            ).encode(),
            "members",
        ),
        (
            json.dumps(
                {"pkcs11": _URI + "&pin-value=1", "kid": "k", "jwk": {**_JWK, "alg": "EdDSA"}}
            ).encode(),
            "never written",
        ),
        (
            json.dumps(
                {"pkcs11": "pkcs11:token=\ud800", "kid": "k", "jwk": {**_JWK, "alg": "EdDSA"}}
            ).encode(),
            "percent-encoded",
        ),
        (
            json.dumps({"pkcs11": 7, "kid": "k", "jwk": {**_JWK, "alg": "EdDSA"}}).encode(),
            "must start with",
        ),
    ],
)
def test_a_hostile_key_reference_is_one_line_and_changes_nothing(
    content: bytes,
    problem: str,
    offline_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PW_OFFLINE", OFFLINE_PASSPHRASE)
    reference = tmp_path / "reference.json"
    reference.write_bytes(content)
    before = (offline_dir / "keyring.json").read_bytes()
    status, _, err = pinwarden(
        capsys, "keys", "rotate-online", "--dir", str(offline_dir), "--online-key",
        str(reference), "--passphrase-env", "PW_OFFLINE",
    )  # fmt: skip
    assert status != 0 and problem in err and err.count("\n") == 1, err
    assert (offline_dir / "keyring.json").read_bytes() == before
