"""A local DynamoDB-compatible server for tests and benchmarks: moto's server (pip ``moto[server]``).

``.ci/run`` may start one and export ``LOOPFORGE_TEST_DYNAMODB_URL``; without it, ``local_server()`` starts one on
a free port as a subprocess and stops it afterwards, so nothing skips.

Run it by hand with ``python tests/dynamo_server.py --port 5000``. It is ``moto_server`` serving ONE request at
a time: ``moto_server`` itself is multi-threaded and moto's ``TransactWriteItems`` is not atomic across threads
(it snapshots the whole table, and restores the snapshot on a failed condition, over other threads' writes), so
concurrent writers against it lose and orphan items — an emulator artefact that real DynamoDB does not have.
Serving requests one by one keeps every transaction atomic; the clients still interleave their requests freely.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

URL_ENV = "LOOPFORGE_TEST_DYNAMODB_URL"
DUMMY_AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
#: AWS settings from the developer's environment that must not leak into tests.
CLEARED_AWS_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB",
                   "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                   "LOOPFORGE_TABLE")


def use_local_aws(monkeypatch: Any, url: str) -> None:
    """Point boto3 at the local server ``url`` with dummy credentials, clearing the developer's AWS settings
    (``monkeypatch`` is pytest's fixture, so everything is restored after the test)."""
    for name in CLEARED_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in DUMMY_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except OSError:
        return False


@contextlib.contextmanager
def local_server(log: Path | None = None) -> Iterator[str]:
    """The URL of a running server: ``$LOOPFORGE_TEST_DYNAMODB_URL``, or a ``moto_server`` started here."""
    given = os.environ.get(URL_ENV)
    if given:
        yield given.rstrip("/")
        return
    port = free_port()
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, __file__, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start (exit code {proc.poll()}); is moto[server] installed?")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


class RequestCounter:
    """Counts the HTTP requests a boto3 client sends (retries included), by operation, via botocore's events."""

    def __init__(self, client: Any) -> None:
        self.counts: Counter[str] = Counter()
        self._client = client
        client.meta.events.register("before-send.dynamodb", self._seen)

    def _seen(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        if isinstance(target, bytes):
            target = target.decode()
        self.counts[target.rpartition(".")[2] or "?"] += 1

    def reset(self) -> None:
        self.counts.clear()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def close(self) -> None:
        self._client.meta.events.unregister("before-send.dynamodb", self._seen)


class Serialized:
    """A client proxy making one request at a time: moto's in-process mock is not thread-safe (its
    ``TransactWriteItems`` snapshots and restores whole tables), and the contract runs concurrent writers."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_") or name in ("get_waiter", "get_paginator"):
            return attr

        def call(**kwargs: Any) -> Any:
            with self._lock:
                return attr(**kwargs)

        return call


def seed_history(repo: Any, head: Any, count: int) -> Any:
    """Add ``count`` noted entries to an existing record fast, and return its new head.

    Test data only: it writes the items ``append`` would write, but with ``BatchWriteItem`` (25 a request, no
    transaction), because moto copies the whole table for every item of a ``TransactWriteItems`` and so makes
    building a long history through ``append`` quadratic. Nothing else may write the record meanwhile.
    """
    from loopforge.records import apply_entry
    from loopforge.trail import LoopTransition, Outcome

    items = []
    for i in range(count):
        entry = LoopTransition(record_id=head.record_id, sequence=head.last_sequence + 1, from_state=head.state,
                               to_state=head.state, trigger="seed", outcome=Outcome.NOTED, evidence={"i": i},
                               prev_hash=head.last_hash).sealed()
        head = apply_entry(head, entry)
        items.append(repo.entry_item(entry))
    for start in range(0, len(items), 25):
        pending = {repo.table_name: [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]}
        while pending:
            pending = repo.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    repo.client.put_item(TableName=repo.table_name, Item=repo.head_item(head))
    return head


def note_worker(url: str, table: str, record_id: str, worker: int, count: int, start_at: float) -> int:
    """One process of the multi-process test: ``count`` notes through its own service, each with a unique key,
    starting at ``start_at`` (``time.time()``) so that the processes really write at once."""
    os.environ.update(DUMMY_AWS_ENV)
    from loopforge.repository.dynamodb import DynamoDBRepository
    from loopforge.service import LoopService

    service = LoopService(repository=DynamoDBRepository(table, endpoint_url=url))
    time.sleep(max(0.0, start_at - time.time()))
    for i in range(count):
        result = service.note(record_id, "worker.note", evidence={"worker": worker, "i": i},
                              idempotency_key=f"p{worker}:{i}")
        assert result.success and not result.duplicate
    return service.conflicts


def serve(host: str, port: int) -> None:
    """``moto_server -H host -p port``, one request at a time (see the module docstring)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    run_simple(host, port, DomainDispatcherApplication(create_backend_app), threaded=False)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="moto's DynamoDB-compatible server, one request at a time")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    serve(args.host, args.port)
