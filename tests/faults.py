"""Fault injection over a whole lifecycle: inject one fault at request position N and prove exactly-once.

The lifecycle is the 8 real payloads of ``tests/fixtures/lifecycle`` (issue opened → … → issue closed), run
through the Action as 8 workflow runs (run ids ``RUN_BASE + i``). A scenario is (fault kind, position N): a
fresh fake GitHub on 127.0.0.1 answers request number N of the lifecycle (0-based, counted over all 8 runs,
re-runs included, exactly as ``FakeGitHub.requests`` counts) with the fault instead of the normal answer. After
a step that failed, the driver re-runs the same workflow run (same ``GITHUB_RUN_ID``, ``GITHUB_RUN_ATTEMPT`` + 1)
up to ``max_attempts`` times, as a person clicking "Re-run failed jobs" would. At the end it checks:

* the store holds exactly the 8 expected transitions, once each, in order, each carrying the idempotency key of
  its own workflow run (``gh:<run>:<event>#done``), and no key twice; any other entry must be ``noted`` or
  ``rejected`` with a reason (none is expected here);
* ``LoopService.verify`` (what ``loopforge verify`` runs) reports the hash chain intact;
* after every PR step the check run on the PR head exists exactly once and shows that step's state (so a
  check-run update that failed was repaired by the re-run), and at the end it holds the final state;
* every failed step exited 1 with exactly one ``::error`` line and no traceback; every step that succeeded
  printed no ``::error``.

With ``store="dynamodb"`` the record goes to DynamoDB (the local server of ``tests/dynamo_server.py``) through
``DynamoProxy``, a proxy on 127.0.0.1 that injects the DynamoDB faults (throttling, 5xx, transaction
conflicts, resets, time-outs) at DynamoDB request N; the check runs still go to the fake GitHub.

By default the Action runs in-process (``loopforge.action.run(env, stream=...)``, ~0.1 s a step);
``subprocess=True`` runs ``entrypoint.py`` exactly as the runner does (``tests/action_harness.run_step``).
Both select the test client settings with ``LOOPFORGE_TEST_FAST_RETRY=<client timeout, whole seconds>`` (the retry
policy of ``make_github(for_tests=True)``: no sleeps).
"""

from __future__ import annotations

import contextlib
import copy
import http.client
import io
import json
import os
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loopforge.trail import LoopTransition, Outcome
from tests.action_harness import StepResult, parse_output_file, run_step
from tests.fakegithub import RESET, RESET_AFTER, TIMEOUT, FakeGitHub
from tests.paths import LIFECYCLE_FILES as LIFECYCLE
from tests.paths import lifecycle_delivery

OWNER, NAME = "Codertocat", "Hello-World"
REPO = f"{OWNER}/{NAME}"
RECORD_ID = f"{REPO}#1"
RECORD_DIR = f"records/{OWNER}/{NAME}/1"
STATE_BRANCH = "loopforge-state"
RUN_BASE = 500
#: (to_state, from_state) of the lifecycle's 8 transitions, one per workflow run
EXPECTED = [("issue_created", None), ("task_queued", "issue_created"), ("pr_created", "task_queued"),
            ("ci_pending", "pr_created"), ("ci_passed", "ci_pending"), ("approved", "ci_passed"),
            ("merged", "approved"), ("closed", "merged")]
#: the check run on the PR head after each PR step: (status, conclusion)
CHECKS = {2: ("in_progress", None), 3: ("in_progress", None), 4: ("completed", "success"),
          5: ("completed", "success"), 6: ("completed", "neutral")}
FINAL_CHECK = CHECKS[6]
WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})


def is_write(method: str, path: str) -> bool:
    """A GitHub request that changes something: a REST write, or a GraphQL mutation (a GraphQL query is a POST
    that reads; the fake logs GraphQL requests as ``/graphql/<query|mutation>/<root fields>``)."""
    return method in WRITES and not path.startswith("/graphql/query")

Result = Any  # None | Fault | (status, headers, body)


def event(index: int) -> tuple[str, dict[str, Any]]:
    return lifecycle_delivery(index)


HEAD_SHA: str = event(2)[1]["pull_request"]["head"]["sha"]


# ---------------------------------------------------------------------------------------------- fault kinds
def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    return status, dict(headers or {}), {"message": message, "documentation_url": "https://docs.github.com/rest",
                                         "status": str(status)}


