"""Hostile and broken event payloads through the Action: every real example, then deterministic mutations.

Every example payload of npm ``@octokit/webhooks-examples`` (all 58 event types, tests/fixtures/webhooks) runs
through ``loopforge.action.run`` in-process with the runner's environment against a fake GitHub on 127.0.0.1 whose
repository is the payload's (the PRs the CI events point to are seeded). Then mutations of them: every field the
parser reads (and every top-level and second-level field) removed, the fields it reads given wrong types, huge
strings, deep nesting, non-UTF-8, empty, invalid JSON, a JSON array/number/null, a 30 MB file.

The invariant for every run: exit 0 with no ``::error`` (ignored events say so in exactly one ``::notice``) or
exit 1 with exactly one ``::error``; never a traceback (stdout, stderr and logging are captured); the five outputs
always written; every stdout line is one of the Action's own workflow commands or its ``LoopForge:`` line.
A payload that is broken (not a GitHub event, or lacking or mistyping a field LoopForge needs) fails before any
request is made: one ``::error`` naming the problem (the field's path), exit 1, nothing written to the store.
A mutation GitHub would never send but that leaves every field LoopForge reads intact (an unread field removed,
a 5 MB body) is handled like the original. A handful of cases also go through ``entrypoint.py`` (``run_step``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from loopforge.action import run
from loopforge.github.events import SUPPORTED as TRACKED
from loopforge.github.events import MalformedEvent, UnsupportedEvent, parse_event
from tests.action_harness import parse_output_file, run_step
from tests.fakegithub import FakeGitHub
from tests.fakegithub.fixtures import assert_clean
from tests.paths import webhook_examples

GROUPS: list[dict[str, Any]] = webhook_examples()
OUTPUT_NAMES = {"record-id", "state", "previous-state", "outcome", "verdict"}
SUPPORTED = ("issues", "pull_request", "pull_request_review", "workflow_run", "check_suite", "merge_group")
DEFAULT_REPO = "octo-org/octo-repo"
HEAD_SHA = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # the head of PR 2 in the Codertocat examples
#: what the runner parses as a workflow command: ``::name`` (after leading whitespace) or the legacy ``##[name]``
OWN_COMMANDS = re.compile(r"^::(error|warning|notice) title=LoopForge%3A [^:,\r\n]*::[^\r\n]*$")

# ---------------------------------------------------------------------------------------------- the examples


def _closed_issue() -> dict[str, Any]:
    """``issues.closed``: the examples have none; built from ``opened`` (see docs/NOTES)."""
    opened = next(ex for g in GROUPS if g["name"] == "issues" for ex in g["examples"] if ex["action"] == "opened")
    closed = copy.deepcopy(opened)
    closed["action"] = "closed"
    closed["issue"].update({"state": "closed", "state_reason": "completed", "closed_at": "2019-05-15T15:30:00Z"})
    return closed


EXAMPLES: list[tuple[str, str, dict[str, Any]]] = [
    (g["name"], f"{g['name']}-{i}-{ex.get('action', '')}", ex) for g in GROUPS for i, ex in enumerate(g["examples"])
] + [("issues", "issues-built-closed", _closed_issue())]


def _representatives() -> list[tuple[str, dict[str, Any]]]:
    """The first example of every (supported event, action) pair."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for name, _id, ex in EXAMPLES:
        if name in SUPPORTED:
            seen.setdefault((name, str(ex.get("action"))), ex)
    return [(name, ex) for (name, _action), ex in seen.items()]


REPRESENTATIVES = _representatives()
#: the representatives of the actions LoopForge tracks (the others are ignored before any field is read)
TRACKED_REPRESENTATIVES = [(name, ex) for name, ex in REPRESENTATIVES if ex["action"] in TRACKED[name]]
FIRST_OF_EACH_EVENT = {name: ex for name, _id, ex in reversed(EXAMPLES)}  # reversed: the first one wins
FIRST_TRACKED = {name: ex for name, ex in reversed(TRACKED_REPRESENTATIVES)}


def repo_of(payload: object) -> str:
    if isinstance(payload, dict) and isinstance(payload.get("repository"), dict):
        name = payload["repository"].get("full_name")
        if isinstance(name, str) and re.fullmatch(r"[\w.-]+/[\w.-]+", name):
            return name
    return DEFAULT_REPO


