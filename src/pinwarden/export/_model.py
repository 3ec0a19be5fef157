"""What every platform export shares: a channel's rules with their pins' chain roles, the
settings of one export, and what it found to warn about or refuse.

An export never drops a rule silently: a rule a platform cannot express is left out or mapped
with a warning (``Findings.warn``), and an export that would make a platform *enforce* pins where
pinwarden does not, or accept fewer keys than pinwarden accepts, is refused
(``Findings.refuse``; see ``_fidelity``), because an app shipped with it could refuse its own
server until the next release.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from pinwarden._hosts import HostPattern, PatternKind
from pinwarden.document import PinSet
from pinwarden.errors import InvalidHostError, PinwardenError

__all__ = [
    "DEFAULT_LIFETIME",
    "ROLES",
    "UNSPECIFIED_ROLE",
    "ExportChannel",
    "ExportPin",
    "ExportRefused",
    "ExportRule",
    "ExportSettings",
    "Exported",
    "Findings",
    "chain_role",
    "channel_from_pinset",
    "comment_text",
]

# The chain roles a pin can have (docs/export.md, "Chain roles"); a backup key is a key kept
# offline for the next leaf certificate.
ROLES = ("leaf", "intermediate", "root", "backup")
UNSPECIFIED_ROLE = "unspecified"
# Static pins outlive the signed pin set (which a dynamic client refreshes every few hours): an
# export's pins expire a year after it is made unless its rule expires sooner (docs/export.md).
DEFAULT_LIFETIME = timedelta(days=365)
_PIN_PREFIX = "sha256/"


class ExportRefused(PinwardenError):
    """A channel cannot be exported safely to a platform: ``problems`` says why, one per line."""

    def __init__(self, problems: Iterable[str], warnings: Iterable[str] = ()) -> None:
        self.problems = tuple(problems)
        self.warnings = tuple(warnings)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class ExportPin:
    """A pin (``sha256/<base64>``) and the role of its key in the chain."""

    pin: str
    role: str = UNSPECIFIED_ROLE

    @property
    def digest(self) -> str:
        """The base64 SHA-256 alone, as every platform but OkHttp writes it."""
        return self.pin[len(_PIN_PREFIX) :]

    @property
    def is_ca(self) -> bool:
        return self.role in ("intermediate", "root")


@dataclass(frozen=True)
class ExportRule:
    """A rule of the pin set: pattern, mode (enforce, report-only, disabled), pins, expiry."""

    pattern: HostPattern
    mode: str
    pins: tuple[ExportPin, ...]
    expires: datetime | None = None

    def __str__(self) -> str:
        return str(self.pattern)

    @property
    def pin_values(self) -> frozenset[str]:
        return frozenset(entry.pin for entry in self.pins)


@dataclass(frozen=True)
class ExportChannel:
    """The pin set being exported: its channel, version, report URI and rules."""

    name: str
    version: int
    report_uri: str | None
    rules: tuple[ExportRule, ...]

    def governing_rule(self, host: str) -> ExportRule | None:
        """The rule pinwarden's clients apply to ``host``: the most specific matching pattern
        (docs/spec.md §3.1)."""
        matching = [rule for rule in self.rules if rule.pattern.matches(host)]
        return max(matching, key=lambda rule: rule.pattern.specificity, default=None)


@dataclass(frozen=True)
class ExportSettings:
    """The choices of one export. ``role_hint(pattern, pin)`` says how to give a pin its chain
    role (the command, for the source the pins came from)."""

    now: datetime
    lifetime: timedelta = DEFAULT_LIFETIME
    ios_identities: str = "auto"  # auto, leaf, ca or both (ios-plist)
    role_hint: Callable[[str, str], str] = lambda pattern, pin: "give the pin its chain role"

    def pins_expire(self, rule: ExportRule) -> datetime:
        """When the exported pins of ``rule`` stop: its own expiry or the export's lifetime."""
        lifetime_end = self.now + self.lifetime
        return lifetime_end if rule.expires is None else min(rule.expires, lifetime_end)

    def utc_date(self, rule: ExportRule) -> date | None:
        """TrustKit's ``TSKExpirationDate``: read as midnight UTC, so the date of the expiry in UTC
        turns pinning off no later than the expiry. None when that day has begun already."""
        day = self.pins_expire(rule).astimezone(timezone.utc).date()
        return day if day > self.now.astimezone(timezone.utc).date() else None

    def local_date(self, rule: ExportRule) -> date | None:
        """Android's ``<pin-set expiration>``: read as midnight in the *device's* zone, which may
        be as far west as UTC-12, where midnight is 12 hours after midnight UTC. The date is
        chosen so that pinning is off by the expiry in every zone. None when a zone may have
        reached it already."""
        day = (self.pins_expire(rule).astimezone(timezone.utc) - timedelta(hours=12)).date()
        earliest_today = (self.now.astimezone(timezone.utc) + timedelta(hours=14)).date()
        return day if day > earliest_today else None


