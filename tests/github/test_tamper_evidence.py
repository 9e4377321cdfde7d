"""Issue 10 item 3: an edit of the data branch by anyone but LoopForge is caught by the next event of the record,
at no extra request in the normal case (the one read carries who made the record's newest commit)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.floor import RECORD, Floor, events

ENTRY = "records/Codertocat/Hello-World/1/entries/000002.json"


def test_an_edited_entry_is_named_and_the_run_fails(tmp_path: Path) -> None:
    floor = Floor(tmp_path, history=5)
    fake = floor.fake
    lifecycle = events()
    with floor.serving() as url:
        for i in range(3):
            label, name, payload = lifecycle[i]
            assert floor.step(label, name, payload, url).code == 0
            if i == 0:
                floor.pad(5)
        # someone with the workflow token edits entry 2 through the Contents API (GitHub signs that commit)
        text = fake.branch_files("loopforge-state")[ENTRY]
        forged = text.replace('"padding"', '"forged"')
        assert forged != text
        sha = fake.git.lookup(fake.git.commits[fake.branch_sha("loopforge-state") or ""].tree, ENTRY)
        assert sha is not None
        status, _h, _b = fake.handle("PUT", fake.repo_api(f"/contents/{ENTRY}"), {}, json.dumps({
            "message": "fix a typo", "content": base64.b64encode(forged.encode()).decode(), "sha": sha.sha,
            "branch": "loopforge-state"}))
        assert status == 200
        label, name, payload = lifecycle[3]
        result = floor.step(label, name, payload, url)
        again = floor.step(*lifecycle[4], url)  # LoopForge made the last commit, marked: the edit is still seen
    assert result.code == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "audit trail broken" in errors[0] and "entry 2" in errors[0], result.stdout
    assert RECORD.split("/")[0] in errors[0]
    summary = fake.check_runs(floor.head_sha)[0].output["summary"]
    assert "changed outside LoopForge" in summary, summary[:1500]
    entries = [p for p in fake.branch_files("loopforge-state")
               if p.startswith("records/Codertocat/Hello-World/1/entries/")]
    assert len(entries) > 6  # the event was recorded after the edited entry: nothing was rewritten
    assert fake.branch_files("loopforge-state")[ENTRY] == forged  # verify still names it
    assert again.code == 1 and "entry 2" in again.stdout
    assert fake.violations == []


def test_the_normal_case_costs_no_extra_request(tmp_path: Path) -> None:
    floor = Floor(tmp_path, history=5)
    measured = floor.lifecycle()
    assert all("trail" not in m.stdout for m in measured)
    assert not any("GET" in c for m in measured for c in m.calls)  # no verify read anywhere