# ---------------------------------------------------------------------------------------------- fake GitHubs
def _seed(fake: FakeGitHub) -> None:
    """The pull requests the examples point to, with the head SHAs their payloads carry."""
    if fake.full_name == "Codertocat/Hello-World":
        fake.add_pull(2, HEAD_SHA, base="master", head_ref="changes",
                      user="Codertocat", title="Update the README with new information.")
        # the Codertocat workflow_run example has no pull_requests: its PR is found by head SHA
        fake.add_pull(3, "5779607b49aab1200488439f02372c57b4f75444", base="master", head_ref="ci-run")
    if fake.full_name == "octo-org/octo-repo":
        fake.add_pull(2, "3484a3fb816e0859fd6e1cea078d76385ff50625", base="main", head_ref="feature")
        fake.add_pull(104, "929f8209d40f77f4abc622a499c93a83babdbe64", base="main", head_ref="update-readme")
        fake.known_shas.add("2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d")  # the merge group's head (its check run)


class Fakes:
    """One fake GitHub per repository name the payloads mention, served on 127.0.0.1 while the tests run."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self.by_repo: dict[str, tuple[FakeGitHub, str]] = {}

    def get(self, full_name: str) -> tuple[FakeGitHub, str]:
        if full_name not in self.by_repo:
            owner, name = full_name.split("/")
            fake = FakeGitHub(owner=owner, repo=name, default_branch="main" if owner == "octo-org" else "master")
            _seed(fake)
            self.by_repo[full_name] = (fake, self._stack.enter_context(fake.serve()))
        return self.by_repo[full_name]


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with contextlib.ExitStack() as stack:
        registry = Fakes(stack)
        yield registry
    for fake, _url in registry.by_repo.values():
        assert_clean(fake)


# ---------------------------------------------------------------------------------------------- one run
@dataclass
class Outcome:
    code: int
    stdout: str
    outputs: dict[str, str]
    summary: str
    requests: int  # requests the fake answered during the run
    state_branch: bool  # the run's state branch exists afterwards

    def commands(self, name: str) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith(f"::{name}")]

    def describe(self) -> str:
        return f"exit {self.code}\n{self.stdout[:3000]}"


_RUNS = itertools.count(1)


class Runner:
    def __init__(self, tmp: Path, fakes: Fakes, capfd: pytest.CaptureFixture[str],
                 caplog: pytest.LogCaptureFixture) -> None:
        self.tmp, self.fakes, self.capfd, self.caplog = tmp, fakes, capfd, caplog
        self.count = 0

    def __call__(self, event_name: str, raw: bytes, repo: str) -> Outcome:
        """One in-process run of the Action with the runner's environment (own state branch per run)."""
        self.count = next(_RUNS)  # the fakes live for the module: every run gets its own state branch and run id
        fake, url = self.fakes.get(repo)
        where = self.tmp / f"run{self.count}"
        where.mkdir()
        event_path = where / "event.json"
        event_path.write_bytes(raw)
        output, summary = where / "output", where / "summary"
        output.write_text("")
        summary.write_text("")
        branch = f"state-{self.count}"
        env = {"GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event_path), "GITHUB_OUTPUT": str(output),
               "GITHUB_STEP_SUMMARY": str(summary), "INPUT_GITHUB-TOKEN": "ghs_test_token",
               "GITHUB_API_URL": url, "GITHUB_REPOSITORY": repo, "GITHUB_RUN_ID": str(7000 + self.count),
               "GITHUB_RUN_ATTEMPT": "1", "GITHUB_SERVER_URL": "https://github.com",
               "GITHUB_WORKSPACE": str(where), "INPUT_STATE-BRANCH": branch, "INPUT_STORE": "branch"}
        before = len(fake.requests)
        stream = io.StringIO()
        self.caplog.clear()
        code = run(env, stream=stream)
        captured = self.capfd.readouterr()
        logged = self.caplog.text
        result = Outcome(code, stream.getvalue(), parse_output_file(output.read_text()), summary.read_text(),
                         len(fake.requests) - before, fake.branch_sha(branch) is not None)
        for text in (result.stdout, captured.out, captured.err, logged):
            assert "Traceback" not in text, text[-3000:]
        assert not captured.out.strip() and not captured.err.strip(), (captured.out + captured.err)[-2000:]
        assert not any(r.exc_info for r in self.caplog.records), logged[-2000:]
        self.check_invariant(result)
        return result

    @staticmethod
    def check_invariant(result: Outcome) -> None:
        assert result.code in (0, 1), result.describe()
        assert set(result.outputs) == OUTPUT_NAMES, result.outputs
        for line in result.stdout.splitlines():
            stripped = line.lstrip()
            assert not stripped.startswith("##["), line
            if stripped.startswith("::"):
                assert OWN_COMMANDS.match(line), line[:300]
            else:
                assert line.startswith("LoopForge: "), line[:300]
            assert len(line) < 20_000, line[:300]
        errors = result.commands("error")
        if result.code == 0:
            assert errors == [], result.describe()
            if result.outputs["outcome"] == "ignored":
                assert len(result.commands("notice")) == 1, result.describe()
        else:
            assert len(errors) == 1, result.describe()
        assert len(result.summary.encode()) <= 1024 * 1024


