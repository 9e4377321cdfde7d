#!/usr/bin/env bash
# Container smoke test of the LoopForge Action (docs/container.md).
#
# Builds the Dockerfile with podman (no Docker engine needed) from a Debian bookworm base made locally with
# mmdebstrap (Docker Hub is not needed either), then runs ONE real event through the image exactly as the Actions
# runner runs a container step: the image's own ENTRYPOINT, root, workdir /github/workspace, the runner's mounts
# (/github/workspace, /github/workflow holding event.json, /github/file_commands, /github/home), INPUT_<NAME>
# variables with hyphens kept, and GITHUB_API_URL pointing at the fake GitHub of tests/fakegithub, served by this
# script on 127.0.0.1 (the container shares the host network). Checks the exit code, $GITHUB_OUTPUT, the step
# summary and that the record reached the fake's state branch; prints the image size and the timings.
#
# Usage (as root, from anywhere):  scripts/container-smoke.sh
# Needs: Debian 12 (apt-get installs podman, runc, mmdebstrap, uidmap when missing), a python3 that can import the
# project's test dependencies (`pip install -e ".[dev]"`), and network access to a Debian mirror and to PyPI.
#
# Environment knobs (all optional):
#   LOOPFORGE_SMOKE_MIRROR    Debian mirror for mmdebstrap          (default http://deb.debian.org/debian)
#   LOOPFORGE_SMOKE_DRIVER    podman storage driver, overlay or vfs (default: overlay if the kernel mounts it)
#   LOOPFORGE_SMOKE_EVENT     event fixture to run                  (default tests/fixtures/lifecycle/01-issues-opened.json)
#   LOOPFORGE_SMOKE_KEEP=1    keep the work directory (images, logs, /github/* trees) instead of deleting it
#   PYTHON                    host interpreter for the fake GitHub  (default python3)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
MIRROR=${LOOPFORGE_SMOKE_MIRROR:-http://deb.debian.org/debian}
EVENT_FILE=${LOOPFORGE_SMOKE_EVENT:-tests/fixtures/lifecycle/01-issues-opened.json}
BASE_TAG=localhost/loopforge-smoke-base:bookworm
IMAGE_TAG=localhost/loopforge-action:smoke
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '== %s\n' "$*"; }
die() { printf 'container-smoke: FAIL: %s\n' "$*" >&2; exit 1; }

T0=$(now)
[ "$(id -u)" -eq 0 ] || die "run as root (rootful podman, mmdebstrap root mode)"
[ -f "$EVENT_FILE" ] || die "no event fixture $EVENT_FILE"

# ------------------------------------------------------------------------------------------------ tools
log "tools"
missing=()
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v newuidmap >/dev/null || missing+=(uidmap)
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  echo "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
T_TOOLS=$(now)
echo "podman $(podman --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1 {print $3}'), mmdebstrap $(mmdebstrap --version | awk '{print $2}')"

# ------------------------------------------------------------------------------------------------ work dir + podman
WORK=$(mktemp -d /tmp/loopforge-container-smoke.XXXXXX)
FAKE_PID=""

STORAGE_DRIVER=${LOOPFORGE_SMOKE_DRIVER:-}
if [ -z "$STORAGE_DRIVER" ]; then
  # overlay needs a kernel that mounts overlayfs here (not always true inside containers); vfs always works
  probe="$WORK/overlay-probe"
  mkdir -p "$probe"/{lower,upper,work,merged}
  if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
      "$probe/merged" 2>/dev/null; then
    umount "$probe/merged"
    STORAGE_DRIVER=overlay
  else
    STORAGE_DRIVER=vfs
  fi
  rm -rf "$probe"
fi

# --root/--runroot flags keep everything under $WORK (not /var/lib/containers) and leave the host's podman alone;
# runc as the runtime (what the notes verified; crun is not installed with --no-install-recommends), cgroupfs
# and file events because no systemd runs.
P=(podman --root "$WORK/storage" --runroot "$WORK/run" --storage-driver "$STORAGE_DRIVER" --runtime runc
   --cgroup-manager cgroupfs --events-backend file)

