"""Server-sent events: the WHATWG parsing rules, and what counts as an announcement."""

from __future__ import annotations

import pytest

from pinwarden.client._sse import ServerEvent, announced_version, parse_events


def events(text: str) -> list[ServerEvent]:
    return list(parse_events(text.splitlines(keepends=True)))


def test_an_event_is_dispatched_on_the_blank_line() -> None:
    assert events('event: pinset\ndata: {"version": 3}\n\n') == [
        ServerEvent("pinset", '{"version": 3}')
    ]


def test_an_event_without_its_blank_line_is_not_dispatched() -> None:
    assert events('event: pinset\ndata: {"version": 3}\n') == []


def test_comments_are_heartbeats_and_never_events() -> None:
    assert events(": heartbeat\n\n: another\n\n") == []


def test_crlf_data_lines_id_and_default_type() -> None:
    parsed = events("id: 7\r\ndata: a\r\ndata: b\r\n\r\ndata:no-space\n\n")
    assert parsed == [ServerEvent("message", "a\nb", "7"), ServerEvent("message", "no-space", "7")]


def test_the_event_type_does_not_leak_into_the_next_event() -> None:
    parsed = events("event: pinset\ndata: x\n\ndata: y\n\n")
    assert [event.type for event in parsed] == ["pinset", "message"]


def test_retry_and_unknown_fields_are_ignored() -> None:
    assert events("retry: 1\nfoo: bar\ndata: z\n\n") == [ServerEvent("message", "z")]


@pytest.mark.parametrize(
    ("event", "version"),
    [
        (ServerEvent("pinset", '{"version": 12}'), 12),
        (ServerEvent("message", '{"version": 12}'), None),
        (ServerEvent("pinset", "12"), None),
        (ServerEvent("pinset", '{"version": "12"}'), None),
        (ServerEvent("pinset", '{"version": true}'), None),
        (ServerEvent("pinset", '{"version": 0}'), None),
        (ServerEvent("pinset", "{not json"), None),
    ],
)
def test_only_a_pinset_event_with_a_positive_integer_announces(
    event: ServerEvent, version: int | None
) -> None:
    assert announced_version(event) == version
