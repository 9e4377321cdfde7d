"""CODEOWNERS: who owns each changed file, as GitHub reads the file.

GitHub uses the first of ``.github/CODEOWNERS``, ``CODEOWNERS``, ``docs/CODEOWNERS`` on the base branch
(``CODEOWNERS_PATHS``). Each line is a pattern followed by owners (``@login``, ``@org/team-slug`` or an e-mail
address); ``#`` starts a comment; for a path, the **last** matching pattern wins, and a pattern with no owners
means the matched files have no owner. Patterns follow gitignore rules (``pathspec``'s ``gitwildmatch``), with
GitHub's restrictions: no ``!`` negation and no ``[ ]`` character ranges. Any line GitHub would reject is an
error here naming its line number (``CodeownersError``): a policy that relies on CODEOWNERS fails rather than
silently dropping an owner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pathspec

from loopforge.errors import LoopForgeError

CODEOWNERS_PATHS: tuple[str, ...] = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")
MAX_BYTES = 3 * 1024 * 1024  # GitHub ignores a CODEOWNERS file over 3 MB

try:  # pathspec >= 1.0 names gitignore's own rules "gitignore"; 0.12 has only "gitwildmatch"
    pathspec.util.lookup_pattern("gitignore")
    _FACTORY = "gitignore"
except LookupError:  # pragma: no cover - depends on the installed pathspec
    _FACTORY = "gitwildmatch"

_USER = re.compile(r"^@([A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\[bot\])?)$")
_TEAM = re.compile(r"^@([A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class CodeownersError(LoopForgeError):
    """A CODEOWNERS file GitHub would not accept in full. ``str()`` names the file and the line."""

    def __init__(self, path: str, line: int, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        super().__init__(f"{path} line {line}: {problem}")


@dataclass(frozen=True)
class Owner:
    """``kind``: ``user`` (``name`` a login), ``team`` (``org/slug``) or ``email``."""

    kind: str
    name: str

    def display(self) -> str:
        return self.name if self.kind == "email" else f"@{self.name}"


@dataclass(frozen=True)
class Entry:
    line: int
    pattern: str
    owners: tuple[Owner, ...]
    spec: pathspec.PathSpec[Any] = field(compare=False, repr=False)


@dataclass(frozen=True)
class Codeowners:
    path: str
    entries: tuple[Entry, ...]

    def owners_of(self, filename: str) -> tuple[Entry | None, tuple[Owner, ...]]:
        """The entry that decides ``filename`` (the last matching one) and its owners; ``(None, ())`` if none."""
        for entry in reversed(self.entries):
            if entry.spec.match_file(filename):
                return entry, entry.owners
        return None, ()


def _owner(token: str, path: str, line: int) -> Owner:
    if m := _TEAM.match(token):
        return Owner("team", m.group(1))
    if m := _USER.match(token):
        return Owner("user", m.group(1))
    if _EMAIL.match(token):
        return Owner("email", token)
    raise CodeownersError(path, line, f"{token[:80]!r} is not an owner (use @login, @org/team or an e-mail address)")


def _split(text: str) -> list[str]:
    """Whitespace-separated tokens; ``\\ `` keeps a space in a pattern, ``\\#`` a literal ``#``."""
    tokens: list[str] = []
    current = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in " \t#":
            current += "\\" + text[i + 1] if text[i + 1] == "#" else text[i + 1]
            i += 2
            continue
        if ch in " \t":
            if current:
                tokens.append(current)
                current = ""
        elif ch == "#" and not current:
            break  # a comment (at the start of a token)
        else:
            current += ch
        i += 1
    if current:
        tokens.append(current)
    return tokens


def parse_codeowners(text: str, path: str = "CODEOWNERS") -> Codeowners:
    """Parse a CODEOWNERS file. Raises ``CodeownersError`` naming the first line GitHub would reject."""
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise CodeownersError(path, 0, "the file is over 3 MB: GitHub ignores it")
    entries: list[Entry] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        tokens = _split(raw)
        if not tokens:
            continue
        pattern, owner_tokens = tokens[0], tokens[1:]
        if pattern.startswith("!"):
            raise CodeownersError(path, number, f"negated pattern {pattern[:80]!r}: CODEOWNERS has no '!'")
        if "[" in pattern.replace("\\[", ""):
            raise CodeownersError(path, number, f"pattern {pattern[:80]!r}: CODEOWNERS has no [ ] ranges")
        try:
            spec = pathspec.PathSpec.from_lines(_FACTORY, [pattern])
        except Exception as exc:
            raise CodeownersError(path, number, f"invalid pattern {pattern[:80]!r}: {exc}") from None
        owners = tuple(_owner(t, path, number) for t in owner_tokens)
        entries.append(Entry(number, pattern, owners, spec))
    return Codeowners(path, tuple(entries))
