"""What a reader of README.md and docs/*.md would run: fenced blocks, ``pinwarden …`` commands.

Only what these documents use is understood: fences of three backticks with an optional language,
inline code spans of single backticks, and shell lines with ``#`` comments, ``\\`` continuations,
``$(…)``, ``|``, ``&&`` and ``;``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
README = REPOSITORY / "README.md"
SHELL_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})

_FENCE = re.compile(r"^```(\w*)\s*$")
_INLINE_SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")
_SEPARATORS = frozenset(";|&()")  # between shell commands, outside quotes


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: the document, the line of its opening fence, its language, its text."""

    path: Path
    line: int
    language: str
    text: str

    @property
    def where(self) -> str:
        """``README.md:46``"""
        return _label(self.path, self.line)


@dataclass(frozen=True)
class Command:
    """One ``pinwarden …`` command as written, and where (``docs/server.md:80``)."""

    where: str
    text: str
    inline: bool  # from an inline code span (may name a command without its arguments)


def documents() -> list[Path]:
    """README.md and every docs/*.md, in a stable order."""
    return [README, *sorted((REPOSITORY / "docs").glob("*.md"))]


def _label(path: Path, line: int) -> str:
    return f"{path.relative_to(REPOSITORY)}:{line}"


def code_blocks(path: Path) -> list[CodeBlock]:
    """The fenced code blocks of ``path``, in order."""
    blocks: list[CodeBlock] = []
    opened: tuple[int, str] | None = None
    body: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fence = _FENCE.match(line.strip())
        if fence is None:
            if opened is not None:
                body.append(line)
            continue
        if opened is None:
            opened, body = (number, fence.group(1)), []
        else:
            blocks.append(CodeBlock(path, opened[0], opened[1], "\n".join(body) + "\n"))
            opened = None
    assert opened is None, f"{_label(path, opened[0])}: a code fence is never closed"
    return blocks


def _prose(path: Path) -> list[tuple[int, str]]:
    """The paragraphs outside code fences, with the line each starts on (spans may wrap)."""
    paragraphs: list[tuple[int, str]] = []
    in_fence = False
    start, lines = 0, list[str]()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fence = _FENCE.match(line.strip()) is not None
        in_fence ^= fence
        if in_fence or fence or not line.strip():
            if lines:
                paragraphs.append((start, " ".join(lines)))
            lines = []
            continue
        if not lines:
            start = number
        lines.append(line.strip())
    if lines:
        paragraphs.append((start, " ".join(lines)))
    return paragraphs


def _shell_lines(block: CodeBlock) -> list[tuple[int, str]]:
    """A shell block's logical lines (continuations joined), with their line numbers."""
    logical: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None  # a line ending in a backslash, and where it began
    for number, line in enumerate(block.text.splitlines(), start=block.line + 1):
        if pending is not None:
            number, line = pending[0], f"{pending[1]} {line.strip()}"
        if line.endswith("\\"):
            pending = (number, line[:-1])
            continue
        pending = None
        logical.append((number, line))
    return logical


def _segments(line: str) -> list[str]:
    """``line`` cut at the separators of shell commands outside quotes (``;``, ``|``, ``&``,
    ``$(``, ``)``), up to a ``#`` comment."""
    segments: list[str] = []
    current: list[str] = []
    quote = None
    for index, character in enumerate(line):
        if quote:
            quote = None if character == quote else quote
        elif character in "'\"":
            quote = character
        elif character == "#" and (index == 0 or line[index - 1].isspace()):
            break
        elif character in _SEPARATORS:
            segments.append("".join(current).removesuffix("$"))
            current = []
            continue
        current.append(character)
    return [*segments, "".join(current)]


def _commands_on(line: str) -> list[str]:
    """The ``pinwarden …`` commands on one shell line. A usage synopsis (``pinwarden alerts list
    [--state open|resolved|all]``) is one command: its ``|`` separates alternatives."""
    if line.strip().startswith("pinwarden ") and " [" in line:
        return [line.strip()]
    commands = (segment.strip() for segment in _segments(line))
    return [command for command in commands if command.startswith("pinwarden ")]


def commands() -> list[Command]:
    """Every ``pinwarden …`` command of README.md and docs/*.md: shell blocks and inline spans."""
    found: list[Command] = []
    for path in documents():
        for block in code_blocks(path):
            if block.language not in SHELL_LANGUAGES:
                continue
            for number, line in _shell_lines(block):
                found.extend(
                    Command(_label(path, number), text, False) for text in _commands_on(line)
                )
        for number, paragraph in _prose(path):
            for span in _INLINE_SPAN.findall(paragraph):
                found.extend(
                    Command(_label(path, number), text, True) for text in _commands_on(span)
                )
    return found
