"""``DynamoDBRepository``: a single-table DynamoDB store for organisations at scale (extra ``loopforge[dynamodb]``).

Every record is one partition (``pk = REC#<record_id>``) holding three kinds of items:

* ``sk = SEQ#<000000000042>`` — one item per trail entry (``body`` is the entry's JSON), written with
  ``attribute_not_exists(pk)``: a sequence is written once;
* ``sk = HEAD`` — the record's head (``body`` is its JSON) plus the attributes the query indexes use;
  replaced on every append under the condition ``last_sequence = <the sequence the writer read>``;
* ``sk = KEY#<idempotency key>`` — the sequence of the entry that carried the key, written with
  ``attribute_not_exists(pk)``, so one key is recorded once even when two deliveries race.

An append is ONE ``TransactWriteItems`` of all of these: the entries, their keys and the head commit together
or not at all, and a lost condition (another writer got there first) raises ``ConcurrencyError``. No item grows
with the history, so a record with 100,000 entries is as cheap to append to as a new one, and reading the
current state is one ``GetItem`` of the head.

Queries go through four sparse global secondary indexes that only head items populate (entry and key items
lack their key attributes), all sorted by ``updated_at`` so they read newest first:

* ``by-repo`` (``repo``), ``by-state`` (``state_shard`` = ``<state>#<shard>``),
* ``by-time`` (``time_shard`` = ``ALL#<shard>``: every head, for "changed since"/"changed before"),
* ``by-violations`` (``violations_shard`` = ``VIOL#<shard>``, set only while ``violations > 0``).

``<shard>`` is ``crc32(record_id) % shards``: it spreads the writes of the indexes whose partition key would
otherwise be one value for the whole organisation over ``shards`` partitions; a query reads each shard
newest first and merges them. See docs/dynamodb.md for the trade-off.

Values round-trip exactly because items hold the pydantic JSON of the entry/head (a DynamoDB number would turn
``3.0`` into ``3`` and refuses Python floats); numbers DynamoDB needs to compare are stored as numbers besides.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import zlib
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
        WaiterError,
    )
except ImportError as exc:  # pragma: no cover - exercised in a subprocess by the tests
    raise ImportError(
        "DynamoDBRepository needs boto3, which loopforge installs only with the DynamoDB extra: "
        "pip install 'loopforge[dynamodb]'") from exc

from pydantic import BaseModel, ValidationError

from loopforge.errors import (
    ConcurrencyError,
    LoopForgeError,
    StoreCorrupt,
    StoreError,
    StoreMisconfigured,
    StorePermissionError,
    StoreUnavailable,
)
from loopforge.records import RecordHead
from loopforge.repository.base import Page, RecordQuery, check_append, decode_cursor, encode_cursor
from loopforge.trail import LoopTransition, _utc

_M = TypeVar("_M", bound=BaseModel)

DEFAULT_TABLE = "loopforge"
DEFAULT_SHARDS = 4
#: DynamoDB's limit on the items of one ``TransactWriteItems``.
MAX_TRANSACTION_ITEMS = 100

HEAD_SK = "HEAD"
INDEX_BY_STATE = "by-state"
INDEX_BY_REPO = "by-repo"
INDEX_BY_TIME = "by-time"
INDEX_BY_VIOLATIONS = "by-violations"
#: index name -> its partition-key attribute (every index sorts on ``updated_at``).
INDEXES: dict[str, str] = {
    INDEX_BY_STATE: "state_shard",
    INDEX_BY_REPO: "repo",
    INDEX_BY_TIME: "time_shard",
    INDEX_BY_VIOLATIONS: "violations_shard",
}
#: what the indexes copy besides their keys: what a query returns (``body``) or filters on.
PROJECTED = ["body", "state", "violations"]

_SEQ_DIGITS = 12
_MAX_KEY_BYTES = 512  # longer idempotency keys are stored by their SHA-256 (a sort key holds <= 1,024 bytes)
_SEQ_HIGH = "SEQ#" + "9" * _SEQ_DIGITS


def _pk(record_id: str) -> str:
    return f"REC#{record_id}"


def _seq_sk(sequence: int) -> str:
    if not 0 < sequence < 10 ** _SEQ_DIGITS:
        raise ValueError(f"sequence {sequence} out of range")
    return f"SEQ#{sequence:0{_SEQ_DIGITS}d}"


def _key_sk(idempotency_key: str) -> str:
    if len(idempotency_key.encode("utf-8")) > _MAX_KEY_BYTES:
        return "KEYH#" + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()
    return f"KEY#{idempotency_key}"


def _ts(value: datetime) -> str:
    """Fixed-width UTC timestamps sort as strings like the datetimes they encode (as in the SQLite store)."""
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


#: ``ClientError`` codes (after botocore's retries) → the store error they mean; unknown codes go by HTTP status.
_BY_CODE: dict[str, type[StoreError]] = {
    **dict.fromkeys(("ProvisionedThroughputExceededException", "ThrottlingException", "Throttling",
                     "RequestLimitExceeded", "InternalServerError", "ServiceUnavailable",
                     "TransactionInProgressException", "LimitExceededException"), StoreUnavailable),
    **dict.fromkeys(("AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
                     "ExpiredTokenException", "MissingAuthenticationTokenException",
                     "IncompleteSignatureException"), StorePermissionError),
    "ResourceNotFoundException": StoreMisconfigured,
}
_NO_ANSWER = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError, WaiterError)
_SETTINGS = (NoCredentialsError, PartialCredentialsError, NoRegionError, ProfileNotFound)


def _setting_error(exc: BotoCoreError) -> StoreMisconfigured:
    what = ("an AWS region: pass region_name / --region or set AWS_REGION" if isinstance(exc, NoRegionError)
            else "AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role")
    return StoreMisconfigured(f"DynamoDB needs {what} ({exc})")


def _client_error(exc: ClientError, table: str, what: str) -> StoreError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    kind = _BY_CODE.get(code) or (StoreUnavailable if status >= 500 else StoreError)
    if kind is StoreMisconfigured:
        return kind(f"DynamoDB table {table!r} not found ({message}); create it with "
                    f"`loopforge dynamodb create-table --table {table}`")
    if kind is StorePermissionError:
        return kind(f"DynamoDB refused the request ({code}: {message}); check the role's policy "
                    "(docs/dynamodb.md) and the credentials")
    if code == "ValidationException" and "does not match the schema" in message:
        return StoreMisconfigured(f"DynamoDB rejected the request for {what}: {message} — is this a loopforge 0.2 "
                                  f"table (keys pk/sk)? The 0.1.0 layout is not compatible")
    if kind is StoreUnavailable:
        return kind(f"DynamoDB error ({code or 'HTTP ' + str(status)}) on {what} after botocore's retries: "
                    f"{message}")
    return kind(f"DynamoDB rejected the request for {what} ({code}): {message}")


def translate(exc: BotoCoreError | ClientError, table: str, what: str = "") -> LoopForgeError:
    """A botocore error as the store error it means (callers raise it ``from exc``)."""
    if isinstance(exc, ClientError):
        return _client_error(exc, table, what or repr(table))
    if isinstance(exc, _SETTINGS):
        return _setting_error(exc)
    if isinstance(exc, _NO_ANSWER):
        return StoreUnavailable(f"DynamoDB error: no answer from {table!r} after botocore's retries ({exc})")
    return StoreError(f"DynamoDB error on {what or repr(table)}: {exc}")


def _parse(model: type[_M], text: str, table: str) -> _M:
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise StoreCorrupt(f"DynamoDB table {table!r}: a stored {model.__name__} does not parse "
                           f"({exc.error_count()} problem(s)); run loopforge verify") from exc


def make_client(region_name: str | None = None, endpoint_url: str | None = None,
                config: Config | None = None) -> Any:
    """A DynamoDB client from the standard AWS configuration.

    Credentials come from boto3's chain (env, profile, SSO, web identity/OIDC, instance role). The region is
    ``region_name``, else ``AWS_REGION``, else what botocore finds (``AWS_DEFAULT_REGION``, the profile).
    ``endpoint_url`` is passed only when given, so botocore's own ``AWS_ENDPOINT_URL_DYNAMODB`` /
    ``AWS_ENDPOINT_URL`` / profile ``endpoint_url`` settings apply otherwise. Throttling and transient errors
    are retried by botocore (``standard`` mode, 10 attempts; ``AWS_RETRY_MODE``/``AWS_MAX_ATTEMPTS`` override).
    """
    retries: Any = {"mode": os.environ.get("AWS_RETRY_MODE") or "standard",
                    "total_max_attempts": int(os.environ.get("AWS_MAX_ATTEMPTS") or 10)}
    ours = Config(retries=retries, user_agent_extra="loopforge")
    kwargs: dict[str, Any] = {"config": ours.merge(config) if config is not None else ours}
    region = region_name or os.environ.get("AWS_REGION")
    if region:
        kwargs["region_name"] = region
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    try:
        return boto3.session.Session().client("dynamodb", **kwargs)
    except BotoCoreError as exc:
        raise translate(exc, os.environ.get("LOOPFORGE_TABLE") or DEFAULT_TABLE, "the client") from exc


class DynamoDBRepository:
    """The ``Repository`` protocol on one DynamoDB table (see the module docstring and docs/dynamodb.md).

    ``table_name`` defaults to ``$LOOPFORGE_TABLE`` or ``loopforge``. Pass ``client`` to reuse a configured
    boto3 DynamoDB client. ``shards`` must be the same (or larger) for every reader and writer of a table.
    ``consistent_read`` makes ``head``/``entries``/``find_key`` read their own writes (queries go through
    indexes, which DynamoDB keeps eventually consistent).
    """

    def __init__(self, table_name: str | None = None, region_name: str | None = None, *, client: Any = None,
                 endpoint_url: str | None = None, config: Config | None = None, shards: int = DEFAULT_SHARDS,
                 consistent_read: bool = True) -> None:
        if shards < 1:
            raise ValueError("shards must be >= 1")
        self.table_name = table_name or os.environ.get("LOOPFORGE_TABLE") or DEFAULT_TABLE
        self.client: Any = client if client is not None else make_client(region_name, endpoint_url, config)
        self.shards = shards
        self.consistent_read = consistent_read

    def __repr__(self) -> str:
        return f"DynamoDBRepository(table_name={self.table_name!r}, endpoint={self.client.meta.endpoint_url!r})"

    def create_table(self, *, wait: bool = True) -> bool:
        """Create this store's table if it is missing (see ``create_table``). True if it was created."""
        return create_table(self.table_name, client=self.client, wait=wait)

    # ------------------------------------------------------------------ protocol
    def head(self, record_id: str) -> RecordHead | None:
        item = self.call("get_item", record_id, TableName=self.table_name,
                         Key={"pk": _s(_pk(record_id)), "sk": _s(HEAD_SK)}, ProjectionExpression="body",
                         ConsistentRead=self.consistent_read).get("Item")
        return _parse(RecordHead, item["body"]["S"], self.table_name) if item else None

    def append(self, head: RecordHead, entries: Sequence[LoopTransition]) -> None:
        check_append(entries[0].sequence - 1 if entries else 0, entries)  # non-empty and consecutive
        rid = head.record_id
        if any(e.record_id != rid for e in entries) or head.last_sequence != entries[-1].sequence:
            raise ValueError("the head must be the record's head after the entries")
        pk = _s(_pk(rid))
        first_of_key: dict[str, LoopTransition] = {}
        for e in entries:
            if e.idempotency_key:
                first_of_key.setdefault(_key_sk(e.idempotency_key), e)
        size = len(entries) + len(first_of_key) + 1
        if size > MAX_TRANSACTION_ITEMS:
            raise ValueError(
                f"{rid}: this append needs {size} items in one DynamoDB transaction (entries + idempotency keys + "
                f"head) but a transaction holds at most {MAX_TRANSACTION_ITEMS}: append fewer entries at a time")
        new: dict[str, Any] = {"TableName": self.table_name, "ConditionExpression": "attribute_not_exists(pk)"}
        items: list[dict[str, Any]] = [{"Put": {**new, "Item": self.entry_item(e)}} for e in entries]
        items += [{"Put": {**new, "Item": {"pk": pk, "sk": _s(sk), "seq": _n(e.sequence)}}}
                  for sk, e in first_of_key.items()]
        previous = entries[0].sequence - 1
        head_put: dict[str, Any] = {"TableName": self.table_name, "Item": self.head_item(head)}
        if previous == 0:
            head_put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            head_put["ConditionExpression"] = "last_sequence = :previous"
            head_put["ExpressionAttributeValues"] = {":previous": _n(previous)}
        items.append({"Put": head_put})
        # the token makes a retried request (e.g. after a lost response) succeed instead of failing its
        # conditions, so a timeout never turns into a duplicate entry; each attempt's entries hash differently
        token = hashlib.sha256(f"{self.table_name}\n{rid}\n{entries[-1].hash}".encode()).hexdigest()[:36]
        self.call("transact_write_items", rid, TransactItems=items, ClientRequestToken=token)

    def entries(self, record_id: str, after: int = 0, limit: int | None = None) -> Iterator[LoopTransition]:
        if limit is not None and limit <= 0:
            return
        params: dict[str, Any] = {
            "TableName": self.table_name, "ConsistentRead": self.consistent_read, "ProjectionExpression": "body",
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {":pk": _s(_pk(record_id)), ":low": _s(_seq_sk(max(after, 0) + 1)),
                                          ":high": _s(_SEQ_HIGH)},
        }
        left = limit
        while True:
            if left is not None:
                params["Limit"] = left
            page = self.call("query", record_id, **params)
            for item in page.get("Items", []):
                yield _parse(LoopTransition, item["body"]["S"], self.table_name)
            if left is not None:
                left -= len(page.get("Items", []))
            if "LastEvaluatedKey" not in page or (left is not None and left <= 0):
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def find_key(self, record_id: str, idempotency_key: str) -> LoopTransition | None:
        pk = _s(_pk(record_id))
        item = self.call("get_item", record_id, TableName=self.table_name, ConsistentRead=self.consistent_read,
                         Key={"pk": pk, "sk": _s(_key_sk(idempotency_key))}).get("Item")
        if not item:
            return None
        entry = self.call("get_item", record_id, TableName=self.table_name, ConsistentRead=self.consistent_read,
                          Key={"pk": pk, "sk": _s(_seq_sk(int(item["seq"]["N"])))},
                          ProjectionExpression="body").get("Item")
        if not entry:  # pragma: no cover - the key and its entry are written in one transaction
            return None
        found = _parse(LoopTransition, entry["body"]["S"], self.table_name)
        return found if found.idempotency_key == idempotency_key else None

    def query(self, query: RecordQuery) -> Page:
        """Heads matching ``query``, newest first, through one index (never a scan).

        ``repo`` uses ``by-repo`` (other filters become filter expressions), else ``state`` uses ``by-state``,
        else ``violations_only`` uses ``by-violations``, else ``by-time``; ``since``/``until`` are key
        conditions on ``updated_at`` in every case.
        """
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        filters: list[str] = []
        if query.repo is not None:
            index, partitions = INDEX_BY_REPO, [query.repo]
            if query.state is not None:
                names["#s"] = "state"
                values[":s"] = _s(query.state.value)
                filters.append("#s = :s")
        elif query.state is not None:
            index, partitions = INDEX_BY_STATE, [f"{query.state.value}#{i}" for i in range(self.shards)]
        elif query.violations_only:
            index, partitions = INDEX_BY_VIOLATIONS, [f"VIOL#{i}" for i in range(self.shards)]
        else:
            index, partitions = INDEX_BY_TIME, [f"ALL#{i}" for i in range(self.shards)]
        if query.violations_only and index != INDEX_BY_VIOLATIONS:
            names["#v"] = "violations"
            values[":zero"] = _n(0)
            filters.append("#v > :zero")
        names["#p"] = INDEXES[index]
        condition = "#p = :p"
        if query.since is not None and query.until is not None:
            # ``until`` is exclusive and BETWEEN inclusive; timestamps have microsecond resolution
            low, high = _ts(query.since), _ts(query.until - timedelta(microseconds=1))
            if low > high:
                return Page(items=[])
            condition += " AND #t BETWEEN :low AND :high"
            values.update({":low": _s(low), ":high": _s(high)})
        elif query.since is not None:
            condition += " AND #t >= :low"
            values[":low"] = _s(_ts(query.since))
        elif query.until is not None:
            condition += " AND #t < :high"
            values[":high"] = _s(_ts(query.until))
        if query.since is not None or query.until is not None:
            names["#t"] = "updated_at"

        fingerprint = hashlib.sha256(repr((index, partitions, condition, sorted(values.items()),
                                           filters)).encode()).hexdigest()[:16]
        starts: list[Any] = [None] * len(partitions)  # per partition: None = from the top, dict = after, 0 = done
        if query.cursor:
            cursor: dict[str, Any] = decode_cursor(query.cursor)
            if cursor.get("q") != fingerprint or len(cursor.get("s", [])) != len(partitions):
                raise ValueError("this cursor belongs to another query")
            starts = list(cursor["s"])

        key_attrs = ("pk", "sk", INDEXES[index], "updated_at")
        streams: list[list[tuple[str, int, dict[str, Any]]]] = []
        more: list[Any] = []
        for i, partition in enumerate(partitions):
            if starts[i] == 0:
                streams.append([])
                more.append(0)
                continue
            params: dict[str, Any] = {
                "TableName": self.table_name, "IndexName": index, "ScanIndexForward": False,
                "KeyConditionExpression": condition, "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {**values, ":p": _s(partition)},
            }
            if filters:
                params["FilterExpression"] = " AND ".join(filters)
            items, after = self._collect(params, starts[i], query.limit, key_attrs)
            streams.append([(it["updated_at"]["S"], i, it) for it in items])
            more.append(after)

        merged = list(heapq.merge(*streams, key=lambda t: t[0], reverse=True))
        taken, rest = merged[: query.limit], merged[query.limit:]
        next_starts: list[Any] = list(more)
        last_taken: dict[int, dict[str, Any]] = {i: it for _t, i, it in taken}
        for i in {i for _t, i, _it in rest}:
            # this partition has items the page did not take: continue after the last one it gave (if any)
            next_starts[i] = ({a: last_taken[i][a] for a in key_attrs} if i in last_taken else starts[i])
        heads = [RecordHead.model_validate_json(it["body"]["S"]) for _t, _i, it in taken]
        if all(s == 0 for s in next_starts):
            return Page(items=heads)
        return Page(items=heads, next_cursor=encode_cursor({"q": fingerprint, "s": next_starts}))

    # ------------------------------------------------------------------ items
    def entry_item(self, entry: LoopTransition) -> dict[str, Any]:
        """The item this store writes for a trail entry (low-level attribute-value format)."""
        return {"pk": _s(_pk(entry.record_id)), "sk": _s(_seq_sk(entry.sequence)), "body": _s(entry.model_dump_json())}

    def head_item(self, head: RecordHead) -> dict[str, Any]:
        """The item this store writes for a record's head, with the attributes the indexes use."""
        shard = zlib.crc32(head.record_id.encode("utf-8")) % self.shards
        state = head.state.value
        item: dict[str, Any] = {
            "pk": _s(_pk(head.record_id)), "sk": _s(HEAD_SK), "body": _s(head.model_dump_json()),
            "record_id": _s(head.record_id), "state": _s(state), "updated_at": _s(_ts(head.updated_at)),
            "last_sequence": _n(head.last_sequence), "violations": _n(head.violations),
            "state_shard": _s(f"{state}#{shard}"), "time_shard": _s(f"ALL#{shard}"),
        }
        if head.repo is not None:
            item["repo"] = _s(head.repo)
        if head.violations > 0:
            item["violations_shard"] = _s(f"VIOL#{shard}")
        return item

    # ------------------------------------------------------------------ helpers
    def _collect(self, params: dict[str, Any], start: dict[str, Any] | None, want: int,
                 key_attrs: Sequence[str]) -> tuple[list[dict[str, Any]], Any]:
        """Up to ``want`` matching items of one index partition from ``start``, and where to go on from there
        (an ``ExclusiveStartKey``, or 0 when the partition has nothing more)."""
        out: list[dict[str, Any]] = []
        while True:
            # one more than needed tells whether there is more without an extra request
            kwargs = dict(params, Limit=want - len(out) + 1)
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self.call("query", "", **kwargs)
            for item in page.get("Items", []):
                if len(out) == want:
                    return out, {a: out[-1][a] for a in key_attrs}
                out.append(item)
            start = page.get("LastEvaluatedKey")
            if not start:
                return out, 0
            if len(out) == want:
                return out, start

    def call(self, operation: str, what: str, **kwargs: Any) -> Any:
        """One client call (the records', and the evidence's ``ATT#`` items kept beside them); every botocore
        error leaves as a ``loopforge.errors`` store error: a failed condition is ``ConcurrencyError``; ``what``
        names the record or item."""
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            lost = _lost_condition(exc)
            if lost is not None:
                raise ConcurrencyError(f"{what}: another writer appended first{lost}") from exc
            raise translate(exc, self.table_name, what or repr(self.table_name)) from exc
        except BotoCoreError as exc:
            raise translate(exc, self.table_name, what or repr(self.table_name)) from exc


