"""Every bad input to ``loopforge`` is exactly one ``loopforge: error:`` line on stderr and exit code 2 (a failed
check is 1), never a traceback, never a store created or written by a reading command."""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopforge import LoopService
from loopforge.cli import main
from loopforge.github.client import make_github
from loopforge.policy.model import load_policy
from loopforge.repository.branch import BranchRepository
from tests.cli.helpers import run
from tests.dynamo_server import CLEARED_AWS_ENV, DUMMY_AWS_ENV, free_port, local_server
from tests.fakegithub import FakeGitHub
from tests.paths import LIFECYCLE_FILES as LIFECYCLE

READ_COMMANDS = [["history", "org/repo#1"], ["list"], ["verify"], ["export"]]
REPO = "Codertocat/Hello-World"  # the lifecycle fixtures: issue #1, closed by PR #2 ("Fixes #1")


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("loopforge: error: "), err
    assert "Traceback" not in err
    return lines[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("replayed") / "trail.db"
    summary = db.parent / "summary.md"
    assert main(["--db", str(db), "replay", *map(str, LIFECYCLE), "--summary", str(summary)]) == 0
    return db


# ---------------------------------------------------------------------------------------------- SQLite paths
@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: c[0])
def test_a_read_on_a_missing_db_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 command: list[str]) -> None:
    db = tmp_path / "nope.db"
    code, out, err = run(capsys, "--db", str(db), *command)
    assert code == 2 and out == ""
    assert f"{db}: no such store file" in one_error_line(err)
    assert not db.exists() and list(tmp_path.iterdir()) == []


def test_store_options_may_follow_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "list", "--db", str(tmp_path / "x.db"))
    assert code == 2 and "x.db: no such store file" in one_error_line(err)


def test_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--db", str(tmp_path), "list")
    assert code == 2 and "is a directory, not a SQLite store file" in one_error_line(err)
    code, _, err = run(capsys, "--db", str(tmp_path), "replay", str(LIFECYCLE[0]))
    assert code == 2 and "is a directory" in one_error_line(err)


def test_a_file_that_is_not_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n" * 100)
    before = digest(text)
    for command in (["verify"], ["replay", str(LIFECYCLE[0]), "--summary", str(tmp_path / "s.md")]):
        code, _, err = run(capsys, "--db", str(text), *command)
        assert code == 2 and "not a SQLite database" in one_error_line(err)
    assert digest(text) == before


