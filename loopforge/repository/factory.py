"""``open_store``: the one way the Action and the command line open a store.

::

    open_store("sqlite", path="loopforge.db", create=False)       # a read: the file must be a LoopForge store
    open_store("sqlite", path="loopforge.db")                     # a write (replay, demo): created if missing
    open_store("memory")
    open_store("branch", github_repo=gh_repo, branch="loopforge-state")
    open_store("dynamodb", table="loopforge", region="eu-west-1", fail_fast=True)

What each kind checks before it returns, so that a wrong path or a wrong setting is one clear error instead of
an empty store or a driver traceback:

* ``sqlite`` — ``create=False`` (every reading command): the path must exist (``StoreMisconfigured``; a read
  never creates an empty database), be a file (``StoreMisconfigured``), be a SQLite database (``StoreCorrupt``)
  and hold LoopForge's tables (``StoreMisconfigured``: a database of another application). ``create=True``: a
  missing file is created; an existing one must still be a SQLite file, and a SQLite database that already holds
  other tables but not LoopForge's is refused rather than written into. Nothing is written by these checks (the
  file is opened read-only).
* ``dynamodb`` — boto3 is imported only here (extra ``loopforge[dynamodb]``; without it ``StoreMisconfigured``
  says what to install). ``fail_fast=True`` (the command line) first reads one item with a client that connects
  within ``FAIL_FAST_CONNECT_TIMEOUT`` seconds and makes exactly one attempt, and turns a missing region, missing
  or rejected credentials, an unreachable endpoint or a missing/foreign table into one ``StoreError`` naming
  what to set; the store itself then uses the normal client (botocore's retries).
* ``branch`` — the Action's data branch read and written through GitHub's API; ``github_repo`` is what
  ``BranchRepository`` takes (a PyGithub ``Repository`` or ``(Github, "owner/name")``). ``create=False`` reads
  the branch's ref once (a missing branch is ``StoreMisconfigured``, not an empty store); ``create=True`` (the
  Action) makes no request here.
* ``memory`` — a new, empty ``MemoryRepository``.

Every error raised is a ``loopforge.errors.StoreError`` subclass (``StoreMisconfigured``, ``StoreCorrupt``,
``StorePermissionError``, ``StoreUnavailable``); its ``str()`` is one line.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any, Literal

from loopforge.errors import (
    GitHubNotFound,
    GitHubPermissionError,
    StoreCorrupt,
    StoreError,
    StoreMisconfigured,
    StorePermissionError,
    StoreUnavailable,
)
from loopforge.repository.base import Repository

StoreKind = Literal["sqlite", "memory", "branch", "dynamodb"]
STORE_KINDS: tuple[str, ...] = ("sqlite", "memory", "branch", "dynamodb")

#: the tables a LoopForge SQLite store holds (``repository/sqlite.py``).
SQLITE_TABLES = frozenset({"records", "entries"})
_SQLITE_MAGIC = b"SQLite format 3\x00"

#: seconds the command line's first DynamoDB request may spend connecting / waiting for the answer.
FAIL_FAST_CONNECT_TIMEOUT = 1.0
FAIL_FAST_READ_TIMEOUT = 1.5

_REGION_HINT = "set AWS_REGION (or AWS_DEFAULT_REGION, or a region in the AWS profile)"
_CREDENTIALS_HINT = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where an IAM role "
                     "is available")


def open_store(kind: StoreKind | str = "sqlite", *, create: bool = True,
               path: str | os.PathLike[str] | None = None,
               table: str | None = None, region: str | None = None, endpoint_url: str | None = None,
               fail_fast: bool = False, github_repo: Any = None, branch: str | None = None,
               graphql_url: str | None = None) -> Repository:
    """Open the store of ``kind`` (see the module docstring for what each kind checks).

    ``create`` — whether opening may create the store (SQLite file; never a DynamoDB table or a branch).
    ``path`` — the SQLite file (default ``$LOOPFORGE_DB`` or ``loopforge.db``; ``:memory:`` is allowed).
    ``table``/``region``/``endpoint_url`` — DynamoDB (defaults: ``$LOOPFORGE_TABLE`` or ``loopforge``; boto3's
    region and endpoint settings). ``fail_fast`` — check DynamoDB with one quick request first.
    ``github_repo``/``branch``/``graphql_url`` — the branch store (``graphql_url``: ``GITHUB_GRAPHQL_URL``; by
    default derived from the client's REST base URL).
    """
    if kind == "sqlite":
        return _open_sqlite(path, create=create)
    if kind == "memory":
        from loopforge.repository.memory import MemoryRepository

        return MemoryRepository()
    if kind == "dynamodb":
        return _open_dynamodb(table, region, endpoint_url, fail_fast=fail_fast)
    if kind == "branch":
        if github_repo is None:
            raise StoreMisconfigured("the branch store needs a GitHub repository (owner/name and a token)")
        from loopforge.repository.branch import DEFAULT_BRANCH, BranchRepository

        if not create:
            check_branch(github_repo, branch or DEFAULT_BRANCH)
        return BranchRepository(github_repo, branch=branch or DEFAULT_BRANCH, graphql_url=graphql_url or None)
    raise StoreMisconfigured(f"unknown store kind {kind!r} (expected one of {', '.join(STORE_KINDS)})")


# ---------------------------------------------------------------------------------------------- SQLite
def sqlite_tables(path: str | os.PathLike[str]) -> set[str]:
    """The table names of an existing SQLite file, read without writing to it.

    Raises ``StoreCorrupt`` when the file is not a SQLite database, ``StorePermissionError`` when it cannot be
    read.
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            magic = f.read(len(_SQLITE_MAGIC))
    except PermissionError:
        raise StorePermissionError(f"{path}: permission denied reading the store file") from None
    except OSError as exc:
        raise StoreMisconfigured(f"{path}: cannot read the store file ({exc.strerror or exc})") from None
    if not magic:
        return set()  # an empty file is an empty SQLite database
    if magic != _SQLITE_MAGIC:
        raise StoreCorrupt(f"{path}: not a SQLite database (the file does not start with SQLite's header)")
    uri = "file:" + urllib.parse.quote(str(p.resolve())) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5.0)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreCorrupt(f"{path}: not a readable SQLite database ({exc})") from None
    return {str(r[0]) for r in rows}