@pytest.fixture
def runner(tmp_path: Path, fakes: Fakes, capfd: pytest.CaptureFixture[str],
           caplog: pytest.LogCaptureFixture) -> Runner:
    caplog.set_level(logging.DEBUG)
    return Runner(tmp_path, fakes, capfd, caplog)


def assert_refused(result: Outcome, *fragments: str) -> None:
    """Broken input: exit 1, one ``::error`` naming the problem, no request made, nothing stored."""
    assert result.code == 1, result.describe()
    (error,) = result.commands("error")
    for fragment in fragments:
        assert fragment in error, f"{fragment!r} not in {error}"
    assert result.requests == 0 and not result.state_branch
    assert result.outputs["outcome"] == "ignored" and result.outputs["record-id"] == ""
    assert "## LoopForge failed" in result.summary


# ---------------------------------------------------------------------------------------------- 1. the examples
def test_the_examples_cover_every_event_type() -> None:
    assert len(GROUPS) == 58
    assert len(EXAMPLES) == 330  # 329 examples + the built issues.closed
    assert {name for name, _ex in REPRESENTATIVES} == set(SUPPORTED)


@pytest.mark.parametrize("name, example", [(n, ex) for n, _i, ex in EXAMPLES], ids=[i for _n, i, _ex in EXAMPLES])
def test_every_real_example(runner: Runner, name: str, example: dict[str, Any]) -> None:
    result = runner(name, json.dumps(example).encode(), repo_of(example))
    # a real payload is recorded or ignored with one notice; exit 1 only for what it says (CI failed: blocked)
    if result.code == 1:
        (error,) = result.commands("error")
        assert error.startswith(("::error title=LoopForge%3A merge blocked::",
                                 "::error title=LoopForge%3A lifecycle violation::")), error
    if result.outputs["outcome"] == "ignored":
        assert result.outputs["record-id"] == "" and not result.state_branch
    else:
        assert result.outputs["outcome"] in ("applied", "rejected"), result.outputs
        assert result.outputs["record-id"] and result.state_branch
        assert result.commands("notice") == []


def test_every_tracked_kind_of_example_is_recorded(runner: Runner) -> None:
    """The seeding works: every supported (event, action) that LoopForge tracks is recorded, not ignored."""
    recorded = set()
    for name, ex in TRACKED_REPRESENTATIVES:
        result = runner(name, json.dumps(ex).encode(), repo_of(ex))
        assert result.outputs["outcome"] != "ignored", (name, ex["action"], result.describe())
        recorded.add(f"{name}.{ex['action']}")
    assert len(recorded) == 21, recorded


# ---------------------------------------------------------------------------------------------- 2. broken files
DEEP = b'{"action": "opened", "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
BROKEN_FILES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "empty file": (b"", ("not valid JSON",)),
    "whitespace only": (b" \n\t ", ("not valid JSON",)),
    "invalid JSON": (b'{"action": "opened", ', ("not valid JSON", "line 1")),
    "trailing garbage": (b'{"action": "opened"} {}', ("not valid JSON",)),
    "truncated": (b'{"action": "opened", "repository": {"full_name": "a/b"', ("not valid JSON",)),
    "non-UTF-8 bytes": (b'{"action": "opened", "x": "\xff\xfe\xc3\x28"}', ("not UTF-8",)),
    "UTF-16": ('{"action": "opened"}'.encode("utf-16"), ("not UTF-8",)),
    "10,000-deep nesting": (DEEP, ("not valid JSON", "nesting")),
    "JSON array": (b"[1, 2, 3]", ("not a JSON object",)),
    "JSON number": (b"42", ("not a JSON object",)),
    "JSON null": (b"null", ("not a JSON object",)),
    "JSON string": (b'"opened"', ("not a JSON object",)),
}


