"""Every admin route refuses a missing token, a wrong token and a token without its scope.

The route list comes from the admin API's own OpenAPI document, so a route added later without
auth makes this test fail.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pinwarden.server import SCOPES
from tests.server.server_harness import LiveServer

_PLACEHOLDERS = {
    "channel": "c",
    "pattern": "p.example.test",
    "token_id": "0123456789abcdef",
    "version": "1",
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pinwarden.db'}"  # auth does not depend on the backend


def _operations(server: LiveServer) -> list[tuple[str, str, str]]:
    spec = httpx.get(f"{server.url}/v1/admin/openapi.json").json()
    operations = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            concrete = re.sub(r"\{(\w+)\}", lambda m: _PLACEHOLDERS[m.group(1)], path)
            operations.append(
                (method.upper(), "/v1/admin" + concrete, operation.get("x-required-scope"))
            )
    return operations


def _token(server: LiveServer, scopes: list[str]) -> str:
    with server.client() as client:
        response = client.post(
            "/v1/admin/tokens", json={"name": "-".join(scopes), "scopes": scopes}
        )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def test_every_admin_route_refuses_missing_wrong_and_underscoped_tokens(
    live_server: LiveServer,
) -> None:
    operations = _operations(live_server)
    assert len(operations) >= 20
    assert all(scope in SCOPES for _, _, scope in operations), "a route names no scope"
    tokens = {
        scope: _token(live_server, [other for other in SCOPES if other not in (scope, "admin")])
        for scope in SCOPES
    }
    wrong = "pwt_" + live_server.admin_token[4:20] + "_" + "A" * 43
    revoked = _token(live_server, list(SCOPES))
    with live_server.client() as client:
        token_id = revoked.split("_")[1]
        assert client.post(f"/v1/admin/tokens/{token_id}/revoke", json={}).status_code == 200
    checked = 0
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        for method, path, scope in operations:
            body = {} if method in ("POST", "PATCH") else None
            cases = [
                (None, 401),
                ("Basic dXNlcjpwYXNz", 401),
                (f"Bearer {wrong}", 401),
                ("Bearer not-a-token", 401),
                (f"Bearer {revoked}", 401),
                (f"Bearer {tokens[scope]}", 403),
            ]
            for authorization, expected in cases:
                headers = {"authorization": authorization} if authorization else {}
                response = client.request(method, path, json=body, headers=headers)
                assert response.status_code == expected, (
                    method,
                    path,
                    authorization,
                    response.text,
                )
                if expected == 401:
                    assert response.headers["www-authenticate"] == "Bearer"
                checked += 1
            # The twin: with the scope, the request gets past auth (to its own answer).
            admitted = client.request(
                method,
                path,
                json=body,
                headers={"authorization": f"Bearer {live_server.admin_token}"},
            )
            assert admitted.status_code not in (401, 403), (method, path, admitted.text)
    assert checked == 6 * len(operations)


def test_a_scope_grants_its_routes_only(live_server: LiveServer) -> None:
    reader, writer = _token(live_server, ["read"]), _token(live_server, ["write"])
    with httpx.Client(base_url=live_server.url, timeout=30) as client:

        def call(token: str, method: str, path: str, body: object = None) -> int:
            headers = {"authorization": f"Bearer {token}"}
            return client.request(method, path, json=body, headers=headers).status_code

        assert call(writer, "POST", "/v1/admin/channels", {"name": "c"}) == 201
        assert call(reader, "POST", "/v1/admin/channels", {"name": "d"}) == 403
        assert call(reader, "GET", "/v1/admin/channels/c") == 200
        assert call(writer, "GET", "/v1/admin/channels/c") == 403
        assert call(writer, "POST", "/v1/admin/channels/c/publish", {}) == 403
        assert call(reader, "GET", "/v1/admin/tokens") == 403
        assert call(live_server.admin_token, "GET", "/v1/admin/tokens") == 200


def test_the_public_routes_need_no_token(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/v1/channels/none/pinset").status_code == 404


def _raw_post(server: LiveServer, path: str, headers: dict[str, str], body: bytes) -> str:
    """Send a request head (and ``body``, maybe less than it declares); the response head.

    Bounded: a server that waits for the rest of the body times the read out (the test fails).
    """
    host, port = server.url.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.decode("latin-1")


_HUGE = {"content-type": "application/json", "content-length": str(300 * 1024 * 1024)}


def test_no_token_is_401_before_the_body_is_read(live_server: LiveServer) -> None:
    # 300 MB declared, 9 bytes sent: the answer comes without the rest of the body.
    head = _raw_post(live_server, "/v1/admin/tokens", _HUGE, b"{not json")
    assert head.startswith("HTTP/1.1 401") and "www-authenticate: bearer" in head.lower()
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        malformed = client.post(
            "/v1/admin/tokens", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert malformed.status_code == 401  # not 422: nothing about the route leaks
        with_token = client.post(
            "/v1/admin/tokens",
            content=b"{not json",
            headers={
                "content-type": "application/json",
                "authorization": f"Bearer {live_server.admin_token}",
            },
        )
        assert with_token.status_code == 422  # the twin: past the gate, the body is parsed
        assert client.get("/v1/admin/docs").status_code == 200  # the description stays public


def test_an_oversized_admin_body_is_413(live_server: LiveServer) -> None:
    token = {"authorization": f"Bearer {live_server.admin_token}"}
    head = _raw_post(live_server, "/v1/admin/channels", {**_HUGE, **token}, b"{")
    assert head.startswith("HTTP/1.1 413")

    def streamed(size: int) -> Iterator[bytes]:  # no Content-Length: the cap holds while streaming
        yield b'{"name": "big", "description": "'
        yield b"x" * size
        yield b'"}'

    json_body = {"content-type": "application/json"}
    with live_server.client() as client:
        too_big = client.post("/v1/admin/channels", content=streamed(64 * 1024), headers=json_body)
        assert too_big.status_code == 413
        fits = client.post("/v1/admin/channels", content=streamed(60 * 1024), headers=json_body)
        assert fits.status_code == 201, fits.text[:300]  # the twin, just under the cap
        assert client.get("/v1/admin/channels").json()[0]["name"] == "big"