def _open_sqlite(path: str | os.PathLike[str] | None, *, create: bool) -> Repository:
    from loopforge.repository.sqlite import DEFAULT_DB, SQLiteRepository

    location = str(path if path is not None else os.environ.get("LOOPFORGE_DB") or DEFAULT_DB)
    if location != ":memory:":
        p = Path(location)
        if p.is_dir():
            raise StoreMisconfigured(f"{location}: is a directory, not a SQLite store file")
        if p.exists():
            tables = sqlite_tables(p)
            missing = SQLITE_TABLES - tables
            if missing and (tables or not create):
                raise StoreMisconfigured(
                    f"{location}: a SQLite database without LoopForge's tables ({', '.join(sorted(missing))}): "
                    "not a LoopForge store")
        elif not create:
            raise StoreMisconfigured(
                f"{location}: no such store file (reading commands never create one; record events with "
                "`loopforge replay`, or point --db / LOOPFORGE_DB at an existing store)")
    return SQLiteRepository(location)  # it translates its own driver and directory errors (StoreError)


# ---------------------------------------------------------------------------------------------- branch
def check_branch(github_repo: Any, branch: str) -> None:
    """One ``GET /repos/{o}/{r}/git/ref/heads/{branch}``: the data branch must exist for a read (the Action
    creates it on its first event). Raises ``StoreMisconfigured`` (no such repository or branch),
    ``StorePermissionError`` (401/403) or ``StoreUnavailable`` (5xx, rate limit, no connection)."""
    import requests
    from github import GithubException

    from loopforge.github.client import github_error

    if isinstance(github_repo, tuple):
        gh, name = github_repo
        requester, url = gh.requester, f"/repos/{name}"
    else:
        requester, url = github_repo.requester, github_repo.url
        name = getattr(github_repo, "full_name", None) or url.rsplit("/repos/", 1)[-1]
    try:
        requester.requestJsonAndCheck("GET", f"{url}/git/ref/heads/{urllib.parse.quote(branch)}")
    except (GithubException, requests.RequestException) as exc:
        error = github_error(exc, f"reading branch {branch!r} of {name}")
        if isinstance(error, GitHubNotFound):
            raise StoreMisconfigured(
                f"{name} has no branch {branch!r} (or the token cannot see the repository): the Action creates the "
                "data branch on its first event; check --branch OWNER/REPO[@BRANCH] and GITHUB_TOKEN/GH_TOKEN") \
                from None
        if isinstance(error, GitHubPermissionError):
            raise StorePermissionError(str(error)) from None
        raise StoreUnavailable(str(error)) from None


# ---------------------------------------------------------------------------------------------- DynamoDB
def _open_dynamodb(table: str | None, region: str | None, endpoint_url: str | None, *,
                   fail_fast: bool) -> Repository:
    try:
        from botocore.exceptions import NoRegionError

        from loopforge.repository.dynamodb import DEFAULT_TABLE, DynamoDBRepository
    except ImportError:
        raise StoreMisconfigured("the DynamoDB store needs boto3: pip install 'loopforge[dynamodb]'") from None
    name = table or os.environ.get("LOOPFORGE_TABLE") or DEFAULT_TABLE
    if fail_fast:
        check_dynamodb_table(fail_fast_client(region, endpoint_url), name)
    try:
        return DynamoDBRepository(table_name=name, region_name=region, endpoint_url=endpoint_url)
    except (NoRegionError, StoreError):  # make_client turns NoRegionError into StoreError
        raise StoreMisconfigured(f"DynamoDB needs an AWS region: {_REGION_HINT}") from None


