"""Field types for every value the server takes from outside and may store or query with.

A value the database cannot hold is the client's mistake, so it is refused as a 422 naming the
field, before any query: PostgreSQL refuses a NUL in text and an integer past its column's range
with a ``DataError``, and SQLite's driver raises ``UnicodeEncodeError`` on a lone surrogate (a
JSON ``"\\ud800"`` decodes to one) and ``OverflowError`` on an integer of 2**63 or more. Each
request model uses these types once per field; ``check_text`` is the same rule for code that is
not a model (query and path parameters, the violation report).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

__all__ = [
    "INT32_MAX",
    "Count32",
    "LongText",
    "NameText",
    "Port",
    "Positive32",
    "ShortText",
    "StoredText",
    "UrlText",
    "check_text",
    "text_problem",
]

INT32_MAX = 2**31 - 1  # SQLAlchemy's Integer is a 32-bit INTEGER on PostgreSQL
_LONG_TEXT = 64 * 1024  # a ``Text`` column (a description, a reason): the admin body cap


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (no NUL, valid Unicode), or ``None`` when it can."""
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds a lone surrogate)"
    return None


def check_text(text: str) -> str:
    """``text``, or ``ValueError`` saying why it cannot be stored (pydantic makes it a 422)."""
    problem = text_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


_Storable = AfterValidator(check_text)
StoredText = Annotated[str, _Storable]  # give it a length: Annotated[StoredText, Field(…)]
# The sizes are the columns' in ``_models``: a value that fits the model fits the column.
NameText = Annotated[str, Field(max_length=200), _Storable]  # names, labels, channel names
ShortText = Annotated[str, Field(max_length=300), _Storable]  # hosts, patterns, actors
UrlText = Annotated[str, Field(max_length=2000), _Storable]
LongText = Annotated[str, Field(max_length=_LONG_TEXT), _Storable]

Count32 = Annotated[int, Field(ge=0, le=INT32_MAX)]
Positive32 = Annotated[int, Field(ge=1, le=INT32_MAX)]  # versions, row ids
Port = Annotated[int, Field(ge=1, le=65535)]
