"""The DynamoDB store: the contract suite in-process (moto) and against a local server (moto_server), plus
multi-process writers, the published example, request counts, limits and setup."""

from __future__ import annotations

import json
import multiprocessing
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta, timezone
from typing import Any

import pytest
import yaml
from botocore.stub import Stubber
from moto import mock_aws

from loopforge import LoopService, LoopState
from loopforge.cli import main as cli_main
from loopforge.errors import ConcurrencyError, StoreError
from loopforge.records import RecordHead, apply_entry, creation_entry
from loopforge.repository import DynamoDBRepository, RecordQuery
from loopforge.repository.base import all_pages
from loopforge.repository.dynamodb import (
    INDEXES,
    MAX_TRANSACTION_ITEMS,
    create_table,
    make_client,
    table_definition,
)
from loopforge.testing import RepositoryContract
from loopforge.trail import LoopTransition, Outcome
from tests.dynamo_server import (
    RequestCounter,
    Serialized,
    note_worker,
    seed_history,
)
from tests.paths import ROOT

S = LoopState


@pytest.fixture
def server_env(aws_env: None, dynamo_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 at the local server the standard way: ``AWS_ENDPOINT_URL_DYNAMODB``."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo_url)
    return dynamo_url


def table_name(prefix: str = "lf") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def server_repo(server_env: str) -> DynamoDBRepository:
    repo = DynamoDBRepository(table_name())
    assert repo.create_table()
    return repo


def new_record(repo: DynamoDBRepository, rid: str = "org/repo#1") -> RecordHead:
    entry = creation_entry(rid, rid, repo="org/repo")
    head = apply_entry(None, entry)
    repo.append(head, [entry])
    return head


def notes(head: RecordHead, n: int, *, keyed: bool = False) -> tuple[RecordHead, list[LoopTransition]]:
    """``n`` consecutive noted entries after ``head`` and the head after them."""
    entries = []
    for i in range(n):
        seq = head.last_sequence + 1
        entry = LoopTransition(record_id=head.record_id, sequence=seq, from_state=head.state, to_state=head.state,
                               trigger="tick", outcome=Outcome.NOTED, evidence={"i": i},
                               idempotency_key=f"k{seq}" if keyed else None, prev_hash=head.last_hash).sealed()
        head = apply_entry(head, entry)
        entries.append(entry)
    return head, entries


# ---------------------------------------------------------------------- the contract, twice
class TestDynamoInProcess(RepositoryContract):
    """moto's in-process mock (``mock_aws``); one shard, so every query reads a single index partition."""

    @pytest.fixture
    def repository(self, aws_env: None) -> Iterator[DynamoDBRepository]:
        with mock_aws():
            repo = DynamoDBRepository("loopforge-test", shards=1,
                                      client=Serialized(make_client()))
            repo.create_table()
            yield repo


class TestDynamoServer(RepositoryContract):
    """A real DynamoDB-compatible HTTP server on 127.0.0.1 (four shards: queries merge index partitions)."""

    @pytest.fixture
    def repository(self, server_repo: DynamoDBRepository) -> DynamoDBRepository:
        return server_repo


# ---------------------------------------------------------------------- configuration
def test_standard_aws_configuration_is_honoured(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_REGION", "eu-west-2")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-1")
    repo = DynamoDBRepository()
    assert repo.table_name == "loopforge"
    assert repo.client.meta.endpoint_url == "http://127.0.0.1:1"
    assert repo.client.meta.region_name == "eu-west-2"
    retries = repo.client.meta.config.retries
    assert retries["mode"] == "standard" and retries["total_max_attempts"] == 10
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    assert DynamoDBRepository().client.meta.config.retries["total_max_attempts"] == 3
    monkeypatch.delenv("AWS_MAX_ATTEMPTS")
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("LOOPFORGE_TABLE", "from-env")
    repo = DynamoDBRepository(region_name="ap-south-1", endpoint_url="http://127.0.0.1:2")
    assert (repo.table_name, repo.client.meta.region_name) == ("from-env", "ap-south-1")
    assert repo.client.meta.endpoint_url == "http://127.0.0.1:2"
    assert DynamoDBRepository().client.meta.region_name == "us-west-1"


def test_importing_loopforge_does_not_need_boto3() -> None:
    code = """
import sys
sys.modules["boto3"] = None
import contextlib, io
import loopforge, loopforge.repository, loopforge.cli, loopforge.repository.factory
with contextlib.redirect_stdout(io.StringIO()):
    assert loopforge.cli.main(["graph"]) == 0
for path in ("loopforge.repository", "loopforge.adapters.dynamodb"):
    try:
        if path == "loopforge.repository":
            from loopforge.repository import DynamoDBRepository
        else:
            import loopforge.adapters.dynamodb
    except ImportError as exc:
        assert "pip install 'loopforge[dynamodb]'" in str(exc), exc
    else:
        raise SystemExit("imported without boto3")
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_the_0_1_0_import_path(server_env: str) -> None:
    from loopforge.adapters.dynamodb import DynamoDBRepository as Legacy

    assert Legacy is DynamoDBRepository


# ---------------------------------------------------------------------- table setup
def test_create_table_is_idempotent_and_sparse(server_env: str) -> None:
    name = table_name()
    repo = DynamoDBRepository(name)
    assert create_table(name) is True
    assert create_table(name) is False
    table = repo.client.describe_table(TableName=name)["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == set(INDEXES)
    new_record(repo)
    # only head items are in the indexes: the entry item lacks every index key
    items = repo.client.query(TableName=name, KeyConditionExpression="pk = :pk",
                              ExpressionAttributeValues={":pk": {"S": "REC#org/repo#1"}})["Items"]
    assert sorted(i["sk"]["S"] for i in items) == ["HEAD", "SEQ#000000000001"]
    for item in items:
        assert (set(INDEXES.values()) - {"violations_shard"} <= set(item)) is (item["sk"]["S"] == "HEAD")
        assert "violations_shard" not in item  # sparse: set only once a violation is recorded


def test_the_documented_table_is_the_created_table() -> None:
    doc = (ROOT / "docs" / "dynamodb.md").read_text()
    [cfn] = re.findall(r"```yaml\n(Resources:.*?)```", doc, re.S)
    props = yaml.safe_load(cfn)["Resources"]["LoopForgeTable"]["Properties"]
    want = table_definition("loopforge")
    for key in ("TableName", "BillingMode", "KeySchema", "GlobalSecondaryIndexes"):
        assert props[key] == want[key], key
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(want["AttributeDefinitions"], key=str)
    [hcl] = re.findall(r"```hcl\n(.*?)```", doc, re.S)
    for attribute in (a["AttributeName"] for a in want["AttributeDefinitions"]):
        assert f'"{attribute}"' in hcl
    for name, key in INDEXES.items():
        assert re.search(rf'"{name}"\s*=\s*"{key}"', hcl), name
    assert '["body", "state", "violations"]' in hcl


def test_create_table_refuses_a_foreign_table(server_env: str) -> None:
    name = table_name("v010")
    repo = DynamoDBRepository(name)
    repo.client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                             AttributeDefinitions=[{"AttributeName": "record_id", "AttributeType": "S"}],
                             KeySchema=[{"AttributeName": "record_id", "KeyType": "HASH"}])
    with pytest.raises(StoreError, match="not a loopforge table"):
        create_table(name)


def test_cli_create_table(server_env: str, dynamo_url: str, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    name = table_name("cli")
    args = ["dynamodb", "create-table", "--table", name, "--region", "us-east-1", "--endpoint-url", dynamo_url]
    assert cli_main(args) == 0
    assert capsys.readouterr().out.startswith("created")
    assert cli_main(args) == 0
    assert capsys.readouterr().out.startswith("exists")


def test_missing_table_is_a_clear_error(server_env: str) -> None:
    repo = DynamoDBRepository(table_name("missing"))
    with pytest.raises(StoreError, match="loopforge dynamodb create-table"):
        repo.head("org/repo#1")


# ---------------------------------------------------------------------- writes
def test_transaction_limit_is_refused_before_writing(server_repo: DynamoDBRepository) -> None:
    head = new_record(server_repo)
    too_many = (MAX_TRANSACTION_ITEMS - 1) // 2 + 1  # keyed entries: two items each, plus the head
    big_head, big = notes(head, too_many, keyed=True)
    with pytest.raises(ValueError, match="at most 100"):
        server_repo.append(big_head, big)
    assert server_repo.head(head.record_id) == head
    ok_head, ok = notes(head, too_many - 1, keyed=True)
    server_repo.append(ok_head, ok)
    assert [e.sequence for e in server_repo.entries(head.record_id)] == list(range(1, too_many + 1))
    unkeyed_head, unkeyed = notes(ok_head, MAX_TRANSACTION_ITEMS - 1)
    server_repo.append(unkeyed_head, unkeyed)
    assert server_repo.head(head.record_id) == unkeyed_head


def test_a_key_is_recorded_once_even_when_appends_race(server_repo: DynamoDBRepository) -> None:
    """Two deliveries of one event that both missed each other's key: the second append conflicts."""
    head = new_record(server_repo)
    h1, [e1] = notes(head, 1, keyed=True)
    server_repo.append(h1, [e1])
    dup = e1.model_copy(update={"sequence": 3, "prev_hash": h1.last_hash}).sealed()
    with pytest.raises(ConcurrencyError):
        server_repo.append(apply_entry(h1, dup), [dup])
    assert server_repo.find_key(head.record_id, e1.idempotency_key or "") == e1
    long_key = "k" * 2000  # longer than a sort key may be: stored by its hash
    _, [e3] = notes(h1, 1)
    e3 = e3.model_copy(update={"idempotency_key": long_key}).sealed()
    server_repo.append(apply_entry(h1, e3), [e3])
    assert server_repo.find_key(head.record_id, long_key) == e3


def test_conflicts_are_concurrency_errors(server_repo: DynamoDBRepository) -> None:
    head = new_record(server_repo)
    a_head, a = notes(head, 2)
    b_head, b = notes(head, 1)
    server_repo.append(a_head, a)
    with pytest.raises(ConcurrencyError, match="ConditionalCheckFailed"):
        server_repo.append(b_head, b)


@pytest.mark.parametrize(("reasons", "raised"), [
    ([{"Code": "None"}, {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}],
     ConcurrencyError),
    ([{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}], ConcurrencyError),
    ([{"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity"}], StoreError),
])
def test_cancelled_transactions(aws_env: None, reasons: list[dict[str, str]], raised: type[Exception]) -> None:
    repo = DynamoDBRepository("t", endpoint_url="http://127.0.0.1:1")
    head = apply_entry(None, creation_entry("org/repo#1", "org/repo#1", repo="org/repo"))
    with Stubber(repo.client) as stub:
        stub.add_client_error("transact_write_items", "TransactionCanceledException",
                              response_meta={}, modeled_fields={"CancellationReasons": reasons})
        stub.add_client_error("get_item", "AccessDeniedException", "User is not authorized to perform GetItem")
        with pytest.raises(raised):
            new_record(repo)
        with pytest.raises(StoreError, match="AccessDeniedException"):
            repo.head(head.record_id)


# ---------------------------------------------------------------------- queries
def test_queries_page_through_shards_with_filters(server_env: str) -> None:
    repo = DynamoDBRepository(table_name(), shards=3)
    repo.create_table()
    service = LoopService(repository=repo)
    for i in range(10):
        service.create(ref=f"org/{'ab'[i % 2]}#{i}", repo=f"org/{'ab'[i % 2]}")
    for i in range(0, 10, 3):
        service.observe(f"org/{'ab'[i % 2]}#{i}", S.MERGED, "pr.merged")  # a violation: not allowed from here
    expect_viol = {f"org/{'ab'[i % 2]}#{i}" for i in range(0, 10, 3)}

    def ids(**kw: Any) -> list[str]:
        seen: list[RecordHead] = []
        query = RecordQuery(limit=2, **kw)
        while True:
            page = repo.query(query)
            assert len(page.items) <= 2
            seen += page.items
            if not page.next_cursor:
                break
            query = query.model_copy(update={"cursor": page.next_cursor})
        times = [h.updated_at for h in seen]
        assert times == sorted(times, reverse=True)
        assert len(seen) == len({h.record_id for h in seen})
        return [h.record_id for h in seen]

    assert len(ids()) == 10
    assert set(ids(violations_only=True)) == expect_viol
    assert set(ids(state=S.MERGED)) == expect_viol
    assert set(ids(repo="org/a", violations_only=True)) == {r for r in expect_viol if r.startswith("org/a")}
    assert set(ids(repo="org/b", state=S.ISSUE_CREATED)) == {f"org/b#{i}" for i in (1, 5, 7)}
    newest = repo.query(RecordQuery(limit=1)).items[0]
    assert ids(since=newest.updated_at) == [newest.record_id]
    assert newest.record_id not in ids(until=newest.updated_at)
    assert len(ids(until=newest.updated_at)) == 9
    elsewhere = newest.updated_at.astimezone(timezone(timedelta(hours=-7)))  # the same instant, another zone
    assert ids(since=elsewhere) == [newest.record_id]
    with pytest.raises(ValueError, match="another query"):
        repo.query(RecordQuery(state=S.MERGED, cursor=repo.query(RecordQuery(limit=1)).next_cursor))
    # a page is never a scan
    counter = RequestCounter(repo.client)
    list(all_pages(repo, RecordQuery(violations_only=True)))
    assert set(counter.counts) == {"Query"}


# ---------------------------------------------------------------------- many processes, one record
def test_eight_processes_append_to_one_record(server_env: str, dynamo_url: str) -> None:
    repo = DynamoDBRepository(table_name())
    repo.create_table()
    service = LoopService(repository=repo)
    record = service.create(ref="org/repo#8", repo="org/repo")
    processes, per_process = 8, 12
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        start_at = time.time() + 5  # after every process has started and imported boto3
        conflicts = pool.starmap(note_worker, [(dynamo_url, repo.table_name, record.record_id, w, per_process,
                                                start_at) for w in range(processes)])
    entries = service.history(record.record_id)
    keys = Counter(e.idempotency_key for e in entries[1:])
    assert len(keys) == processes * per_process  # nothing lost
    assert set(keys.values()) == {1}  # nothing duplicated
    assert [e.sequence for e in entries] == list(range(1, processes * per_process + 2))  # contiguous
    assert service.verify(record.record_id).ok
    assert sum(conflicts) > 0  # they did race


# ---------------------------------------------------------------------- the published example
def test_published_example(server_env: str) -> None:
    name = table_name("loopforge-records")
    create_table(name)
    # --- the README example, verbatim apart from the table name (the endpoint comes from the environment)
    from loopforge import LoopService, LoopState, TransitionError
    from loopforge.repository import DynamoDBRepository

    audit_log = []

    def governance_hook(record, previous_state, new_state, trigger):  # type: ignore[no-untyped-def]
        if new_state == LoopState.MERGED and record.metadata.get("risk_tier") == "high" \
                and not record.metadata.get("governance_approved"):
            raise TransitionError("high-risk changes need governance approval", rule="governance")

    def audit_hook(record, previous_state, new_state, trigger):  # type: ignore[no-untyped-def]
        audit_log.append((record.record_id, previous_state, new_state, trigger))

    repo = DynamoDBRepository(table_name=name)
    service = LoopService(repository=repo, hooks=[governance_hook, audit_hook])

    record = service.create(ref="https://github.com/org/repo/issues/42", repo="org/repo",
                            metadata={"risk_tier": "high"})
    for state, trigger in [(LoopState.TASK_QUEUED, "worker.picked_up"), (LoopState.PR_CREATED, "pr.opened"),
                           (LoopState.CI_PENDING, "ci.started"), (LoopState.CI_PASSED, "ci.completed")]:
        service.transition(record.record_id, state, trigger)
    result = service.transition(record.record_id, LoopState.MERGED, "auto.merged")
    # --- end of the example
    assert not result.success and result.outcome is Outcome.VETOED
    assert record.state is S.CI_PASSED
    vetoed = [t for t in record.transitions if t.outcome is Outcome.VETOED]
    assert len(vetoed) == 1 and vetoed[0].rule == "governance" and "governance approval" in (vetoed[0].reason or "")
    assert [new for _rid, _prev, new, _t in audit_log] == [S.TASK_QUEUED, S.PR_CREATED, S.CI_PENDING, S.CI_PASSED]
    assert service.verify(record.record_id).ok
    approved = service.transition(record.record_id, S.MERGED, "auto.merged", {"governance_approved": True})
    assert approved.success and audit_log[-1][2] is S.MERGED


# ---------------------------------------------------------------------- cost independent of history
def test_requests_do_not_grow_with_history(server_repo: DynamoDBRepository) -> None:
    service = LoopService(repository=server_repo)
    counter = RequestCounter(server_repo.client)

    def cost(record_id: str) -> dict[str, Any]:
        counter.reset()
        assert server_repo.head(record_id) is not None
        read = dict(counter.counts)
        counter.reset()
        service.note(record_id, "tick", idempotency_key=f"{record_id}:cost")
        return {"head": read, "note": dict(counter.counts)}

    short = new_record(server_repo, "org/repo#short")
    long = new_record(server_repo, "org/repo#long")
    head, batch = notes(long, MAX_TRANSACTION_ITEMS - 1)  # the largest append there is
    server_repo.append(head, batch)
    seed_history(server_repo, head, 3000 - head.last_sequence)
    assert cost(short.record_id) == cost(long.record_id) == {
        "head": {"GetItem": 1},
        "note": {"GetItem": 2, "TransactWriteItems": 1},  # key lookup + head read, one transaction
    }
    counter.reset()
    assert len(list(server_repo.entries(long.record_id, after=2990))) == 11
    assert counter.counts == {"Query": 1}
    assert service.verify(long.record_id).ok


def test_cursor_is_opaque_json(server_repo: DynamoDBRepository) -> None:
    for i in range(3):
        new_record(server_repo, f"org/repo#{i}")
    page = server_repo.query(RecordQuery(limit=1))
    assert page.next_cursor and "REC#" not in page.next_cursor
    import base64

    data = json.loads(base64.urlsafe_b64decode(page.next_cursor + "=" * (-len(page.next_cursor) % 4)))
    assert set(data) == {"q", "s"}
