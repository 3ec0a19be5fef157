"""Host normalisation and OkHttp-style host patterns (issue 2; client rule 6)."""

from __future__ import annotations

import pytest

from pinwarden import HostPattern, InvalidHostError, normalize_host


@pytest.mark.parametrize(
    "spelling, normal",
    [
        ("api.example.com", "api.example.com"),
        ("API.Example.COM", "api.example.com"),
        ("api.example.com.", "api.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example.", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("127.0.0.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("_service.example.com", "_service.example.com"),
    ],
)
def test_hosts_normalise_to_one_form(spelling: str, normal: str) -> None:
    assert normalize_host(spelling) == normal


@pytest.mark.parametrize(
    "bad",
    [
        "",
        ".",
        "a..b",
        ".example.com",
        "exa mple.com",
        "-bad.example",
        "a" * 64 + ".com",
        "xn--zz.example",
        "ex@mple.com",
        ("a" * 60 + ".") * 5 + "com",
    ],
)
def test_malformed_hosts_are_refused(bad: str) -> None:
    with pytest.raises(InvalidHostError):
        normalize_host(bad)


@pytest.mark.parametrize(
    "pattern, host, matches",
    [
        ("example.com", "example.com", True),
        ("example.com", "www.example.com", False),
        ("*.example.com", "www.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("**.example.com", "example.com", True),
        ("**.example.com", "www.example.com", True),
        ("**.example.com", "a.b.example.com", True),
        ("**.example.com", "badexample.com", False),
        ("*.example.com", "wwwexample.com", False),
        ("*.EXAMPLE.com.", "www.example.com", True),
        ("*.bücher.example", "www.xn--bcher-kva.example", True),
    ],
)
def test_patterns_match_as_okhttp_defines_them(pattern: str, host: str, matches: bool) -> None:
    assert HostPattern.parse(pattern).matches(normalize_host(host)) is matches


@pytest.mark.parametrize(
    "pattern", ["*.com", "**.com", "**.co.uk", "*.co.uk", "*.github.io", "**.localhost"]
)
def test_patterns_covering_a_public_suffix_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidHostError, match="public suffix"):
        HostPattern.parse(pattern)


@pytest.mark.parametrize(
    "pattern", ["*", "**", "a.*.example.com", "*example.com", "***.example.com", "*.127.0.0.1"]
)
def test_malformed_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidHostError):
        HostPattern.parse(pattern)


def test_registrable_domains_and_hosts_below_them_are_accepted() -> None:
    for pattern in ("*.example.co.uk", "**.example.com", "localhost", "api.example.github.io"):
        assert str(HostPattern.parse(pattern)) == pattern


def test_specificity_orders_longer_bases_first_then_exact_over_wildcards() -> None:
    exact = HostPattern.parse("a.b.example.com")
    one = HostPattern.parse("*.b.example.com")
    deep_same = HostPattern.parse("**.b.example.com")
    deep_short = HostPattern.parse("**.example.com")
    assert exact.specificity > one.specificity > deep_same.specificity > deep_short.specificity
