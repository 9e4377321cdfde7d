"""FakeGitHub: its OpenAPI validation, its GitHub semantics, both ways of serving it, and PyGithub against it."""

from __future__ import annotations

import base64
import json
import socket
import time
from typing import Any

import github
import pytest
import requests
import responses
from github import Auth, GithubException, InputGitTreeElement

from loopforge.github.client import make_github
from tests.fakegithub import RESET, RESET_AFTER, TIMEOUT, FakeGitHub, OpenAPIViolation, load_spec, on
from tests.fakegithub.extract_openapi import OPERATIONS
from tests.paths import FIXTURES

A = "a" * 40
B = "b" * 40
REPO = "/repos/octo-org/octo-repo"
SUBSET = FIXTURES / "openapi" / "api.github.com.subset.json"


def call(fake: FakeGitHub, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], Any]:
    status, out_headers, payload = fake.handle(method, fake.api(path), headers,
                                               None if body is None else json.dumps(body))
    return status, out_headers, json.loads(payload) if payload and payload[:1] in (b"{", b"[") else payload


def pygithub(base_url: str) -> github.Github:
    return github.Github(base_url=base_url, auth=Auth.Token("t"), retry=None, seconds_between_requests=None,
                         seconds_between_writes=None)


# ---------------------------------------------------------------------------------------------- the spec subset
def test_subset_covers_every_route_and_stays_small() -> None:
    spec = load_spec()
    assert SUBSET.stat().st_size < 2_000_000
    assert (SUBSET.parent / "LICENSE").read_text().startswith("MIT License")
    routes = {(r.method, r.template) for r in FakeGitHub()._routes}
    assert routes == set(spec.operations()) == {(m.upper(), p) for m, p in OPERATIONS}
    text = SUBSET.read_text()
    # every $ref resolves inside the subset
    refs = [part.split('"')[0] for part in text.split('"$ref": "')[1:]]
    doc = spec.document
    for ref in refs:
        _, _, kind, name = ref.split("/", 3)
        assert name in doc["components"][kind], ref


# ---------------------------------------------------------------------------------------------- validation
def test_a_wrong_request_body_is_caught() -> None:
    fake = FakeGitHub()
    fake.add_pull(1, A)
    with pytest.raises(OpenAPIViolation, match="head_sha"):
        call(fake, "POST", f"{REPO}/check-runs", {"name": "x"})  # head_sha is required
    with pytest.raises(OpenAPIViolation, match="status"):
        call(fake, "POST", f"{REPO}/check-runs", {"name": "x", "head_sha": A, "status": "done"})
    assert len(fake.violations) == 2 and fake.requests[-1].status == 500
    assert fake.runs == {}


def test_a_wrong_response_body_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeGitHub()
    good = fake.git_ref

    def broken(name: str) -> dict[str, Any]:
        data = good(name)
        del data["object"]["sha"]
        return data

    monkeypatch.setattr(fake, "git_ref", broken)
    with pytest.raises(OpenAPIViolation, match=r"\$\.object: 'sha' is a required property"):
        call(fake, "GET", f"{REPO}/git/ref/heads/main")
    assert fake.violations


def test_spec_checks_types_nullable_and_undeclared_statuses() -> None:
    spec = load_spec()
    op = ("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}")
    assert spec.response_errors(*op, 200, {"id": "1"})  # wrong type and missing fields
    assert spec.response_errors(*op, 201, {}) == [
        "status 201 is not a documented response of GET /repos/{owner}/{repo}/check-runs/{check_run_id}"]
    assert spec.response_errors(*op, 502, {"message": "Bad gateway"}) == []  # any error: basic-error
    assert spec.response_errors(*op, 502, {"message": 5})
    fake = FakeGitHub()
    fake.add_pull(1, A)
    _, _, run = call(fake, "POST", f"{REPO}/check-runs", {"name": "x", "head_sha": A})
    assert run["conclusion"] is None  # nullable enum
    assert spec.response_errors(*op, 200, run) == []


