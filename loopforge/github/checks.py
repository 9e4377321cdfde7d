"""The check run on the PR head: exactly one per (head SHA, check name), created once and PATCHed in place.

Two requests per event: ``GET /repos/{o}/{r}/commits/{sha}/check-runs?check_name=`` then ``PATCH`` the run we
find (or ``POST`` a new one). Several same-name runs on one SHA confuse required checks, so we never add a
second one; if one exists already (e.g. from an earlier run), it is updated. A completed run that must wait again
becomes ``action_required`` (GitHub would keep its old conclusion under an ``in_progress`` status).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from github import GithubException

from loopforge.errors import ReadOnlyToken as ReadOnlyToken  # re-exported: their home is loopforge.errors


class CheckRunPoster:
    def __init__(self, gh: Any, repo: str) -> None:
        self._requester = gh.requester
        self._base = f"/repos/{repo}"

    def find(self, sha: str, name: str) -> dict[str, Any] | None:
        _h, data = self._requester.requestJsonAndCheck(
            "GET", f"{self._base}/commits/{sha}/check-runs", parameters={"check_name": name, "filter": "all"})
        runs = [r for r in (data or {}).get("check_runs", []) if r.get("name") == name]
        runs.sort(key=lambda r: r.get("id", 0))
        return runs[0] if runs else None

    def post(self, sha: str, name: str, output: Mapping[str, Any], details_url: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"status": output["status"],
                                "output": {"title": output["title"], "summary": output["summary"]}}
        if output.get("conclusion"):
            body["conclusion"] = output["conclusion"]
        if details_url:
            body["details_url"] = details_url
        try:
            existing = self.find(sha, name)
            if existing is not None and existing.get("status") == "completed" and not body.get("conclusion"):
                # GitHub keeps a completed run's conclusion when its status goes back to in_progress (and refuses
                # a null one): a run that passed would stay green while the gate now waits. Keep it completed,
                # with a conclusion that does not satisfy a required check, until the gate passes again.
                body = {**body, "status": "completed", "conclusion": "action_required"}
            if existing is not None:
                _h, data = self._requester.requestJsonAndCheck(
                    "PATCH", f"{self._base}/check-runs/{existing['id']}", input=body)
            else:
                _h, data = self._requester.requestJsonAndCheck(
                    "POST", f"{self._base}/check-runs", input={"name": name, "head_sha": sha, **body})
        except GithubException as exc:
            message = exc.data.get("message", "") if isinstance(exc.data, dict) else ""
            if exc.status == 403 and "not accessible by integration" in str(message):
                raise ReadOnlyToken(str(message)) from None
            raise
        return dict(data or {})