cleanup() {
  local rc=$?
  set +e
  if [ -n "$FAKE_PID" ]; then
    kill "$FAKE_PID" 2>/dev/null
    wait "$FAKE_PID" 2>/dev/null
  fi
  if [ "${LOOPFORGE_SMOKE_KEEP:-0}" = 1 ]; then
    echo "kept $WORK (storage: ${P[*]})"
  else
    "${P[@]}" rm --all --force >/dev/null 2>&1
    "${P[@]}" rmi --all --force >/dev/null 2>&1
    # anything podman left mounted under the work dir (overlay layers, the storage root itself)
    awk -v w="$WORK" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "work dir $WORK, storage driver $STORAGE_DRIVER"

# ------------------------------------------------------------------------------------------------ base image
# The Dockerfile needs a base with Python 3.11, the venv module and ensurepip: Debian bookworm's python3 (3.11)
# + python3-venv. minbase, merged /usr through the hook (otherwise usrmerge drags perl in), no docs/man/locales.
# Locally added CA certificates (/usr/local/share/ca-certificates/*.crt, e.g. of a TLS-intercepting proxy) are
# copied in, so that pip inside the build trusts what the host trusts (Debian's pip uses the system bundle).
log "base image (mmdebstrap bookworm minbase + python3 python3-venv ca-certificates)"
hooks=()
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  # shellcheck disable=SC2016  # "$1" is the chroot directory, expanded by mmdebstrap when it runs the hook
  hooks+=(--customize-hook='cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/"'
          --customize-hook='chroot "$1" update-ca-certificates >/dev/null 2>&1')
  echo "adding the host's local CA certificates: $(cd /usr/local/share/ca-certificates && echo ./*.crt)"
fi
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  "${hooks[@]}" \
  bookworm "$WORK/rootfs.tar" \
  "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
  "deb ${MIRROR%/debian}/debian-security bookworm-security main" \
  >"$WORK/mmdebstrap.log" 2>&1 || { tail -30 "$WORK/mmdebstrap.log"; die "mmdebstrap failed"; }
"${P[@]}" import --quiet --change 'CMD ["/bin/bash"]' "$WORK/rootfs.tar" "$BASE_TAG" >/dev/null
rm -f "$WORK/rootfs.tar"
T_BASE=$(now)
echo "base $BASE_TAG: $("${P[@]}" image inspect --format '{{.Size}}' "$BASE_TAG") bytes"

# ------------------------------------------------------------------------------------------------ build
# --network host: RUN steps reach PyPI through the host's network (no CNI/netavark setup needed).
# --pull=never: BASE_IMAGE is local; never try a registry.
log "podman build --build-arg BASE_IMAGE=$BASE_TAG"
"${P[@]}" build --pull=never --network host "${ULIMITS[@]}" --build-arg "BASE_IMAGE=$BASE_TAG" \
  -f Dockerfile -t "$IMAGE_TAG" . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; die "podman build failed"; }
T_BUILD=$(now)
IMAGE_SIZE=$("${P[@]}" image inspect --format '{{.Size}}' "$IMAGE_TAG")
ENTRYPOINT=$("${P[@]}" image inspect --format '{{json .Config.Entrypoint}}' "$IMAGE_TAG")
echo "image $IMAGE_TAG: $IMAGE_SIZE bytes, entrypoint $ENTRYPOINT"
[ "$ENTRYPOINT" = '["/opt/venv/bin/python","/app/entrypoint.py"]' ] || die "unexpected ENTRYPOINT $ENTRYPOINT"

# ------------------------------------------------------------------------------------------------ fake GitHub
log "fake GitHub on 127.0.0.1"
# Serves until $WORK/stop exists, then writes what the state branch holds (and any OpenAPI violation or crash
# the fake saw) to $WORK/fake-report.json.
FAKE_PY='
import json, os, sys, time
from tests.fakegithub import FakeGitHub
work = sys.argv[1]
fake = FakeGitHub(owner="Codertocat", repo="Hello-World", default_branch="master")
with fake.serve("127.0.0.1", 0) as url:
    with open(os.path.join(work, "fake-url.tmp"), "w") as f:
        f.write(url)
    os.rename(os.path.join(work, "fake-url.tmp"), os.path.join(work, "fake-url"))
    while not os.path.exists(os.path.join(work, "stop")):
        time.sleep(0.05)
    files = fake.branch_files("loopforge-state") if fake.branch_sha("loopforge-state") else {}
    report = {"files": files, "violations": fake.violations, "errors": fake.errors,
              "requests": [f"{c.method} {c.path} -> {c.status}" for c in fake.requests]}
with open(os.path.join(work, "fake-report.json"), "w") as f:
    json.dump(report, f)
'
"$PY" -c "$FAKE_PY" "$WORK" >"$WORK/fake.log" 2>&1 &
FAKE_PID=$!
for _ in $(seq 1 200); do
  [ -f "$WORK/fake-url" ] && break
  kill -0 "$FAKE_PID" 2>/dev/null || { cat "$WORK/fake.log"; die "fake GitHub did not start"; }
  sleep 0.05
done
[ -f "$WORK/fake-url" ] || die "fake GitHub did not start in 10 s"
API_URL=$(cat "$WORK/fake-url")
echo "fake GitHub at $API_URL"

# ------------------------------------------------------------------------------------------------ run one event
EVENT_NAME=$(basename "$EVENT_FILE" .json | cut -d- -f2)
GH="$WORK/github"
mkdir -p "$GH/workspace" "$GH/workflow" "$GH/file_commands" "$GH/home"
cp "$EVENT_FILE" "$GH/workflow/event.json"
RUN_ID=4242
OUTPUT_NAME="set_output_${RUN_ID}_1"
SUMMARY_NAME="step_summary_${RUN_ID}_1"
: >"$GH/file_commands/$OUTPUT_NAME"
: >"$GH/file_commands/$SUMMARY_NAME"

