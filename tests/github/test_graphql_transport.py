"""loopforge.github.graphql: URLs (GHES), typed errors, the retry policy (queries repeated, mutations not), and
the branch store's tamper evidence (who made the newest commit of a record), all against the fake."""

from __future__ import annotations

import json

import pytest

from loopforge.errors import GitHubError, GitHubNotFound, GitHubPermissionError, GitHubUnavailable, RefMoved
from loopforge.github.client import make_github
from loopforge.github.graphql import GraphQLClient, graphql_url_for
from loopforge.records import apply_entry, creation_entry
from loopforge.repository.branch import BranchRepository
from loopforge.trail import LoopTransition
from tests.fakegithub import RESET, RESET_AFTER, FakeGitHub, on

QUERY = 'query { repository(owner: "octo-org", name: "octo-repo") { id } }'
MUTATION = """mutation($i: CreateRefInput!) { createRef(input: $i) { ref { name } } }"""


def client(fake: FakeGitHub) -> GraphQLClient:
    return GraphQLClient.from_github(make_github("t", fake.base_url, for_tests=True))


@pytest.mark.parametrize(("api", "given", "expected"), [
    ("https://api.github.com", None, "https://api.github.com/graphql"),
    ("https://ghe.example.com/api/v3", None, "https://ghe.example.com/api/graphql"),
    ("https://ghe.example.com/api/v3/", None, "https://ghe.example.com/api/graphql"),
    ("https://api.github.com", "https://proxy.example/gql/", "https://proxy.example/gql"),
])
def test_graphql_url(api: str, given: str | None, expected: str) -> None:
    assert graphql_url_for(api, given) == expected


def test_ghes_end_to_end() -> None:
    fake = FakeGitHub(base_url="http://127.0.0.1:0/api/v3")
    with fake.serve() as url:
        fake.base_url = url + "/api/v3"  # serve() puts the fake at the server's root; GHES lives under /api/v3
        gh = make_github("t", fake.base_url, for_tests=True)
        store = BranchRepository((gh, "octo-org/octo-repo"))
        assert store.api.graphql.url == f"{url}/api/graphql"
        entry = creation_entry("org/repo#1", "org/repo#1", repo="org/repo")
        store.append(apply_entry(None, entry), [entry])
        assert [e.sequence for e in store.entries("org/repo#1")] == [1]
    assert fake.graphql_count("mutation", "createCommitOnBranch") == 1 and fake.violations == []


def test_errors_are_typed(fake_github: FakeGitHub) -> None:
    gql = client(fake_github)
    assert gql.execute(QUERY).data == {"repository": {"id": fake_github.repo_node_id}}
    with pytest.raises(GitHubNotFound, match="Could not resolve to a Repository"):
        gql.execute('query { repository(owner: "x", name: "y") { id } }')
    fake_github.read_only_token = True
    with pytest.raises(GitHubPermissionError, match="Resource not accessible by integration"):
        gql.execute(MUTATION, {"i": {"repositoryId": fake_github.repo_node_id, "name": "refs/heads/x",
                                     "oid": fake_github.branch_sha("main")}}, mutation=True)
    fake_github.read_only_token = False
    fake_github.inject(on("POST", "/graphql", (401, {}, {"message": "Bad credentials"})))
    with pytest.raises(GitHubPermissionError, match="401 Bad credentials"):
        gql.execute(QUERY)
    fake_github.inject(on("POST", "/graphql", (502, {}, "<html>bad gateway</html>"), times=None))
    with pytest.raises(GitHubUnavailable):
        gql.execute(QUERY)
    fake_github.clear_faults()
    fake_github.inject(on("POST", "/graphql", (200, {}, {"errors": [{"type": "STALE_DATA", "message": "moved"}],
                                                         "data": None})))
    with pytest.raises(RefMoved):
        gql.execute(QUERY)
    fake_github.inject(on("POST", "/graphql", (200, {}, {"errors": [{"type": "ODD", "message": "odd"}]})))
    with pytest.raises(GitHubError, match="ODD"):
        gql.execute(QUERY)


def test_queries_are_retried_mutations_are_not(fake_github_server: FakeGitHub) -> None:
    """Over real HTTP (``responses`` does not run urllib3's retries on a reset connection)."""
    fake_github = fake_github_server
    gql = client(fake_github)
    fake_github.inject(on("POST", "/graphql/query", (502, {}, {"message": "Bad Gateway"})))
    fake_github.inject(on("POST", "/graphql/query", RESET))
    assert gql.execute(QUERY).data["repository"]["id"] == fake_github.repo_node_id
    assert fake_github.graphql_count("query") == 3
    fake_github.inject(on("POST", "/graphql/mutation", RESET_AFTER))
    with pytest.raises(GitHubUnavailable, match="no usable answer"):
        gql.execute(MUTATION, {"i": {"repositoryId": fake_github.repo_node_id, "name": "refs/heads/x",
                                     "oid": fake_github.branch_sha("main")}}, mutation=True)
    assert fake_github.graphql_count("mutation") == 1  # applied once, never repeated blindly
    assert fake_github.branch_sha("x") == fake_github.branch_sha("main")


