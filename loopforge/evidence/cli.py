"""Command-line commands of the evidence package: ``attest verify``, ``attest show`` and ``evidence``.

``add_commands(sub)`` adds them to the ``loopforge`` parser (each subparser sets ``func=<callable(args) -> int>``).
Exit codes: 0 ok, 1 a check failed (``attest verify``), 2 bad input. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from loopforge.cli.options import add_store_options, repo_option, store_from_args, store_parent
from loopforge.cli.output import clean, error_line, fail
from loopforge.errors import InputError, LoopForgeError
from loopforge.evidence.signing import load_public_key
from loopforge.evidence.store import AttestationStore, attestation_store_for, check_sha
from loopforge.evidence.verify import Trust, verify_merge
from loopforge.repository.base import Repository

#: ``open_stores(args) -> (records, attestations)`` (tests may pass another).
StoreOpener = Callable[[argparse.Namespace], tuple[Repository, AttestationStore]]


def open_stores(args: argparse.Namespace) -> tuple[Repository, AttestationStore]:
    """The records' store the shared options name (``--db`` / ``--dynamodb-table`` / ``--branch``, through
    ``loopforge.cli.options.store_from_args``: a read never creates a store) and the evidence beside it."""
    records = store_from_args(args, create=False)
    return records, attestation_store_for(records)


def _trust_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", metavar="PUB.PEM", help="public key (ECDSA P-256 or Ed25519) of signing-key")
    parser.add_argument("--certificate-identity", metavar="I",
                        help="Sigstore: the workflow identity the certificate must name")
    parser.add_argument("--certificate-oidc-issuer", metavar="U",
                        help="Sigstore: the OIDC issuer (https://token.actions.githubusercontent.com)")


def _read(path: str, option: str) -> bytes:
    """The bytes of the file an option names; ``InputError`` (one line) when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{option}: cannot read {clean(path, 200)} ({exc.strerror or exc})") from None


def _trust(args: argparse.Namespace, required: bool) -> Trust | None:
    identity, issuer = args.certificate_identity, args.certificate_oidc_issuer
    if args.key and (identity or issuer):
        raise InputError("pass either --key or --certificate-identity with --certificate-oidc-issuer, not both")
    if bool(identity) != bool(issuer):
        raise InputError("--certificate-identity and --certificate-oidc-issuer go together")
    if args.key:
        return Trust(public_key=load_public_key(_read(args.key, "--key")))
    if identity:
        return Trust(identity=identity, issuer=issuer)
    if required:
        raise InputError("pass --key PUB.PEM, or --certificate-identity I --certificate-oidc-issuer U")
    return None


def _sha(value: str) -> str:
    value = value.strip().lower()
    try:
        return check_sha(value)
    except ValueError:
        raise InputError(f"expected a full commit SHA (40 hex digits), got {clean(value, 80)!r}") from None


