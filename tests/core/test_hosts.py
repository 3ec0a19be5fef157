"""Host normalisation and OkHttp-style host patterns: the grammar of docs/spec.md §3.1 and the
signer's policy of §3.2 (docs/security.md rule 6)."""

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
        ("ab--cd.example.com", "ab--cd.example.com"),
        # ASCII labels keep their own grammar beside a non-ASCII one (idna.encode of the whole
        # name would refuse "_srv" and "r1---sn").
        ("_srv.bücher.example", "_srv.xn--bcher-kva.example"),
        ("r1---sn.Bücher.example", "r1---sn.xn--bcher-kva.example"),
        ("bücher\u3002example", "xn--bcher-kva.example"),
        ("[2001:DB8:0:0:0:0:0:1]", "2001:db8::1"),
        # One spelling on every Python: 3.13 writes a mapped address as ::ffff:1.2.3.4.
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("[::ffff:102:304]", "1.2.3.4"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
        (("a" * 62 + ".") * 4 + "c", ("a" * 62 + ".") * 4 + "c"),  # 253 characters
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
        ("a" * 62 + ".") * 4 + "cd",  # 254 characters
        "example.com\n",  # a "$" in a regex would let the newline through
        "exa\x00mple.com",
        "\ud800.example",
        "1.2.3",  # the WHATWG URL parser reads it as 1.2.0.3
        "0x7f.1",
        "example.0x1f",
        "example.123",
        "01.2.3.4",
        "fe80::1%eth0",
        "[fe80::1%25eth0]",
        "xn--abc-.example",
        "xn--.example",
        "xn--a-ecp.example",  # Punycode of "a⒈", not IDNA 2008
        "xn--ls8h-.example",
        "a" * 1_000_000,
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


@pytest.mark.parametrize("pattern", ["**.co.uk", "*.co.uk", "*.github.io", "**.github.io"])
def test_signers_refuse_wildcards_over_a_public_suffix_and_verifiers_do_not(pattern: str) -> None:
    with pytest.raises(InvalidHostError, match="public suffix"):
        HostPattern.parse(pattern)
    assert str(HostPattern.parse(pattern, grammar_only=True)) == pattern


def test_signers_refuse_a_punycode_label_that_is_not_idna_2008_and_verifiers_do_not() -> None:
    with pytest.raises(InvalidHostError, match="IDNA 2008"):
        HostPattern.parse("*.xn--a-ecp.example")
    assert str(HostPattern.parse("*.xn--a-ecp.example", grammar_only=True)) == "*.xn--a-ecp.example"


@pytest.mark.parametrize("grammar_only", [False, True])
@pytest.mark.parametrize("pattern", ["*.com", "**.com", "**.localhost", "*.a"])
def test_a_wildcard_over_one_label_is_refused_by_the_grammar(
    pattern: str, grammar_only: bool
) -> None:
    with pytest.raises(InvalidHostError, match="at least two labels"):
        HostPattern.parse(pattern, grammar_only=grammar_only)


@pytest.mark.parametrize("grammar_only", [False, True])
@pytest.mark.parametrize(
    "pattern",
    [
        "*",
        "**",
        "a.*.example.com",
        "*example.com",
        "***.example.com",
        "*.127.0.0.1",
        "**.::1",
        "*.[::1]",
        "*.",
        "*..example.com",
        "*.example.com\n",
        "**." + ("a" * 62 + ".") * 4 + "cd",
        "",
    ],
)
def test_malformed_patterns_are_refused(pattern: str, grammar_only: bool) -> None:
    with pytest.raises(InvalidHostError):
        HostPattern.parse(pattern, grammar_only=grammar_only)


@pytest.mark.parametrize("value", [None, 7, b"example.com", ["example.com"]])
def test_hosts_and_patterns_of_another_type_are_refused(value: object) -> None:
    with pytest.raises(InvalidHostError, match="is a string"):
        normalize_host(value)  # type: ignore[arg-type]
    with pytest.raises(InvalidHostError, match="is a string"):
        HostPattern.parse(value)  # type: ignore[arg-type]


def test_the_253_character_limit_is_on_the_name_without_the_wildcard() -> None:
    name = ("a" * 62 + ".") * 4 + "c"
    assert len(name) == 253
    assert HostPattern.parse("**." + name).base == name
    assert HostPattern.parse("*." + name).base == name


def test_registrable_domains_and_hosts_below_them_are_accepted() -> None:
    for pattern in ("*.example.co.uk", "**.example.com", "localhost", "api.example.github.io"):
        assert str(HostPattern.parse(pattern)) == pattern


def test_specificity_orders_longer_bases_first_then_exact_over_wildcards() -> None:
    exact = HostPattern.parse("a.b.example.com")
    one = HostPattern.parse("*.b.example.com")
    deep_same = HostPattern.parse("**.b.example.com")
    deep_short = HostPattern.parse("**.example.com")
    assert exact.specificity > one.specificity > deep_same.specificity > deep_short.specificity