@pytest.mark.parametrize("what", list(BROKEN_FILES))
@pytest.mark.parametrize("event", [*SUPPORTED, "push", "star", "issue_comment"])
def test_broken_file_is_refused_with_one_error(runner: Runner, event: str, what: str) -> None:
    raw, fragments = BROKEN_FILES[what]
    assert_refused(runner(event, raw, DEFAULT_REPO), *fragments)


def test_payload_over_25_mib_is_refused_unread(runner: Runner) -> None:
    example = copy.deepcopy(FIRST_OF_EACH_EVENT["pull_request"])
    example["pull_request"]["body"] = "x" * (30 * 1024 * 1024)
    for event in ("pull_request", "star"):
        assert_refused(runner(event, json.dumps(example).encode(), repo_of(example)), "over 25 MiB")


@pytest.mark.parametrize("event", SUPPORTED)
def test_action_missing_or_not_a_string(runner: Runner, event: str) -> None:
    example = FIRST_OF_EACH_EVENT[event]
    for value in (None, 7, ["opened"], {"name": "opened"}, True):
        mutated = {k: v for k, v in example.items() if k != "action"}
        if value is not None:
            mutated["action"] = value
        assert_refused(runner(event, json.dumps(mutated).encode(), repo_of(example)), f"the {event} payload",
                       "'action'")


def test_unknown_action_of_a_tracked_event_is_ignored(runner: Runner) -> None:
    example = copy.deepcopy(FIRST_OF_EACH_EVENT["pull_request"])
    example["action"] = "::error::teleported"
    result = runner("pull_request", json.dumps(example).encode(), repo_of(example))
    assert result.code == 0 and result.outputs["outcome"] == "ignored" and result.requests == 0
    (notice,) = result.commands("notice")
    assert "::error::teleported" in notice.split("::", 2)[2]  # quoted in the data part, escaped, not obeyed


# ---------------------------------------------------------------------------------------------- 3. mutations
#: every path the parser reads, per event (``0`` is the first item of a list); the required ones are marked
READ: dict[str, dict[str, bool]] = {
    "issues": {"repository": True, "repository.full_name": True, "repository.html_url": False, "sender": False,
               "sender.login": False, "issue": True, "issue.number": True, "issue.title": False,
               "issue.state": False, "issue.state_reason": False, "issue.html_url": False, "issue.user": False,
               "issue.user.login": True, "issue.labels": False, "issue.labels.0.name": True,
               "issue.updated_at": False, "issue.closed_at": False, "issue.pull_request": False, "label": False,
               "label.name": False, "assignee": False, "assignee.login": False},
    "pull_request": {"repository": True, "repository.full_name": True, "sender": False, "sender.login": False,
                     "pull_request": True, "pull_request.number": True, "pull_request.title": False,
                     "pull_request.body": False, "pull_request.state": False, "pull_request.draft": False,
                     "pull_request.merged": False, "pull_request.merged_at": False, "pull_request.merged_by": False,
                     "pull_request.html_url": False, "pull_request.user": False, "pull_request.user.login": True,
                     "pull_request.head": True, "pull_request.head.ref": True, "pull_request.head.sha": True,
                     "pull_request.head.repo": False, "pull_request.head.repo.full_name": True,
                     "pull_request.base": True, "pull_request.base.ref": True, "pull_request.base.sha": True,
                     "pull_request.labels": False, "pull_request.labels.0.name": True,
                     "pull_request.updated_at": False, "label": False, "label.name": False,
                     "requested_reviewer": False, "requested_reviewer.login": False},
    "workflow_run": {"repository": True, "repository.full_name": True, "workflow_run": True,
                     "workflow_run.id": True, "workflow_run.name": False, "workflow_run.head_sha": True,
                     "workflow_run.status": False, "workflow_run.conclusion": False, "workflow_run.event": False,
                     "workflow_run.html_url": False, "workflow_run.run_attempt": False,
                     "workflow_run.pull_requests": False, "workflow_run.pull_requests.0.number": True,
                     "workflow_run.pull_requests.0.head": False, "workflow_run.pull_requests.0.head.sha": False,
                     "workflow_run.updated_at": False},
    "check_suite": {"repository": True, "repository.full_name": True, "check_suite": True, "check_suite.id": True,
                    "check_suite.head_sha": True, "check_suite.status": False, "check_suite.conclusion": False,
                    "check_suite.app": False, "check_suite.app.slug": False, "check_suite.pull_requests": False,
                    "check_suite.pull_requests.0.number": True, "check_suite.updated_at": False},
    "merge_group": {"repository": True, "repository.full_name": True, "merge_group": True,
                    "merge_group.head_sha": True, "merge_group.head_ref": True, "merge_group.base_ref": False},
}
READ["pull_request_review"] = {**{k: v for k, v in READ["pull_request"].items() if not k.startswith(
    ("label", "requested"))}, "review": True, "review.id": False, "review.state": True, "review.user": False,
    "review.user.login": True, "review.commit_id": False, "review.submitted_at": False, "review.html_url": False}