def _date(value: str | None, flag: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{flag}: {clean(value, 80)!r} is not a date (YYYY-MM-DD or an ISO time)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _run(body: Callable[[argparse.Namespace, TextIO], int], opener: StoreOpener | None = None
         ) -> Callable[[argparse.Namespace], int]:
    def func(args: argparse.Namespace) -> int:
        args._open_stores = opener or open_stores
        try:
            return body(args, sys.stdout)
        except (LoopForgeError, ValueError) as exc:  # bad input, an unreadable store: one line, exit 2
            print(error_line(exc), file=sys.stderr)
            return 2
    return func


# ---------------------------------------------------------------------------------------------- commands
def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    sha = _sha(args.sha)
    trust = _trust(args, required=True)
    assert trust is not None
    policy_bytes = _read(args.policy_file, "--policy-file") if args.policy_file else None
    records, attestations = args._open_stores(args)
    outcome = verify_merge(sha, attestations, records, trust, policy_bytes=policy_bytes)
    for check in outcome.checks:
        print(clean(check.line(), 1000), file=out)
    if outcome.ok:
        print(f"verified: the evidence of {sha} is signed, about that commit, and matches the trail", file=out)
        return 0
    names = ", ".join(c.name for c in outcome.failures)
    return fail(f"the evidence of {sha} does not verify ({names})")


def _decoded(text: str) -> Any:
    """The statement inside a DSSE envelope or a Sigstore bundle (not verified: ``show`` only displays)."""
    import base64

    data = json.loads(text)
    envelope = data.get("dsseEnvelope", data) if isinstance(data, dict) else {}
    return json.loads(base64.b64decode(envelope.get("payload", "")))


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    sha = _sha(args.sha)
    _records, attestations = args._open_stores(args)
    attestation = attestations.get(sha)
    if attestation is None:
        raise InputError(f"no evidence is stored for {sha}")
    shown: dict[str, Any] = {"merge_sha": sha, "repo": attestation.repo, "record_id": attestation.record_id,
                             "signer": attestation.signer, "created_at": attestation.created_at, "statements": {}}
    for name, text in sorted(attestation.documents.items()):
        try:
            shown["statements"][name] = _decoded(text)
        except (ValueError, TypeError, AttributeError):
            shown["statements"][name] = "(not a readable envelope)"
    if args.format == "json":
        print(json.dumps(shown, indent=2, sort_keys=True, ensure_ascii=True), file=out)
        return 0
    print(f"evidence of {sha} ({clean(attestation.repo, 200)}, record {clean(attestation.record_id, 200)}), "
          f"signed with {clean(attestation.signer, 100)} at {clean(attestation.created_at, 40)} — not "
          f"verified here; run `loopforge attest verify`", file=out)
    for name, statement in shown["statements"].items():
        print(f"\n== {clean(name, 200)}", file=out)
        # JSON with ensure_ascii: untrusted text cannot carry control characters or workflow commands
        print(json.dumps(statement, indent=2, sort_keys=True, ensure_ascii=True), file=out)
    return 0


def cmd_evidence(args: argparse.Namespace, out: TextIO) -> int:
    from loopforge.evidence.export import evidence_rows, to_csv, to_json

    if args.sample is not None and args.sample < 1:
        raise InputError("--sample must be at least 1")
    if args.sample is not None and args.seed is None:
        raise InputError("--sample needs --seed S so the draw can be reproduced")
    if args.repo:
        repo_option(args.repo)
    trust = _trust(args, required=False)
    since, until = _date(args.since, "--since"), _date(args.until, "--until")
    records, attestations = args._open_stores(args)
    rows = evidence_rows(records, attestations, trust=trust, repo=args.repo, since=since, until=until,
                         n=args.sample, seed=args.seed)
    text = to_csv(rows) if args.format == "csv" else to_json(rows)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        out.write(text)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser], *,
                 opener: StoreOpener | None = None) -> None:
    """``attest verify``, ``attest show`` and ``evidence``."""
    attest = sub.add_parser("attest", help="verify or show the signed evidence of a merge",
                            description="The signed evidence of each merge (docs/evidence.md).")
    attest_sub = attest.add_subparsers(dest="attest_command", required=True)
    verify = attest_sub.add_parser("verify", parents=[store_parent()],
                                   help="verify the evidence of a merge commit offline (exit 1 if not)")
    verify.add_argument("sha", help="the merge commit SHA")
    _trust_options(verify)
    verify.add_argument("--policy-file", metavar="PATH", help="also check this policy file's SHA-256")
    verify.set_defaults(func=_run(cmd_verify, opener))
    show = attest_sub.add_parser("show", parents=[store_parent()],
                                 help="print the statements of a merge commit's evidence (not verified)")
    show.add_argument("sha", help="the merge commit SHA")
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(func=_run(cmd_show, opener))

    evidence = sub.add_parser("evidence", parents=[store_parent()],
                              help="the auditor's export: one row per merged pull request")
    evidence.add_argument("--repo", metavar="OWNER/REPO")
    evidence.add_argument("--since", metavar="DATE", help="merged at or after (YYYY-MM-DD or ISO time, UTC)")
    evidence.add_argument("--until", metavar="DATE", help="merged before")
    evidence.add_argument("--sample", type=int, metavar="N", help="draw N merges reproducibly (needs --seed)")
    evidence.add_argument("--seed", type=int, metavar="S")
    evidence.add_argument("--format", choices=("csv", "json"), default="csv")
    evidence.add_argument("--output", "-o", metavar="FILE")
    _trust_options(evidence)
    evidence.set_defaults(func=_run(cmd_evidence, opener))


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m loopforge.evidence.cli``): only these commands; ``loopforge`` itself lists
    this module in ``loopforge.cli.COMMAND_MODULES``."""
    parser = argparse.ArgumentParser(prog="loopforge")
    add_store_options(parser, top_level=True)
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