@dataclass(frozen=True)
class Exported:
    """The text of an export and the warnings to show beside it (on stderr)."""

    text: str
    warnings: tuple[str, ...]


@dataclass
class Findings:
    """Warnings and refusals gathered while exporting, each naming its rule."""

    platform: str
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warned: set[str] = field(default_factory=set)

    def warn(self, rule: ExportRule | str, text: str) -> None:
        line = f"{rule}: {text}"
        if line not in self.warnings:
            self.warnings.append(line)
        self.warned.add(str(rule))

    def refuse(self, rule: ExportRule | str, text: str) -> None:
        line = f"{rule}: {text}"
        if line not in self.problems:
            self.problems.append(line)

    def result(self, text: str) -> Exported:
        if self.problems:
            raise ExportRefused(self.problems, self.warnings)
        return Exported(text, tuple(self.warnings))

    def warn_unwritten_expiries(self, rules: Iterable[ExportRule]) -> None:
        """For a platform without an expiry (ATS, OkHttp): pins keep being enforced after their
        rule stops applying (docs/spec.md §8), so every such rule is a warning (``--strict``)."""
        for rule in rules:
            if rule.expires is not None:
                ends = rule.expires.astimezone(timezone.utc)
                self.warn(
                    rule,
                    f"{self.platform} has no expiry: these pins stay enforced after the rule "
                    f"expires ({ends:%Y-%m-%d %H:%M} UTC), until the app is updated",
                )

    def expressible_pattern(self, rule: ExportRule) -> bool:
        """A one-label wildcard (``*.x``) has no counterpart in platforms that pin a domain and
        its subdomains; an IP address is not a domain they can pin. Warns and says False."""
        if rule.pattern.kind is PatternKind.ONE_LABEL:
            self.warn(
                rule,
                f"{self.platform} has no one-label wildcard (it pins a name and all or none of "
                "its subdomains): left out",
            )
            return False
        base = rule.pattern.base
        if ":" in base or base.rsplit(".", 1)[-1].isdigit():  # docs/spec.md §3.1: an address
            self.warn(rule, f"{self.platform} pins domain names, not IP addresses: left out")
            return False
        return True

    def signer_policy_holds(self, rule: ExportRule) -> bool:
        """A pattern read from a document is only grammar-checked (docs/spec.md §3.2); a platform
        that refuses a wildcard over a public suffix (TrustKit) gets none."""
        try:
            HostPattern.parse(str(rule.pattern))
        except InvalidHostError as error:
            self.refuse(rule, f"{error}")
            return False
        return True


def comment_text(text: str) -> str:
    """``text`` safe inside an XML comment or a ``//`` line: printable ASCII, no ``--``."""
    shown = "".join(char if 32 <= ord(char) < 127 else "?" for char in text)
    while "--" in shown:
        shown = shown.replace("--", "-?")
    return shown


def channel_from_pinset(pinset: PinSet, roles: Mapping[tuple[str, str], str]) -> ExportChannel:
    """The export view of a verified (or structurally checked) pin set; ``roles`` maps
    ``(pattern, pin)`` to a role, and a pin it does not name is ``unspecified``."""
    rules = tuple(
        ExportRule(
            HostPattern.parse(rule.pattern, grammar_only=True),
            rule.mode,
            tuple(
                ExportPin(pin, roles.get((rule.pattern, pin), UNSPECIFIED_ROLE))
                for pin in rule.pins
            ),
            rule.expires,
        )
        for rule in pinset.rules
    )
    return ExportChannel(pinset.channel, pinset.version, pinset.report_uri, rules)


def chain_role(index: int, length: int) -> str:
    """The role of the key at ``index`` of a verified chain of ``length`` (leaf first)."""
    if index == 0:
        return "leaf"
    return "root" if index == length - 1 else "intermediate"