def _lost_condition(exc: ClientError) -> str | None:
    """`` (reasons)`` when a conditional write lost (another writer was first), else None."""
    error = exc.response.get("Error", {})
    code = error.get("Code", "")
    if code == "ConditionalCheckFailedException":
        return ""
    if code != "TransactionCanceledException":
        return None
    reasons = [str(r.get("Code")) for r in exc.response.get("CancellationReasons", []) or []]
    if not reasons:  # older botocore/servers only put them in the message: "... [None, ConditionalCheckFailed]"
        reasons = [r.strip() for r in str(error.get("Message", "")).rpartition("[")[2].rstrip("]").split(",")]
    if "ConditionalCheckFailed" in reasons or "TransactionConflict" in reasons:
        return f" ({', '.join(reasons)})"
    return None


def table_definition(table_name: str = DEFAULT_TABLE) -> dict[str, Any]:
    """The ``CreateTable`` parameters of a loopforge table (on-demand billing, the four sparse indexes)."""
    attributes = ["pk", "sk", "updated_at", *INDEXES.values()]
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in attributes],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            {"IndexName": name,
             "KeySchema": [{"AttributeName": attr, "KeyType": "HASH"},
                           {"AttributeName": "updated_at", "KeyType": "RANGE"}],
             "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(PROJECTED)}}
            for name, attr in INDEXES.items()],
    }


