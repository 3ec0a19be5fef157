"""The dashboard in a real browser against a real server (issue 12, "Done means"): log in; add
a pin; the safe-publish check refuses a rule without a backup pin; publish; roll back; a
violation report sent by a real ``DynamicPins`` client appears; the monitor's alert for a host
that rotated its key appears and its suggestion publishes; a read-only token changes nothing.
axe-core finds no serious violation on any page."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pinwarden.client import DynamicPins, PinValidationError, StaticPins, pinned_httpx_client
from tests.server.server_harness import LiveServer
from tests.support.pki import AppPKI
from tests.support.tls_servers import IO_TIMEOUT, TLSServer
from tests.ui.browser_harness import PHONE, check_page, log_in

CHANNEL = "com.example.app/prod"
HOST = "localhost"

pytestmark = pytest.mark.network


def _channel_url(name: str) -> str:
    return "/ui/channel?name=" + name.replace("/", "%2F")


def _submit(page: Any, form: Any, button: str) -> None:
    form.get_by_role("button", name=button).click()
    page.wait_for_load_state()


def _add_pin(page: Any, pin: str, label: str, role: str = "") -> None:
    rule = page.get_by_role("article", name=HOST)
    rule.get_by_label("Pin", exact=True).fill(pin)
    rule.get_by_label("Label").fill(label)
    rule.get_by_label("Role").select_option(role)
    _submit(page, rule, "Add pin")
    assert page.get_by_role("status").inner_text() == "Pin added to the draft."


def _check_and_publish(page: Any) -> None:
    page.get_by_role("button", name="Check and publish…").click()
    page.wait_for_url(re.compile(r"/ui/publish$"))


def _send_violation_report(server: LiveServer, app_pki: AppPKI, host: TLSServer, tmp: Path) -> None:
    """A real app: dynamic pins from the server, a request to a host serving a key it does not
    pin, refused, and the report flushed to the channel's report URI. In a thread of its own:
    Playwright's sync API keeps an event loop running in this one."""
    with ThreadPoolExecutor(1) as app:
        app.submit(_app_run, server, app_pki, host, tmp).result(timeout=60)


def _app_run(server: LiveServer, app_pki: AppPKI, host: TLSServer, tmp: Path) -> None:
    with DynamicPins(
        f"{server.url}/v1/channels/{CHANNEL}",
        keyring=server.initialized.keyring_path.read_bytes(),
        bootstrap=StaticPins({}),
        cache_dir=str(tmp / "cache"),
        wait_for_first_fetch=True,
        app_id="com.example.app",
        app_version="2.1",
    ) as pins:
        assert pins.version is not None
        with pinned_httpx_client(pins, cafile=app_pki.ca_file, timeout=IO_TIMEOUT) as client:
            with pytest.raises(Exception) as refused:
                client.get(host.url("/"))
        cause: BaseException | None = refused.value
        while cause is not None and not isinstance(cause, PinValidationError):
            cause = cause.__cause__ or cause.__context__
        assert cause is not None, f"refused, but not by the pins: {refused.value!r}"
        assert pins.flush_reports()