_MISSING = object()


def get_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(obj, list):
            if not obj or not part.isdigit():
                return _MISSING
            obj = obj[int(part)]
        elif isinstance(obj, dict):
            if part not in obj:
                return _MISSING
            obj = obj[part]
        else:
            return _MISSING
    return obj


def with_path(payload: dict[str, Any], path: str, value: Any = _MISSING) -> dict[str, Any]:
    """A copy of ``payload`` with ``path`` set to ``value`` (removed when ``_MISSING``)."""
    out = copy.deepcopy(payload)
    parts = path.split(".")
    parent: Any = out
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    if value is _MISSING:
        if isinstance(parent, list):
            parent.pop(int(last))
        else:
            parent.pop(last)
    elif isinstance(parent, list):
        parent[int(last)] = value
    else:
        parent[last] = value
    return out


def wrong_values(value: Any) -> list[Any]:
    """Values of the wrong JSON type for a field holding ``value``."""
    if isinstance(value, bool):
        return ["maybe", 3, {"x": 1}]
    if isinstance(value, int):
        return ["not a number", 1.5, [1], {"n": 1}, True]
    if isinstance(value, str):
        return [12345, ["a"], {"s": "a"}, True]
    if isinstance(value, list):
        return ["a list?", 7, {"0": {}}]
    if isinstance(value, dict):
        return ["an object?", 7, [value]]
    return [{"unexpected": True}, ["x"]]  # null


CONTENT_ERRORS = ("::error title=LoopForge%3A merge blocked::", "::error title=LoopForge%3A lifecycle violation::")


def _ok_or_refused(result: Outcome, path: str) -> None:
    """A mutation LoopForge can live with is handled, or refused before any request naming ``path``. When it is
    handled, an ``::error`` can only be about what the payload now says (``conclusion`` gone: CI not passed)."""
    if result.code == 1 and result.requests == 0:
        assert_refused(result, "malformed", path)
    elif result.code == 1:
        (error,) = result.commands("error")
        assert error.startswith(CONTENT_ERRORS), (path, result.describe())


def seen_as(name: str, payload: object) -> object:
    """What the Action's parser makes of ``payload``: the event's fields, or the refusal with its message."""
    try:
        return parse_event(name, payload).model_dump()
    except (UnsupportedEvent, MalformedEvent) as exc:
        return f"{type(exc).__name__}: {exc}"


@dataclass
class Tally:
    """Mutations tried, and how many ran through the whole Action. The Action reads the payload only through
    ``parse_event``; a mutation the parser reads exactly like the original (an unread field removed) cannot change
    what the Action does, so only every ``SAMPLE``-th of those runs the whole Action; every other one does."""

    SAMPLE = 40
    tried: int = 0
    run: int = 0
    same: int = 0

    def needs_run(self, name: str, original: object, mutated: object) -> bool:
        self.tried += 1
        if seen_as(name, mutated) == seen_as(name, original):
            self.same += 1
            if self.same % self.SAMPLE:
                return False
        self.run += 1
        return True


