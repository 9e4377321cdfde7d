# Image of the LoopForge GitHub Action (see action.yml and docs/action.md).
#
# Two ways to use it:
#   * `runs.image: Dockerfile` in action.yml: the runner builds this file on every job (slow, no registry needed);
#   * prebuilt: .github/workflows/release.yml builds it on each `v*` tag and pushes
#     ghcr.io/<org>/loopforge-action:<tag>, and a release's action.yml points at `docker://` that image.
#
# The base is a build argument so the image can be built from a locally made base, e.g.
#   podman build --build-arg BASE_IMAGE=localhost/bookworm-python:latest -t loopforge-action .
# Any base works that has Python 3.11 with the `venv` module and ensurepip (Debian: python3 + python3-venv).
# Both stages use the same base, so the venv's interpreter symlinks stay valid in the final stage.
#
# Dependencies are pinned with hashes in requirements/action.txt (how to regenerate it is written at its top) and
# installed from wheels only: no compiler is needed, and nothing but the venv and entrypoint.py reaches the final
# stage. Do not add USER or WORKDIR to the final stage: GitHub runs container actions as root with
# /github/workspace as the working directory.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python3 -m venv /opt/venv

# Dependencies first: this layer is reused as long as requirements/action.txt does not change.
COPY requirements/action.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: -r /tmp/requirements.txt

# Then the project itself, built into a wheel and installed without dependencies (they are all above).
WORKDIR /src
COPY pyproject.toml README.md ./
COPY loopforge ./loopforge
RUN /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels . \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps --no-index /tmp/wheels/loopforge-*.whl \
    && /opt/venv/bin/pip uninstall --yes pip setuptools \
    && /opt/venv/bin/python -c "import loopforge, github, pydantic, boto3, yaml"

# ---------------------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}

LABEL org.opencontainers.image.title="loopforge-action" \
      org.opencontainers.image.description="LoopForge: lifecycle records, governance policy and a required check for GitHub" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

COPY --from=builder /opt/venv /opt/venv
COPY entrypoint.py /app/entrypoint.py

ENTRYPOINT ["/opt/venv/bin/python", "/app/entrypoint.py"]
