"""``GraphQLPullRequestContext``: the policy's ``PullRequestContext`` over the pull request's facts read in the
event's one GraphQL query (``loopforge.github.pr_facts``).

Facts GraphQL does not carry are read through the REST context (``loopforge.github.pr_context``) only when a
rule asks for them: renamed files' old names and patches (``diff``), more than 100 changed files, reviews or
label events beyond 100, team membership, a user's role on the repository, linked issues' states, and CODEOWNERS
when the read did not ask for it (``pull_request_extra(codeowners=True)`` does). ``rest_reads`` lists which were
needed.

The blob ids of the changed files (diff fingerprints) are not in the one read: GraphQL's changed files carry no
blob id, and the paths are only known once the read has answered. With a ``graphql`` runner they come from one more
GraphQL query, two when the head is behind its base (``loopforge.github.diff_read``); REST answers when that
cannot tell (renamed files, an unclear merge base). ``graphql_reads`` counts those queries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from loopforge.errors import GitHubError
from loopforge.github.diff_read import Run, read_diff_blobs
from loopforge.github.pr_facts import codeowners_file, run_id
from loopforge.policy.context import (
    ChangedFile,
    CheckState,
    IssueRef,
    LabelEvent,
    PullRequestContext,
    Review,
    parse_closing_references,
)


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


_CHANGE = {"ADDED": "added", "DELETED": "removed", "MODIFIED": "modified", "RENAMED": "renamed",
           "COPIED": "copied", "CHANGED": "changed"}
_STATUS_STATE = {"SUCCESS": ("completed", "success"), "FAILURE": ("completed", "failure"),
                 "ERROR": ("completed", "failure"), "PENDING": ("in_progress", None),
                 "EXPECTED": ("in_progress", None)}


def _user_id(actor: Any) -> int | None:
    """The immutable account id of a review's author (logins can be renamed), when GraphQL gave one."""
    value = (actor or {}).get("databaseId") if isinstance(actor, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _rank(state: CheckState) -> int:
    if state.status != "completed":
        return 1
    return 2 if (state.conclusion or "") in ("success", "neutral", "skipped") else 0


def _keep_worst(into: dict[str, CheckState], state: CheckState) -> None:
    current = into.get(state.name)
    if current is None or _rank(state) < _rank(current):
        into[state.name] = state


class GraphQLPullRequestContext:
    """``PullRequestContext`` over the snapshot's ``pr`` and ``head`` fields; ``rest`` (built on first need)
    answers what GraphQL does not carry (see the module docstring)."""

    def __init__(self, repo: str, extra: Mapping[str, Any], rest: Callable[[], PullRequestContext], *,
                 graphql: Run | None = None) -> None:
        pr = extra.get("pr")
        if not pr:
            raise ValueError("the snapshot holds no pull request")
        self._pr: Mapping[str, Any] = pr
        self._head: Mapping[str, Any] = extra.get("head") or {}
        self._extra = extra
        self._repo = repo
        self._make_rest = rest
        self._rest: PullRequestContext | None = None
        self.rest_reads: list[str] = []  # which facts needed the REST fallback (tests, reports)
        self._graphql = graphql
        self._blobs: Mapping[str, tuple[str, str]] | None = None
        self.graphql_reads = 0  # queries sent after the one read (the diff's blob ids)

    def _fallback(self, why: str) -> PullRequestContext:
        self.rest_reads.append(why)
        if self._rest is None:
            self._rest = self._make_rest()
        return self._rest

    # ------------------------------------------------------------------ scalars
    @property
    def repo(self) -> str:
        return self._repo

    @property
    def number(self) -> int:
        return int(self._pr["number"])

    @property
    def title(self) -> str:
        return str(self._pr.get("title") or "")

    @property
    def body(self) -> str:
        return str(self._pr.get("body") or "")

    @property
    def author(self) -> str:
        return str((self._pr.get("author") or {}).get("login") or "ghost")

    @property
    def author_association(self) -> str:
        return str(self._pr.get("authorAssociation") or "NONE")

    @property
    def base_ref(self) -> str:
        return str(self._pr.get("baseRefName") or "")

    @property
    def head_ref(self) -> str:
        return str(self._pr.get("headRefName") or "")

    @property
    def head_sha(self) -> str:
        return str(self._pr.get("headRefOid") or "")

    @property
    def draft(self) -> bool:
        return bool(self._pr.get("isDraft"))

    @property
    def labels(self) -> Sequence[str]:
        return [str(n["name"]) for n in (self._pr.get("labels") or {}).get("nodes") or []]

    # ------------------------------------------------------------------ lists
    def _read_files(self) -> list[ChangedFile] | None:
        """The changed files as the read has them; None when it cannot tell them all (renames or over 100)."""
        files = self._pr.get("files") or {}
        nodes = files.get("nodes") or []
        if int(files.get("totalCount") or 0) > len(nodes) or any(n.get("changeType") in ("RENAMED", "COPIED")
                                                                  for n in nodes):
            return None
        return [ChangedFile(filename=str(n["path"]), status=_CHANGE.get(str(n["changeType"]), "modified"),
                            additions=int(n["additions"]), deletions=int(n["deletions"])) for n in nodes]

    def changed_files(self) -> Sequence[ChangedFile]:
        files = self._read_files()
        if files is None:
            return self._fallback("changed files (renames or over 100)").changed_files()
        return files

    def files_truncated(self) -> bool:
        return int(self._pr.get("changedFiles") or 0) > len(self.changed_files())

    def line_counts(self) -> tuple[int, int]:
        return int(self._pr.get("additions") or 0), int(self._pr.get("deletions") or 0)

    def reviews(self) -> Sequence[Review]:
        """The latest decisive review per reviewer (what ``policy.rules.latest_reviews`` keeps of all reviews)."""
        found = self._pr.get("latestOpinionatedReviews") or {}
        nodes = found.get("nodes") or []
        if int(found.get("totalCount") or 0) > len(nodes):
            return self._fallback("reviews (over 100 reviewers)").reviews()
        return [Review(user=str((n.get("author") or {}).get("login") or "ghost"), state=str(n["state"]),
                       commit_id=(n.get("commit") or {}).get("oid"), submitted_at=_when(n.get("submittedAt")),
                       id=int(n.get("databaseId") or 0), user_id=_user_id(n.get("author"))) for n in nodes]

    def label_events(self) -> Sequence[LabelEvent]:
        found = self._pr.get("timelineItems") or {}
        nodes = found.get("nodes") or []
        if int(found.get("totalCount") or 0) > len(nodes):
            return self._fallback("label events (over 100)").label_events()
        return [LabelEvent(label=str((n.get("label") or {}).get("name")),
                           actor=str((n.get("actor") or {}).get("login") or "ghost"),
                           action="labeled" if n.get("__typename") == "LabeledEvent" else "unlabeled",
                           created_at=_when(n.get("createdAt"))) for n in nodes]

    def check_runs(self) -> Mapping[str, CheckState]:
        rollup = self._head.get("statusCheckRollup") or {}
        out: dict[str, CheckState] = {}
        latest: dict[tuple[str, str], tuple[int, CheckState]] = {}
        for node in (rollup.get("contexts") or {}).get("nodes") or []:
            if node.get("__typename") == "CheckRun":
                app = str(((node.get("checkSuite") or {}).get("app") or {}).get("slug") or "")
                state = CheckState(name=str(node["name"]), status=str(node["status"]).lower(),
                                   conclusion=str(node["conclusion"]).lower() if node.get("conclusion") else None,
                                   kind="check", app=app, url=node.get("detailsUrl"))
                key = (app, state.name)
                if key not in latest or run_id(node["url"]) > latest[key][0]:
                    latest[key] = (run_id(node["url"]), state)
            elif node.get("__typename") == "StatusContext":
                status, conclusion = _STATUS_STATE.get(str(node["state"]), ("completed", str(node["state"]).lower()))
                _keep_worst(out, CheckState(name=str(node["context"]), status=status, conclusion=conclusion,
                                            kind="status", url=node.get("targetUrl")))
        for _, state in latest.values():
            _keep_worst(out, state)
        return out

    def workflow_runs(self) -> Mapping[str, CheckState]:
        latest: dict[str, tuple[int, CheckState]] = {}
        for suite in (self._head.get("checkSuites") or {}).get("nodes") or []:
            run = suite.get("workflowRun")
            if not run:
                continue
            name = str((run.get("workflow") or {}).get("name") or "")
            state = CheckState(name=name, status=str(suite.get("status") or "").lower(),
                               conclusion=str(suite["conclusion"]).lower() if suite.get("conclusion") else None,
                               kind="workflow", url=run.get("url"))
            if name not in latest or int(run["databaseId"]) > latest[name][0]:
                latest[name] = (int(run["databaseId"]), state)
        out: dict[str, CheckState] = {}
        for _, state in latest.values():
            _keep_worst(out, state)
        return out

    def linked_issues(self) -> Sequence[IssueRef]:
        return parse_closing_references(self.body, self.repo)

    def issue_state(self, ref: IssueRef) -> str | None:
        return self._fallback("linked issue state").issue_state(ref)

    def is_team_member(self, team: str, user: str) -> bool:
        return self._fallback("team membership").is_team_member(team, user)

    def user_permission(self, user: str) -> str:
        return self._fallback("user permission").user_permission(user)

    def diff(self) -> str:
        return self._fallback("diff").diff()

    def diff_blobs(self) -> Mapping[str, tuple[str, str]]:
        """Blob ids at the head and the merge base (diff fingerprints): over GraphQL when there is a runner and
        the read has every file with its name, else (or when GraphQL cannot tell the merge base) over REST."""
        if self._blobs is None:
            self._blobs = self._read_blobs()
        return self._blobs

    def _read_blobs(self) -> Mapping[str, tuple[str, str]]:
        files = self._read_files()
        why = "no GraphQL runner" if self._graphql is None else "renamed files or over 100"
        if self._graphql is not None and files is not None:
            # the base tip read with the policy; else the one GitHub last saw for the PR (a guess the
            # comparison confirms or corrects)
            base_tip = str(((self._pr.get("baseRef") or {}).get("target") or {}).get("oid")
                           or self._pr.get("baseRefOid") or "")
            graphql = self._graphql

            def run(document: str, variables: Mapping[str, Any]) -> Mapping[str, Any]:
                self.graphql_reads += 1  # counted when sent, so a query that fails counts too
                return graphql(document, variables)

            try:
                read = read_diff_blobs(run, self._repo, self.base_ref, base_tip, self.head_sha, files)
            except GitHubError as exc:
                why = f"GraphQL failed: {exc}"
            else:
                if read.blobs is not None:
                    return read.blobs
                why = read.why
        return self._fallback(f"blob ids of the changed files ({why})").diff_blobs()

    def codeowners(self) -> tuple[str, str] | None:
        """From the read when it asked for the CODEOWNERS candidates at the base branch's tip; else REST."""
        found = codeowners_file(self._extra)
        if found is False:
            return self._fallback("CODEOWNERS").codeowners()
        return found if isinstance(found, tuple) else None


__all__ = ["GraphQLPullRequestContext"]