def test_a_sqlite_database_of_another_application(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('keep me')")
    conn.commit()
    conn.close()
    before = digest(other)
    for command in (["list"], ["export"], ["replay", str(LIFECYCLE[0]), "--summary", str(tmp_path / "s.md")]):
        code, out, err = run(capsys, "--db", str(other), *command)
        assert code == 2 and out == ""
        assert "without LoopForge's tables (entries, records): not a LoopForge store" in one_error_line(err)
    assert digest(other) == before  # not one table added
    assert {r[0] for r in sqlite3.connect(other).execute("SELECT name FROM sqlite_master")} == {"notes"}


def test_only_a_writing_command_creates_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "new" / "trail.db"
    code, out, _ = run(capsys, "--db", str(db), "replay", str(LIFECYCLE[0]), "--summary", str(tmp_path / "s.md"))
    assert code == 0 and db.is_file() and "[applied] issues.opened" in out
    code, out, _ = run(capsys, "--db", str(db), "verify")
    assert code == 0 and "1 of 1 records verify" in out


def test_console_script_prints_one_line_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "loopforge.cli", "--db", str(tmp_path / "none.db"), "verify"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"loopforge: error: {tmp_path / 'none.db'}: no such store file (reading commands never " \
                          "create one; record events with `loopforge replay`, or point --db / LOOPFORGE_DB at an " \
                          "existing store)\n"


# ---------------------------------------------------------------------------------------------- refs
def test_history_of_a_pull_request_url_finds_the_record_it_was_routed_to(
        replayed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--db", str(replayed), "history", f"https://github.com/{REPO}/pull/2")
    assert code == 0 and out.startswith(f"{REPO}#1  state: closed  entries: 8")
    code, out, _ = run(capsys, "--db", str(replayed), "history", "2", "--repo", REPO, "--json")
    assert code == 0 and {json.loads(line)["record_id"] for line in out.splitlines()} == {f"{REPO}#1"}
    code, out, _ = run(capsys, "--db", str(replayed), "verify", f"https://github.com/{REPO}/pull/2")
    assert code == 0 and f"ok      {REPO}#1 (8 entries)" in out


def test_a_pull_url_never_returns_the_issue_of_the_same_number(replayed: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--db", str(replayed), "history", f"https://github.com/{REPO}/pull/1")
    assert code == 2 and out == ""
    assert f"no record for pull request {REPO}#1" in one_error_line(err)
    code, out, _ = run(capsys, "--db", str(replayed), "history", f"https://github.com/{REPO}/issues/1")
    assert code == 0 and out.startswith(f"{REPO}#1  state: closed")


@pytest.mark.parametrize("ref, repo", [("o/r/42", None), ("#1", None), ("42", None), ("o/r/pull/2", None),
                                       ("github.com/o/r/pull/2", None), ("https://github.com/o/r/commit/1", None),
                                       ("r#3", None)])
def test_a_ref_of_the_wrong_shape_gets_the_accepted_forms(replayed: Path, capsys: pytest.CaptureFixture[str],
                                                          ref: str, repo: str | None) -> None:
    code, out, err = run(capsys, "--db", str(replayed), "history", ref, *(["--repo", repo] if repo else []))
    assert code == 2 and out == ""
    line = one_error_line(err)
    assert f"{ref!r} is not a record reference: use owner/repo#N, https://github.com/owner/repo/issues/N" in line
    assert "N or #N with --repo owner/repo" in line


def test_a_well_formed_ref_without_a_record(replayed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--db", str(replayed), "history", "o/r#404")
    assert code == 2 and "no record for 'o/r#404'" in one_error_line(err)
    code, _, err = run(capsys, "--db", str(replayed), "history", "7", "--repo", "not a repo")
    assert code == 2 and "--repo: expected owner/name" in one_error_line(err)


# ---------------------------------------------------------------------------------------------- usage and JSON
@pytest.mark.parametrize("args, fragment", [
    ([], "the following arguments are required: COMMAND"),
    (["nonsense"], "argument COMMAND: invalid choice: 'nonsense'"),
    (["history"], "history: the following arguments are required: REF"),
    (["list", "--limit", "0"], "list: argument --limit: expected a number from 1 to 100000, got '0'"),
    (["list", "--bogus"], "unrecognized arguments: --bogus"),
    (["policy"], "policy: the following arguments are required: COMMAND"),
    (["--branch", "not-a-repo", "list"], "--branch: expected OWNER/REPO[@BRANCH], got 'not-a-repo'"),
])
def test_usage_errors(replayed: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str) -> None:
    code, out, err = run(capsys, "--db", str(replayed), *args)
    assert code == 2 and out == ""
    assert fragment in one_error_line(err)


def test_malformed_json_is_named_with_file_line_and_column(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "event.json"
    bad.write_text('{\n  "action": "opened",\n  "issue": {"number": 1,}\n}\n')
    db = tmp_path / "trail.db"
    code, out, err = run(capsys, "--db", str(db), "replay", str(LIFECYCLE[0]), str(bad))
    assert code == 2 and out == ""
    assert one_error_line(err) == (f"loopforge: error: {bad}:3:25: malformed JSON: "
                                   "Expecting property name enclosed in double quotes")
    assert not db.exists()  # every file is parsed before anything is written


def test_a_payload_that_is_not_an_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "pr.json"
    bad.write_text(json.dumps({"action": "opened", "pull_request": {"number": "x"}}))
    code, _, err = run(capsys, "--db", str(tmp_path / "t.db"), "replay", str(bad))
    assert code == 2 and one_error_line(err).startswith(f"loopforge: error: {bad}: ")
    assert not (tmp_path / "t.db").exists()
    code, _, err = run(capsys, "--db", str(tmp_path / "t.db"), "replay", str(tmp_path / "absent.json"))
    assert code == 2 and f"{tmp_path / 'absent.json'}: cannot read" in one_error_line(err)


def test_export_to_an_unwritable_place(replayed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--db", str(replayed), "export", "-o", str(tmp_path / "no" / "such" / "dir.csv"))
    assert code == 2 and "No such file or directory" in one_error_line(err)


def test_every_policy_error_is_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = ("version: 1\nrules:\n  - name: a\n    if: {files: infra}\n    require: {label: x}\n"
            "  - name: b\n    require: {approvals: {count: -1}}\n  - require: {}\n")
    policy = tmp_path / "loopforge.yml"
    policy.write_text(text)
    code, out, err = run(capsys, "policy", "validate", str(policy))
    assert code == 1 and out == ""
    line = one_error_line(err)
    assert "more error" not in line
    for fragment in ("rules[0].if.files: expected a list of globs, got a string",
                     "rules[1].require.approvals.count: must be >= ", "rules[2].name: required"):
        assert fragment in line, line
    with pytest.raises(Exception, match="rules\\[2\\]"):
        load_policy(text)


# ---------------------------------------------------------------------------------------------- DynamoDB
@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No AWS settings from the machine: no profile, no config files, no instance metadata."""
    for name in (*CLEARED_AWS_ENV, *DUMMY_AWS_ENV, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "LOOPFORGE_DYNAMODB_TABLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch


@pytest.fixture(scope="module")
def dynamo_url() -> Iterator[str]:
    with local_server() as url:
        yield url


class ClosingServer:
    """Accepts TCP connections and closes each at once; counts them (one per request attempt)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_dynamodb_without_a_region(aws: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--dynamodb-table", "loopforge", "list")
    assert code == 2 and out == ""
    assert "DynamoDB needs an AWS region: set AWS_REGION" in one_error_line(err)


def test_dynamodb_without_credentials(aws: pytest.MonkeyPatch, dynamo_url: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    aws.setenv("AWS_REGION", "us-east-1")
    aws.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo_url)
    code, _, err = run(capsys, "--dynamodb-table", "loopforge", "verify")
    assert code == 2
    assert "no AWS credentials for DynamoDB: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in one_error_line(err)


def test_dynamodb_unreachable_endpoint_is_one_attempt(aws: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in DUMMY_AWS_ENV.items():
        aws.setenv(name, value)
    aws.setenv("AWS_MAX_ATTEMPTS", "5")  # what the store itself would use: the first call must not
    server = ClosingServer()
    try:
        aws.setenv("AWS_ENDPOINT_URL_DYNAMODB", server.url)
        code, out, err = run(capsys, "--dynamodb-table", "loopforge", "history", "o/r#1")
        assert code == 2 and out == ""
        assert f"DynamoDB at {server.url}" in one_error_line(err)
        assert server.connections == 1
    finally:
        server.close()
    refused = f"http://127.0.0.1:{free_port()}"
    aws.setenv("AWS_ENDPOINT_URL_DYNAMODB", refused)
    code, _, err = run(capsys, "--dynamodb-table", "loopforge", "list")
    assert code == 2
    assert f"cannot connect to DynamoDB at {refused}: check AWS_ENDPOINT_URL_DYNAMODB" in one_error_line(err)


def test_dynamodb_missing_table(aws: pytest.MonkeyPatch, dynamo_url: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in DUMMY_AWS_ENV.items():
        aws.setenv(name, value)
    aws.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo_url)
    code, _, err = run(capsys, "--dynamodb-table", "absent-table", "export")
    assert code == 2
    assert ("no DynamoDB table 'absent-table'" in one_error_line(err)
            and "loopforge dynamodb create-table --table absent-table" in err)
    code, _, err = run(capsys, "dynamodb", "create-table", "--table", "x", "--endpoint-url",
                       f"http://127.0.0.1:{free_port()}")
    assert code == 2 and "cannot connect to DynamoDB" in one_error_line(err)


def test_create_table_takes_the_table_the_store_options_read(aws: pytest.MonkeyPatch, dynamo_url: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """``LOOPFORGE_DYNAMODB_TABLE`` names the table for every command, ``dynamodb create-table`` included."""
    for name, value in DUMMY_AWS_ENV.items():
        aws.setenv(name, value)
    aws.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo_url)
    aws.setenv("LOOPFORGE_DYNAMODB_TABLE", "from-the-cli-variable")
    code, _, err = run(capsys, "dynamodb", "create-table")
    assert code == 0, err
    code, _, err = run(capsys, "list")
    assert code == 0 and err == "", err


def test_dynamodb_endpoint_that_is_not_dynamodb(aws: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import http.server

    class NotFound(http.server.BaseHTTPRequestHandler):
        requests = 0

        def do_POST(self) -> None:
            NotFound.requests += 1
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for name, value in DUMMY_AWS_ENV.items():
            aws.setenv(name, value)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        aws.setenv("AWS_ENDPOINT_URL_DYNAMODB", url)
        code, _, err = run(capsys, "--dynamodb-table", "loopforge", "list")
        assert code == 2
        assert one_error_line(err) == (f"loopforge: error: {url} answered HTTP 404, not as DynamoDB does: check "
                                       "AWS_ENDPOINT_URL_DYNAMODB (or --endpoint-url)")
        assert NotFound.requests == 1
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------------- branch store
def test_branch_store_that_does_not_exist(fake_github_server: FakeGitHub, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GITHUB_API_URL", fake_github_server.base_url)
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    code, out, err = run(capsys, "--branch", "octo-org/octo-repo", "verify")
    assert code == 2 and out == ""
    assert "octo-org/octo-repo has no branch 'loopforge-state'" in one_error_line(err)
    code, _, err = run(capsys, "list", "--branch", "octo-org/no-such-repo@data")
    assert code == 2 and "octo-org/no-such-repo has no branch 'data'" in one_error_line(err)
    store = BranchRepository((make_github("t", fake_github_server.base_url, for_tests=True), "octo-org/octo-repo"))
    LoopService(repository=store).create(ref="octo-org/octo-repo#3", repo="octo-org/octo-repo")
    code, out, err = run(capsys, "--branch", "octo-org/octo-repo", "verify")
    assert (code, err) == (0, "") and "1 of 1 records verify" in out
