"""``loopforge demo``: the bundled history goes through the Action's route-and-record path with the policy, and
every story the README promises is in the store, the report and the check-run markdown."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from loopforge import LoopState, RecordQuery
from loopforge.cli import main
from loopforge.github.events import parse_event
from loopforge.paths import path_of
from loopforge.report import demo
from loopforge.repository import SQLiteRepository
from loopforge.trail import LoopTransition, Outcome
from tests.report.helpers import DemoRun

S = LoopState


def records(run: DemoRun) -> dict[str, list[LoopTransition]]:
    repo = SQLiteRepository(str(run.db))
    heads = {h.record_id: h for h in repo.query(RecordQuery(limit=1000)).items}
    return {rid: list(repo.entries(rid)) for rid in heads}


def test_demo_writes_the_files(demo_run: DemoRun) -> None:
    assert demo_run.code == 0, demo_run.out
    lines = demo_run.out.splitlines()
    assert re.fullmatch(r"\d+ events of 20 records \(acme/widgets\) recorded into loopforge\.db: \d+ new entries, "
                        r"1 violation", lines[0]), lines[0]
    assert lines[1] == "report of 20 records written to loopforge-report.html"
    assert lines[2].startswith("check-run summary of acme/widgets#") and lines[2].endswith("loopforge-check-run.md")
    assert demo_run.html.stat().st_size > 50_000 and demo_run.check_run.stat().st_size > 1_000


def test_every_story_is_there(demo_run: DemoRun) -> None:
    trails = records(demo_run)
    assert len(trails) == 20
    paths = {rid: path_of(entries) for rid, entries in trails.items()}
    by_title = {}
    for rid, entries in trails.items():
        pr = next((e.metadata["github"]["pr"] for e in entries
                   if isinstance(e.metadata.get("github", {}).get("pr"), dict)), {})
        by_title[pr.get("title")] = rid
    clean = paths[by_title["Add CSV export of widgets"]]
    assert list(clean) == [">issue_created", "issue_created>task_queued", "task_queued>pr_created",
                           "pr_created>ci_pending", "ci_pending>ci_passed", "ci_passed>awaiting_review",
                           "awaiting_review>approved", "approved>merged", "merged>closed"]
    assert "ci_failed>ci_pending" in paths[by_title["Fix rounding in price totals"]]
    assert "awaiting_review>changes_requested" in paths[by_title["Paginate the widget list API"]]
    abandoned = paths[by_title["Switch the cache to Redis"]]
    assert "ci_failed>pr_abandoned" in abandoned and "pr_abandoned>not_planned" in abandoned
    governed = trails[by_title["Open the widget API to the partner VPC"]]
    verdicts = [e.reason for e in governed if e.trigger == "policy.evaluated"]
    assert verdicts[0].startswith("block: high-risk needs governance") and verdicts[-1].startswith("pass")
    assert not any(e.outcome is Outcome.VIOLATION for e in governed)
    bypass = trails[by_title["Raise the database connection limit"]]
    violation = [e for e in bypass if e.outcome is Outcome.VIOLATION]
    assert len(violation) == 1 and violation[0].to_state is S.MERGED
    assert violation[0].rule == "policy:high-risk needs governance"
    total_violations = sum(1 for entries in trails.values() for e in entries
                           if e.outcome is Outcome.VIOLATION)
    assert total_violations == 1


def test_check_run_markdown_shows_the_bypass(demo_run: DemoRun) -> None:
    md = demo_run.check_run.read_text()
    assert md.startswith("### LoopForge: acme/widgets\\#")
    assert "> [!WARNING]" in md and "high\\-risk needs governance" in md
    assert "```mermaid\nflowchart TD" in md and "approved -->|\"1× · 1 violation\"| merged" in md
    header = next(line for line in md.splitlines() if line.startswith("| # |"))
    assert header.endswith("| Outcome | Details | Run |")
    assert re.search(r"\[run \d+\]\(https://github\.com/acme/widgets/actions/runs/\d+/attempts/1\)", md)
    assert len(md.encode()) <= 65535


def test_report_links_every_record(demo_run: DemoRun) -> None:
    html = demo_run.html.read_text()
    ids = set(re.findall(r'<section class="record" id="(r-[0-9a-f]{16})"', html))
    links = set(re.findall(r'<th scope="row" class="id"><a href="#(r-[0-9a-f]{16})">', html))
    assert len(ids) == 20 and links == ids
    assert html.count('<svg role="img"') == 7


def test_demo_twice_records_nothing_new(demo_run: DemoRun, tmp_path: Path) -> None:
    db = tmp_path / "again.db"
    outs = []
    for _ in range(2):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["--db", str(db), "demo", "--html", str(tmp_path / "r.html"),
                         "--check-run", str(tmp_path / "c.md")]) == 0
        outs.append(out.getvalue().splitlines()[0])
    assert ": 0 new entries, 0 violations" in outs[1] and ": 0 new entries" not in outs[0]


def test_payloads_are_real_webhook_shapes_and_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = list(demo.events())
    assert {name for name, _ in events} == {"issues", "pull_request", "pull_request_review", "workflow_run"}
    for name, payload in events:
        parse_event(name, payload)  # every one parses as the Action parses it
        assert payload["repository"]["full_name"] == "acme/widgets" and "sender" in payload
    folder = tmp_path / "events"
    assert main(["--db", str(tmp_path / "d.db"), "demo", "--events-dir", str(folder), "--html",
                 str(tmp_path / "r.html"), "--check-run", str(tmp_path / "c.md")]) == 0
    files = sorted(folder.glob("*.json"))
    assert len(files) == len(events)
    assert json.loads(files[0].read_text())["action"] == "opened"
    capsys.readouterr()
    # the same payloads through `loopforge replay` (no policy there) reach the same states
    assert main(["--db", str(tmp_path / "replayed.db"), "replay", *map(str, files),
                 "--summary", str(tmp_path / "s.md")]) == 0
    demo_heads = {h.record_id: h.state for h in SQLiteRepository(str(tmp_path / "d.db")).query(
        RecordQuery(limit=100)).items}
    replayed = {h.record_id: h.state for h in SQLiteRepository(str(tmp_path / "replayed.db")).query(
        RecordQuery(limit=100)).items}
    assert replayed == demo_heads