def test_every_field_removed(runner: Runner) -> None:
    tally = Tally()
    for name, example in REPRESENTATIVES:
        repo = repo_of(example)
        tracked = example["action"] in TRACKED[name]
        read = {p: req for p, req in READ[name].items() if get_path(example, p) is not _MISSING}
        # every top-level and second-level field, and every nested field the parser reads
        paths = sorted({*example} | {f"{k}.{sub}" for k, v in example.items() if isinstance(v, dict) for sub in v}
                       | set(read))
        for path in paths:
            mutated = with_path(example, path)
            if not tally.needs_run(name, example, mutated):
                continue
            result = runner(name, json.dumps(mutated).encode(), repo)
            if not tracked:  # ignored whatever it holds, unless it is no longer an event at all
                if path == "action":
                    assert_refused(result, "'action'")
                else:
                    assert result.outputs["outcome"] == "ignored" and result.requests == 0, result.describe()
            elif read.get(path, False) or path == "action":
                assert_refused(result, "'action'" if path == "action" else f"malformed at {path}")
            else:
                _ok_or_refused(result, path)
    assert tally.tried > 5000 and tally.run > 600, tally


#: optional objects read only when they are objects with a string where expected (who did it, which label):
#: anything else there is ignored; timestamps also accept epoch seconds
LENIENT = ("sender", "label", "assignee", "requested_reviewer")


def test_every_read_field_with_a_wrong_type(runner: Runner) -> None:
    tally = Tally()
    for name, example in TRACKED_REPRESENTATIVES:
        repo = repo_of(example)
        for path in READ[name]:
            original = get_path(example, path)
            if original is _MISSING:
                continue
            for value in wrong_values(original):
                mutated = with_path(example, path, value)
                if not tally.needs_run(name, example, mutated):
                    continue
                result = runner(name, json.dumps(mutated).encode(), repo)
                if path.split(".")[0] in LENIENT or path.endswith("_at"):
                    _ok_or_refused(result, path)
                else:
                    assert_refused(result, "malformed", path)
    assert tally.tried > 800, tally


@pytest.mark.parametrize("event", SUPPORTED)
def test_identifiers_that_are_not_github_identifiers(runner: Runner, event: str) -> None:
    """SHAs and repository names go into API paths: anything but a real one is refused before any request."""
    example = FIRST_TRACKED[event]
    repo = repo_of(example)
    bad_names = ["Codertocat", "Codertocat/Hello-World/../../../user", "a/b?x=1", "../../x", " a/b", "a/b#1", ""]
    for value in bad_names:
        assert_refused(runner(event, json.dumps(with_path(example, "repository.full_name", value)).encode(), repo),
                       "repository.full_name")
    sha_paths = [p for p in READ[event] if p.endswith(("sha", "head_sha")) and get_path(example, p) is not _MISSING]
    assert sha_paths or event == "issues"
    for path in sha_paths:
        for value in ["", "HEAD", "ec26c3e", "../../../repos/x/y", "g" * 40, HEAD_SHA.upper(), HEAD_SHA + "\n"]:
            assert_refused(runner(event, json.dumps(with_path(example, path, value)).encode(), repo), path)


@pytest.mark.parametrize("event", SUPPORTED)
def test_numbers_and_times_github_cannot_send(runner: Runner, event: str) -> None:
    """A number outside GraphQL's Int or not positive, and a time whose UTC value is outside the range of dates,
    are a malformed payload (one line), not a request GitHub refuses or an internal error."""
    example = FIRST_TRACKED[event]
    repo = repo_of(example)
    numbers = [p for p in READ[event] if p.endswith("number") and get_path(example, p) is not _MISSING]
    times = [p for p in READ[event] if p.endswith("_at") and get_path(example, p) not in (_MISSING, None)]
    assert numbers or event in ("workflow_run", "merge_group"), READ[event]
    for path in numbers:
        for value in [0, -2, 2**31]:
            assert_refused(runner(event, json.dumps(with_path(example, path, value)).encode(), repo), path)
    for path in times:
        for value in ["9999-12-31T23:59:59-12:00", "0001-01-01T00:30:00+01:00"]:
            assert_refused(runner(event, json.dumps(with_path(example, path, value)).encode(), repo), path)


HUGE = 5 * 1024 * 1024


