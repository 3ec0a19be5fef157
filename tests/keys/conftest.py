"""Fixtures of the signing-key tests (tests/keys/softhsm.py)."""

from tests.keys.keys_harness import soft_token  # noqa: F401 - fixtures are found by name