def create_table(table_name: str | None = None, region_name: str | None = None, *, client: Any = None,
                 endpoint_url: str | None = None, wait: bool = True) -> bool:
    """Create the table if it does not exist and wait until it is ACTIVE. Returns True if this call created it.

    Idempotent: an existing table (``ResourceInUseException``) is waited for and checked to have loopforge's
    key schema and indexes (``StoreError`` if it does not, e.g. a 0.1.0 table).
    """
    name = table_name or os.environ.get("LOOPFORGE_TABLE") or DEFAULT_TABLE
    client = client if client is not None else make_client(region_name, endpoint_url)
    try:
        client.create_table(**table_definition(name))
        created = True
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise translate(exc, name, f"creating table {name!r}") from exc
        created = False
    except BotoCoreError as exc:
        raise translate(exc, name, f"creating table {name!r}") from exc
    try:
        if wait:
            client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 150})
        table = client.describe_table(TableName=name)["Table"] if not created else None
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, name, f"waiting for table {name!r}") from exc
    if table is not None:
        keys = {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]}
        indexes = {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])}
        missing = sorted(set(INDEXES) - indexes)
        if keys != {"pk": "HASH", "sk": "RANGE"} or missing:
            raise StoreMisconfigured(f"DynamoDB table {name!r} exists but is not a loopforge table (keys {keys}, "
                             f"missing indexes {missing}); use another name or see docs/dynamodb.md")
    return created


__all__ = ["DEFAULT_TABLE", "DynamoDBRepository", "create_table", "make_client", "table_definition"]
