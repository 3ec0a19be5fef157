"""``ServerConfig`` refuses every setting of the wrong type or out of range, in one line."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pinwarden.server import ConfigError, ServerConfig

_REQUIRED: dict[str, Any] = {"database_url": "sqlite://", "key_dir": Path("keys")}


def _config(**settings: Any) -> ServerConfig:
    return ServerConfig(**{**_REQUIRED, **settings})


def _refusal(**settings: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        _config(**settings)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_defaults_are_valid_and_written_once() -> None:
    config = _config()
    defaults = ServerConfig.defaults()
    assert {name: getattr(config, name) for name in defaults} == defaults
    assert defaults["heartbeat_seconds"] == 15.0 and defaults["poll_seconds"] == 2.0
    assert defaults["report_max_age"] == timedelta(days=90)
    for name, bound in ServerConfig.bounds().items():  # every default lies in its own range
        assert bound.low <= defaults[name] <= bound.high, name


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"poll_seconds": 0}, "poll_seconds (--poll) must be from 0.05 to 3600 seconds; got 0"),
        (
            {"heartbeat_seconds": 0.0},
            "heartbeat_seconds (--heartbeat) must be from 0.1 to 3600 seconds; got 0",
        ),
        ({"heartbeat_seconds": -1}, "heartbeat_seconds (--heartbeat)"),
        ({"poll_seconds": math.nan}, "got nan"),
        ({"poll_seconds": math.inf}, "got inf"),
        ({"sse_max_streams": 0}, "sse_max_streams (--sse-max-streams) must be from 1 to"),
        ({"sse_max_streams_per_client": 10**12}, "--sse-max-streams-per-client"),
        ({"report_max_rows": 0}, "--report-max-rows"),
        ({"report_total_per_minute": 0}, "--report-total-per-minute"),
        ({"report_burst": 0}, "report_burst must be from 1 to 1_000_000"),
        ({"report_per_minute": -5.0}, "report_per_minute"),
        ({"report_total_burst": 10**100}, "report_total_burst"),
        ({"report_max_rows": 10**5000}, "got an integer of 16610 bits"),
        ({"report_max_rows": -(10**5000)}, "(--report-max-rows) must be from 1 to"),
        (
            {"report_max_age": timedelta(hours=1)},
            "report_max_age (--report-max-age-days) must be from 1 day to 3650 days; "
            "got 3600 seconds",
        ),
        ({"observation_max_age": timedelta(days=-1)}, "observation_max_age"),
        ({"probe_timeout": 0}, "probe_timeout must be from 0.1 to 120 seconds"),
    ],
)
def test_a_setting_out_of_range_is_refused_naming_it_and_its_range(
    settings: dict[str, Any], expected: str
) -> None:
    assert expected in _refusal(**settings)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"poll_seconds": "2"}, "poll_seconds (--poll) must be a number from 0.05 to 3600"),
        ({"poll_seconds": None}, "got NoneType"),
        ({"heartbeat_seconds": True}, "got bool"),
        ({"sse_max_streams": 10.5}, "sse_max_streams (--sse-max-streams) must be an integer"),
        ({"report_max_rows": "1" * 10_000}, "got str"),
        ({"report_max_age": 90}, "report_max_age (--report-max-age-days) must be a timedelta"),
        ({"database_url": ""}, "database_url (--database-url) must be a non-empty string"),
        ({"database_url": b"sqlite://"}, "database_url (--database-url) must be a non-empty"),
        ({"database_url": "sqlite://\0"}, "without NUL"),
        ({"database_url": "sqlite:///\udcff"}, "database_url (--database-url) is not valid"),
        ({"public_url": "example.com"}, "public_url (--public-url) must be an http:// or"),
        ({"public_url": "https://a b"}, "public_url (--public-url)"),
        ({"public_url": "https://x/" + "a" * 10_000}, "at most 4096 characters"),
        ({"key_dir": "keys"}, "key_dir must be a pathlib.Path; got str"),
        ({"key_dir": [[[]]] * 10}, "key_dir must be a pathlib.Path; got list"),
        ({"passphrase": "secret words"}, "passphrase must be bytes or None"),
        ({"migrate": "yes"}, "migrate must be True or False"),
        ({"ca_file": "/nonexistent/ca.pem"}, "ca_file (--ca-file) '/nonexistent/ca.pem' cannot"),
    ],
)
def test_a_setting_of_the_wrong_kind_is_refused_in_one_line(
    settings: dict[str, Any], expected: str
) -> None:
    assert expected in _refusal(**settings)


def test_a_passphrase_of_the_wrong_type_is_never_echoed() -> None:
    assert "secret words" not in _refusal(passphrase="secret words")


def test_a_ca_file_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_bytes(b"\0not a certificate" * 100)
    assert "ca_file (--ca-file)" in _refusal(ca_file=str(garbage))


def test_a_changed_copy_is_validated_too() -> None:
    with pytest.raises(ConfigError, match="--poll"):
        dataclasses.replace(_config(), poll_seconds=0)


def test_the_bounds_are_accepted_at_both_ends() -> None:
    for name, bound in ServerConfig.bounds().items():
        assert getattr(_config(**{name: bound.low}), name) == bound.low
        assert getattr(_config(**{name: bound.high}), name) == bound.high


def test_an_integer_is_accepted_where_a_number_is_expected() -> None:
    assert _config(poll_seconds=1, report_total_per_minute=1).poll_seconds == 1


def test_every_option_an_error_names_is_an_option_of_pinwarden_serve() -> None:
    from pinwarden.cli import build_parser

    parser = build_parser()
    options = [bound.option for bound in ServerConfig.bounds().values() if bound.option]
    assert len(options) == 7
    for option in options:
        parser.parse_args(["serve", "--data", "unused", option, "1"])  # exits 2 if unknown


def test_the_passphrase_is_not_in_the_repr(tmp_path: Path) -> None:
    config = ServerConfig(
        database_url=f"sqlite:///{tmp_path}/db.sqlite",
        key_dir=tmp_path,
        passphrase=b"correct horse battery staple",
    )
    assert "correct horse" not in repr(config) and "passphrase=" not in repr(config)