def test_an_admin_publishes_rolls_back_and_follows_a_key_rotation(
    browser: Any,
    live_server_factory: Callable[..., LiveServer],
    app_pki: AppPKI,
    app_host: TLSServer,
    rotated_host: TLSServer,
    tmp_path: Path,
) -> None:
    server = live_server_factory(ca_file=app_pki.ca_file, operations=False)
    page = log_in(browser, server.url, server.admin_token)
    assert page.get_by_role("heading", name="Overview").is_visible()
    assert "No channel yet" in page.content()  # the fresh install's empty states
    check_page(page, "overview-empty")

    details = page.locator("details", has_text="New channel")
    details.locator("summary").click()
    details.get_by_label("Name").fill(CHANNEL)
    details.get_by_label("Report URI (optional)").fill(f"{server.url}/v1/reports")
    _submit(page, details, "Create channel")
    assert page.get_by_role("heading", name=CHANNEL).is_visible()

    rule_form = page.locator("details", has_text="New rule")
    rule_form.locator("summary").click()
    rule_form.get_by_label("Host pattern").fill(HOST)
    rule_form.get_by_label("Probe host (optional)").fill("127.0.0.1")
    rule_form.get_by_label("Probe port").fill(str(app_host.port))
    _submit(page, rule_form, "Add rule")

    # Add a pin: the live key only. The check refuses, and so does publishing.
    _add_pin(page, app_pki.pin_a, "leaf key")
    _check_and_publish(page)
    assert page.get_by_text("unsafe").first.is_visible()
    assert "no backup pin outside the live chain" in page.content()
    check_page(page, "publish-check-refused")
    page.get_by_role("button", name="Publish").click()
    assert page.get_by_role("heading", name="Not done").is_visible()
    assert "no backup pin outside the live chain" in page.get_by_role("alert").inner_text()
    check_page(page, "publish-refused")

    # With a backup pin the check passes: publish v1.
    page.goto(_channel_url(CHANNEL))
    _add_pin(page, app_pki.backup_pin, "backup key", "backup")
    backup_row = page.get_by_role("row", name=re.compile("backup key"))
    assert backup_row.get_by_role("cell").nth(2).inner_text() == "backup"  # its chain role
    _check_and_publish(page)
    assert page.get_by_text("safe", exact=True).is_visible()
    check_page(page, "publish-check")
    page.get_by_role("button", name="Publish").click()
    page.wait_for_url(re.compile(r"done=published"))
    assert "served: v1" in page.content()

    # v2 adds the next key's pin; rolling back to v1 publishes v1's rules as v3.
    _add_pin(page, app_pki.pin_b, "next key")
    _check_and_publish(page)
    page.get_by_role("button", name="Publish").click()
    page.wait_for_url(re.compile(r"done=published"))
    page.get_by_role("button", name="Roll back to v1").click()
    page.wait_for_url(re.compile(r"done=rolled-back"))
    assert "served: v3" in page.content()
    assert "(rules of v1)" in page.content()
    assert "next key" not in page.get_by_role("article", name=HOST).inner_text()

    # A real client refuses the host's other key and reports it.
    _send_violation_report(server, app_pki, rotated_host, tmp_path)
    page.get_by_role("link", name="Reports").click()
    summary = page.get_by_role("region", name="Report counts table")
    assert summary.get_by_role("row", name=re.compile(r"localhost.*com\.example\.app.*2\.1"))
    assert "com.example.app" in summary.inner_text()
    assert "Served chain" in page.content()
    check_page(page, "reports")

    # The monitor sees leaf A; then the host rotates to key B: alert, then the suggestion.
    page.goto(_channel_url(CHANNEL))
    page.get_by_role("button", name="Check this channel's hosts now").click()
    page.wait_for_url(re.compile(r"done=checked"))
    chain = page.get_by_role("article", name=f"{HOST}:{app_host.port}")
    assert "matched: leaf pin “leaf key”" in chain.inner_text()
    check_page(page, "channel")
    app_host.context = app_pki.server_context(app_pki.leaf_b)
    page.get_by_role("button", name="Check this channel's hosts now").click()
    page.wait_for_url(re.compile(r"done=checked"))
    page.get_by_role("link", name="Overview").click()
    alerts = page.get_by_role("region", name="Open alerts")
    text = alerts.inner_text()
    assert "key-changed" in text and "no-pin-match" in text
    assert "mismatch" in page.get_by_role("region", name="Hosts table").inner_text()
    check_page(page, "overview")

    page.goto(_channel_url(CHANNEL))
    assert app_pki.pin_b in page.get_by_role("region", name="Suggestions").inner_text() or (
        app_pki.pin_b in page.content()
    )
    page.get_by_role("button", name="Apply and publish safely").click()
    page.wait_for_url(re.compile(r"done=applied"))
    assert "served: v4" in page.content()
    with server.client() as admin:
        rules = admin.get(f"/v1/admin/channels/{CHANNEL}").json()["rules"]
    assert {pin["pin"] for pin in rules[0]["pins"]} >= {app_pki.pin_b, app_pki.backup_pin}

    page.get_by_role("link", name="Audit log").click()
    log = page.get_by_role("region", name="Audit entries").inner_text()
    for action in ("ui.login", "pin.add", "publish", "rollback"):
        assert action in log
    check_page(page, "audit")

    # A token made here is shown once, then only its name; revoking it is one button.
    page.get_by_role("link", name="Tokens").click()
    page.get_by_label("Name").fill("ci-publisher")
    page.get_by_label("publish").check()
    page.get_by_role("button", name="Create token").click()
    shown = page.get_by_role("status").inner_text()
    assert "shown only once" in shown and re.search(r"pwt_[0-9a-f]{16}_", shown)
    check_page(page, "tokens-created")
    page.goto("/ui/tokens")
    assert "pwt_" not in page.content()
    page.get_by_role("button", name="Revoke ci-publisher").click()
    assert page.get_by_role("status").inner_text() == "Token revoked."
    with server.client() as admin:
        made = [t for t in admin.get("/v1/admin/tokens").json() if t["name"] == "ci-publisher"]
    assert made[0]["scopes"] == ["publish", "read"] and made[0]["revoked_at"] is not None
    page.context.close()