def test_unimplemented_endpoints_are_violations() -> None:
    fake = FakeGitHub()
    with pytest.raises(OpenAPIViolation, match="not implemented"):
        call(fake, "GET", f"{REPO}/branches/main")


def test_server_mode_reports_violations_as_500(fake_github_server: FakeGitHub) -> None:
    fake = fake_github_server
    r = requests.post(f"{fake.base_url}{REPO}/check-runs", json={"name": "x"}, timeout=5)
    assert r.status_code == 500 and "head_sha" in r.json()["message"]
    assert fake.violations
    fake.violations.clear()  # this test provoked it on purpose


# ---------------------------------------------------------------------------------------------- git data
def test_git_data_round_trip_and_fast_forward_only() -> None:
    fake = FakeGitHub()
    main = fake.branch_sha("main")
    assert main is not None
    _, _, commit = call(fake, "GET", f"{REPO}/git/commits/{main}")
    base_tree = commit["tree"]["sha"]
    status, _, blob = call(fake, "POST", f"{REPO}/git/blobs", {"content": base64.b64encode(b"bin\0").decode(),
                                                               "encoding": "base64"})
    assert status == 201
    status, _, tree = call(fake, "POST", f"{REPO}/git/trees", {"base_tree": base_tree, "tree": [
        {"path": "a/b/c.txt", "mode": "100644", "type": "blob", "content": "hello\n"},
        {"path": "a/bin", "mode": "100644", "type": "blob", "sha": blob["sha"]},
        {"path": "README.md", "mode": "100644", "type": "blob", "sha": None},
    ]})
    assert status == 201
    assert {e["path"] for e in tree["tree"]} == {"a"}
    # the same content gives the same tree (content-addressed), whatever the entry order
    _, _, again = call(fake, "POST", f"{REPO}/git/trees", {"tree": [
        {"path": "a/bin", "mode": "100644", "type": "blob", "sha": blob["sha"]},
        {"path": "a/b/c.txt", "mode": "100644", "type": "blob", "content": "hello\n"}]})
    assert again["sha"] == tree["sha"]
    assert tree["sha"] != base_tree and len(tree["sha"]) == 40
    # git's own blob hash
    _, _, recursive = call(fake, "GET", f"{REPO}/git/trees/{tree['sha']}?recursive=1")
    paths = {e["path"]: e for e in recursive["tree"]}
    assert set(paths) == {"a", "a/b", "a/b/c.txt", "a/bin"}
    assert paths["a/b/c.txt"]["sha"] == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object
    assert call(fake, "GET", f"{REPO}/git/trees/{tree['sha']}?recursive=0")[2]["tree"] == recursive["tree"]
    assert len(call(fake, "GET", f"{REPO}/git/trees/{tree['sha']}")[2]["tree"]) == 1

    status, _, new = call(fake, "POST", f"{REPO}/git/commits", {"message": "m", "tree": tree["sha"],
                                                                "parents": [main]})
    assert status == 201 and new["parents"][0]["sha"] == main
    status, _, orphan = call(fake, "POST", f"{REPO}/git/commits", {"message": "o", "tree": tree["sha"],
                                                                   "parents": []})
    assert status == 201 and orphan["parents"] == []

    assert call(fake, "PATCH", f"{REPO}/git/refs/heads/main", {"sha": new["sha"], "force": False})[0] == 200
    status, _, err = call(fake, "PATCH", f"{REPO}/git/refs/heads/main", {"sha": orphan["sha"], "force": False})
    assert (status, err["message"]) == (422, "Update is not a fast forward")
    assert fake.branch_sha("main") == new["sha"]
    assert call(fake, "PATCH", f"{REPO}/git/refs/heads/main", {"sha": orphan["sha"], "force": True})[0] == 200

    assert call(fake, "GET", f"{REPO}/git/ref/heads/state")[0] == 404
    status, headers, ref = call(fake, "POST", f"{REPO}/git/refs", {"ref": "refs/heads/state", "sha": new["sha"]})
    assert status == 201 and ref["object"]["sha"] == new["sha"] and headers["Location"].endswith("heads/state")
    status, _, err = call(fake, "POST", f"{REPO}/git/refs", {"ref": "refs/heads/state", "sha": new["sha"]})
    assert (status, err["message"]) == (422, "Reference already exists")
    assert call(fake, "POST", f"{REPO}/git/refs", {"ref": "refs/heads/x", "sha": B})[0] == 422
    assert fake.branch_files("state") == {"a/b/c.txt": "hello\n", "a/bin": "bin\0"}
    _, _, matching = call(fake, "GET", f"{REPO}/git/matching-refs/heads/st")
    assert [r["ref"] for r in matching] == ["refs/heads/state"]
    assert call(fake, "DELETE", f"{REPO}/git/refs/heads/state")[0] == 204
    assert call(fake, "GET", f"{REPO}/git/ref/heads/state")[0] == 404
    _, _, got = call(fake, "GET", f"{REPO}/git/blobs/{blob['sha']}")
    assert base64.b64decode(got["content"]) == b"bin\0"
    assert call(fake, "GET", f"{REPO}/git/blobs/{blob['sha']}", headers={"Accept": "application/vnd.github.raw"}
                )[2] == b"bin\0"
    assert fake.violations == []


