"""``pinwarden keys``, ``sign`` and ``verify`` through ``pinwarden.cli.main``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pinwarden.cli import main
from pinwarden.document import KeyDirectory, SigningKey, sign_keyring, sign_pinset
from tests.document.document_helpers import gen, load_vectors

PASSPHRASE = "cli test passphrase"
VECTORS = load_vectors()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("PINWARDEN_TEST_PASSPHRASE", PASSPHRASE)
    return ["--passphrase-env", "PINWARDEN_TEST_PASSPHRASE"]


@pytest.fixture
def keydir(tmp_path: Path, env: list[str], capsys: pytest.CaptureFixture[str]) -> Path:
    directory = tmp_path / "keys"
    assert main(["keys", "init", "--dir", str(directory), *env]) == 0
    capsys.readouterr()
    return directory


def _payload_file(tmp_path: Path, **changes: Any) -> Path:
    now = datetime.now(timezone.utc)
    payload = gen.pinset(issued=now, expires=now + timedelta(days=7)).to_json()
    payload.update(changes)
    payload["rules"][0]["pattern"] = "API.Example.com"  # sign normalises it
    path = tmp_path / "payload.json"
    path.write_text(json.dumps(payload, indent=2))
    return path


def _no_secrets(captured: Any) -> None:
    assert PASSPHRASE not in captured.out + captured.err
    assert "PRIVATE KEY" not in captured.out + captured.err
    assert "Traceback" not in captured.err


def test_keys_init_prints_the_keyring(tmp_path: Path, env: list[str], capsys: Any) -> None:
    directory = tmp_path / "k"
    code = main(
        [
            "keys",
            "init",
            "--dir",
            str(directory),
            "--algorithm",
            "ES256",
            "--root-keys",
            "5",
            "--root-threshold",
            "3",
            *env,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert (summary["version"], summary["root"]["threshold"], len(summary["root"]["keys"])) == (
        1,
        3,
        5,
    )
    _no_secrets(captured)
    assert main(["keys", "init", "--dir", str(directory), *env]) == 2
    assert "already holds a keyring" in capsys.readouterr().err


def test_keys_init_needs_a_passphrase(tmp_path: Path, capsys: Any) -> None:
    assert main(["keys", "init", "--dir", str(tmp_path / "k")]) == 2
    assert "passphrase" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()


def test_passphrase_file_must_be_private(tmp_path: Path, capsys: Any) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o644)
    directory = tmp_path / "k"
    assert main(["keys", "init", "--dir", str(directory), "--passphrase-file", str(secret)]) == 2
    assert "chmod 600" in capsys.readouterr().err
    secret.chmod(0o600)
    assert main(["keys", "init", "--dir", str(directory), "--passphrase-file", str(secret)]) == 0
    assert KeyDirectory(directory).online_signers(PASSPHRASE)


def test_sign_then_verify(tmp_path: Path, keydir: Path, env: list[str], capsys: Any) -> None:
    signed = tmp_path / "signed.json"
    code = main(
        ["sign", str(_payload_file(tmp_path)), "--dir", str(keydir), "-o", str(signed), *env]
    )
    assert code == 0, capsys.readouterr().err
    assert main(["verify", str(signed), "--keyring", str(keydir / "keyring.json")]) == 0
    captured = capsys.readouterr()
    verified = json.loads(captured.out)
    assert verified["rules"][0]["pattern"] == "api.example.com"
    _no_secrets(captured)


def test_sign_refuses_a_wrong_keyring_version(
    tmp_path: Path, keydir: Path, env: list[str], capsys: Any
) -> None:
    payload = _payload_file(tmp_path, keyring_version=2)
    assert main(["sign", str(payload), "--dir", str(keydir), *env]) == 2
    assert "keyring_version 2" in capsys.readouterr().err


def test_sign_with_key_files(tmp_path: Path, env: list[str], capsys: Any) -> None:
    # A PEM file holds no key id: --key signs under the key's RFC 7638 thumbprint.
    online = SigningKey.from_private_key(gen.ONLINE.private_key)
    key = tmp_path / "online.pem"
    key.write_bytes(online.to_pem(PASSPHRASE))
    keyring = tmp_path / "keyring.json"
    keyring.write_bytes(sign_keyring(gen.keyring(1, gen.ROOTS, [online]), gen.ROOTS))
    signed = tmp_path / "signed.json"
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps(gen.pinset().to_json()))
    assert main(["sign", str(payload), "--key", str(key), "-o", str(signed), *env]) == 0
    assert signed.read_bytes() == sign_pinset(gen.pinset(), [online])  # EdDSA is deterministic
    now = ["--now", "2025-01-15T00:00:00Z"]
    assert main(["verify", str(signed), "--keyring", str(keyring), *now]) == 0
    assert main(["verify", str(signed), "--keyring", str(keyring), "--min-version", "8", *now]) == 1
    assert "RollbackError" in capsys.readouterr().err


def test_sign_refuses_bad_payload(
    tmp_path: Path, keydir: Path, env: list[str], capsys: Any
) -> None:
    payload = tmp_path / "bad.json"
    payload.write_text('{"type": "pinwarden.pinset"')
    assert main(["sign", str(payload), "--dir", str(keydir), *env]) == 2
    captured = capsys.readouterr()
    assert "FormatError" in captured.err
    _no_secrets(captured)


def _vector_files(tmp_path: Path, name: str) -> tuple[list[str], dict[str, Any]]:
    case = VECTORS[name]
    document, keyring = tmp_path / "doc.json", tmp_path / "keyring.json"
    document.write_text(case["document"])
    keyring.write_text(case["keyring"])
    args = [str(document), "--keyring", str(keyring), "--now", case["now"]]
    for index, raw in enumerate(case.get("keyrings", [])):
        later = tmp_path / f"later-{index}.json"
        later.write_text(raw)
        args += ["--next-keyring", str(later)]
    return ["verify", *args, "--min-version", str(case["min_version"])], case


@pytest.mark.parametrize(
    "name",
    [
        "valid-eddsa",
        "rotation-root-valid",
        "alg-none",
        "expired",
        "rotation-only-old-roots",
        "malformed-json",
        "too-large",
        "rollback",
    ],
)
def test_verify_exit_status_and_error_type(tmp_path: Path, name: str, capsys: Any) -> None:
    argv, case = _vector_files(tmp_path, name)
    code = main(argv)
    captured = capsys.readouterr()
    if case["expect"] == "valid":
        assert code == 0
        assert json.loads(captured.out)["type"] == "pinwarden.pinset"
    else:
        assert code == 1
        assert captured.out == ""
        assert captured.err.startswith(f"pinwarden verify: error: {case['expect']}: ")
        assert len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err


def test_verify_a_keyring_rotation(
    tmp_path: Path, keydir: Path, env: list[str], capsys: Any
) -> None:
    assert main(["keys", "rotate-root", "--dir", str(keydir), *env]) == 0
    capsys.readouterr()
    v1, v2 = str(keydir / "keyrings/1.json"), str(keydir / "keyrings/2.json")
    assert main(["verify", v2, "--keyring", v1]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 2
    assert main(["verify", v1, "--keyring", v1]) == 0
    assert main(["verify", v1, "--keyring", v2]) == 1
    assert "SignatureError" in capsys.readouterr().err  # v1 is not signed by v2's new roots


def test_rotate_online_with_wrong_passphrase(
    keydir: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("PINWARDEN_TEST_PASSPHRASE", "wrong")
    argv = ["keys", "rotate-online", "--dir", str(keydir)]
    assert main([*argv, "--passphrase-env", "PINWARDEN_TEST_PASSPHRASE"]) == 2
    assert "wrong passphrase" in capsys.readouterr().err
    assert KeyDirectory(keydir).current_keyring().version == 1


def test_keys_show(keydir: Path, capsys: Any) -> None:
    assert main(["keys", "show", "--dir", str(keydir)]) == 0
    assert json.loads(capsys.readouterr().out)["online"]["threshold"] == 1


def test_verify_refuses_a_naive_now(tmp_path: Path, capsys: Any) -> None:
    argv, _ = _vector_files(tmp_path, "valid-eddsa")
    argv[argv.index("--now") + 1] = "2025-01-15T00:00:00"
    assert main(argv) == 2
    assert "timezone" in capsys.readouterr().err