def _unprocessable(method: str, path: str) -> Result:
    """The 422 GitHub gives for each kind of write of a lifecycle; for a GraphQL mutation, the refusal GitHub
    answers with HTTP 200 (a stale ``expectedHeadOid``: the branch moved; a branch created meanwhile)."""
    if path.startswith("/graphql/mutation/createCommitOnBranch"):
        return 200, {}, {"data": {"createCommitOnBranch": None}, "errors": [{
            "type": "STALE_DATA", "path": ["createCommitOnBranch"], "locations": [{"line": 2, "column": 3}],
            "message": f'Expected branch to point to "{"0" * 40}" but it did not.  Pull and try again.'}]}
    if path.startswith("/graphql/mutation/createRef"):
        return 200, {}, {"data": {"createRef": None}, "errors": [{
            "type": "UNPROCESSABLE", "path": ["createRef"], "locations": [{"line": 2, "column": 3}],
            "message": 'A ref named "refs/heads/loopforge-state" already exists in the repository.'}]}
    if "/git/refs" in path:
        return _json_error(422, "Update is not a fast forward" if method == "PATCH" else "Reference already exists")
    if path.endswith("/git/trees"):
        return _json_error(422, "GitRPC::BadObjectState")
    if path.endswith("/git/commits"):
        return _json_error(422, "Tree SHA does not exist")
    return 422, {}, {"message": "Validation Failed", "errors": [{"resource": "CheckRun", "code": "custom",
                                                                 "message": "transient validation failure"}],
                     "documentation_url": "https://docs.github.com/rest"}


@dataclass(frozen=True)
class Kind:
    """A fault kind: ``make(method, path)`` gives what the server answers instead; ``writes_only`` kinds are
    injected only when request N is a write (a 409/422 answers a write, never a read); ``persistent`` kinds
    (an outage) answer every request from N to the end of that workflow run, so retries cannot absorb them and
    the run must fail with one ::error, in bounded time, and its re-run complete."""

    name: str
    make: Callable[[str, str], Result]
    writes_only: bool = False
    persistent: bool = False


SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
GITHUB_KINDS: dict[str, Kind] = {k.name: k for k in [
    Kind("500", lambda m, p: _json_error(500, "Server Error")),
    Kind("502", lambda m, p: (502, {"Content-Type": "text/html"}, "<html><h1>502 Bad Gateway</h1></html>")),
    Kind("503", lambda m, p: _json_error(503, "Service Unavailable")),
    Kind("403-secondary", lambda m, p: _json_error(403, SECONDARY, {"Retry-After": "1"})),
    Kind("429", lambda m, p: _json_error(429, SECONDARY, {"Retry-After": "1"})),
    Kind("409", lambda m, p: _json_error(409, "Conflict"), writes_only=True),
    Kind("422", _unprocessable, writes_only=True),
    Kind("reset", lambda m, p: RESET),
    Kind("reset-after", lambda m, p: RESET_AFTER),
    Kind("timeout", lambda m, p: TIMEOUT),
    Kind("outage-502", lambda m, p: (502, {"Content-Type": "text/html"}, "<html><h1>502 Bad Gateway</h1></html>"),
         persistent=True),
    Kind("outage-reset", lambda m, p: RESET, persistent=True),
]}


