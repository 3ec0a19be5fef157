"""The dashboard's HTTP contract without a browser, against a real server: the session cookie's
attributes (Secure over TLS), CSRF on every form, login failures, logout, and hostile form and
query input answered with a 4xx page, never a 5xx."""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import trustme

from pinwarden.server.ui._actions import ACTIONS
from tests.server.server_harness import LiveServer, PinServer

pytestmark = pytest.mark.network

CHANNEL = "com.example.app/prod"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def _logged_in(url: str, token: str, **options: object) -> tuple[httpx.Client, str, list[str]]:
    """A client with a session; the CSRF value of its forms and the login's Set-Cookie lines."""
    client = httpx.Client(base_url=url, timeout=30, **options)  # type: ignore[arg-type]
    login = client.get("/ui/login")
    response = client.post("/ui/login", data={"csrf": _csrf(login.text), "token": token})
    assert response.status_code == 303, response.text
    cookies = response.headers.get_list("set-cookie")
    return client, _csrf(client.get("/ui/").text), cookies


@pytest.fixture
def server(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    started = live_server_factory(operations=False)
    with started.client() as admin:
        admin.post("/v1/admin/channels", json={"name": CHANNEL}).raise_for_status()
        rule = {"pattern": "api.example.com", "mode": "disabled"}
        admin.post(f"/v1/admin/channels/{CHANNEL}/rules", json=rule).raise_for_status()
    return started


def test_the_session_cookie_is_httponly_strict_short_lived_and_not_secure_over_http(
    server: LiveServer,
) -> None:
    client, _, cookies = _logged_in(server.url, server.admin_token)
    session = next(line for line in cookies if line.startswith("pinwarden_ui="))
    attributes = {part.strip().lower() for part in session.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/ui", "max-age=3600"} <= attributes
    assert "secure" not in attributes
    page = client.get("/ui/")
    assert page.status_code == 200
    assert "script-src" not in page.headers["content-security-policy"]  # no script at all
    assert page.headers["cache-control"] == "no-store"
    client.close()


def test_over_tls_the_session_cookie_is_secure(
    pin_server_factory: Callable[..., PinServer],
    trust_ca: tuple[trustme.CA, str],
    tmp_path: Path,
) -> None:
    ca, ca_file = trust_ca
    issued = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    verify = ssl.create_default_context(cafile=ca_file)
    served = pin_server_factory(
        extra_args=["--tls-cert", str(cert), "--tls-key", str(key)], verify=verify
    )
    client, _, cookies = _logged_in(served.url, served.admin_token, verify=verify)
    for line in cookies:
        if line.startswith("pinwarden_ui="):
            assert "secure" in line.lower().split("; ")
    assert client.get("/ui/").status_code == 200
    client.close()


def test_a_form_without_the_session_csrf_value_changes_nothing(server: LiveServer) -> None:
    client, csrf, _ = _logged_in(server.url, server.admin_token)
    form = {"channel": CHANNEL, "pattern": "api.example.com", "pin": "sha256/" + "A" * 43 + "="}
    for sent in ({}, {"csrf": ""}, {"csrf": csrf[:-1] + "x"}):
        response = client.post("/ui/pins", data={**form, **sent})
        assert response.status_code == 403, response.text
        assert "stale or was not sent by the dashboard" in response.text
    # Another site's page cannot send the cookie (SameSite=Strict); without it: the login page.
    anonymous = httpx.Client(base_url=server.url)
    assert anonymous.post("/ui/pins", data={**form, "csrf": csrf}).status_code == 303
    assert client.post("/ui/pins", data={**form, "csrf": csrf}).status_code == 303  # accepted
    with server.client() as admin:
        pins = admin.get(f"/v1/admin/channels/{CHANNEL}").json()["rules"][0]["pins"]
    assert len(pins) == 1
    client.close()
    anonymous.close()


def test_the_login_form_needs_its_csrf_cookie_a_valid_token_and_stops_guessers(
    server: LiveServer,
) -> None:
    client = httpx.Client(base_url=server.url)
    assert client.post("/ui/login", data={"token": server.admin_token}).status_code == 403
    for attempt in range(25):
        csrf = _csrf(client.get("/ui/login").text)
        response = client.post("/ui/login", data={"csrf": csrf, "token": f"pwt_{attempt}"})
        if response.status_code == 429:
            break
        assert response.status_code == 401 and "Not logged in" in response.text
    assert response.status_code == 429
    client.close()


def test_logging_out_ends_the_session(server: LiveServer) -> None:
    client, csrf, _ = _logged_in(server.url, server.admin_token)
    cookie = client.cookies["pinwarden_ui"]
    assert client.post("/ui/logout", data={"csrf": csrf}).headers["location"] == "/ui/login"
    again = httpx.Client(base_url=server.url, cookies={"pinwarden_ui": cookie})
    assert again.get("/ui/").headers["location"] == "/ui/login"
    with server.client() as admin:
        actions = [entry["action"] for entry in admin.get("/v1/admin/audit").json()]
    assert actions[:2] == ["ui.logout", "ui.login"]
    client.close()
    again.close()


HOSTILE_FORMS = [
    {"channel": CHANNEL, "pattern": "api.example.com", "pin": "sha256/\x00"},
    {"channel": "\x00", "pattern": "x", "pin": "y"},
    {"channel": CHANNEL, "pattern": "a" * 70_000, "pin": "y"},
    {"channel": ["a"] * 60},
    {"channel": "no/such/channel", "pattern": "x", "pin": "sha256/x", "id": "7"},
]


def test_hostile_forms_and_queries_get_a_4xx_page(server: LiveServer) -> None:
    client, csrf, _ = _logged_in(server.url, server.admin_token)
    for path in (f"/ui/{action}" for action in ACTIONS):
        for form in HOSTILE_FORMS:
            response = client.post(path, data={**form, "csrf": csrf})  # type: ignore[dict-item]
            assert 400 <= response.status_code < 500, (path, form, response.status_code)
        encoded = f"csrf={csrf}&channel=%ED%A0%80&to_version=99999999999999999999&id=-1&name=%FF"
        response = client.post(
            path, content=encoded, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert 400 <= response.status_code < 500, (path, response.text)
        upload = client.post(path, data={"csrf": csrf}, files={"pin": ("a.txt", b"x")})
        assert 400 <= upload.status_code < 500, path
    long_label = {"channel": CHANNEL, "pattern": "api.example.com", "label": "x" * 201}
    pin = {"pin": "sha256/" + "A" * 43 + "=", "csrf": csrf}
    assert client.post("/ui/pins", data={**long_label, **pin}).status_code == 422
    for query in ("name=%00", "name=%ED%A0%80", "name=" + "a" * 5000, "name=no/such", ""):
        response = client.get(f"/ui/channel?{query}")
        assert 400 <= response.status_code < 500, (query, response.status_code)
    assert client.get("/ui/audit?target=%00").status_code == 422
    assert client.get("/ui/audit?target=" + "a" * 600).status_code == 422
    big = client.post(
        "/ui/pins",
        content=b"a" * 70_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert big.status_code == 413
    assert client.get("/ui/").status_code == 200  # still signed in: nothing above logged out
    client.close()


def test_the_channel_page_lists_what_the_ct_watch_saw_unpinned_first_and_escaped(
    server: LiveServer,
) -> None:
    """A logged certificate's names and issuer come from whoever had it logged: shown escaped."""
    from datetime import datetime, timezone

    from pinwarden.server.ct import CtSighting

    seen = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
    common = {
        "channel": CHANNEL, "pattern": "api.example.com", "log_id": "A" * 44, "precert": False,
        "issuer_pin": None, "subject": "CN=api.example.com", "not_before": seen,
        "not_after": seen, "seen_at": seen,
    }  # fmt: skip
    with server.services.sessions.begin() as session:
        session.add(
            CtSighting(
                tbs_hash="1" * 64, entry_index=1, names=["api.example.com"], pinned=True,
                leaf_pin="sha256/" + "P" * 43 + "=", issuer="CN=Known CA", **common,
            )
        )  # fmt: skip
        session.add(
            CtSighting(
                tbs_hash="2" * 64, entry_index=2, names=["api.example.com"], pinned=False,
                leaf_pin="sha256/" + "U" * 43 + "=", issuer="CN=<script>alert(1)</script>",
                **common,
            )
        )  # fmt: skip
    client, _, _ = _logged_in(server.url, server.admin_token)
    page = client.get("/ui/channel", params={"name": CHANNEL}).text
    section = page.split('id="ct-h"', 1)[1].split("</section>", 1)[0]
    assert "<script>alert(1)</script>" not in page
    assert "CN=&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert section.index("U" * 43) < section.index("P" * 43)  # the unpinned key first
    assert "not pinned" in section
    client.close()


def test_the_channel_page_says_when_the_ct_watch_saw_nothing(server: LiveServer) -> None:
    client, _, _ = _logged_in(server.url, server.admin_token)
    page = client.get("/ui/channel", params={"name": CHANNEL}).text
    assert "No logged certificate seen for these hosts" in page
    client.close()


def test_a_token_without_the_read_scope_sees_no_page(server: LiveServer) -> None:
    """As in the admin API (``_scope("read")``): ``write`` alone changes rules, it reads nothing."""
    with server.client() as admin:
        made = admin.post("/v1/admin/tokens", json={"name": "writer", "scopes": ["write"]})
    client, _, _ = _logged_in(server.url, made.json()["token"])
    for path in ("/ui/", f"/ui/channel?name={CHANNEL}", "/ui/reports", "/ui/audit", "/ui/tokens"):
        page = client.get(path)
        assert page.status_code == 403, path
        assert "api.example.com" not in page.text, path  # the channel's rule: not shown
    client.close()


def test_apply_refuses_a_suggestion_other_than_the_one_the_page_showed(
    server: LiveServer,
) -> None:
    """The form carries the fingerprint of the changes it showed; the action recomputes the
    suggestion and publishes nothing when they differ (a key seen since is never one click away)."""
    client, csrf, _ = _logged_in(server.url, server.admin_token)
    page = client.get("/ui/channel", params={"name": CHANNEL}).text
    assert 'name="shown"' not in page  # nothing to apply: no form
    for shown in ("0" * 64, "", "x" * 5000):
        answer = client.post(
            "/ui/suggestions/apply", data={"csrf": csrf, "channel": CHANNEL, "shown": shown}
        )
        assert answer.status_code in (400, 409, 422), answer.status_code
    refused = client.post(
        "/ui/suggestions/apply", data={"csrf": csrf, "channel": CHANNEL, "shown": "0" * 64}
    )
    assert refused.status_code == 409 and "changed since the page was shown" in refused.text
    with server.client() as admin:
        assert admin.get(f"/v1/admin/channels/{CHANNEL}/history").json() == []
    client.close()


def test_a_reported_certificate_of_an_unknown_key_algorithm_is_shown_as_not_a_certificate() -> (
    None
):
    """A violation report is anyone's input: a certificate whose key algorithm cryptography does
    not know (an EC key's OID changed) made the reports page answer 500 for as long as it was
    kept."""
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from pinwarden.server.ui._views import served_chain

    leaf = trustme.CA(key_type=trustme.KeyType.ECDSA).issue_cert("a.example")
    der = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).public_bytes(
        Encoding.DER
    )
    ec_public_key = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1
    unknown = der.replace(ec_public_key, bytes.fromhex("2a8648ce3d0209"), 1)
    assert unknown != der
    pem = "-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(unknown).decode()
    pem += "-----END CERTIFICATE-----\n"
    assert served_chain({"served-certificate-chain": [pem]}) == [
        {"subject": "(not a certificate)", "pin": "", "not_after": ""}
    ]
