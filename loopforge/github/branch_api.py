"""The GitHub requests of the branch store (``loopforge.repository.branch``), with typed errors.

GraphQL (``loopforge.github.graphql``): the snapshot query (``snapshot``), the append (``commit_on_branch``: one
``createCommitOnBranch`` with ``expectedHeadOid``, GitHub's compare-and-swap) and ``create_ref``. REST (PyGithub's
``Requester``, one per thread: it is not thread-safe): blobs, folder listings and trees for the reads that walk
the whole trail (``verify``, ``history``, ``query``), and the orphan root commit of a new data branch (GraphQL
cannot make a commit without a parent).

Every failure is a ``loopforge.errors.GitHubError``: ``GitHubNotFound`` (404; ``*_or_none`` reads return None
instead), ``GitHubPermissionError`` (401/403), ``GitHubUnavailable`` (5xx, rate limits, no answer), ``RefMoved``
(the branch moved under a compare-and-swap, or was created by another writer first).
"""

from __future__ import annotations

import base64
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests
from github import GithubException
from github.Requester import Requester

from loopforge.errors import GitHubError, GitHubNotFound, GitHubUnavailable, RefMoved
from loopforge.github.client import github_error
from loopforge.github.graphql import GraphQLClient
from loopforge.github.snapshot import Extra, RawSnapshot, parse_snapshot, snapshot_document

_CREATE = """mutation LoopforgeAppend($input: CreateCommitOnBranchInput!) {
  createCommitOnBranch(input: $input) { commit { oid } }
}"""

_CREATE_REF = """mutation LoopforgeCreateBranch($input: CreateRefInput!) {
  createRef(input: $input) { ref { name } }
}"""

_TIP = """query LoopforgeTip($owner: String!, $name: String!, $ref: String!) {
  repository(owner: $owner, name: $name) { id tip: ref(qualifiedName: $ref) { target { oid } } }
}"""