log "podman run $IMAGE_TAG ($EVENT_NAME event from $EVENT_FILE)"
# As the runner does: `docker run --workdir /github/workspace --rm -e ... -v <_github_home>:/github/home
# -v <_github_workflow>:/github/workflow -v <_runner_file_commands>:/github/file_commands -v <repo>:/github/workspace
# <image>` with no command, so the image's ENTRYPOINT runs, as root.
set +e
timeout 300 "${P[@]}" run --rm --network host "${ULIMITS[@]}" \
  --workdir /github/workspace \
  -v "$GH/home:/github/home" \
  -v "$GH/workflow:/github/workflow" \
  -v "$GH/file_commands:/github/file_commands" \
  -v "$GH/workspace:/github/workspace" \
  -e HOME=/github/home -e CI=true -e GITHUB_ACTIONS=true \
  -e "GITHUB_EVENT_NAME=$EVENT_NAME" -e GITHUB_EVENT_PATH=/github/workflow/event.json \
  -e GITHUB_REPOSITORY=Codertocat/Hello-World -e "GITHUB_RUN_ID=$RUN_ID" -e GITHUB_RUN_ATTEMPT=1 \
  -e GITHUB_SERVER_URL=https://github.com -e "GITHUB_API_URL=$API_URL" -e GITHUB_WORKSPACE=/github/workspace \
  -e "GITHUB_OUTPUT=/github/file_commands/$OUTPUT_NAME" -e "GITHUB_STEP_SUMMARY=/github/file_commands/$SUMMARY_NAME" \
  -e "INPUT_GITHUB-TOKEN=ghs_smoke_token" -e INPUT_STORE=branch -e "INPUT_STATE-BRANCH=loopforge-state" \
  -e "INPUT_DYNAMODB-TABLE=loopforge" -e INPUT_POLICY=.github/loopforge.yml -e "INPUT_CHECK-NAME=loopforge" \
  -e "INPUT_DRY-RUN=false" -e "INPUT_FAIL-ON-BLOCK=true" -e "INPUT_GOVERNANCE-TOKEN=" \
  "$IMAGE_TAG" >"$WORK/step.stdout" 2>"$WORK/step.stderr"
STEP_RC=$?
set -e
T_RUN=$(now)
touch "$WORK/stop"
wait "$FAKE_PID" || { cat "$WORK/fake.log"; die "fake GitHub failed"; }
FAKE_PID=""

echo "--- step stdout"; cat "$WORK/step.stdout"
echo "--- step stderr"; cat "$WORK/step.stderr"
echo "--- \$GITHUB_OUTPUT"; cat "$GH/file_commands/$OUTPUT_NAME"
echo "---"

# ------------------------------------------------------------------------------------------------ checks
log "checks"
[ "$STEP_RC" -eq 0 ] || die "the step exited with $STEP_RC"
! grep -q Traceback "$WORK/step.stderr" || die "a traceback on stderr"
"$PY" - "$GH/file_commands/$OUTPUT_NAME" "$GH/file_commands/$SUMMARY_NAME" "$WORK/fake-report.json" <<'CHECK'
import json, sys
from tests.action_harness import parse_output_file  # the runner's parsing: name=value lines and name<<DELIM heredocs

output_path, summary_path, report_path = sys.argv[1:4]
outputs = parse_output_file(open(output_path).read())
expected = {"record-id": "Codertocat/Hello-World#1", "state": "issue_created", "previous-state": "",
            "outcome": "applied", "verdict": "none"}
assert outputs == expected, f"outputs {outputs} != {expected}"
summary = open(summary_path).read()
assert "`issue_created`" in summary, f"step summary lacks the state:\n{summary}"
report = json.load(open(report_path))
problems = report["violations"] + report["errors"]
assert not problems, "the fake GitHub saw problems:\n" + "\n".join(problems)
files = report["files"]
head_path = "records/Codertocat/Hello-World/1/head.json"
assert head_path in files, f"no {head_path} on loopforge-state; branch holds {sorted(files)}"
head = json.loads(files[head_path])
assert head["state"] == "issue_created" and head["last_sequence"] == 1, head
entries = [p for p in files if p.startswith("records/Codertocat/Hello-World/1/entries/")]
assert len(entries) == 1 and json.loads(files[entries[0]])["to_state"] == "issue_created", entries
print(f"outputs ok: {outputs}")
print(f"state branch ok: {head_path} state={head['state']} last_sequence={head['last_sequence']}, "
      f"1 entry ({entries[0].rsplit('/', 1)[-1]})")
print(f"{len(report['requests'])} API requests, no OpenAPI violation")
CHECK
T_END=$(now)

log "PASS"
awk -v s="$IMAGE_SIZE" 'BEGIN { printf "image size: %d bytes (%.0f MB)\n", s, s / 1e6 }'
echo "time: tools $(elapsed "$T0" "$T_TOOLS") s, base image $(elapsed "$T_TOOLS" "$T_BASE") s," \
     "build $(elapsed "$T_BASE" "$T_BUILD") s, run $(elapsed "$T_BUILD" "$T_RUN") s," \
     "total $(elapsed "$T0" "$T_END") s"
