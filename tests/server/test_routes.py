"""The route tables and the reserved channel-name words stay in step.

A channel name may hold ``/``, so ``{channel:path}`` could swallow a literal segment after it: a
channel named ``a/history`` would make ``/channels/a/history`` mean two things. Every such word is
reserved (``RESERVED_SEGMENTS``), and a route with a suffix must come before the bare
``{channel:path}`` route of the same method, which would otherwise answer in its place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import BaseRoute, Match, Mount, Route

from pinwarden.server._admin_api import build_admin_api
from pinwarden.server._channels import RESERVED_SEGMENTS
from tests.server.server_harness import LiveServer

_CHANNEL = "{channel:path}"
_SAMPLES = {"channel": "com.example.app/prod", "pattern": "api.example.com", "version": "1"}
_PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pinwarden.db'}"


def _sample_path(path: str) -> str:
    return _PARAMETER.sub(lambda match: _SAMPLES.get(match.group(1), "x"), path)


def _methods(route: BaseRoute) -> set[str]:
    return set(getattr(route, "methods", None) or ())


def _unreserved_words(routes: Sequence[BaseRoute]) -> set[str]:
    """Literal segments after ``{channel:path}`` that a channel name could still contain."""
    words: set[str] = set()
    for route in routes:
        path = getattr(route, "path", "")
        if _CHANNEL in path:
            suffix = path.split(_CHANNEL, 1)[1]
            words |= {part for part in suffix.split("/") if part and not _PARAMETER.match(part)}
    return words - RESERVED_SEGMENTS


def _misrouted(routes: Sequence[BaseRoute]) -> list[str]:
    """Each route whose own sample request is answered by an earlier route."""
    wrong: list[str] = []
    for route in routes:
        if not isinstance(route, Route) or isinstance(route, Mount):
            continue
        for method in _methods(route):
            scope: dict[str, Any] = {
                "type": "http",
                "method": method,
                "path": _sample_path(route.path),
                "root_path": "",
            }
            first = next(r for r in routes if r.matches(scope)[0] is Match.FULL)
            if first is not route:
                wrong.append(f"{method} {route.path} is answered by {getattr(first, 'path', '')}")
    return wrong


def _route_tables(server: LiveServer) -> list[list[BaseRoute]]:
    public = [route for route in server.app.routes if not isinstance(route, Mount)]
    return [public, list(build_admin_api(server.services).routes)]


def test_every_word_after_a_channel_name_in_a_route_is_reserved(live_server: LiveServer) -> None:
    for routes in _route_tables(live_server):
        assert _unreserved_words(routes) == set()


def test_every_route_answers_its_own_requests(live_server: LiveServer) -> None:
    tables = _route_tables(live_server)
    assert sum(_CHANNEL in getattr(r, "path", "") for r in tables[1]) >= 8  # the walk sees them
    for routes in tables:
        assert _misrouted(routes) == []


def _endpoint(*_: object) -> None:  # never called: the routes are only matched
    """A route endpoint for the tables below."""


def _table(*paths: str, endpoint: Callable[..., Any] = _endpoint) -> list[BaseRoute]:
    return [Route(path, endpoint, methods=["GET"]) for path in paths]


def test_the_checks_catch_an_unreserved_word_and_a_swallowing_route() -> None:
    """The negative twins: the two checks fail on a table that is out of step."""
    assert _unreserved_words(_table("/channels/{channel:path}/badge")) == {"badge"}
    assert _unreserved_words(_table("/channels/{channel:path}/history")) == set()
    swallowing = _table("/channels/{channel:path}", "/channels/{channel:path}/history")
    assert set(_misrouted(swallowing)) == {
        f"{method} /channels/{{channel:path}}/history is answered by /channels/{{channel:path}}"
        for method in ("GET", "HEAD")
    }
    assert _misrouted(list(reversed(swallowing))) == []
