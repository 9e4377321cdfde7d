#!/usr/bin/env python3
"""Print a real evidence example (docs/evidence.md): the lifecycle of tests/fixtures/lifecycle (GitHub's example
payloads: issue → PR → CI → review → merge) recorded by the Action's recorder into a temporary SQLite store, a
policy evaluation recorded with the merge, then ``attest_merge`` with a fresh Ed25519 key and ``loopforge attest
verify``. Prints the statements (decoded from their DSSE envelopes) and the verify output.

    python3 scripts/evidence_example.py            # everything
    python3 scripts/evidence_example.py vsa        # one statement: vsa, reviews, ci or trail

Entry hashes include recording times and timeVerified is now, so those differ between runs; the rest is the same.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402

from loopforge.evidence import KeySigner, attest_merge, attestation_store_for, merge_facts_from_record  # noqa: E402
from loopforge.evidence.cli import main as evidence_cli  # noqa: E402
from loopforge.github.events import parse_event  # noqa: E402
from loopforge.github.lookup import OfflineLookup  # noqa: E402
from loopforge.github.recorder import RunInfo, record_event, route  # noqa: E402
from loopforge.repository.sqlite import SQLiteRepository  # noqa: E402
from loopforge.service import LoopService  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "lifecycle"
RECORD = "Codertocat/Hello-World#1"
POLICY = b"version: 1\nrules:\n  - name: reviewed\n    require:\n      approvals: {count: 1}\n"


def record_lifecycle(repo: SQLiteRepository) -> None:
    lookup = OfflineLookup()
    import hashlib

    for run, path in enumerate(sorted(FIXTURES.glob("*.json"))[:7], start=9001):
        payload: dict[str, Any] = json.loads(path.read_text())
        if "review" in payload:  # another user than the author reviews (the fixture's author approves itself)
            payload["review"]["user"] = dict(payload["review"]["user"], login="octo-reviewer", id=583231)
        event = parse_event(path.stem.split("-")[1], payload)
        lookup.remember(event.pull_request)
        routed = route(event, lookup)
        assert routed is not None
        record_event(LoopService(repository=repo), event, routed, RunInfo(run_id=str(run)))
    # what the Action's governance step records with the merge (the policy's real digest, its one rule passed)
    evaluation = {"verdict": "pass", "reason": "all applicable rules passed (1 passed)", "risk_tier": "low",
                  "risk_reason": "no risk rule matched", "head_sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
                  "policy": {"source": ".github/loopforge.yml", "sha256": hashlib.sha256(POLICY).hexdigest()},
                  "blocking": [], "results": [{"name": "reviewed", "status": "passed", "reason": "1 approval"}],
                  "notes": [], "missing_permissions": [], "gates": {}}
    LoopService(repository=repo).note(RECORD, "policy.evaluated", reason="pass", evidence={"policy": evaluation},
                                      idempotency_key="gh:9007:pull_request.closed#policy")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("statement", nargs="?", choices=("vsa", "reviews", "ci", "trail"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = SQLiteRepository(Path(tmp) / "loopforge.db")
        record_lifecycle(repo)
        head = repo.head(RECORD)
        assert head is not None
        facts = merge_facts_from_record(head, repo.entries(RECORD))
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        result = attest_merge(facts, attestation_store_for(repo), KeySigner(pem))
        assert result.statements is not None
        names = [args.statement] if args.statement else ["vsa", "reviews", "ci", "trail"]
        for name in names:
            if not args.statement:
                print(f"== {name}")
            print(json.dumps(result.statements.statement(name), indent=2, sort_keys=True))
        if args.statement:
            return 0
        public = Path(tmp) / "pub.pem"
        public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
        (Path(tmp) / "loopforge.yml").write_bytes(POLICY)
        print(f"== loopforge attest verify {facts.merge_sha} --key pub.pem --policy-file loopforge.yml")
        return evidence_cli(["attest", "verify", facts.merge_sha, "--key", str(public), "--policy-file",
                             str(Path(tmp) / "loopforge.yml"), "--db", str(Path(tmp) / "loopforge.db")])


if __name__ == "__main__":
    sys.exit(main())
