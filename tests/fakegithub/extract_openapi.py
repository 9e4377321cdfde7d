"""Regenerate ``tests/fixtures/openapi/api.github.com.subset.json`` from GitHub's official OpenAPI description.

The source is the npm package ``@octokit/openapi`` (MIT, ``generated/api.github.com.json``, OpenAPI 3.0.3)::

    npm install @octokit/openapi            # e.g. in /tmp/npmwork
    python3 tests/fakegithub/extract_openapi.py /tmp/npmwork/node_modules/@octokit/openapi

Only the operations in ``OPERATIONS`` (the ones ``FakeGitHub`` implements) are kept, with every component they
reach through ``$ref`` (schemas, parameters, responses, headers). ``examples`` and ``x-github`` blocks are
dropped to keep the file small; schemas, descriptions and ``$ref`` structure are kept verbatim.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

#: (method, path template) of every operation FakeGitHub serves. Keep in sync with ``tests/fakegithub/core.py``.
OPERATIONS: list[tuple[str, str]] = [
    ("get", "/repos/{owner}/{repo}"),
    ("get", "/repos/{owner}/{repo}/git/ref/{ref}"),
    ("get", "/repos/{owner}/{repo}/git/matching-refs/{ref}"),
    ("post", "/repos/{owner}/{repo}/git/refs"),
    ("patch", "/repos/{owner}/{repo}/git/refs/{ref}"),
    ("delete", "/repos/{owner}/{repo}/git/refs/{ref}"),
    ("post", "/repos/{owner}/{repo}/git/blobs"),
    ("get", "/repos/{owner}/{repo}/git/blobs/{file_sha}"),
    ("post", "/repos/{owner}/{repo}/git/trees"),
    ("get", "/repos/{owner}/{repo}/git/trees/{tree_sha}"),
    ("post", "/repos/{owner}/{repo}/git/commits"),
    ("get", "/repos/{owner}/{repo}/git/commits/{commit_sha}"),
    ("get", "/repos/{owner}/{repo}/contents/{path}"),
    ("put", "/repos/{owner}/{repo}/contents/{path}"),
    ("post", "/repos/{owner}/{repo}/check-runs"),
    ("get", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}"),
    ("get", "/repos/{owner}/{repo}/commits/{ref}/check-runs"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/files"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/commits"),
    ("get", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/events"),
    ("get", "/repos/{owner}/{repo}/collaborators/{username}/permission"),
    ("get", "/orgs/{org}/teams/{team_slug}/memberships/{username}"),
    ("get", "/repos/{owner}/{repo}/actions/runs/{run_id}"),
    ("get", "/repos/{owner}/{repo}/compare/{basehead}"),
]

#: Components kept even if no operation names them (the fake validates undeclared error statuses against it).
EXTRA_COMPONENTS = ["#/components/schemas/basic-error"]

DROP_KEYS = {"examples", "example", "x-github", "x-octokit"}


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k not in DROP_KEYS}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.append(ref)
        for value in node.values():
            found += _refs(value)
    elif isinstance(node, list):
        for value in node:
            found += _refs(value)
    return found


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for method, template in OPERATIONS:
        item = spec["paths"][template]
        out = paths.setdefault(template, {k: v for k, v in item.items() if k == "parameters"})
        out[method] = _strip(item[method])
    components: dict[str, dict[str, Any]] = {}
    todo = _refs(paths) + list(EXTRA_COMPONENTS)
    seen: set[str] = set()
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        if not ref.startswith("#/components/"):
            raise ValueError(f"unsupported $ref {ref}")
        _, _, kind, name = ref.split("/", 3)
        node = _strip(spec["components"][kind][name])
        components.setdefault(kind, {})[name] = node
        todo += _refs(node)
    return {
        "openapi": spec["openapi"],
        "info": {**spec["info"], "x-subset-of": "@octokit/openapi generated/api.github.com.json",
                 "x-subset-operations": [f"{m.upper()} {p}" for m, p in OPERATIONS]},
        "servers": spec.get("servers", []),
        "paths": paths,
        "components": {kind: dict(sorted(items.items())) for kind, items in sorted(components.items())},
    }


def main(argv: list[str]) -> int:
    package = Path(argv[1] if len(argv) > 1 else "/tmp/npmwork/node_modules/@octokit/openapi")
    out_dir = Path(__file__).resolve().parents[1] / "fixtures" / "openapi"
    spec = json.loads((package / "generated" / "api.github.com.json").read_text(encoding="utf-8"))
    version = json.loads((package / "package.json").read_text(encoding="utf-8"))["version"]
    subset = extract(spec)
    subset["info"]["x-octokit-openapi-version"] = version
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "api.github.com.subset.json"
    target.write_text(json.dumps(subset, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    shutil.copyfile(package / "LICENSE", out_dir / "LICENSE")
    print(f"{target}: {len(subset['paths'])} paths, "
          f"{sum(len(v) for v in subset['components'].values())} components, {target.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
