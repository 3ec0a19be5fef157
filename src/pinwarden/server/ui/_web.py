"""The dashboard's request plumbing: who is signed in, form reading, rendering, and the page
that answers a refusal. Every page is ``no-store`` and carries a strict Content-Security-Policy
(no script at all; styles from ``/ui/static`` only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from pinwarden.server._database import is_connection_failure
from pinwarden.server._errors import ConflictError, ScopeError, ServerError, ValidationError
from pinwarden.server._fields import text_problem
from pinwarden.server._models import utc_now
from pinwarden.server.ui._sessions import SESSION_LIFETIME, SignedIn, same_secret, signed_in

if TYPE_CHECKING:
    from pinwarden.server._app import Services

__all__ = [
    "COOKIE",
    "LOGIN_COOKIE",
    "LONG_CHARS",
    "NAME_CHARS",
    "SESSION_SECONDS",
    "SHORT_CHARS",
    "URL_CHARS",
    "Form",
    "Handler",
    "Page",
    "Renderer",
    "cookie_options",
    "form_fields",
    "query_text",
    "signed_in_page",
]

COOKIE, LOGIN_COOKIE = "pinwarden_ui", "pinwarden_ui_login"
_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
_MAX_FIELDS, _MAX_FIELD_CHARS = 40, 64 * 1024
_REFUSED_VALUE = (
    "the database refused a value of this form (a character or a number out of range); check "
    "the fields and send it again"
)


class _Unavailable(ServerError):
    status = 503


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "—"


def _relative(value: datetime | None, now: datetime | None = None) -> str:
    """ "3 h ago", "in 12 days": a duration a person reads at a glance."""
    if value is None:
        return "—"
    seconds = ((now or utc_now()) - value).total_seconds()
    amount = abs(seconds)
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if amount >= size:
            text = f"{amount // size:.0f} {unit}"
            break
    else:
        text = f"{amount:.0f} s"
    return f"{text} ago" if seconds >= 0 else f"in {text}"


class Renderer:
    """Jinja2 templates of this package, autoescaped."""

    def __init__(self) -> None:
        self._env = Environment(
            loader=PackageLoader("pinwarden.server.ui", "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["when"] = _when
        self._env.filters["relative"] = _relative

    def page(self, name: str, context: Mapping[str, Any], status: int = 200) -> HTMLResponse:
        body = self._env.get_template(name).render(**context)
        return HTMLResponse(body, status_code=status, headers=_HEADERS)


@dataclass(frozen=True)
class Page:
    """One signed-in request: the services, the session and what its token may do."""

    request: Request
    services: Services
    user: SignedIn
    renderer: Renderer

    @property
    def actor(self) -> str:
        return self.user.principal.actor

    def can(self, scope: str) -> bool:
        return self.user.principal.has(scope)

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        can = {scope: self.can(scope) for scope in ("write", "publish", "admin")}
        base = {"user": self.user, "can": can, "csrf": self.user.csrf, "now": utc_now()}
        return self.renderer.page(name, {**base, **context}, status)

    def refused(self, error: ServerError) -> HTMLResponse:
        """A refusal as a page with the service's own message and its HTTP status."""
        problems = getattr(error, "problems", [])
        return self.render("refused.html", error.status, message=str(error), problems=problems)


Handler = Callable[[Page], Awaitable[Response]]


def cookie_options(request: Request, max_age: int) -> dict[str, Any]:
    """HttpOnly, SameSite=Strict, path /ui, and Secure when served over TLS."""
    return {
        "max_age": max_age,
        "path": "/ui",
        "httponly": True,
        "samesite": "strict",
        "secure": request.url.scheme == "https",
    }


def query_text(request: Request, name: str, limit: int = 300) -> str | None:
    """A query parameter that can be stored and queried, else ``ValidationError``."""
    value = request.query_params.get(name)
    if value is None:
        return None
    problem = text_problem(value)
    if problem is not None or len(value) > limit:
        raise ValidationError(f"{name} {problem or f'is longer than {limit} characters'}")
    return value


# The sizes of ``_fields``' NameText, ShortText and UrlText (the columns' own), and LongText.
NAME_CHARS, SHORT_CHARS, URL_CHARS, LONG_CHARS = 200, 300, 2000, 64 * 1024


class Form:
    """A form's text fields; a repeated field (checkboxes) keeps every value. Each read names
    the size of the column it goes to: a longer value is a 422, as in the admin API."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str = "", *, limit: int = NAME_CHARS) -> str:
        values = self._fields.get(name)
        value = values[-1] if values else default
        if len(value) > limit:
            raise ValidationError(f"{name} is longer than {limit} characters")
        return value

    def optional(self, name: str, *, limit: int = NAME_CHARS) -> str | None:
        """The field, or ``None`` when absent or blank."""
        value = self.get(name, limit=limit).strip()
        return value or None

    def all(self, name: str, *, limit: int = NAME_CHARS) -> list[str]:
        values = self._fields.get(name, [])
        if any(len(value) > limit for value in values):
            raise ValidationError(f"{name} is longer than {limit} characters")
        return list(values)


async def form_fields(request: Request, csrf: str | None) -> Form:
    """A form's text fields after its CSRF value matched; no file, nothing unstorable."""
    form = await request.form(max_files=0, max_fields=_MAX_FIELDS)
    fields: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            raise ValidationError("this form takes no files")
        problem = text_problem(value) or text_problem(name)
        if problem is not None or len(value) > _MAX_FIELD_CHARS:
            raise ValidationError(f"form field {name[:40]!r} {problem or 'is too long'}")
        fields.setdefault(name, []).append(value)
    sent = fields.pop("csrf", [None])[-1]
    if csrf is None or not same_secret(sent, csrf):
        raise ScopeError("this form is stale or was not sent by the dashboard; reload the page")
    return Form(fields)


def signed_in_page(
    services: Services, renderer: Renderer, handler: Handler, *, scope: str | None = "read"
) -> Callable[[Request], Awaitable[Response]]:
    """A route for signed-in users only (others go to the login page); a service's refusal is
    answered with its status and message. ``scope``: what the token needs, as for the admin
    API's routes (pages need ``read``); None for the actions, whose service functions check
    their own, and for logging out."""

    async def endpoint(request: Request) -> Response:
        secret = request.cookies.get(COOKIE)
        user = await run_in_threadpool(_look_up, services, secret)
        if user is None:
            return RedirectResponse("/ui/login", status_code=303)
        page = Page(request, services, user, renderer)
        try:
            if scope is not None:
                user.principal.require(scope)
            return await handler(page)
        except ServerError as error:
            return page.refused(error)
        except IntegrityError:
            return page.refused(ConflictError("conflicting change; try again"))
        except (StatementError, DataError):
            # The backstop behind the field sizes, as in the admin API.
            return page.refused(ValidationError(_REFUSED_VALUE))
        except DBAPIError as error:
            if not is_connection_failure(error):
                raise
            services.database_state(False)
            return page.refused(_Unavailable("the database is unavailable"))

    return endpoint


def _look_up(services: Services, secret: str | None) -> SignedIn | None:
    with services.sessions() as session:
        return signed_in(session, secret)


SESSION_SECONDS = int(SESSION_LIFETIME.total_seconds())
