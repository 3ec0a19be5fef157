"""Guesses per second an attacker gets against a stolen key file, before and after (docs/keys.md).

One P-256 private key is written twice: as earlier releases wrote it (PKCS#8 with PBKDF2,
``cryptography``'s ``BestAvailableEncryption``) and as ``SigningKey.to_pem`` writes it now (scrypt,
``pinwarden.document._keyfile``). Each file is then attacked with wrong passphrases on one core,
the way an offline guesser would: one full decryption attempt per guess. Both are measured in the
same run, alternating in rounds so a busy machine slows both alike.

Run: ``.venv/bin/python bench/key_guessing.py`` (``--seconds 3`` per format and round,
``--rounds 3``). A GPU guesses PBKDF2 thousands of times faster than one core; scrypt's memory per
guess keeps it close to the CPU figure.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import serialization

from pinwarden.document import KeyStoreError, SigningKey
from pinwarden.document._keyfile import SCRYPT_COST

PASSPHRASE = "correct horse battery staple"  # noqa: S105 - the benchmark's own key


def _guesses_per_second(attempt: Callable[[bytes], None], seconds: float) -> float:
    guesses, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds or guesses == 0:
        try:
            attempt(f"guess {guesses}".encode())
        except (ValueError, TypeError, KeyStoreError):
            pass  # a wrong guess: what the attacker sees nearly every time
        guesses += 1
    return guesses / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per format and round (3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    args = parser.parse_args()

    key = SigningKey.generate("ES256")
    before = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    )
    after = key.to_pem(PASSPHRASE)
    attacks = {
        "PKCS#8 PBKDF2 (before)": lambda guess: serialization.load_pem_private_key(before, guess),
        f"scrypt n={SCRYPT_COST.n} r={SCRYPT_COST.r} p={SCRYPT_COST.p} (now)": (
            lambda guess: SigningKey.from_pem(after, guess)
        ),
    }
    rates: dict[str, list[float]] = {name: [] for name in attacks}
    for _ in range(args.rounds):
        for name, attempt in attacks.items():
            rates[name].append(_guesses_per_second(attempt, args.seconds))
    best = {name: max(values) for name, values in rates.items()}
    for name, rate in best.items():
        print(f"{name:32} {rate:12,.1f} guesses/s (best of {args.rounds} rounds)")
    old, new = best.values()
    print(f"{'ratio':32} {old / new:12,.0f} x fewer guesses per second now")


if __name__ == "__main__":
    main()
