"""FakeGitHub's GraphQL endpoint: schema validation against GitHub's published schema, GitHub's answers
(STALE_DATA, NOT_FOUND, FORBIDDEN), both ways of serving it, GHES URLs, and request accounting."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from graphql import build_schema

from tests.fakegithub import FakeGitHub, OpenAPIViolation
from tests.fakegithub.extract_graphql import FIELDS

SUBSET = Path(__file__).parents[1] / "fixtures" / "graphql" / "schema.subset.graphql"
BRANCH = "loopforge-state"
APPEND = """mutation($input: CreateCommitOnBranchInput!) { createCommitOnBranch(input: $input) { commit { oid
  author { user { login } } signature { isValid signer { login } } } } }"""


def gql(fake: FakeGitHub, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    status, _headers, payload = fake.handle("POST", fake.graphql_url, {},
                                            json.dumps({"query": document, "variables": variables or {}}))
    assert status == 200
    answer: dict[str, Any] = json.loads(payload)
    return answer


def append_input(fake: FakeGitHub, expected: str, files: dict[str, str]) -> dict[str, Any]:
    return {"input": {"branch": {"repositoryNameWithOwner": fake.full_name, "branchName": BRANCH},
                      "expectedHeadOid": expected, "message": {"headline": "h", "body": "b"},
                      "fileChanges": {"additions": [{"path": p, "contents": base64.b64encode(t.encode()).decode()}
                                                    for p, t in files.items()]}}}


def test_the_subset_is_a_valid_schema_holding_every_listed_field() -> None:
    schema = build_schema(SUBSET.read_text(encoding="utf-8"))
    for type_name, fields in FIELDS.items():
        gtype = schema.type_map[type_name]
        names = {t.name for t in gtype.types} if hasattr(gtype, "types") else set(gtype.fields)  # type: ignore[attr-defined]
        assert set(fields) <= names, type_name
    assert (SUBSET.parent / "LICENSE.md").read_text().startswith("Copyright (c) GitHub")


def test_a_document_github_would_refuse_is_a_violation() -> None:
    fake = FakeGitHub()
    for bad in ('query { repository(owner: "octo-org", name: "octo-repo") { nope } }',
                'query { repository(owner: "octo-org") { id } }',  # a required argument missing
                "query { repository(",  # a syntax error
                'mutation { createRef(input: {name: "refs/heads/x"}) { ref { name } } }'):  # wrong input shape
        with pytest.raises(OpenAPIViolation):
            gql(fake, bad)
    assert len(fake.violations) == 4
    assert "add it to FIELDS" in fake.violations[0]


def test_reads_at_a_commit_are_exact_and_missing_paths_are_null() -> None:
    fake = FakeGitHub()
    first = fake.set_file(BRANCH, "records/a/head.json", '{"n": 1}')
    fake.set_file(BRANCH, "records/b/head.json", '{"n": 2}')
    data = gql(fake, """query { repository(owner: "octo-org", name: "octo-repo") {
      tip: ref(qualifiedName: "refs/heads/loopforge-state") { target { oid ... on Commit {
        a: file(path: "records/a/head.json") { object { ... on Blob { text isTruncated } } }
        missing: file(path: "records/zzz/head.json") { oid }
        touched: history(first: 1, path: "records/a") { nodes { oid } } } } }
      old: object(expression: "loopforge-state:records/b/head.json") { ... on Blob { text } }
      gone: object(expression: "no-such-branch:x") { oid } } }""")
    repo = data["data"]["repository"]
    target = repo["tip"]["target"]
    assert target["a"]["object"] == {"text": '{"n": 1}', "isTruncated": False}
    assert target["missing"] is None and repo["gone"] is None and "errors" not in data
    assert target["touched"]["nodes"] == [{"oid": first}]  # the newest commit that changed records/a
    assert repo["old"] == {"text": '{"n": 2}'}


def test_rev_parse_suffixes_in_expressions() -> None:
    """``object(expression:)`` takes a rev-parse expression: ``~N`` walks N first parents back, ``^N`` is the
    N-th parent; past the root (or a parent that is not there) is null, not an error."""
    fake = FakeGitHub()
    one = fake.set_file(BRANCH, "f", "1")
    two = fake.set_file(BRANCH, "f", "2")
    three = fake.set_file(BRANCH, "f", "3")
    data = gql(fake, f"""query {{ repository(owner: "octo-org", name: "octo-repo") {{
      a: object(expression: "{three}~2") {{ oid }} b: object(expression: "{three}^") {{ oid }}
      c: object(expression: "{three}^1~1:f") {{ ... on Blob {{ text }} }} d: object(expression: "{three}~99") {{ oid }}
      e: object(expression: "{three}^2") {{ oid }} f: object(expression: "loopforge-state~1") {{ oid }} }} }}""")
    repo = data["data"]["repository"]
    assert (repo["a"], repo["b"], repo["c"]) == ({"oid": one}, {"oid": two}, {"text": "1"})
    assert repo["d"] is None and repo["e"] is None and repo["f"] == {"oid": two} and "errors" not in data


def test_create_commit_on_branch_is_a_compare_and_swap_with_githubs_stale_data_error() -> None:
    fake = FakeGitHub()
    tip = fake.set_file(BRANCH, "README.md", "x")
    stale = "0" * 40
    answer = gql(fake, APPEND, append_input(fake, stale, {"a.json": "1"}))
    assert answer["data"] == {"createCommitOnBranch": None}
    assert answer["errors"][0]["type"] == "STALE_DATA"
    assert answer["errors"][0]["message"] == (f'Expected branch to point to "{stale}" but it did not.  '
                                              f"Pull and try again.")
    assert fake.branch_sha(BRANCH) == tip
    commit = gql(fake, APPEND, append_input(fake, tip, {"a.json": "1"}))["data"]["createCommitOnBranch"]["commit"]
    assert commit["author"] == {"user": {"login": "github-actions[bot]"}}
    assert commit["signature"] == {"isValid": True, "signer": {"login": "web-flow"}}
    assert fake.branch_sha(BRANCH) == commit["oid"] and fake.branch_files(BRANCH)["a.json"] == "1"
    assert fake.git.commits[commit["oid"]].parents == [tip]


def test_create_ref_and_a_missing_branch() -> None:
    fake = FakeGitHub()
    missing = gql(fake, APPEND, append_input(fake, "1" * 40, {"a": "b"}))
    assert missing["errors"][0]["type"] == "NOT_FOUND"
    root = fake.branch_sha("main")
    doc = "mutation($i: CreateRefInput!) { createRef(input: $i) { ref { name prefix target { oid } } } }"
    made = gql(fake, doc, {"i": {"repositoryId": fake.repo_node_id, "name": f"refs/heads/{BRANCH}", "oid": root}})
    assert made["data"]["createRef"]["ref"] == {"name": BRANCH, "prefix": "refs/heads/", "target": {"oid": root}}
    again = gql(fake, doc, {"i": {"repositoryId": fake.repo_node_id, "name": f"refs/heads/{BRANCH}", "oid": root}})
    assert again["errors"][0]["type"] == "UNPROCESSABLE" and "already exists" in again["errors"][0]["message"]


def test_a_read_only_token_cannot_mutate() -> None:
    fake = FakeGitHub(read_only_token=True)
    tip = fake.set_file(BRANCH, "README.md", "x")
    answer = gql(fake, APPEND, append_input(fake, tip, {"a": "b"}))
    assert answer["errors"][0]["type"] == "FORBIDDEN"
    assert answer["errors"][0]["message"] == "Resource not accessible by integration"
    assert fake.branch_sha(BRANCH) == tip


def test_pull_request_facts_in_one_query() -> None:
    fake = FakeGitHub()
    head = "c" * 40
    fake.add_pull(7, head, labels=["risk:low"], files=[("src/a.py", 3, 1), ("docs/x.md", 1, 0)])
    fake.add_review(7, "alice", "CHANGES_REQUESTED")
    fake.add_review(7, "alice", "APPROVED")
    fake.add_review(7, "bob", "COMMENTED")
    fake.add_label_event(7, "risk:low", "carol")
    data = gql(fake, """query($n: Int!) { repository(owner: "octo-org", name: "octo-repo") {
      pr: pullRequest(number: $n) { headRefOid baseRefOid baseRefName isCrossRepository
        files(first: 100) { totalCount nodes { path additions deletions changeType } }
        latestOpinionatedReviews(first: 100) { nodes { author { login } state commit { oid } } }
        labels(first: 100) { nodes { name } }
        timelineItems(itemTypes: [LABELED_EVENT, UNLABELED_EVENT], last: 100) {
          nodes { __typename ... on LabeledEvent { actor { login } label { name } } } }
        commits(last: 1) { nodes { commit { oid statusCheckRollup { state } } } } }
      none: pullRequest(number: 99) { number } } }""", {"n": 7})
    pr = data["data"]["repository"]["pr"]
    assert pr["headRefOid"] == head and pr["baseRefName"] == "main"
    assert pr["files"]["totalCount"] == 2
    assert [n["changeType"] for n in pr["files"]["nodes"]] == ["MODIFIED", "ADDED"]
    assert pr["latestOpinionatedReviews"]["nodes"] == [
        {"author": {"login": "alice"}, "state": "APPROVED", "commit": {"oid": head}}]
    assert pr["labels"]["nodes"] == [{"name": "risk:low"}]
    assert pr["timelineItems"]["nodes"] == [
        {"__typename": "LabeledEvent", "actor": {"login": "carol"}, "label": {"name": "risk:low"}}]
    assert pr["commits"]["nodes"] == [{"commit": {"oid": head, "statusCheckRollup": None}}]
    assert data["data"]["repository"]["none"] is None
    assert data["errors"][0]["type"] == "NOT_FOUND" and data["errors"][0]["path"] == ["repository", "none"]


def test_requests_are_counted_by_kind() -> None:
    fake = FakeGitHub()
    tip = fake.set_file(BRANCH, "README.md", "x")
    gql(fake, 'query { repository(owner: "octo-org", name: "octo-repo") { id } }')
    gql(fake, APPEND, append_input(fake, tip, {"a": "b"}))
    assert (fake.graphql_count(), fake.graphql_count("query"), fake.graphql_count("mutation")) == (2, 1, 1)
    assert fake.graphql_count(field="createCommitOnBranch") == 1 and fake.graphql_points == 6
    assert [c.path for c in fake.requests] == ["/graphql/query/repository",
                                               "/graphql/mutation/createCommitOnBranch"]


@pytest.mark.parametrize("base_url", ["https://api.github.com:443", "https://ghe.example.com:443/api/v3"])
def test_served_in_process_including_ghes(base_url: str) -> None:
    fake = FakeGitHub(base_url=base_url)
    expected = ("https://api.github.com:443/graphql" if "api.github" in base_url
                else "https://ghe.example.com:443/api/graphql")
    assert fake.graphql_url == expected
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.install(rsps)
        answer = requests.post(expected, json={"query": 'query { repository(owner: "octo-org", name: "octo-repo") '
                                                        '{ nameWithOwner } }'}, timeout=5).json()
    assert answer == {"data": {"repository": {"nameWithOwner": "octo-org/octo-repo"}}}


def test_served_over_http(fake_github_server: FakeGitHub) -> None:
    answer = requests.post(fake_github_server.graphql_url, timeout=5, json={
        "query": 'query { rateLimit { cost remaining } }'}).json()
    assert answer == {"data": {"rateLimit": {"cost": 1, "remaining": 1000}}}