@pytest.mark.parametrize("event, path", [
    ("pull_request", "pull_request.body"), ("pull_request", "pull_request.title"), ("issues", "issue.body"),
    ("issues", "issue.title"), ("pull_request_review", "review.body"), ("workflow_run", "workflow_run.name"),
    ("pull_request", "extra"),
])
def test_huge_strings_are_handled_and_bounded(runner: Runner, event: str, path: str) -> None:
    example = FIRST_TRACKED[event]
    baseline = runner(event, json.dumps(example).encode(), repo_of(example))
    huge = ("Fixes #1 ::error::x <img src=x onerror=alert(1)> " * (HUGE // 50 + 1))[:HUGE]
    result = runner(event, json.dumps(with_path(example, path, huge)).encode(), repo_of(example))
    assert result.code == baseline.code and result.outputs["outcome"] == baseline.outputs["outcome"]
    assert len(result.stdout) < 20_000 and len(result.summary.encode()) < 200_000
    assert "<img" not in result.summary
    fake, _url = runner.fakes.get(repo_of(example))
    for check in fake.runs.values():
        assert len(check.output["summary"].encode()) <= 65_535


def test_moderately_deep_nesting_in_an_unread_field_is_handled(runner: Runner) -> None:
    example = FIRST_OF_EACH_EVENT["pull_request"]
    nested: Any = "leaf"
    for _ in range(300):  # 600 levels: under the JSON parser's limit, far over anything GitHub sends
        nested = {"n": [nested]}
    result = runner("pull_request", json.dumps(with_path(example, "extra", nested)).encode(), repo_of(example))
    assert result.code == 0 and result.outputs["outcome"] != "ignored"


# ---------------------------------------------------------------------------------------------- 4. the real process
@pytest.mark.parametrize("event, raw, fragment", [
    ("pull_request", b"", "not valid JSON"),
    ("issues", b"\xff\xfe\x00", "not UTF-8"),
    ("workflow_run", DEEP, "nesting"),
    ("star", b"null", "not a JSON object"),
    ("pull_request", json.dumps(with_path(FIRST_OF_EACH_EVENT["pull_request"], "pull_request.head.sha", 7)).encode(),
     "pull_request.head.sha"),
    ("pull_request_review", json.dumps(with_path(FIRST_OF_EACH_EVENT["pull_request_review"], "review")).encode(),
     "review: missing"),
], ids=["empty", "non-utf8", "deep", "null", "sha-wrong-type", "review-missing"])
def test_broken_payloads_through_the_entrypoint(tmp_path: Path, event: str, raw: bytes, fragment: str) -> None:
    fake = FakeGitHub(owner="Codertocat", repo="Hello-World", default_branch="master")
    _seed(fake)
    with fake.serve() as url:
        result = run_step(tmp_path, event, None, raw_payload=raw, api_url=url, repo="Codertocat/Hello-World",
                          run_id=991)
    assert result.code == 1, result.stdout + result.stderr
    (error,) = result.commands("error")
    assert fragment in error.replace("%3A", ":"), error
    assert "Traceback" not in result.stdout + result.stderr and not result.stderr.strip()
    assert set(result.outputs) == OUTPUT_NAMES and result.outputs["outcome"] == "ignored"
    assert fake.requests == [] and fake.branch_sha("loopforge-state") is None
    assert_clean(fake)


@pytest.mark.parametrize("event", ["pull_request", "pull_request_review", "merge_group", "deployment_status", "ping"])
def test_real_examples_through_the_entrypoint(tmp_path: Path, event: str) -> None:
    example = FIRST_OF_EACH_EVENT[event]
    repo = repo_of(example)
    owner, name = repo.split("/")
    fake = FakeGitHub(owner=owner, repo=name, default_branch="main" if owner == "octo-org" else "master")
    _seed(fake)
    with fake.serve() as url:
        result = run_step(tmp_path, event, example, api_url=url, repo=repo, run_id=992)
    assert result.code == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr and not result.stderr.strip()
    assert set(result.outputs) == OUTPUT_NAMES
    tracked = event in SUPPORTED
    assert (result.outputs["outcome"] != "ignored") is tracked
    if not tracked:
        assert len(result.commands("notice")) == 1 and fake.requests == []
    assert_clean(fake)
