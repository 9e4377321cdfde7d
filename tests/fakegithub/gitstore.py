"""In-memory git objects for FakeGitHub: blobs, trees and commits, hashed the way git hashes them.

Blob and tree SHAs are real git SHA-1s (``git hash-object`` would agree), so identical trees compare equal;
commit SHAs hash git's commit text, so they are content-addressed too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

BLOB_MODES = {"100644", "100755", "120000"}
TREE_MODE = "040000"
COMMIT_MODE = "160000"


def git_sha(kind: str, payload: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(payload)}\0".encode() + payload).hexdigest()


@dataclass(frozen=True)
class TreeEntry:
    name: str
    mode: str
    type: str  # blob | tree | commit
    sha: str


@dataclass
class Person:
    name: str
    email: str
    date: str  # ISO 8601 (UTC, "Z")


@dataclass
class Commit:
    sha: str
    tree: str
    parents: list[str]
    message: str
    author: Person
    committer: Person


@dataclass
class GitStore:
    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, list[TreeEntry]] = field(default_factory=lambda: {EMPTY_TREE: []})
    commits: dict[str, Commit] = field(default_factory=dict)

    # ------------------------------------------------------------------ writing objects
    def put_blob(self, data: bytes) -> str:
        sha = git_sha("blob", data)
        self.blobs[sha] = data
        return sha

    def put_tree(self, entries: list[TreeEntry]) -> str:
        # git orders entries by name, comparing a tree's name as if it ended with "/"
        ordered = sorted(entries, key=lambda e: e.name + "/" if e.type == "tree" else e.name)
        payload = b"".join(f"{e.mode.lstrip('0') if e.type == 'tree' else e.mode} {e.name}".encode() + b"\0"
                           + bytes.fromhex(e.sha) for e in ordered)
        sha = git_sha("tree", payload)
        self.trees[sha] = ordered
        return sha

    def put_commit(self, tree: str, parents: list[str], message: str, author: Person, committer: Person) -> str:
        def line(role: str, p: Person) -> str:
            return f"{role} {p.name} <{p.email}> {p.date}\n"

        text = f"tree {tree}\n" + "".join(f"parent {p}\n" for p in parents) + line("author", author) \
            + line("committer", committer) + "\n" + message
        sha = git_sha("commit", text.encode("utf-8"))
        self.commits[sha] = Commit(sha, tree, list(parents), message, author, committer)
        return sha

    # ------------------------------------------------------------------ reading
    def kind(self, sha: str) -> str | None:
        if sha in self.commits:
            return "commit"
        if sha in self.trees:
            return "tree"
        if sha in self.blobs:
            return "blob"
        return None

    def lookup(self, tree: str, path: str) -> TreeEntry | None:
        """The entry at ``path`` (``""`` is the root tree itself)."""
        entry = TreeEntry("", TREE_MODE, "tree", tree)
        for part in [p for p in path.split("/") if p]:
            if entry.type != "tree":
                return None
            found = [e for e in self.trees[entry.sha] if e.name == part]
            if not found:
                return None
            entry = found[0]
        return entry

    def walk(self, tree: str, prefix: str = "") -> list[tuple[str, TreeEntry]]:
        """Every entry below ``tree`` (pre-order, like ``git ls-tree -r -t``)."""
        out: list[tuple[str, TreeEntry]] = []
        for entry in self.trees[tree]:
            path = f"{prefix}{entry.name}"
            out.append((path, entry))
            if entry.type == "tree":
                out += self.walk(entry.sha, path + "/")
        return out

    def files(self, tree: str) -> dict[str, str]:
        """``{path: blob sha}`` of every blob below ``tree``."""
        return {path: e.sha for path, e in self.walk(tree) if e.type == "blob"}

    def edit(self, base: str | None, edits: dict[str, TreeEntry | None]) -> str:
        """A new tree: ``base`` with each path set to an entry (its ``name`` is ignored) or deleted (None).

        Only the trees along edited paths are rebuilt; intermediate directories are created as needed and
        directories left empty disappear (git has no empty directories).
        """
        current = {e.name: e for e in self.trees[base]} if base else {}
        here: dict[str, TreeEntry | None] = {}
        below: dict[str, dict[str, TreeEntry | None]] = {}
        for path, entry in edits.items():
            head, _, rest = path.partition("/")
            if rest:
                below.setdefault(head, {})[rest] = entry
            else:
                here[head] = entry
        for name, entry in here.items():
            if entry is None:
                current.pop(name, None)
            else:
                current[name] = TreeEntry(name, entry.mode, entry.type, entry.sha)
        for name, sub in below.items():
            existing = current.get(name)
            sub_base = existing.sha if existing is not None and existing.type == "tree" else None
            if sub_base is None and all(v is None for v in sub.values()):
                continue  # deleting below a path that is not a directory: nothing to do
            sha = self.edit(sub_base, sub)
            if sha == EMPTY_TREE:
                current.pop(name, None)
            else:
                current[name] = TreeEntry(name, TREE_MODE, "tree", sha)
        return self.put_tree(list(current.values()))

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        seen: set[str] = set()
        todo = [descendant]
        while todo:
            sha = todo.pop()
            if sha == ancestor:
                return True
            if sha in seen or sha not in self.commits:
                continue
            seen.add(sha)
            todo += self.commits[sha].parents
        return False
