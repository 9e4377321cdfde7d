"""Event → transition, on real payloads (tests/fixtures), without HTTP: routing, derivation, idempotency."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from loopforge import LoopService, LoopState, Outcome
from loopforge.github.events import MalformedEvent, UnsupportedEvent, linked_issues, parse_event
from loopforge.github.lifecycle import desired_state, plan_path
from loopforge.github.lookup import OfflineLookup
from loopforge.github.recorder import RunInfo, route_and_record
from loopforge.repository import MemoryRepository
from tests.paths import lifecycle_delivery, webhook_examples

EXAMPLES = webhook_examples()
S = LoopState


def load(stem: str) -> tuple[str, dict[str, Any]]:
    return lifecycle_delivery(stem)


class Pipeline:
    def __init__(self) -> None:
        self.service = LoopService(repository=MemoryRepository())
        self.lookup = OfflineLookup()
        self.runs = 0

    def send(self, name: str, payload: dict[str, Any], run_id: str | None = None):
        event = parse_event(name, payload)
        self.lookup.remember(event.pull_request)
        self.runs += 1
        recorded = route_and_record(self.service, event, self.lookup, RunInfo(run_id=run_id or str(1000 + self.runs)))
        assert recorded is not None
        return recorded


STEMS = ["01", "02", "03", "04", "05", "06", "07", "08"]
EXPECTED = [S.ISSUE_CREATED, S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED, S.APPROVED, S.MERGED,
            S.CLOSED]


def test_whole_lifecycle_from_real_payloads() -> None:
    p = Pipeline()
    for stem, expected in zip(STEMS, EXPECTED, strict=True):
        result = p.send(*load(stem))
        assert result.outcome == "applied"
        assert result.record is not None and result.record.state is expected, stem
    record = p.service.get("Codertocat/Hello-World#1")
    assert record is not None
    assert [e.to_state for e in record.transitions] == EXPECTED
    assert record.metadata["pr_number"] == 2
    assert p.service.verify(record.record_id).ok


def test_rerunning_every_event_records_nothing_twice() -> None:
    p = Pipeline()
    for i, stem in enumerate(STEMS):
        p.send(*load(stem), run_id=f"77{i}")
    before = p.service.history("Codertocat/Hello-World#1")
    for i, stem in enumerate(STEMS):
        again = p.send(*load(stem), run_id=f"77{i}")
        assert again.outcome == "duplicate" and again.entries == []
    assert p.service.history("Codertocat/Hello-World#1") == before


def test_ci_completing_before_the_pr_opened_event_is_processed() -> None:
    p = Pipeline()
    p.send(*load("01"))
    # the PR is known to the lookup (GitHub would answer GET /pulls/2) but its opened event is late
    _, opened = load("03")
    p.lookup.remember(parse_event("pull_request", opened).pull_request)
    done = p.send(*load("05"))
    assert done.record is not None and done.record.state is S.CI_PASSED
    # derived steps go only through states the facts support
    assert [e.to_state for e in done.entries][-2:] == [S.PR_CREATED, S.CI_PASSED]
    late = p.send("pull_request", opened)
    assert late.record is not None and late.record.state is S.CI_PASSED
    assert late.entries[-1].outcome is Outcome.NOTED
    assert p.service.verify("Codertocat/Hello-World#1").ok


def test_fork_pr_workflow_run_found_by_head_sha() -> None:
    p = Pipeline()
    p.send(*load("01"))
    p.send(*load("03"))
    name, run = load("05")
    run["workflow_run"]["pull_requests"] = []  # fork PRs: GitHub leaves the list empty
    result = p.send(name, run)
    assert result.record is not None and result.record.state is S.CI_PASSED


def test_merge_without_passing_ci_is_a_violation() -> None:
    p = Pipeline()
    p.send(*load("01"))
    p.send(*load("03"))
    p.send(*load("04"))
    merged = p.send(*load("07"))
    assert merged.record is not None and merged.record.state is S.MERGED
    assert [v.rule for v in merged.violations] == ["lifecycle"]
    assert "ci_pending → merged" in (merged.violations[0].reason or "")


def test_pr_without_issue_gets_its_own_record() -> None:
    p = Pipeline()
    _, opened = load("03")
    opened["pull_request"]["body"] = "no keywords here"
    result = p.send("pull_request", opened)
    assert result.record is not None
    assert result.record.record_id == "Codertocat/Hello-World#2" and result.record.state is S.PR_CREATED


def test_ci_failure_then_new_push_retries() -> None:
    p = Pipeline()
    p.send(*load("01"))
    p.send(*load("03"))
    name, failed = load("05")
    failed["workflow_run"]["conclusion"] = "failure"
    assert p.send(name, failed).record.state is S.CI_FAILED
    sync = next(copy.deepcopy(ex) for e in EXAMPLES if e["name"] == "pull_request" for ex in e["examples"]
                if ex["action"] == "synchronize")
    sync["pull_request"]["body"] = "Fixes #1"
    sync["pull_request"]["head"]["sha"] = "b" * 40
    assert p.send("pull_request", sync).record.state is S.CI_PENDING
    ok = copy.deepcopy(failed)
    ok["workflow_run"].update({"conclusion": "success", "head_sha": "b" * 40})
    ok["workflow_run"]["pull_requests"][0]["head"]["sha"] = "b" * 40
    assert p.send(name, ok).record.state is S.CI_PASSED
    stale = copy.deepcopy(failed)  # a late result for the old head does not move the record
    result = p.send(name, stale)
    assert result.record.state is S.CI_PASSED and result.entries[-1].outcome is Outcome.NOTED


def test_shuffled_burst_ends_in_the_same_state_or_records_why() -> None:
    ordered = Pipeline()
    for stem in STEMS[:7]:
        ordered.send(*load(stem))
    final = ordered.service.get("Codertocat/Hello-World#1")
    rng = random.Random(7)
    for _ in range(20):
        p = Pipeline()
        events = [load(stem) for stem in STEMS[:7]]
        p.lookup.remember(parse_event("pull_request", events[2][1]).pull_request)
        rng.shuffle(events)
        for name, payload in events:
            p.send(name, payload)
        record = p.service.get("Codertocat/Hello-World#1")
        assert record is not None and final is not None
        assert record.state is final.state
        assert p.service.verify(record.record_id).ok
        for entry in record.transitions:
            if entry.outcome in (Outcome.REJECTED, Outcome.VIOLATION):
                assert entry.reason


def test_every_real_example_parses_or_is_refused_clearly() -> None:
    counts = {"ok": 0, "unsupported": 0}
    for group in EXAMPLES:
        for ex in group["examples"]:
            try:
                parse_event(group["name"], ex)
                counts["ok"] += 1
            except UnsupportedEvent:
                counts["unsupported"] += 1
    assert counts["ok"] >= 40 and counts["unsupported"] > 200


def test_every_supported_real_example_goes_through_the_pipeline() -> None:
    for group in EXAMPLES:
        for ex in group["examples"]:
            try:
                event = parse_event(group["name"], ex)
            except UnsupportedEvent:
                continue
            p = Pipeline()
            p.lookup.remember(event.pull_request)
            for pr in (ex.get("workflow_run") or ex.get("check_suite") or {}).get("pull_requests", []):
                base = next(e for e in EXAMPLES if e["name"] == "pull_request")["examples"][0]
                fake = copy.deepcopy(base["pull_request"])
                fake["number"] = pr["number"]
                p.lookup.remember(parse_event("pull_request", {**base, "pull_request": fake}).pull_request)
            result = route_and_record(p.service, event, p.lookup, RunInfo(run_id="1"))
            if result is None:
                continue
            assert result.outcome in ("applied", "rejected")
            assert result.route is not None and p.service.verify(result.route.record_id).ok


@pytest.mark.parametrize("payload, message", [
    ({"action": "opened"}, "repository"),
    ({"action": "opened", "repository": {"full_name": "o/r"}, "issue": {"number": "x"}}, "issue.number"),
    ([], "not a JSON object"),
    ({"repository": {"full_name": "o/r"}}, "no 'action'"),
])
def test_malformed_payloads_name_the_field(payload: Any, message: str) -> None:
    with pytest.raises(MalformedEvent, match=message.replace(".", r"\.")):
        parse_event("issues", payload)


def test_closing_keywords() -> None:
    body = "Fixes #12, closes org/other#3. Resolved: #4\nfixed #12 again; prefix#9; Closes  #5; close #x"
    assert linked_issues(body, "a/b") == ["a/b#12", "org/other#3", "a/b#4", "a/b#5"]
    assert linked_issues(None, "a/b") == []
    assert linked_issues("see #3", "a/b") == []


def test_desired_state_and_paths() -> None:
    facts = {"pr": {"number": 1, "head_sha": "a", "state": "open", "ci": {"sha": "a", "status": "passed"},
                    "reviews": {"x": "approved", "y": "changes_requested"}}}
    assert desired_state(facts) is S.CHANGES_REQUESTED
    assert plan_path(S.TASK_QUEUED, S.CI_PASSED, {S.PR_CREATED}) == [S.PR_CREATED, S.CI_PASSED]
    assert plan_path(S.CI_FAILED, S.MERGED, set()) is None  # never invent a CI pass
