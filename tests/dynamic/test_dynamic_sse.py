"""Server-sent events: the WHATWG parsing rules, and what counts as an announcement."""

from __future__ import annotations

import queue
import random
from collections.abc import Iterator
from datetime import timedelta

import pytest

from pinwarden.client._fetch import FetchError
from pinwarden.client._refresh import RefreshPolicy
from pinwarden.client._sse import (
    MAX_EVENT_CHARS,
    MAX_STREAM_CHARS,
    PushSubscription,
    ServerEvent,
    announced_version,
    parse_events,
)
from tests.dynamic.pin_server_simulator import HEARTBEAT, PinServerSimulator
from tests.support.clock import FakeClock
from tests.support.waiting import WAIT, wait_until


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


# -- endless data: an event and a connection are bounded --------------------------------------


class Feed:
    """``count`` lines of ``line``, counting how many the parser took."""

    def __init__(self, line: str, count: int) -> None:
        self.line, self.count, self.taken = line, count, 0

    def __iter__(self) -> Iterator[str]:
        for _ in range(self.count):
            self.taken += 1
            yield self.line


def test_data_lines_without_a_blank_line_are_cut_at_the_event_cap() -> None:
    feed = Feed("data: " + "A" * 1023 + "\n", 10_000)  # 10 MiB that would never be dispatched
    with pytest.raises(FetchError, match="event over"):
        list(parse_events(feed))
    assert feed.taken == MAX_EVENT_CHARS // 1024 + 1


def test_an_event_just_under_the_cap_is_dispatched() -> None:
    lines = ["data: " + "A" * 1023 + "\n"] * (MAX_EVENT_CHARS // 1024) + ["\n"]
    (event,) = parse_events(lines)
    assert len(event.data) == MAX_EVENT_CHARS - 1


def test_the_event_cap_starts_again_with_each_event() -> None:
    lines = ["data: " + "A" * 1023 + "\n"] * 40 + ["\n"]
    assert len(list(parse_events(lines * 10))) == 10


def test_a_connection_is_cut_at_the_stream_cap() -> None:
    feed = Feed(HEARTBEAT, 2 * MAX_STREAM_CHARS // len(HEARTBEAT))  # never an event, never silent
    with pytest.raises(FetchError, match="more than"):
        list(parse_events(feed))
    assert feed.taken == MAX_STREAM_CHARS // len(HEARTBEAT) + 1


def test_heartbeats_under_the_stream_cap_are_fine() -> None:
    feed = Feed(HEARTBEAT, MAX_STREAM_CHARS // len(HEARTBEAT))
    assert list(parse_events(feed)) == [] and feed.taken == feed.count


def test_a_stream_past_the_event_cap_is_dropped_and_reopened(clock: FakeClock) -> None:
    sim = PinServerSimulator(clock)
    announced: queue.Queue[int] = queue.Queue()
    policy = RefreshPolicy(backoff_base=timedelta(milliseconds=10),
                           backoff_cap=timedelta(milliseconds=20))
    subscription = PushSubscription(sim, f"{sim.url}/events", announced.put, policy,
                                    random.Random(1))
    subscription.start()
    try:
        wait_until(lambda: len(sim.streams) == 1, WAIT, "the stream to open")
        for _ in range(MAX_EVENT_CHARS // 1024 + 1):
            sim.streams[0].push("data: " + "A" * 1023 + "\n")
        wait_until(lambda: sim.count("/events") == 2, WAIT, "the stream dropped and opened again")
        sim.announce(3)
        assert announced.get(timeout=WAIT) == 3
    finally:
        subscription.stop()