def test_a_rate_limited_mutation_is_retried(fake_github: FakeGitHub) -> None:
    gql = client(fake_github)
    fake_github.inject(on("POST", "/graphql/mutation", (403, {"Retry-After": "1"}, {
        "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})))
    gql.execute(MUTATION, {"i": {"repositoryId": fake_github.repo_node_id, "name": "refs/heads/y",
                                 "oid": fake_github.branch_sha("main")}}, mutation=True)
    assert fake_github.graphql_count("mutation") == 2 and fake_github.branch_sha("y") is not None


# ---------------------------------------------------------------------------------------------- tamper evidence
def _store(fake: FakeGitHub) -> BranchRepository:
    return BranchRepository((make_github("t", fake.base_url, for_tests=True), "octo-org/octo-repo"))


def _grow(store: BranchRepository, rid: str, n: int) -> None:
    entry = creation_entry(rid, rid, repo=rid.split("#")[0])
    head = apply_entry(None, entry)
    store.append(head, [entry])
    for _ in range(n):
        entry = LoopTransition(record_id=rid, sequence=head.last_sequence + 1, from_state=head.state,
                               to_state=head.state, trigger="test.note", prev_hash=head.last_hash).sealed()
        head = apply_entry(head, entry)
        store.append(head, [entry])


def test_the_snapshot_says_who_last_touched_the_record(fake_github: FakeGitHub) -> None:
    fake = fake_github
    store = _store(fake)
    _grow(store, "org/repo#1", 2)
    _grow(store, "org/repo#2", 1)
    snap = _store(fake).snapshot("org/repo#1")
    assert snap.record_provenance is not None and snap.record_provenance.by_loopforge
    assert snap.tip_provenance is not None and snap.tip_provenance.by_loopforge
    assert snap.tip_provenance.trailer_records == ("org/repo#2",)  # the tip is another record's commit
    assert not snap.edited_by_someone_else

    # an edit through the Contents API with the same workflow token: signed by GitHub, same bot author,
    # but not LoopForge's commit (no trailer)
    path = "records/org/repo/1/entries/000002.json"
    text = fake.branch_files("loopforge-state")[path].replace("test.note", "test.forged")
    fake.set_file("loopforge-state", path, text, message="Update 000002.json")
    edited = fake.branch_sha("loopforge-state")
    assert edited is not None
    fake.signed_commits.add(edited)
    _grow(store, "org/repo#3", 0)  # LoopForge writes another record on top: the tip is LoopForge's again
    snap = _store(fake).snapshot("org/repo#1")
    assert snap.tip_provenance is not None and snap.tip_provenance.by_loopforge
    assert snap.edited_by_someone_else  # still seen: the newest commit touching records/org/repo/1 is the edit
    assert snap.record_provenance is not None and snap.record_provenance.oid == edited
    assert "without LoopForge's trailer" in snap.record_provenance.describe()
    assert not _store(fake).snapshot("org/repo#2").edited_by_someone_else
    assert fake.violations == []


def test_an_unsigned_commit_or_another_author_is_not_loopforges(fake_github: FakeGitHub) -> None:
    from loopforge.github.snapshot import provenance

    commit = {"oid": "a" * 40, "message": "x\n\nLoopforge-Record: o/r#1\n",
              "author": {"name": "b", "email": "e", "user": {"login": "github-actions[bot]"}},
              "signature": {"isValid": True, "signer": {"login": "web-flow"}}}
    mine = provenance(commit, "github-actions[bot]", "o/r#1")
    assert mine is not None and mine.by_loopforge
    for changed in ({"signature": None}, {"signature": {"isValid": False}},
                    {"author": {"user": {"login": "mallory"}}}, {"message": "x"}):
        other = provenance({**commit, **changed}, "github-actions[bot]", "o/r#1")
        assert other is not None and not other.by_loopforge, changed
    anyone = provenance({**commit, "author": {"user": {"login": "my-app[bot]"}}}, None, "o/r#1")
    assert anyone is not None and anyone.by_loopforge  # writer=None: any author of a signed LoopForge commit
    assert json.dumps(mine.describe())
