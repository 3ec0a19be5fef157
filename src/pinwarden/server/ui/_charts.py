"""Charts drawn on the server as inline SVG: no script, no library, readable without colour.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` (WAI-ARIA graphics,
SVG-AAM §5); the page shows the same numbers as a table beside it for screen readers and for
copying. Colours are the stylesheet's (``currentColor`` and classes), so the contrast rules are
in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape

from markupsafe import Markup

__all__ = ["bar_chart", "expiry_timeline"]

_WIDTH, _BAR_HEIGHT, _LABEL_WIDTH = 640, 22, 230


def _svg(width: int, height: int, title: str, desc: str, body: list[str]) -> Markup:
    """Every text in ``body`` went through ``html.escape`` where it was made."""
    return Markup(  # noqa: S704 - numbers and escaped text only
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'preserveAspectRatio="xMinYMin meet">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>{''.join(body)}</svg>"
    )


def bar_chart(title: str, points: Sequence[tuple[datetime, int]], unit: str) -> Markup:
    """Counts per interval, oldest left; the tallest bar and each 6th interval are labelled."""
    height, top, bottom = 180, 16, 30
    tallest = max((count for _, count in points), default=0)
    scale = (height - top - bottom) / tallest if tallest else 0.0
    step = _WIDTH / max(len(points), 1)
    body = [
        f'<line class="axis" x1="0" y1="{height - bottom}" x2="{_WIDTH}" y2="{height - bottom}"/>'
    ]
    for index, (at, count) in enumerate(points):
        bar = count * scale
        x = index * step
        body.append(
            f'<rect class="bar" x="{x + 1:.1f}" y="{height - bottom - bar:.1f}" '
            f'width="{max(step - 2, 1):.1f}" height="{bar:.1f}">'
            f"<title>{escape(at.strftime('%Y-%m-%d %H:%M'))}: {count} {escape(unit)}</title></rect>"
        )
        if index % 6 == 0:
            body.append(
                f'<text x="{x:.1f}" y="{height - 10}" class="tick">'
                f"{escape(at.strftime('%H:%M'))}</text>"
            )
    body.append(f'<text x="4" y="12" class="tick">max {tallest} {escape(unit)}</text>')
    total = sum(count for _, count in points)
    return _svg(_WIDTH, height, title, f"{total} {unit} in {len(points)} intervals", body)


def expiry_timeline(
    title: str, items: Sequence[tuple[str, datetime]], now: datetime, warning: timedelta
) -> Markup:
    """One bar per item from now to its expiry, on a shared axis; past the warning line (the
    monitor's expiry warning) a bar is drawn as "soon", an expired one as "expired"."""
    if not items:
        return Markup("")
    horizon = max(max(at for _, at in items) - now, warning * 2, timedelta(days=1))
    span = _WIDTH - _LABEL_WIDTH - 10

    def x_of(at: datetime) -> float:
        return _LABEL_WIDTH + span * max(0.0, min(1.0, (at - now) / horizon))

    height = 30 + _BAR_HEIGHT * len(items)
    body = []
    for index, (label, at) in enumerate(items):
        y = 8 + index * _BAR_HEIGHT
        state = "expired" if at <= now else "soon" if at - now <= warning else "ok"
        days = (at - now).total_seconds() / 86400
        shown = label if len(label) <= 34 else label[:33] + "…"
        body.append(
            f'<text x="0" y="{y + 14}" class="tick">{escape(shown)}</text>'
            f'<rect class="span {state}" x="{_LABEL_WIDTH}" y="{y + 3}" '
            f'width="{max(x_of(at) - _LABEL_WIDTH, 2):.1f}" height="{_BAR_HEIGHT - 6}">'
            f"<title>{escape(label)}: {escape(at.date().isoformat())} ({days:.0f} days)"
            "</title></rect>"
        )
    line = x_of(now + warning)
    body.append(
        f'<line class="warn" x1="{line:.1f}" y1="0" x2="{line:.1f}" y2="{height - 20}"/>'
        f'<text class="tick" x="{line + 3:.1f}" y="{height - 6}">'
        f"warning: {warning.days} days</text>"
    )
    return _svg(
        _WIDTH, height, title, f"{len(items)} expiries, the latest in {horizon.days} days", body
    )
