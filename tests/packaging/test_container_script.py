"""scripts/container-smoke.sh: builds the Action's image with podman and runs one event through it (docs/container.md).

These are the static checks. The script itself (minutes, root, apt-get, a Debian mirror and PyPI) is run by
.ci/run directly, after the tests, and by docs/container.md's release checklist.
"""

from __future__ import annotations

import json
import re
import stat
import subprocess

from tests.paths import ROOT

SCRIPT = ROOT / "scripts" / "container-smoke.sh"
DOCKERFILE = ROOT / "Dockerfile"
DOC = ROOT / "docs" / "container.md"
TEXT = SCRIPT.read_text()


def podman_run_command() -> str:
    """The `podman run` of the step, joined over its continuation lines, redirections included."""
    m = re.search(r'"\$\{P\[@\]\}" run (.*?)>"\$WORK/step\.stdout"', TEXT, re.S)
    assert m, "no podman run of the step in the script"
    return re.sub(r"\\\n\s*", " ", m.group(1))


def test_script_is_executable_bash_with_strict_mode() -> None:
    assert SCRIPT.stat().st_mode & stat.S_IXUSR, "chmod +x scripts/container-smoke.sh"
    assert TEXT.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in TEXT
    proc = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_embedded_python_compiles() -> None:
    fake = re.search(r"FAKE_PY='\n(.*?)\n'\n", TEXT, re.S)
    check = re.search(r"<<'CHECK'\n(.*?)\nCHECK\n", TEXT, re.S)
    assert fake and check
    compile(fake.group(1), "FAKE_PY", "exec")
    compile(check.group(1), "CHECK", "exec")


def test_podman_is_run_the_way_that_works_here() -> None:
    # docs/container.md and NOTES: runc, explicit ulimits, --root/--runroot flags (not CONTAINERS_STORAGE_CONF)
    assert re.search(r'--root "\$WORK/storage" --runroot "\$WORK/run"', TEXT)
    assert "--runtime runc" in TEXT
    assert "--ulimit nofile=1024:1024 --ulimit nproc=1024:1024" in TEXT
    assert "CONTAINERS_STORAGE_CONF" not in TEXT


def test_image_is_built_from_a_local_base_given_as_build_arg() -> None:
    assert "mmdebstrap" in TEXT and "bookworm" in TEXT
    assert re.search(r'import .*"\$BASE_TAG"', TEXT), "the mmdebstrap tarball is imported as the base image"
    assert re.search(r'build .*--pull=never .*--build-arg "BASE_IMAGE=\$BASE_TAG"', TEXT)
    assert re.search(r"^ARG BASE_IMAGE=", DOCKERFILE.read_text(), re.M)


def test_the_step_gets_the_runners_mounts_and_environment() -> None:
    cmd = podman_run_command()
    mounts = dict(re.findall(r'-v "\$GH/([a-z_]+):(/github/[a-z_]+)"', cmd))
    assert mounts == {"workspace": "/github/workspace", "workflow": "/github/workflow",
                      "file_commands": "/github/file_commands", "home": "/github/home"}
    assert 'cp "$EVENT_FILE" "$GH/workflow/event.json"' in TEXT
    assert "--workdir /github/workspace" in cmd
    for env in ("GITHUB_EVENT_PATH=/github/workflow/event.json", "GITHUB_OUTPUT=/github/file_commands/",
                "GITHUB_STEP_SUMMARY=/github/file_commands/", "GITHUB_API_URL=$API_URL", "INPUT_STORE=branch",
                "INPUT_GITHUB-TOKEN=", "INPUT_STATE-BRANCH=loopforge-state", "INPUT_FAIL-ON-BLOCK=true"):
        assert env in cmd, env
    assert "--network host" in cmd, "the container reaches the fake GitHub on the host's 127.0.0.1"
    assert "--user" not in cmd, "the runner runs container actions as root"


def test_the_step_runs_the_images_own_entrypoint() -> None:
    cmd = podman_run_command()
    assert "--entrypoint" not in TEXT
    assert cmd.rstrip().endswith('"$IMAGE_TAG"'), "no command after the image: its ENTRYPOINT runs, as on GitHub"
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", DOCKERFILE.read_text(), re.M)
    assert entrypoint
    expected = json.dumps(json.loads(entrypoint.group(1)), separators=(",", ":"))
    assert f"[ \"$ENTRYPOINT\" = '{expected}' ]" in TEXT, "the script checks the Dockerfile's ENTRYPOINT"


def test_the_script_checks_outputs_and_the_state_branch() -> None:
    assert "tests/fixtures/lifecycle/01-issues-opened.json" in TEXT
    assert (ROOT / "tests/fixtures/lifecycle/01-issues-opened.json").is_file()
    assert "parse_output_file" in TEXT and '"state": "issue_created"' in TEXT
    assert 'branch_files("loopforge-state")' in TEXT and "records/Codertocat/Hello-World/1/head.json" in TEXT
    assert "image inspect --format '{{.Size}}'" in TEXT
    assert "trap cleanup EXIT" in TEXT


def test_docs_describe_the_script() -> None:
    doc = DOC.read_text()
    assert "scripts/container-smoke.sh" in doc
    assert re.search(r"\d+ MB", doc), "docs/container.md gives the measured image size"