def _aws_error(status: int, code: str, message: str, **extra: Any) -> tuple[int, dict[str, str], Any]:
    return status, {"Content-Type": "application/x-amz-json-1.0"}, {
        "__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **extra}


DYNAMO_KINDS: dict[str, Kind] = {k.name: k for k in [
    Kind("throttling", lambda m, t: _aws_error(400, "ThrottlingException",
                                               "Rate of requests exceeds the allowed throughput.")),
    Kind("provisioned-throughput", lambda m, t: _aws_error(
        400, "ProvisionedThroughputExceededException", "The level of configured provisioned throughput for the "
                                                       "table was exceeded.")),
    Kind("500", lambda m, t: _aws_error(500, "InternalServerError", "Internal server error")),
    Kind("503", lambda m, t: _aws_error(503, "ServiceUnavailable", "Service Unavailable")),
    Kind("transaction-conflict", lambda m, t: _aws_error(
        400, "TransactionCanceledException", "Transaction cancelled, please refer cancellation reasons for "
                                             "specific reasons [None, TransactionConflict]",
        CancellationReasons=[{"Code": "None"}, {"Code": "TransactionConflict",
                                                "Message": "Transaction is ongoing for the item"}]),
         writes_only=True),
    Kind("reset", lambda m, t: RESET),
    Kind("reset-after", lambda m, t: RESET_AFTER),
    Kind("timeout", lambda m, t: TIMEOUT),
    Kind("outage-500", lambda m, t: _aws_error(500, "InternalServerError", "Internal server error"),
         persistent=True),
]}
DYNAMO_WRITES = frozenset({"TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"})


# ---------------------------------------------------------------------------------------------- results
@dataclass
class Step:
    index: int
    attempt: int
    code: int
    errors: list[str]
    traceback: bool
    state: str
    outcome: str


@dataclass
class Scenario:
    kind: str
    position: int
    target: str = ""  # the request the fault answered ("POST /repos/.../git/trees"), "" if it never fired
    injected: int = 0  # requests answered with the fault (more than 1 for an outage)
    runs: int = 0
    failed_runs: int = 0
    lost: int = 0
    duplicated: int = 0
    problems: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    seconds: float = 0.0
    resumed: int = 0  # steps taken from the baseline's snapshot instead of being run again (``resume``)

    @property
    def fired(self) -> bool:
        return bool(self.target)

    @property
    def verdict(self) -> str:
        """``completed`` (every step succeeded, retries absorbed the fault), ``repaired`` (a step failed with
        one ::error and its re-run completed it), ``not-fired`` or ``BROKEN``."""
        if self.problems or self.lost or self.duplicated:
            return "BROKEN"
        if not self.fired:
            return "not-fired"
        return "repaired" if self.failed_runs else "completed"

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("steps")
        out["verdict"] = self.verdict
        return out


# ---------------------------------------------------------------------------------------------- DynamoDB proxy
class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, proxy: DynamoProxy) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.proxy = proxy
        self.stopping = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that reset its connection is not a crash of the proxy (socketserver would print it to the
        stderr the in-process run captures)."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        target = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
        fault = proxy.decide(target)
        if fault is RESET or fault is TIMEOUT:
            if fault is TIMEOUT:
                self.server.stopping.wait(proxy.hang_seconds)
            self._reset()
            return
        if isinstance(fault, tuple):
            status, headers, payload = fault
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        else:
            status, headers, data = proxy.forward(self.command, self.path, dict(self.headers.items()), body)
            if fault is RESET_AFTER:
                self._reset()
                return
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_DELETE = do_POST

    def _reset(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().finish()


class DynamoProxy:
    """An HTTP proxy on 127.0.0.1 in front of the DynamoDB server that counts requests (``calls``: the
    ``X-Amz-Target`` operation of each) and answers request ``position`` with ``kind``'s fault."""

    def __init__(self, upstream: str, hang_seconds: float = 2.0) -> None:
        self.upstream = urlsplit(upstream)
        self.hang_seconds = hang_seconds
        self.calls: list[str] = []
        self.kind: Kind | None = None
        self.position = -1
        self.fired: str = ""
        self.injected = 0
        self.outage = True
        self._lock = threading.Lock()
        self._server = _ProxyServer(self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="dynamo-proxy", daemon=True)
        self._thread.start()

    def arm(self, kind: Kind | None, position: int) -> None:
        with self._lock:
            self.kind, self.position, self.fired, self.injected, self.outage = kind, position, "", 0, True
            self.calls = []

    def end_outage(self) -> None:
        with self._lock:
            self.outage = self.outage and not self.fired

    def decide(self, target: str) -> Result:
        with self._lock:
            index = len(self.calls)
            self.calls.append(target)
            kind = self.kind
            if kind is None or index < self.position or (index > self.position and not kind.persistent):
                return None
            if not self.outage or (kind.writes_only and target not in DYNAMO_WRITES):
                return None
            self.fired = self.fired or f"{target} #{index}"
            self.injected += 1
            return kind.make("POST", target)

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes
                ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.upstream.hostname or "127.0.0.1", self.upstream.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers={k: v for k, v in headers.items()
                                                           if k.lower() not in ("connection", "host")})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def close(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# ---------------------------------------------------------------------------------------------- the driver
@contextlib.contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def fast_dynamo_clients(timeout: float, backoff_scale: float) -> Iterator[None]:
    """In-process only, for the DynamoDB sweep. DynamoDB clients made by ``loopforge.repository.dynamodb.
    make_client`` (its own retry configuration: standard mode, 10 attempts) get:

    * connect and read timeouts of ``timeout`` seconds (botocore's default read timeout is 60 s and no
      environment variable sets it), so a TIMEOUT fault is a real client-side read timeout that botocore retries;
    * botocore's backoff between retries multiplied by ``backoff_scale`` (the same attempts, compressed in time:
      an outage otherwise costs up to a minute of backoff per run);
    * one shared botocore session, so building the client of each Action run does not reload the service
      model from disk (0.1 s instead of 0.3 s a run).
    """
    import types

    import boto3
    import botocore.session
    from botocore.config import Config
    from botocore.retries import standard

    from loopforge.repository import dynamodb

    original_make, original_boto3 = dynamodb.make_client, getattr(dynamodb, "boto3")  # noqa: B009
    original_delay = standard.ExponentialBackoff.delay_amount
    shared = botocore.session.get_session()

    def make_client(region_name: str | None = None, endpoint_url: str | None = None, config: Any = None) -> Any:
        short = Config(connect_timeout=timeout, read_timeout=timeout)
        return original_make(region_name, endpoint_url, short.merge(config) if config is not None else short)

    def delay_amount(self: Any, context: Any) -> float:
        return float(original_delay(self, context)) * backoff_scale

    dynamodb.make_client = make_client
    setattr(dynamodb, "boto3", types.SimpleNamespace(  # noqa: B010
        session=types.SimpleNamespace(Session=lambda: boto3.session.Session(botocore_session=shared))))
    standard.ExponentialBackoff.delay_amount = delay_amount  # type: ignore[method-assign]
    try:
        yield
    finally:
        dynamodb.make_client = original_make
        setattr(dynamodb, "boto3", original_boto3)  # noqa: B010
        standard.ExponentialBackoff.delay_amount = original_delay  # type: ignore[method-assign]


class LifecycleDriver:
    """Runs the lifecycle with one injected fault per scenario (see the module docstring).

    ``workdir``: where event payloads and file commands go. ``store``: ``branch`` or ``dynamodb`` (then
    ``dynamo_url`` is the DynamoDB server; faults go to DynamoDB requests). ``client_timeout``: the GitHub
    client timeout the Action gets through ``LOOPFORGE_TEST_FAST_RETRY``; ``hang_seconds``: how long a TIMEOUT
    fault holds the connection (longer than the timeout, so the client really times out). ``resume`` (branch
    store only): start each scenario at the step holding the fault, on a copy of the fake GitHub as the
    fault-free baseline left it after the previous step (about twice as fast; those steps count as runs).
    ``aws_backoff_scale``: botocore's retry backoff is compressed by this factor in-process (see
    ``fast_dynamo_clients``; the subprocess mode keeps botocore's real backoff).
    """

    def __init__(self, workdir: Path, *, store: str = "branch", dynamo_url: str | None = None,
                 subprocess: bool = False, client_timeout: int = 1, hang_seconds: float = 2.0,
                 max_attempts: int = 3, resume: bool = False, aws_backoff_scale: float = 0.02) -> None:
        if store not in ("branch", "dynamodb"):
            raise ValueError(store)
        if store == "dynamodb" and not dynamo_url:
            raise ValueError("the dynamodb store needs dynamo_url")
        self.workdir = workdir
        self.store = store
        self.subprocess = subprocess
        self.client_timeout = client_timeout
        self.hang_seconds = hang_seconds
        self.max_attempts = max_attempts
        self.proxy = DynamoProxy(dynamo_url, hang_seconds=hang_seconds) if dynamo_url and store == "dynamodb" \
            else None
        self._counter = 0
        self.baseline_calls: list[tuple[str, str]] = []  # (method, path) or ("POST", DynamoDB operation)
        self._last_calls: list[tuple[str, str]] = []
        self.resume = resume
        self.aws_backoff_scale = aws_backoff_scale
        self._outage = True  # a persistent kind still answers with its fault
        self._starts: dict[int, int] = {}  # step -> index of its first request in the baseline
        self._snapshots: dict[int, FakeGitHub] = {}  # step -> the fake GitHub after it (baseline, resume only)

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.close()

    def __enter__(self) -> LifecycleDriver:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def kinds(self) -> dict[str, Kind]:
        return DYNAMO_KINDS if self.store == "dynamodb" else GITHUB_KINDS

    # ------------------------------------------------------------------ positions
    def baseline(self) -> list[tuple[str, str]]:
        """Run the lifecycle without faults; the requests it makes are the positions to sweep.

        The first lifecycle of a process builds the fake's GraphQL schema and validates each document once
        (cached per process): on a loaded machine that can exceed the 1 s client time-out and add a retried
        request, so a cold process first runs one lifecycle per store it does not count."""
        if self.store not in _WARM:
            self._run(None, -1)
            _WARM.add(self.store)
        scenario, _fake = self._run(None, -1)
        if scenario.verdict != "not-fired":
            raise AssertionError(f"the fault-free lifecycle is broken: {scenario.problems}")
        self.baseline_calls = list(self._last_calls)
        return self.baseline_calls

    def positions(self, kind: str, every: int = 1, offset: int = 0) -> list[int]:
        """The request positions where ``kind`` applies (every ``every``-th of them, from ``offset``)."""
        if not self.baseline_calls:
            self.baseline()
        spec = self.kinds[kind]
        usable = [i for i, (method, path) in enumerate(self.baseline_calls)
                  if not spec.writes_only or (path in DYNAMO_WRITES if self.store == "dynamodb"
                                              else is_write(method, path))]
        return usable[offset::every]

    # ------------------------------------------------------------------ one scenario
    def run(self, kind: str, position: int) -> Scenario:
        scenario, _fake = self._run(self.kinds[kind], position)
        return scenario

    def _new_fake(self) -> FakeGitHub:
        fake = FakeGitHub(owner=OWNER, repo=NAME, default_branch="master")
        pr = event(2)[1]["pull_request"]
        fake.add_pull(2, pr["head"]["sha"], base="master", body=pr["body"], title=pr["title"], user=OWNER)
        fake.hang_seconds = self.hang_seconds
        return fake

    def _run(self, kind: Kind | None, position: int) -> tuple[Scenario, FakeGitHub]:
        started = time.monotonic()
        self._counter += 1
        scenario = Scenario(kind.name if kind else "none", position)
        first = 0
        if kind is None:
            fake = self._new_fake()
        else:
            first, fake = self._resume_point(position)
        scenario.runs = scenario.resumed = first
        self._outage = True
        table = ""
        if self.proxy is not None:
            table = self._new_table()
            self.proxy.arm(kind, position)
        elif kind is not None:
            def injector(index: int, method: str, path: str) -> Result:
                if index < position or (index > position and not kind.persistent) or not self._outage:
                    return None
                if kind.writes_only and method not in WRITES:
                    return None
                scenario.target = scenario.target or f"{method} {path}"
                scenario.injected += 1
                return kind.make(method, path)

            fake.inject(injector)
        try:
            with fake.serve() as url, self._dynamo_env():
                for i in range(first, len(LIFECYCLE)):
                    if kind is None:
                        self._starts[i] = len(fake.requests)
                    self._step(scenario, fake, url, i, table)
                    if kind is None and self.resume and self.proxy is None:
                        self._snapshots[i] = _clone(fake)
                self._last_calls = [(c.method, c.path) for c in fake.requests]
                fake.clear_faults()
                if self.proxy is not None:
                    scenario.target, scenario.injected = self.proxy.fired, self.proxy.injected
                    self._last_calls = [("POST", target) for target in self.proxy.calls]
                    self.proxy.arm(None, -1)
                self._check_store(scenario, fake, url, table)
        finally:
            if table:
                self._drop_table(table)
        problems = fake.violations + fake.errors
        scenario.problems += [f"fake GitHub: {p[:300]}" for p in problems]
        scenario.seconds = round(time.monotonic() - started, 3)
        return scenario, fake

    def _resume_point(self, position: int) -> tuple[int, FakeGitHub]:
        """Where a scenario starts: with ``resume``, at the step holding request ``position``, on a copy of the
        fake GitHub as the fault-free baseline left it after the step before (the steps before the fault are
        deterministic, so running them again would only repeat the baseline); otherwise at step 0."""
        if not self.resume or self.proxy is not None or not self._snapshots:
            return 0, self._new_fake()
        step = max((i for i, start in self._starts.items() if start <= position), default=0)
        if step == 0:
            return 0, self._new_fake()
        return step, _clone(self._snapshots[step - 1])

    def _drop_table(self, table: str) -> None:
        with contextlib.suppress(Exception):
            self._dynamo_repo(table).client.delete_table(TableName=table)

    def _new_table(self) -> str:
        from loopforge.repository.dynamodb import DynamoDBRepository
        from tests.dynamo_server import DUMMY_AWS_ENV

        assert self.proxy is not None
        name = f"faults-{os.getpid()}-{self._counter}"
        with _environ(DUMMY_AWS_ENV):
            DynamoDBRepository(table_name=name, endpoint_url=self.proxy.upstream.geturl()).create_table()
        return name

    @contextlib.contextmanager
    def _dynamo_env(self) -> Iterator[None]:
        if self.proxy is None or self.subprocess:
            yield
            return
        from tests.dynamo_server import CLEARED_AWS_ENV, DUMMY_AWS_ENV

        saved = {k: os.environ.pop(k) for k in CLEARED_AWS_ENV if k in os.environ}
        try:
            with _environ({**DUMMY_AWS_ENV, "AWS_ENDPOINT_URL_DYNAMODB": self.proxy.url}), \
                    fast_dynamo_clients(self.client_timeout, self.aws_backoff_scale):
                yield
        finally:
            os.environ.update(saved)

    # ------------------------------------------------------------------ one workflow run (and its re-runs)
    def _step(self, scenario: Scenario, fake: FakeGitHub, url: str, i: int, table: str) -> None:
        expected_state = EXPECTED[i][0]
        for attempt in range(1, self.max_attempts + 1):
            result = self._invoke(url, i, attempt, table)
            scenario.runs += 1
            self._end_outage(scenario)
            text = result.stdout + result.stderr
            errors = result.commands("error")
            crashed = "Traceback" in text or result.code not in (0, 1)
            step = Step(i, attempt, result.code, errors, crashed, result.outputs.get("state", ""),
                        result.outputs.get("outcome", ""))
            scenario.steps.append(step)
            where = f"run {RUN_BASE + i} attempt {attempt}"
            if crashed:
                scenario.problems.append(f"{where}: traceback or crash (exit {result.code}): {text[-1500:]}")
            if result.code == 0:
                if errors:
                    scenario.problems.append(f"{where}: succeeded but printed ::error: {errors}")
                if step.state != expected_state or step.outcome not in ("applied", "duplicate"):
                    scenario.problems.append(f"{where}: outputs state={step.state} outcome={step.outcome}, "
                                             f"expected {expected_state}")
                self._check_check_run(scenario, fake, i, where)
                return
            scenario.failed_runs += 1
            if len(errors) != 1:
                scenario.problems.append(f"{where}: failed with {len(errors)} ::error lines (want 1): "
                                         f"{errors or text[-800:]}")
        scenario.problems.append(f"run {RUN_BASE + i}: still failing after {self.max_attempts} attempts")

    def _end_outage(self, scenario: Scenario) -> None:
        """An outage lasts until the end of the workflow run in which it began."""
        if self.proxy is not None:
            self.proxy.end_outage()
        elif scenario.target:
            self._outage = False

    def _env(self, url: str, i: int, attempt: int, table: str) -> tuple[dict[str, str], dict[str, str]]:
        inputs = {"store": self.store}
        extra = {"LOOPFORGE_TEST_FAST_RETRY": str(self.client_timeout)}
        if table:
            inputs["dynamodb-table"] = table
            if self.subprocess:
                from tests.dynamo_server import DUMMY_AWS_ENV

                assert self.proxy is not None
                extra.update({**DUMMY_AWS_ENV, "AWS_ENDPOINT_URL_DYNAMODB": self.proxy.url})
        return inputs, extra

    def _invoke(self, url: str, i: int, attempt: int, table: str) -> StepResult:
        name, payload = event(i)
        tmp = self.workdir / f"s{self._counter}" / f"run{RUN_BASE + i}-{attempt}"
        inputs, extra = self._env(url, i, attempt, table)
        if self.subprocess:
            return run_step(tmp, name, payload, api_url=url, repo=REPO, run_id=RUN_BASE + i, attempt=attempt,
                            inputs=inputs, extra_env=extra)
        return run_in_process(tmp, name, payload, api_url=url, run_id=RUN_BASE + i, attempt=attempt,
                              inputs=inputs, extra_env=extra)

    # ------------------------------------------------------------------ checks
    def _check_check_run(self, scenario: Scenario, fake: FakeGitHub, i: int, where: str) -> None:
        if i not in CHECKS:
            return
        runs = fake.check_runs(HEAD_SHA)
        if len(runs) != 1:
            scenario.problems.append(f"{where}: {len(runs)} check runs on the PR head (want exactly 1)")
            if len(runs) > 1:
                scenario.duplicated += len(runs) - 1
            return
        run = runs[0]
        state = EXPECTED[i][0]
        if (run.status, run.conclusion) != CHECKS[i] or f"`{state}`" not in str(run.output.get("summary", "")):
            scenario.problems.append(f"{where}: check run is {run.status}/{run.conclusion} without `{state}` "
                                     f"(want {CHECKS[i]})")

    def _stored_entries(self, fake: FakeGitHub, table: str) -> list[LoopTransition]:
        if table:
            return list(self._dynamo_repo(table).entries(RECORD_ID))
        files = fake.branch_files(STATE_BRANCH)
        paths = sorted(p for p in files if p.startswith(f"{RECORD_DIR}/entries/"))
        return [LoopTransition.model_validate_json(files[p]) for p in paths]

    def _dynamo_repo(self, table: str) -> Any:
        from loopforge.repository.dynamodb import DynamoDBRepository
        from tests.dynamo_server import DUMMY_AWS_ENV

        assert self.proxy is not None
        with _environ(DUMMY_AWS_ENV):
            return DynamoDBRepository(table_name=table, endpoint_url=self.proxy.upstream.geturl())

    def _check_store(self, scenario: Scenario, fake: FakeGitHub, url: str, table: str) -> None:
        from loopforge.github.client import make_github
        from loopforge.repository.branch import BranchRepository, key_file
        from loopforge.service import LoopService

        entries = self._stored_entries(fake, table)
        if [e.sequence for e in entries] != list(range(1, len(entries) + 1)):
            scenario.problems.append(f"sequences are not 1..n: {[e.sequence for e in entries]}")
        for n, (state, previous) in enumerate(EXPECTED):
            key = f"gh:{RUN_BASE + n}:{event_kind(n)}#done"
            found = [e for e in entries if e.outcome in (Outcome.APPLIED, Outcome.VIOLATION)
                     and e.to_state.value == state and (e.from_state.value if e.from_state else None) == previous]
            if not found:
                scenario.lost += 1
                scenario.problems.append(f"lost: {previous} → {state}")
            elif len(found) > 1:
                scenario.duplicated += len(found) - 1
                scenario.problems.append(f"duplicated: {previous} → {state} ×{len(found)}")
            elif found[0].idempotency_key != key or found[0].outcome is not Outcome.APPLIED:
                scenario.problems.append(f"{previous} → {state}: key {found[0].idempotency_key}, outcome "
                                         f"{found[0].outcome.value} (want {key}, applied)")
        applied = [(e.from_state, e.to_state) for e in entries if e.outcome is Outcome.APPLIED]
        want = [(EXPECTED[n][1], EXPECTED[n][0]) for n in range(len(EXPECTED))]
        if [(f.value if f else None, t.value) for f, t in applied] != want:
            scenario.problems.append(f"applied transitions out of order: {applied}")
        keys = [e.idempotency_key for e in entries if e.idempotency_key]
        if len(keys) != len(set(keys)):
            scenario.duplicated += len(keys) - len(set(keys))
            scenario.problems.append("an idempotency key was recorded twice")
        for e in entries:
            if e.outcome in (Outcome.NOTED, Outcome.REJECTED):
                if not e.reason:
                    scenario.problems.append(f"entry {e.sequence} ({e.outcome.value}) has no reason")
            elif e.outcome is not Outcome.APPLIED:
                scenario.problems.append(f"entry {e.sequence}: unexpected outcome {e.outcome.value}")
        if not table:
            files = fake.branch_files(STATE_BRANCH)
            for e in entries:  # every key file is the entry it names
                if e.idempotency_key and files.get(f"{RECORD_DIR}/keys/{key_file(e.idempotency_key)}") != \
                        files.get(f"{RECORD_DIR}/entries/{e.sequence:06d}.json"):
                    scenario.problems.append(f"key file of entry {e.sequence} does not match it")
        # the hash chain, read back through the store as `loopforge verify` does
        repo: Any = self._dynamo_repo(table) if table else BranchRepository(
            (make_github("t", url, for_tests=True), REPO), branch=STATE_BRANCH)
        try:
            report = LoopService(repository=repo).verify(RECORD_ID)
        except Exception as exc:  # reported, not raised: the sweep goes on
            scenario.problems.append(f"verify failed: {type(exc).__name__}: {exc}")
        else:
            if not report.ok:
                scenario.problems.append(f"hash chain broken: {report.problems}")
        runs = fake.check_runs(HEAD_SHA)
        if len(runs) != 1 or (runs[0].status, runs[0].conclusion) != FINAL_CHECK \
                or "`merged`" not in str(runs[0].output.get("summary", "")):
            scenario.problems.append(f"final check runs: {[(r.status, r.conclusion) for r in runs]}")


def _clone(fake: FakeGitHub) -> FakeGitHub:
    """A deep copy of the fake's state (repository, check runs, request log), sharing the OpenAPI spec."""
    return copy.deepcopy(fake, {id(fake._lock): threading.RLock(), id(fake.spec): fake.spec,
                                id(fake._injectors): []})


def event_kind(index: int) -> str:
    """The event kind of lifecycle step ``index`` as the recorder names it (``issues.opened``, …)."""
    name, payload = event(index)
    return f"{name}.{payload['action']}"


def run_in_process(tmp: Path, event_name: str, payload: Any, *, api_url: str, run_id: int, attempt: int,
                   inputs: dict[str, str], extra_env: dict[str, str]) -> StepResult:
    """``loopforge.action.run`` with the same environment ``tests/action_harness.run_step`` gives a subprocess;
    stdout is the stream the workflow commands go to, stderr what the process would have printed besides (a
    traceback if ``run`` raised)."""
    from loopforge import action

    workflow, commands = tmp / "workflow", tmp / "file_commands"
    workflow.mkdir(parents=True, exist_ok=True)
    commands.mkdir(parents=True, exist_ok=True)
    event_path = workflow / "event.json"
    event_path.write_text(json.dumps(payload))
    output, summary = commands / "output", commands / "summary"
    output.write_text("")
    summary.write_text("")
    env = {
        "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_REPOSITORY": REPO, "GITHUB_RUN_ID": str(run_id), "GITHUB_RUN_ATTEMPT": str(attempt),
        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_API_URL": api_url, "GITHUB_WORKSPACE": str(tmp),
        "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary), "INPUT_GITHUB-TOKEN": "ghs_test_token",
        "INPUT_STORE": "branch", "INPUT_STATE-BRANCH": STATE_BRANCH, "INPUT_DYNAMODB-TABLE": "loopforge",
        "INPUT_POLICY": ".github/loopforge.yml", "INPUT_CHECK-NAME": "loopforge", "INPUT_DRY-RUN": "false",
        "INPUT_FAIL-ON-BLOCK": "true", "INPUT_GOVERNANCE-TOKEN": "",
    }
    env.update({f"INPUT_{k.upper()}": v for k, v in inputs.items()})
    env.update(extra_env)
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            code = action.run(env, stream=stdout)
    except BaseException:  # what the runner would show: a traceback and exit 1
        stderr.write(traceback.format_exc())
        code = 1
    return StepResult(code, stdout.getvalue(), stderr.getvalue(), parse_output_file(output.read_text()),
                      summary.read_text())


# ---------------------------------------------------------------------------------------------- sweeps
@dataclass
class Tally:
    """The figures of one fault kind over a sweep."""

    kind: str
    faults: int = 0  # scenarios whose fault fired (= faults injected; an outage counts once)
    answers: int = 0  # requests answered with the fault (an outage answers many)
    runs: int = 0  # workflow runs, re-runs included
    completed: int = 0  # every step succeeded: the retries absorbed the fault
    repaired: int = 0  # a step failed with one ::error and its re-run completed it
    lost: int = 0
    duplicated: int = 0
    broken: list[str] = field(default_factory=list)

    def add(self, s: Scenario) -> None:
        if s.fired:
            self.faults += 1
        self.answers += s.injected
        self.runs += s.runs
        self.lost += s.lost
        self.duplicated += s.duplicated
        if s.verdict == "completed":
            self.completed += 1
        elif s.verdict == "repaired":
            self.repaired += 1
        elif s.verdict == "BROKEN":
            self.broken.append(f"{s.kind}@{s.position} ({s.target}): " + "; ".join(s.problems)[:1500])
        else:
            self.broken.append(f"{s.kind}@{s.position}: the fault never fired")


def tally(scenarios: list[Scenario]) -> dict[str, Tally]:
    out: dict[str, Tally] = {}
    for s in scenarios:
        out.setdefault(s.kind, Tally(s.kind)).add(s)
    return out


def plan(driver: LifecycleDriver, kinds: list[str], every: Mapping[str, int] | None = None) -> list[tuple[str, int]]:
    """(kind, position) for every position where the kind applies, or every ``every[kind]``-th of them (from a
    fixed per-kind offset, so sampled kinds cover different positions)."""
    out: list[tuple[str, int]] = []
    for kind in kinds:
        step = (every or {}).get(kind, 1)
        offset = sum(map(ord, kind)) % step if step > 1 else 0
        out += [(kind, position) for position in driver.positions(kind, every=step, offset=offset)]
    return out


_WORKER: dict[str, Any] = {}
_WARM: set[str] = set()  # the stores this process has run one lifecycle on (``LifecycleDriver.baseline``)


def _worker_init(config: dict[str, Any], baseline: list[str]) -> None:
    config = dict(config)
    config["workdir"] = Path(config["workdir"]) / f"w{os.getpid()}"
    driver = LifecycleDriver(**config)
    calls = driver.baseline()
    if [m for m, _ in calls] != baseline:
        raise AssertionError("the fault-free lifecycle made other requests in a worker process")
    _WORKER["driver"] = driver


def _worker_run(items: list[tuple[str, int]]) -> list[Scenario]:
    driver: LifecycleDriver = _WORKER["driver"]
    return [driver.run(kind, position) for kind, position in items]


def sweep(config: dict[str, Any], items: list[tuple[str, int]], *, workers: int = 1,
          progress: Callable[[Scenario], None] | None = None) -> list[Scenario]:
    """Run the scenarios ``items`` (see ``plan``) with ``LifecycleDriver(**config)``; with ``workers`` > 1, in
    that many processes, each with its own driver (its own fake GitHub servers, DynamoDB proxy and tables)."""
    if workers <= 1:
        with LifecycleDriver(**config) as driver:
            driver.baseline()
            results = []
            for kind, position in items:
                scenario = driver.run(kind, position)
                results.append(scenario)
                if progress:
                    progress(scenario)
            return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with LifecycleDriver(**config) as driver:
        baseline = [m for m, _ in driver.baseline()]
    chunks = [items[i:i + 8] for i in range(0, len(items), 8)]
    results = []
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                             initargs=(config, baseline)) as pool:
        futures = [pool.submit(_worker_run, chunk) for chunk in chunks]
        for future in as_completed(futures):
            for scenario in future.result():
                results.append(scenario)
                if progress:
                    progress(scenario)
    results.sort(key=lambda s: (items.index((s.kind, s.position))))
    return results