class BranchAPI:
    """Requests against one branch of one repository (``full_name``: ``owner/name``)."""

    def __init__(self, requester: Requester, repo_url: str, full_name: str, branch: str, *,
                 graphql: GraphQLClient, cache_size: int = 4096) -> None:
        self._base_requester = requester
        self._repo_url = repo_url
        self.full_name = full_name
        self.owner, self.name = full_name.split("/", 1)
        self.branch = branch
        self.graphql = graphql
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cache_size = cache_size
        self._blobs: OrderedDict[str, bytes] = OrderedDict()  # blob sha -> content (immutable)

    # ------------------------------------------------------------------ REST
    def _requester(self) -> Requester:
        requester: Requester | None = getattr(self._local, "requester", None)
        if requester is None:
            requester = Requester(**self._base_requester.kwargs)
            self._local.requester = requester
        return requester

    def rest(self, verb: str, path: str, *, params: dict[str, Any] | None = None,
             body: dict[str, Any] | None = None) -> Any:
        """One REST request under ``/repos/{owner}/{name}``; failures as typed ``GitHubError`` s."""
        where = f"{verb} /repos/{self.full_name}{path}"
        try:
            _headers, data = self._requester().requestJsonAndCheck(
                verb, f"{self._repo_url}{path}", parameters=params, input=body)
        except (GithubException, requests.RequestException) as exc:
            raise github_error(exc, where) from exc
        return data

    def rest_or_none(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``path``; None on 404 (a missing file, folder, ref or branch)."""
        try:
            return self.rest("GET", path, params=params)
        except GitHubNotFound:
            return None

    def _cached_blob(self, sha: str, data: bytes | None = None) -> bytes | None:
        with self._lock:
            if data is not None:
                self._blobs[sha] = data
                self._blobs.move_to_end(sha)
                while len(self._blobs) > self._cache_size:
                    self._blobs.popitem(last=False)
                return data
            found = self._blobs.get(sha)
            if found is not None:
                self._blobs.move_to_end(sha)
            return found

    def blob(self, sha: str) -> bytes:
        data = self._cached_blob(sha)
        if data is None:
            blob = self.rest_or_none(f"/git/blobs/{sha}")
            if blob is None:
                raise GitHubNotFound(f"{self.full_name}@{self.branch}: blob {sha} vanished")
            data = base64.b64decode(blob["content"]) if blob.get("encoding") == "base64" else \
                str(blob["content"]).encode("utf-8")
            self._cached_blob(sha, data)
        return data

    def folder(self, path: str, ref: str) -> list[tuple[str, str, str]] | None:
        """``(name, type, sha)`` of the items of a folder at ``ref`` (None if missing); the Contents API lists at
        most 1,000 items, so a bigger folder is listed through its git tree (+2 requests)."""
        listing = self.rest_or_none(f"/contents/{quote(path)}", {"ref": ref})
        if listing is None:
            return None
        if not isinstance(listing, list):
            raise GitHubError(f"{self.full_name}@{ref}: {path} is not a folder")
        if len(listing) >= 1000:
            parent, _, name = path.rpartition("/")
            above = self.rest_or_none(f"/contents/{quote(parent)}", {"ref": ref}) or []
            sha = next(i["sha"] for i in above if i["name"] == name)
            tree = self.tree(sha) or {"tree": []}
            return [(str(i["path"]), "file" if i["type"] == "blob" else "dir", str(i["sha"])) for i in tree["tree"]]
        return [(str(i["name"]), str(i.get("type")), str(i["sha"])) for i in listing]

    def tree(self, tree_ish: str, recursive: bool = False) -> Any:
        return self.rest_or_none(f"/git/trees/{tree_ish}", {"recursive": "1"} if recursive else None)

    def ref_sha(self) -> str | None:
        ref = self.rest_or_none(f"/git/ref/heads/{quote(self.branch)}")
        return str(ref["object"]["sha"]) if ref is not None else None

    def root_commit(self, files: Mapping[str, str], message: str) -> str:
        """An orphan commit holding ``files`` (for a new data branch). Git objects are content-addressed, so a
        transient failure is simply retried (an object from a lost attempt is an unreferenced object)."""
        tree = self._post("/git/trees", {"tree": [{"path": p, "mode": "100644", "type": "blob", "content": text}
                                                  for p, text in files.items()]})
        commit = self._post("/git/commits", {"message": message, "tree": tree["sha"], "parents": []})
        return str(commit["sha"])

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        for attempt in range(3):
            try:
                return self.rest("POST", path, body=body)
            except GitHubUnavailable:
                if attempt == 2:
                    raise
            time.sleep(0.05 * 2 ** attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ GraphQL
    def snapshot(self, folder: str, key_paths: Sequence[str], extras: Sequence[Extra] = ()) -> RawSnapshot:
        document, variables, optional = snapshot_document(self.owner, self.name, self.branch, folder, key_paths,
                                                          extras)
        answer = self.graphql.execute(document, variables, what=f"reading {self.full_name}@{self.branch}",
                                      optional=optional)
        if answer.data.get("repository") is None:
            raise GitHubNotFound(f"{self.full_name} does not exist or the token cannot see it")
        try:
            return parse_snapshot(answer.data, len(key_paths))
        except ValueError as exc:
            raise GitHubError(f"{self.full_name}@{self.branch}: {exc}") from None

    def tip(self) -> tuple[str | None, str | None]:
        """(repository node id, branch tip oid or None)."""
        answer = self.graphql.execute(_TIP, {"owner": self.owner, "name": self.name,
                                             "ref": f"refs/heads/{self.branch}"},
                                      what=f"reading {self.full_name}@{self.branch}")
        repo = answer.data.get("repository") or {}
        target = (repo.get("tip") or {}).get("target") or {}
        return repo.get("id"), target.get("oid")

    def commit_on_branch(self, expected: str, headline: str, body: str, files: Mapping[str, str]) -> str:
        """One ``createCommitOnBranch``: ``files`` (path → text) added on top of ``expected``; the new oid.
        ``RefMoved`` if the branch no longer points at ``expected``. Not retried after a lost answer."""
        payload = {"input": {
            "branch": {"repositoryNameWithOwner": self.full_name, "branchName": self.branch},
            "expectedHeadOid": expected,
            "message": {"headline": headline, "body": body},
            "fileChanges": {"additions": [
                {"path": p, "contents": base64.b64encode(text.encode("utf-8")).decode("ascii")}
                for p, text in files.items()]},
        }}
        answer = self.graphql.execute(_CREATE, payload, mutation=True,
                                      what=f"appending to {self.full_name}@{self.branch}")
        commit = ((answer.data.get("createCommitOnBranch") or {}).get("commit")) or {}
        if not commit.get("oid"):
            raise GitHubUnavailable(f"appending to {self.full_name}@{self.branch}: no commit in the answer")
        return str(commit["oid"])

    def create_ref(self, repository_id: str, oid: str) -> None:
        """``createRef`` for the branch; ``RefMoved`` if another writer created it first."""
        try:
            self.graphql.execute(_CREATE_REF, {"input": {"repositoryId": repository_id,
                                                         "name": f"refs/heads/{self.branch}", "oid": oid}},
                                 mutation=True, what=f"creating {self.full_name}@{self.branch}")
        except GitHubError as exc:
            if type(exc) is GitHubError and "already exists" in str(exc):
                raise RefMoved(str(exc)) from None
            raise


__all__ = ["BranchAPI"]
