"""Closing references: which issues a pull request's description says it closes.

The one parser for GitHub's closing keywords, used by routing (``github/events.py``: which record an event of a
PR belongs to) and by policy (``policy/context.py``: the ``linked_issue`` requirement), so both always agree.

What links, as GitHub documents it ("Linking a pull request to an issue using a keyword"):

- a keyword, in any case: ``close``/``closes``/``closed``, ``fix``/``fixes``/``fixed``,
  ``resolve``/``resolves``/``resolved``, not glued to a word before it (``prefixes #3`` links nothing);
- an optional colon, then spaces or tabs (``Fixes: #3``; ``fixes#3`` links nothing);
- the issue: ``#N`` (this repository), ``owner/repo#N``, or an issue URL ``https://<server>/owner/repo/issues/N``
  on any server (GitHub Enterprise Server included).

Each issue needs its own keyword: GitHub's docs give ``Resolves #10, resolves #123`` for several issues, and in
``Fixes #1, #2`` only ``#1`` is linked. Text that GitHub does not render as prose links nothing: inline code
spans, fenced code blocks (an unclosed fence runs to the end) and HTML comments (the PR template's hints).
References come back in the order written, each issue once, ``#0`` never.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Only this much of a body is read: GitHub's limit on a pull request description ("maximum is 65536 characters").
MAX_BODY = 65_536

_OWNER = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})"
_REPO = r"[A-Za-z0-9._-]{1,100}"
_CLOSING = re.compile(
    r"(?<![\w/-])(?P<kw>close[sd]?|fix(?:e[sd])?|resolve[sd]?)[ \t]*:?[ \t]+"
    rf"(?:(?:(?P<owner>{_OWNER})/(?P<repo>{_REPO}))?#(?P<n>\d{{1,9}})(?![\w-])"
    rf"|https?://[A-Za-z0-9.-]+(?::\d{{1,5}})?/(?P<uowner>{_OWNER})/(?P<urepo>{_REPO})/issues/(?P<un>\d{{1,9}})/?"
    r"(?![\w/-]))",
    re.IGNORECASE,
)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_FENCE_OPEN = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_SPAN = re.compile(r"(?<!`)(?P<ticks>`+)(?!`)(?P<code>(?:(?!\n[ \t]*\n).)+?)(?<!`)(?P=ticks)(?!`)", re.DOTALL)
_BLANK = "\x00"  # what removed text becomes: no keyword, owner or number can match across it


@dataclass(frozen=True)
class IssueRef:
    """An issue a pull request closes: ``owner/repo#number``. ``keyword`` is how the body said it (lower case)."""

    owner: str
    repo: str
    number: int
    keyword: str = field(default="fixes", compare=False)

    @property
    def full_name(self) -> str:
        """``owner/repo``."""
        return f"{self.owner}/{self.repo}"

    @property
    def record_id(self) -> str:
        """The LoopForge record id of the issue: ``owner/repo#number``."""
        return f"{self.owner}/{self.repo}#{self.number}"

    def display(self, relative_to: str | None = None) -> str:
        """``#N`` when the issue is in ``relative_to`` (``owner/repo``), else ``owner/repo#N``."""
        if relative_to is not None and self.full_name.lower() == relative_to.lower():
            return f"#{self.number}"
        return self.record_id


def prose(body: str) -> str:
    """``body`` with what GitHub does not read as prose blanked out: HTML comments, fenced code blocks, code spans.

    Removed text becomes a NUL, so nothing on either side of it joins into a reference.
    """
    text = _COMMENT.sub(_BLANK, body)
    kept: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        if fence is not None:
            stripped = line.strip()
            if stripped.startswith(fence) and set(stripped) == {fence[0]} and len(line) - len(line.lstrip(" ")) < 4:
                fence = None
            kept.append(_BLANK)
            continue
        m = _FENCE_OPEN.match(line)
        if m and not (m["fence"][0] == "`" and "`" in m["info"]):
            fence = m["fence"]
            kept.append(_BLANK)
            continue
        kept.append(line)
    return _SPAN.sub(_BLANK, "\n".join(kept))


def closing_references(body: str | None, default_repo: str) -> list[IssueRef]:
    """The issues ``body`` closes, in order, each once. ``#N`` means an issue of ``default_repo`` (``owner/repo``).

    A reference to ``default_repo`` written in another case is returned in ``default_repo``'s spelling, so its
    record id matches the one routing gives the repository's own issues. With ``default_repo=""`` (unknown), a
    bare ``#N`` has an empty owner and repo.
    """
    if not body:
        return []
    owner, _, repo = default_repo.partition("/")
    refs: list[IssueRef] = []
    seen: set[tuple[str, str, int]] = set()
    for m in _CLOSING.finditer(prose(body[:MAX_BODY])):
        number = int(m["n"] or m["un"])
        if number == 0:
            continue
        ref_owner, ref_repo = (m["owner"], m["repo"]) if m["n"] else (m["uowner"], m["urepo"])
        if ref_owner is None or f"{ref_owner}/{ref_repo}".lower() == default_repo.lower():
            ref_owner, ref_repo = owner, repo
        key = (ref_owner.lower(), ref_repo.lower(), number)
        if key in seen:
            continue
        seen.add(key)
        refs.append(IssueRef(ref_owner, ref_repo, number, m["kw"].lower()))
    return refs
