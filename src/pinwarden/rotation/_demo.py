"""``pinwarden demo``: the story of dynamic pinning told with real parts on loopback.

An API with its own CA; a device that also trusts an intercepting proxy's CA; an unpinned app that
the proxy fools and a pinned app that refuses it; then an emergency key rotation that a statically
pinned app does not survive and a dynamically pinned one does, with its failure window measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pinwarden.client import pinned_context
from pinwarden.rotation._lab import API_HOST, CHANNEL, Lab, Outcome, https_get

__all__ = ["DemoResult", "run_demo"]

_RECOVERY_DEADLINE = 30.0  # seconds the dynamic app gets to recover before the demo gives up
_RETRY_SECONDS = 0.02

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    unpinned_fooled: bool
    pinned_refused_proxy: bool
    proxy_read: tuple[str, ...]
    static_survived: bool
    dynamic_recovered: bool
    failure_window: float | None  # seconds from publish to the dynamic app's first success

    @property
    def as_told(self) -> bool:
        """Every step ended as the story says it does."""
        return (
            self.unpinned_fooled
            and self.pinned_refused_proxy
            and not self.static_survived
            and self.dynamic_recovered
        )


def _shown(outcome: Outcome) -> str:
    return "200 OK, the balance" if outcome.ok else outcome.detail


def _first_success(request: Callable[[], Outcome], deadline: float) -> float | None:
    """The ``time.monotonic()`` at which ``request`` first succeeds, retrying every 20 ms;
    None once ``deadline`` seconds have passed."""
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        if request().ok:
            return time.monotonic()
        time.sleep(_RETRY_SECONDS)
    return None


def _interception(lab: Lab, say: Say) -> tuple[bool, bool, tuple[str, ...]]:
    say("")
    say("2. The device also trusts an intercepting proxy's CA (a corporate proxy, or malware")
    say("   that installed its CA). Both apps send their request through the proxy:")
    proxy = lab.interceptor(connect=True)
    through = ("127.0.0.1", proxy.port)
    unpinned = https_get(API_HOST, lab.api_address, lab.unpinned_context(), proxy=through)
    say(f"   unpinned app: {_shown(unpinned)}")
    read = tuple(proxy.requests_read)
    if unpinned.ok:
        say("     fooled: the proxy read the request in clear:")
        say("       " + " | ".join(line for line in read[-1].splitlines() if line))
    pinned = https_get(API_HOST, lab.api_address, lab.static_context(), proxy=through)
    say(f"   pinned app:   {_shown(pinned)}")
    if pinned.pin_refused:
        say("     refused after the handshake, before a single request byte was sent")
    return unpinned.ok, pinned.pin_refused, read


def _emergency(lab: Lab, say: Say) -> tuple[bool, bool, float | None]:
    say("")
    say("3. Emergency: the API's key leaks; a certificate for a new key nobody pinned goes live.")
    dynamic = lab.dynamic_pins(push=True)
    try:
        dynamic_context = pinned_context(dynamic, cafile=str(lab.trust_file))
        static_context = lab.static_context()
        say(f"   dynamic app holds pin set v{dynamic.version} and follows the server's push stream")
        replacement = lab.new_certificate()
        lab.api.serve(replacement)
        say(f"   deployed {replacement.pin}")
        say(f"   static app:  {_shown(https_get(API_HOST, lab.api_address, static_context))}")
        say(f"   dynamic app: {_shown(https_get(API_HOST, lab.api_address, dynamic_context))}")
        lab.add_pin(replacement.pin, "emergency key")
        publishing = time.monotonic()
        version = lab.publish()
        say(f"   the operator adds the new key's pin and publishes v{version} (safe publishing")
        say("   checked it against the chain the API serves now, and kept the backup pin)")
        recovered_at = _first_success(
            lambda: https_get(API_HOST, lab.api_address, dynamic_context), _RECOVERY_DEADLINE
        )
        # From the start of the publish request: an upper bound that includes its safety checks.
        window = None if recovered_at is None else recovered_at - publishing
        if window is None:
            say(f"   dynamic app: still refused {_RECOVERY_DEADLINE:.0f} s after the publish")
        else:
            say(f"   dynamic app: 200 OK again {window * 1000:.0f} ms after the publish request")
        static = https_get(API_HOST, lab.api_address, static_context)
        say(f"   static app:  {_shown(static)}")
        if not static.ok:
            say("     it stays broken until its users install an app release with the new pin")
        return static.ok, window is not None, window
    finally:
        dynamic.close()


def run_demo(directory: Path, say: Say) -> DemoResult:
    """Tell the story, one line per event through ``say``; nothing outside ``directory``."""
    say("pinwarden demo: certificate pinning on 127.0.0.1, real TLS, nothing to configure")
    say("")
    say("1. An API with its own CA, and a pin server")
    with Lab(directory) as lab:
        say(f"   {API_HOST} on 127.0.0.1:{lab.api.port}, key {lab.live.pin}")
        say(f"   pin server {lab.server_url} publishes {CHANNEL} v1: the live key's pin and an")
        say(f"   offline backup key's ({lab.backup_pin})")
        fooled, refused, read = _interception(lab, say)
        static_survived, recovered, window = _emergency(lab, say)
    result = DemoResult(fooled, refused, read, static_survived, recovered, window)
    say("")
    say("In short: pinning refused the interception that fooled the unpinned app; a static pin")
    say(
        "broke the app on an emergency key change; the dynamic pins repaired it "
        + (f"in {window * 1000:.0f} ms." if window is not None else "too late.")
    )
    return result