def test_a_read_only_token_sees_everything_and_changes_nothing(
    browser: Any,
    live_server_factory: Callable[..., LiveServer],
    app_pki: AppPKI,
    app_host: TLSServer,
) -> None:
    server = live_server_factory(ca_file=app_pki.ca_file, operations=False)
    with server.client() as admin:
        admin.post("/v1/admin/channels", json={"name": CHANNEL}).raise_for_status()
        rule = {"pattern": HOST, "probe_host": "127.0.0.1", "probe_port": app_host.port}
        admin.post(f"/v1/admin/channels/{CHANNEL}/rules", json=rule).raise_for_status()
        for pin in (app_pki.pin_a, app_pki.backup_pin):
            path = f"/v1/admin/channels/{CHANNEL}/rules/{HOST}/pins"
            admin.post(path, json={"pin": pin}).raise_for_status()
        admin.post(f"/v1/admin/channels/{CHANNEL}/publish", json={}).raise_for_status()
        created = admin.post("/v1/admin/tokens", json={"name": "viewer", "scopes": ["read"]})
        read_token = created.json()["token"]
        audit_before = len(admin.get("/v1/admin/audit").json())

    page = log_in(browser, server.url, read_token)
    page.goto(_channel_url(CHANNEL))
    assert app_pki.pin_a in page.content() and "v1" in page.content()
    for button in ("Add pin", "Remove", "Check and publish…", "Add rule"):
        assert page.get_by_role("button", name=button).count() == 0
    assert page.get_by_role("link", name="Tokens").count() == 0

    # A form posted by hand, with a valid CSRF value, is refused by scope like the API's 403.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    form = {"csrf": csrf, "channel": CHANNEL, "pattern": HOST, "pin": app_pki.pin_b}
    for path in ("/ui/pins", "/ui/publish", "/ui/tokens", "/ui/monitor/run"):
        response = page.request.post(path, form=form, max_redirects=0)
        assert response.status == 403, (path, response.status)
    assert page.request.get("/ui/tokens").status == 403
    with server.client() as admin:
        after = admin.get("/v1/admin/audit").json()
        pins = admin.get(f"/v1/admin/channels/{CHANNEL}").json()["rules"][0]["pins"]
    assert app_pki.pin_b not in {pin["pin"] for pin in pins}
    assert [entry["action"] for entry in after[: len(after) - audit_before]] == ["ui.login"]

    # Revoking the token ends its session at the next request.
    with server.client() as admin:
        token_id = created.json()["token_id"]
        admin.post(f"/v1/admin/tokens/{token_id}/revoke", json={}).raise_for_status()
    page.goto("/ui/")
    assert page.url.endswith("/ui/login")
    page.context.close()


def test_each_page_works_at_phone_width(
    browser: Any, live_server_factory: Callable[..., LiveServer]
) -> None:
    """The login page and the fresh install's pages at phone width; by keyboard, Tab reaches
    the skip link first. (``check_page`` measures the width of every page each test visits.)"""
    server = live_server_factory(operations=False)
    context = browser.new_context(viewport=PHONE, base_url=server.url, bypass_csp=True)
    login = context.new_page()
    login.goto("/ui/login")
    check_page(login, "login")
    context.close()
    page = log_in(browser, server.url, server.admin_token, viewport=PHONE)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for path, name in (("/ui/reports", "reports-empty"), ("/ui/audit", "audit-fresh")):
        page.goto(path)
        check_page(page, name)
    page.goto("/ui/tokens")
    check_page(page, "tokens")
    page.context.close()
