"""The Action end to end with ``store: dynamodb`` against the local DynamoDB-compatible server.

The check run still goes to the fake GitHub on 127.0.0.1; the record goes to DynamoDB, configured the standard
way (``AWS_ENDPOINT_URL_DYNAMODB`` and the credentials chain), as OIDC-issued credentials would be in Actions.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from loopforge import LoopService
from loopforge.repository.dynamodb import DynamoDBRepository
from tests.action_harness import run_step
from tests.dynamo_server import DUMMY_AWS_ENV
from tests.fakegithub import FakeGitHub
from tests.paths import LIFECYCLE_FILES as LIFECYCLE

REPO = "Codertocat/Hello-World"


@pytest.fixture
def table(dynamo: str, monkeypatch: pytest.MonkeyPatch) -> DynamoDBRepository:
    for name, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo)
    repo = DynamoDBRepository(table_name=f"loopforge-{uuid.uuid4().hex[:8]}")
    repo.create_table()
    return repo


def test_lifecycle_with_the_dynamodb_store(tmp_path: Path, github: tuple[FakeGitHub, str],
                                           table: DynamoDBRepository, dynamo: str) -> None:
    fake, url = github
    env: dict[str, Any] = {**DUMMY_AWS_ENV, "AWS_ENDPOINT_URL_DYNAMODB": dynamo}
    states = []
    for i, path in enumerate(LIFECYCLE):
        result = run_step(tmp_path / str(i), path.stem.split("-")[1], json.loads(path.read_text()), api_url=url,
                          repo=REPO, run_id=300 + i, inputs={"store": "dynamodb", "dynamodb-table": table.table_name},
                          extra_env=env)
        assert result.code == 0, result.stdout + result.stderr
        states.append(result.outputs["state"])
    assert states == ["issue_created", "task_queued", "pr_created", "ci_pending", "ci_passed", "approved",
                      "merged", "closed"]
    # nothing went to a state branch; everything is in DynamoDB and verifies
    assert fake.branch_sha("loopforge-state") is None
    service = LoopService(repository=table)
    record = service.get("Codertocat/Hello-World#1")
    assert record is not None and record.state.value == "closed" and record.last_sequence == 8
    assert service.verify(record.record_id).ok
    assert len(fake.check_runs(json.loads(LIFECYCLE[2].read_text())["pull_request"]["head"]["sha"])) == 1
    # a re-run of the last workflow run writes nothing
    again = run_step(tmp_path / "again", "issues", json.loads(LIFECYCLE[-1].read_text()), api_url=url, repo=REPO,
                     run_id=307, attempt=2, inputs={"store": "dynamodb", "dynamodb-table": table.table_name},
                     extra_env=env)
    assert again.code == 0 and again.outputs["outcome"] == "duplicate"
    assert table.head(record.record_id).last_sequence == 8  # type: ignore[union-attr]


def test_missing_table_is_one_clear_error(tmp_path: Path, github: tuple[FakeGitHub, str], dynamo: str) -> None:
    _, url = github
    result = run_step(tmp_path, "issues", json.loads(LIFECYCLE[0].read_text()), api_url=url, repo=REPO, run_id=1,
                      inputs={"store": "dynamodb", "dynamodb-table": "no-such-table"},
                      extra_env={**DUMMY_AWS_ENV, "AWS_ENDPOINT_URL_DYNAMODB": dynamo})
    assert result.code == 1
    errors = result.commands("error")
    assert len(errors) == 1 and "no-such-table" in errors[0], result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