def fail_fast_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
    """A DynamoDB client that makes ONE attempt per call and gives up connecting after
    ``FAIL_FAST_CONNECT_TIMEOUT`` seconds (for a command line's first request). ``StoreMisconfigured`` without
    boto3 or a region."""
    try:
        from botocore.config import Config
        from botocore.exceptions import NoRegionError

        from loopforge.repository.dynamodb import make_client
    except ImportError:
        raise StoreMisconfigured("the DynamoDB store needs boto3: pip install 'loopforge[dynamodb]'") from None
    quick = Config(connect_timeout=FAIL_FAST_CONNECT_TIMEOUT, read_timeout=FAIL_FAST_READ_TIMEOUT,
                   retries={"mode": "standard", "total_max_attempts": 1})
    try:
        return make_client(region, endpoint_url, quick)
    except NoRegionError:
        raise StoreMisconfigured(f"DynamoDB needs an AWS region: {_REGION_HINT}") from None
    except StoreError as exc:  # make_client's own "needs an AWS region"
        raise StoreMisconfigured(f"DynamoDB needs an AWS region: {_REGION_HINT}") from exc


def check_dynamodb_table(client: Any, table: str, *, missing_ok: bool = False) -> bool:
    """Read one (absent) head item of ``table`` with ``client``: needs only ``dynamodb:GetItem``, proves the
    region, credentials, endpoint and the table's key schema. Raises a one-line ``StoreError`` subclass.

    Returns whether the table exists (False only with ``missing_ok``; otherwise a missing table raises).
    """
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
        ReadTimeoutError,
    )

    endpoint = client.meta.endpoint_url
    try:
        client.get_item(TableName=table, Key={"pk": {"S": "REC#loopforge-probe"}, "sk": {"S": "HEAD"}},
                        ProjectionExpression="pk")
    except (NoCredentialsError, PartialCredentialsError):
        raise StoreMisconfigured(f"no AWS credentials for DynamoDB: {_CREDENTIALS_HINT}") from None
    except (EndpointConnectionError, ConnectTimeoutError):
        raise StoreUnavailable(
            f"cannot connect to DynamoDB at {endpoint}: check AWS_ENDPOINT_URL_DYNAMODB (or --endpoint-url), "
            "the region (AWS_REGION) and the network") from None
    except ReadTimeoutError:
        raise StoreUnavailable(f"DynamoDB at {endpoint} did not answer within {FAIL_FAST_READ_TIMEOUT:g} s: "
                               "check AWS_ENDPOINT_URL_DYNAMODB (or --endpoint-url)") from None
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = " ".join(str(exc.response.get("Error", {}).get("Message", "")).split())[:200]
        if code == "ResourceNotFoundException":
            if missing_ok:
                return False
            raise StoreMisconfigured(
                f"no DynamoDB table {table!r} at {endpoint}: create it with `loopforge dynamodb create-table "
                f"--table {table}`, or set LOOPFORGE_DYNAMODB_TABLE / --dynamodb-table") from None
        if code == "ValidationException":
            raise StoreMisconfigured(f"DynamoDB table {table!r} is not a LoopForge table ({message})") from None
        if code in ("UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException",
                    "InvalidClientTokenId", "MissingAuthenticationToken"):
            raise StorePermissionError(f"DynamoDB rejected the AWS credentials ({code}): {_CREDENTIALS_HINT}") \
                from None
        if code in ("AccessDeniedException", "AccessDenied"):
            raise StorePermissionError(f"no permission to read DynamoDB table {table!r} ({code}): grant "
                                       "dynamodb:GetItem, Query and TransactWriteItems on it") from None
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if not code or code.isdigit():  # not an answer in DynamoDB's format: something else listens there
            raise StoreMisconfigured(f"{endpoint} answered HTTP {status or code}, not as DynamoDB does: check "
                                     "AWS_ENDPOINT_URL_DYNAMODB (or --endpoint-url)") from None
        if status is not None and int(status) < 500 and code != "ThrottlingException":
            raise StoreMisconfigured(f"DynamoDB refused the request ({code}): {message}") from None
        raise StoreUnavailable(f"DynamoDB answered {code}: {message}") from None
    except BotoCoreError as exc:
        raise StoreUnavailable(f"DynamoDB at {endpoint}: {' '.join(str(exc).split())[:200]}") from None
    return True


__all__ = ["FAIL_FAST_CONNECT_TIMEOUT", "STORE_KINDS", "StoreKind", "check_branch", "check_dynamodb_table",
           "fail_fast_client", "open_store", "sqlite_tables"]