def test_tree_errors() -> None:
    fake = FakeGitHub()
    for bad in ({"path": "../x", "mode": "100644", "type": "blob", "content": "x"},
                {"path": "x", "mode": "100644", "type": "blob", "content": "x", "sha": A},
                {"path": "x", "mode": "100644", "type": "blob", "sha": A}):
        assert call(fake, "POST", f"{REPO}/git/trees", {"tree": [bad]})[0] == 422
    assert call(fake, "POST", f"{REPO}/git/trees", {"base_tree": A, "tree": []})[0] == 422
    assert call(fake, "POST", f"{REPO}/git/commits", {"message": "m", "tree": A})[0] == 422


# ---------------------------------------------------------------------------------------------- contents
def test_contents_read_and_conditional_writes() -> None:
    fake = FakeGitHub()
    fake.set_file("data", "dir/x.json", '{"a": 1}\n')
    _, _, file = call(fake, "GET", f"{REPO}/contents/dir/x.json?ref=data")
    assert file["type"] == "file" and base64.b64decode(file["content"]) == b'{"a": 1}\n'
    _, _, listing = call(fake, "GET", f"{REPO}/contents/dir?ref=data")
    assert [i["name"] for i in listing] == ["x.json"]
    assert [i["name"] for i in call(fake, "GET", f"{REPO}/contents?ref=data")[2]] == ["README.md", "dir"]
    assert call(fake, "GET", f"{REPO}/contents/dir/x.json")[0] == 404  # not on main
    status, _, err = call(fake, "GET", f"{REPO}/contents/x?ref=nope")
    assert (status, err["message"]) == (404, "No commit found for the ref nope")
    assert fake.handle("GET", fake.api(f"{REPO}/contents/dir/x.json?ref=data"),
                       {"Accept": "application/vnd.github.raw+json"})[2] == b'{"a": 1}\n'

    def put(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, _, out = call(fake, "PUT", f"{REPO}/contents/dir/x.json",
                              {"message": "m", "content": base64.b64encode(b"new").decode(), "branch": "data",
                               **body})
        return status, out

    status, err = put({})
    assert (status, err["message"]) == (422, 'Invalid request.\n\n"sha" wasn\'t supplied.')
    status, err = put({"sha": B})
    assert (status, err["message"]) == (409, f"dir/x.json does not match {B}")
    status, ok = put({"sha": file["sha"]})
    assert status == 200 and ok["commit"]["parents"][0]["sha"] != ok["commit"]["sha"]
    status, err = put({"sha": file["sha"]})  # now stale
    assert status == 409
    assert fake.branch_files("data")["dir/x.json"] == "new"
    status, created = call(fake, "PUT", f"{REPO}/contents/new.txt",
                           {"message": "m", "content": base64.b64encode(b"n").decode()})[::2]
    assert status == 201 and created["content"]["path"] == "new.txt"
    assert call(fake, "PUT", f"{REPO}/contents/y", {"message": "m", "content": "eA==", "branch": "zz"})[0] == 404


# ---------------------------------------------------------------------------------------------- checks
def test_check_runs_limits_filters_and_read_only_tokens() -> None:
    fake = FakeGitHub()
    fake.add_pull(5, A)
    assert call(fake, "POST", f"{REPO}/check-runs", {"name": "x", "head_sha": B})[0] == 422  # unknown commit
    _, _, first = call(fake, "POST", f"{REPO}/check-runs", {"name": "loop", "head_sha": A, "status": "in_progress"})
    assert first["pull_requests"][0]["number"] == 5 and first["app"]["slug"] == "github-actions"
    status, _, done = call(fake, "PATCH", f"{REPO}/check-runs/{first['id']}", {
        "conclusion": "failure", "output": {"title": "t", "summary": "s", "annotations": [
            {"path": "a.py", "start_line": 1, "end_line": 1, "annotation_level": "failure", "message": "m"}]}})
    assert status == 200 and done["status"] == "completed" and done["output"]["annotations_count"] == 1
    call(fake, "POST", f"{REPO}/check-runs", {"name": "loop", "head_sha": A, "conclusion": "success"})
    call(fake, "POST", f"{REPO}/check-runs", {"name": "other", "head_sha": A})
    _, _, latest = call(fake, "GET", f"{REPO}/commits/{A}/check-runs?check_name=loop")
    assert latest["total_count"] == 1 and latest["check_runs"][0]["conclusion"] == "success"
    _, _, every = call(fake, "GET", f"{REPO}/commits/{A}/check-runs?filter=all")
    assert every["total_count"] == 3
    assert [r.name for r in fake.check_runs(A)] == ["loop", "loop", "other"]

    too_long = "x" * 65_536
    status, _, err = call(fake, "POST", f"{REPO}/check-runs",
                          {"name": "x", "head_sha": A, "output": {"title": "t", "summary": too_long}})
    assert (status, err["message"]) == (422, "Invalid request.\n\nOnly 65535 characters are allowed; 65536 were "
                                             "supplied.")
    wide = "é" * 40_000  # 40,000 characters, 80,000 bytes
    status, _, err = call(fake, "PATCH", f"{REPO}/check-runs/{first['id']}",
                          {"output": {"title": "t", "summary": "s", "text": wide}})
    assert status == 422 and err["errors"][0]["message"] == "text exceeds a maximum bytesize of 65535"
    assert call(fake, "POST", f"{REPO}/check-runs", {"name": "x", "head_sha": A, "output": {
        "title": "t", "summary": "s", "annotations": [
            {"path": "a", "start_line": 1, "end_line": 1, "annotation_level": "notice", "message": "m"}] * 51}}
                )[0] == 422
    ok = "é" * 30_000
    assert call(fake, "POST", f"{REPO}/check-runs",
                {"name": "x", "head_sha": A, "output": {"title": "t", "summary": ok}})[0] == 201

    fake.read_only_token = True
    status, _, err = call(fake, "POST", f"{REPO}/check-runs", {"name": "x", "head_sha": A})
    assert (status, err["message"]) == (403, "Resource not accessible by integration")
    assert call(fake, "GET", f"{REPO}/check-runs/{first['id']}")[0] == 200
    fake.read_only_token = False
    fake.permissions["contents"] = "read"
    assert call(fake, "POST", f"{REPO}/git/blobs", {"content": "x"})[0] == 403
    assert call(fake, "POST", f"{REPO}/check-runs", {"name": "x", "head_sha": A})[0] == 201
    assert fake.violations == []


# ---------------------------------------------------------------------------------------------- pulls, issues, people
def test_pagination_with_link_headers() -> None:
    fake = FakeGitHub()
    fake.add_pull(9, A, files=[(f"f{i}.py", i, 1) for i in range(75)])
    _, headers, page1 = call(fake, "GET", f"{REPO}/pulls/9/files")
    assert len(page1) == 30 and 'rel="next"' in headers["Link"] and "page=3" in headers["Link"]
    _, headers, page3 = call(fake, "GET", f"{REPO}/pulls/9/files?per_page=30&page=3")
    assert len(page3) == 15 and 'rel="next"' not in headers["Link"] and 'rel="prev"' in headers["Link"]
    _, headers, big = call(fake, "GET", f"{REPO}/pulls/9/files?per_page=500")
    assert len(big) == 75 and "Link" not in headers  # per_page is capped at 100


def test_seeded_pulls_reviews_labels_permissions_teams() -> None:
    fake = FakeGitHub()
    fake.add_pull(7, A, title="Fix", user="alice", labels=["x"], files=[("a.py", 3, 1)], draft=True,
                  commits=[B, A])
    fake.set_permission("bob", "maintain")
    fake.add_review(7, "bob", "approved")
    fake.add_label_event(7, "ready", "carol")
    _, _, pr = call(fake, "GET", f"{REPO}/pulls/7")
    assert (pr["draft"], pr["additions"], pr["commits"], [lb["name"] for lb in pr["labels"]]) == (
        True, 3, 2, ["x", "ready"])
    _, _, reviews = call(fake, "GET", f"{REPO}/pulls/7/reviews")
    assert reviews[0]["state"] == "APPROVED" and reviews[0]["commit_id"] == A
    assert reviews[0]["author_association"] == "COLLABORATOR"
    assert [c["sha"] for c in call(fake, "GET", f"{REPO}/pulls/7/commits")[2]] == [B, A]
    assert [p["number"] for p in call(fake, "GET", f"{REPO}/commits/{B}/pulls")[2]] == [7]
    _, _, events = call(fake, "GET", f"{REPO}/issues/7/events")
    assert [(e["event"], e["actor"]["login"], e["label"]["name"]) for e in events] == [("labeled", "carol", "ready")]
    _, _, issue = call(fake, "GET", f"{REPO}/issues/7")
    assert "pull_request" in issue
    assert call(fake, "GET", f"{REPO}/issues/8")[0] == 404
    _, _, perm = call(fake, "GET", f"{REPO}/collaborators/bob/permission")
    assert (perm["permission"], perm["role_name"]) == ("write", "maintain")
    assert call(fake, "GET", f"{REPO}/collaborators/zed/permission")[2]["permission"] == "none"
    fake.add_team_member("octo-org", "reviewers", "bob")
    status, _, err = call(fake, "GET", "/orgs/octo-org/teams/reviewers/memberships/bob")
    assert (status, err["message"]) == (403, "Resource not accessible by integration")
    fake.members_readable = True
    assert call(fake, "GET", "/orgs/octo-org/teams/reviewers/memberships/bob")[2]["state"] == "active"
    assert call(fake, "GET", "/orgs/octo-org/teams/reviewers/memberships/zed")[0] == 404
    fake.add_workflow_run(55, A, pull_requests=[7])
    assert call(fake, "GET", f"{REPO}/actions/runs/55")[2]["pull_requests"][0]["number"] == 7
    assert call(fake, "GET", "/repos/other/repo")[0] == 404
    assert fake.violations == []


# ---------------------------------------------------------------------------------------------- PyGithub, both modes
def _pygithub_tour(gh: github.Github, fake: FakeGitHub) -> None:
    fake.add_pull(7, A, labels=["loop"], files=[(f"src/{i}.py", 1, 0) for i in range(150)], user="alice")
    fake.add_review(7, "bob", "CHANGES_REQUESTED")
    fake.add_label_event(7, "ready", "carol")
    repo = gh.get_repo("octo-org/octo-repo")
    assert repo.default_branch == "main"
    pr = repo.get_pull(7)
    assert (pr.head.sha, pr.user.login) == (A, "alice")
    before = len(fake.requests)
    assert len(list(pr.get_files())) == 150  # PyGithub follows the Link header: 5 pages of 30
    assert len(fake.requests) - before == 5
    assert [r.state for r in pr.get_reviews()] == ["CHANGES_REQUESTED"]
    assert [e.label.name for e in repo.get_issue(7).get_events()] == ["ready"]
    run = repo.create_check_run("loopforge", A, status="in_progress",
                                output={"title": "Checking", "summary": "…"})
    run.edit(conclusion="success", output={"title": "OK", "summary": "all good"})
    assert repo.get_check_run(run.id).conclusion == "success"
    assert [r.status for r in fake.check_runs(A)] == ["completed"]
    res = repo.create_file("docs/a.txt", "add", "hello", branch="main")
    repo.update_file("docs/a.txt", "update", "hello2", res["content"].sha, branch="main")
    with pytest.raises(GithubException) as stale:
        repo.update_file("docs/a.txt", "update", "hello3", res["content"].sha, branch="main")
    assert stale.value.status == 409
    content = repo.get_contents("docs/a.txt", ref="main")
    assert not isinstance(content, list) and content.decoded_content == b"hello2"
    ref = repo.get_git_ref("heads/main")
    base = repo.get_git_commit(ref.object.sha)
    tree = repo.create_git_tree([InputGitTreeElement("x/y.txt", "100644", "blob", content="y")], base.tree)
    commit = repo.create_git_commit("add y", tree, [base])
    ref.edit(commit.sha)
    assert repo.get_git_ref("heads/main").object.sha == commit.sha
    with pytest.raises(GithubException) as lost:
        ref.edit(base.sha)  # not a fast forward
    assert lost.value.status == 422
    assert fake.branch_files("main")["x/y.txt"] == "y"


def test_pygithub_in_process(fake_github: FakeGitHub) -> None:
    _pygithub_tour(pygithub(fake_github.base_url), fake_github)


def test_pygithub_over_http(fake_github_server: FakeGitHub) -> None:
    assert fake_github_server.base_url.startswith("http://127.0.0.1:")
    _pygithub_tour(pygithub(fake_github_server.base_url), fake_github_server)


def test_custom_base_url_with_a_path_prefix() -> None:
    fake = FakeGitHub(base_url="https://ghe.example.com:443/api/v3")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        fake.install(rsps)
        repo = pygithub(fake.base_url).get_repo("octo-org/octo-repo")
        assert repo.url == "https://ghe.example.com:443/api/v3/repos/octo-org/octo-repo"
        assert repo.get_git_ref("heads/main").object.sha == fake.branch_sha("main")
    plain = FakeGitHub(base_url="https://api.github.com")  # PyGithub's default; it still sends ":443"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        plain.install(rsps)
        assert github.Github(auth=Auth.Token("t"), retry=None).get_repo("octo-org/octo-repo").name == "octo-repo"
    assert fake.violations == plain.violations == []


# ---------------------------------------------------------------------------------------------- faults
def test_injected_statuses_and_resets_in_process(fake_github: FakeGitHub) -> None:
    fake = fake_github
    fake.inject(on("GET", f"{REPO}/git/ref/", (503, {}, {"message": "Service Unavailable"})))
    gh = pygithub(fake.base_url)
    repo = gh.get_repo("octo-org/octo-repo")
    with pytest.raises(GithubException) as err:
        repo.get_git_ref("heads/main")
    assert err.value.status == 503
    assert repo.get_git_ref("heads/main").object.sha  # times=1: the next one is served
    fake.inject(on("GET", f"{REPO}/pulls/", RESET))
    fake.add_pull(3, A)
    with pytest.raises(requests.exceptions.ConnectionError):
        repo.get_pull(3)
    fake.inject(on("GET", f"{REPO}/issues/", TIMEOUT))
    with pytest.raises(requests.exceptions.ReadTimeout):
        repo.get_issue(3)
    assert [c.status for c in fake.requests[-2:]] == [0, 0]


def test_reset_after_applies_the_write(fake_github: FakeGitHub) -> None:
    fake = fake_github
    fake.inject(on("POST", f"{REPO}/git/blobs", RESET_AFTER))
    repo = pygithub(fake.base_url).get_repo("octo-org/octo-repo")
    with pytest.raises(requests.exceptions.ConnectionError):
        repo.create_git_blob("payload", "utf-8")
    assert b"payload" in fake.git.blobs.values()


def test_injector_sees_index_method_and_path() -> None:
    fake = FakeGitHub()
    seen: list[tuple[int, str, str]] = []

    @fake.inject
    def spy(index: int, method: str, path: str) -> None:
        seen.append((index, method, path))

    call(fake, "GET", REPO)
    call(fake, "GET", f"{REPO}/git/ref/heads/main?x=1")
    assert seen == [(0, "GET", REPO), (1, "GET", f"{REPO}/git/ref/heads/main")]
    assert fake.count("GET", "/git/ref/") == 1


def test_retries_over_http_with_the_loopforge_client(fake_github_server: FakeGitHub) -> None:
    """Real urllib3 retries: 502 and resets on GET are retried; POST is retried only on rate limits."""
    fake = fake_github_server
    fake.add_pull(4, A)
    gh = make_github("t", fake.base_url, for_tests=True)
    repo = gh.get_repo("octo-org/octo-repo")  # GET /repos
    fake.inject(on("GET", f"{REPO}/pulls/4", (502, {}, {"message": "Bad Gateway"}), times=2))
    assert repo.get_pull(4).number == 4
    fake.inject(on("GET", f"{REPO}/issues/4", RESET))
    assert repo.get_issue(4).number == 4
    assert [c.status for c in fake.requests if c.path.startswith(f"{REPO}/pulls/4")] == [502, 502, 200]
    # a secondary rate limit on a POST: refused, not run, so it is retried after retry-after
    fake.inject(on("POST", f"{REPO}/check-runs", (403, {"Retry-After": "1"}, {
        "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})))
    fake.inject(on("POST", f"{REPO}/check-runs", (429, {"Retry-After": "1"}, {"message": "Too many requests"})))
    started = time.monotonic()
    run = repo.create_check_run("loopforge", A)
    assert time.monotonic() - started < 1  # retry-after is capped in for_tests mode
    assert [c.status for c in fake.requests if c.path == f"{REPO}/check-runs"] == [403, 429, 201]
    assert len(fake.check_runs(A)) == 1 and run.name == "loopforge"
    # a 502 on a POST may have been applied: not retried (no duplicate check run)
    fake.inject(on("POST", f"{REPO}/check-runs", (502, {}, {"message": "Bad Gateway"})))
    with pytest.raises(GithubException):
        repo.create_check_run("loopforge", A)
    # a permission 403 is final
    fake.read_only_token = True
    with pytest.raises(GithubException) as denied:
        repo.create_check_run("loopforge", A)
    assert denied.value.status == 403
    assert [c.status for c in fake.requests if c.path == f"{REPO}/check-runs"][-2:] == [502, 403]


def test_timeout_over_http(fake_github_server: FakeGitHub) -> None:
    fake = fake_github_server
    fake.hang_seconds = 3
    fake.inject(on("GET", REPO, TIMEOUT))
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{fake.base_url}{REPO}", timeout=0.3)
    assert time.monotonic() - started < 2
    assert requests.get(f"{fake.base_url}{REPO}", timeout=5).status_code == 200


def test_reset_over_http_is_a_connection_error(fake_github_server: FakeGitHub) -> None:
    fake = fake_github_server
    fake.inject(on("GET", REPO, RESET))
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{fake.base_url}{REPO}", timeout=5)


def test_server_survives_concurrent_clients(fake_github_server: FakeGitHub) -> None:
    import concurrent.futures

    fake = fake_github_server

    def work(i: int) -> int:
        with requests.Session() as s:
            return s.post(f"{fake.base_url}{REPO}/git/blobs", json={"content": f"blob {i}"}, timeout=5).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(work, range(40))) == {201}
    assert len(fake.git.blobs) >= 40


def test_serve_restores_base_url_and_frees_the_port() -> None:
    fake = FakeGitHub()
    with fake.serve() as url:
        port = int(url.rsplit(":", 1)[1])
        assert fake.base_url == url
    assert fake.base_url == "https://api.github.com:443"
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
