"""Regenerate ``tests/fixtures/graphql/schema.subset.graphql`` from GitHub's published GraphQL schema.

The source is the npm package ``@octokit/graphql-schema`` (MIT, ``schema.graphql``, GitHub's public schema)::

    npm pack @octokit/graphql-schema && tar xzf octokit-graphql-schema-*.tgz      # e.g. in /tmp/gql
    python3 tests/fakegithub/extract_graphql.py /tmp/gql/package

The full schema is 1.2 MB and takes ~4 s to build with ``graphql-core``; the fake needs a small part of it. Kept:

* of every object and interface type named in ``FIELDS``, exactly the listed fields, each **verbatim** (its
  arguments with their types and defaults, its return type, its description);
* every input object, enum and scalar those fields reach (whole, recursively), and every directive definition;
* of unions, the members named in ``FIELDS``; of ``implements`` lists, the interfaces named in ``FIELDS``.

A field's return type that is an object/interface/union not in ``FIELDS`` stops the script (add the type). The
subset is then built and checked with ``graphql.validate_schema``. Since every kept field is copied verbatim, a
query valid against the subset is valid against GitHub's schema; a query using a field outside the subset is
reported by the fake as a violation that names this file.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from graphql import (
    DocumentNode,
    EnumTypeDefinitionNode,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    ListTypeNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ScalarTypeDefinitionNode,
    TypeNode,
    UnionTypeDefinitionNode,
    build_ast_schema,
    parse,
    print_ast,
    validate_schema,
)
from graphql.language import DirectiveDefinitionNode, SchemaDefinitionNode

OUT = Path(__file__).resolve().parents[1] / "fixtures" / "graphql"

#: type -> the fields the fake serves (object and interface types), or the members kept (unions).
FIELDS: dict[str, list[str]] = {
    "Query": ["repository", "rateLimit"],
    "Mutation": ["createCommitOnBranch", "createRef"],
    "RateLimit": ["cost", "limit", "remaining", "used", "resetAt"],
    "Repository": ["id", "nameWithOwner", "object", "ref", "pullRequest"],
    "Ref": ["id", "name", "prefix", "target", "compare"],
    "Comparison": ["aheadBy", "behindBy", "status", "baseTarget", "headTarget", "commits"],
    "ComparisonCommitConnection": ["nodes", "totalCount"],
    "GitObject": ["oid"],
    "Blob": ["oid", "text", "isTruncated", "isBinary", "byteSize"],
    "Tree": ["oid", "entries"],
    "Tag": ["oid"],
    "TreeEntry": ["name", "path", "oid", "type", "mode", "object"],
    "Commit": ["oid", "message", "messageHeadline", "author", "committer", "signature", "file", "history", "tree",
               "parents", "statusCheckRollup", "committedDate", "checkSuites", "associatedPullRequests"],
    "CheckSuiteConnection": ["nodes", "totalCount"],
    "CheckRunConnection": ["nodes", "totalCount"],
    "PullRequestConnection": ["nodes", "totalCount"],
    "WorkflowRun": ["databaseId", "url", "workflow"],
    "Workflow": ["name"],
    "CommitConnection": ["nodes", "totalCount"],
    "CommitHistoryConnection": ["nodes", "totalCount"],
    "GitActor": ["name", "email", "date", "user"],
    "User": ["login", "databaseId"],
    "Bot": ["login", "databaseId"],
    "Organization": ["login"],
    "Mannequin": ["login"],
    "EnterpriseUserAccount": ["login"],
    "Actor": ["login"],
    "GitSignature": ["isValid", "signer", "state", "wasSignedByGitHub"],
    "GpgSignature": ["isValid", "signer", "state", "wasSignedByGitHub"],
    "SmimeSignature": ["isValid", "signer", "state", "wasSignedByGitHub"],
    "SshSignature": ["isValid", "signer", "state", "wasSignedByGitHub"],
    "UnknownSignature": ["isValid", "signer", "state", "wasSignedByGitHub"],
    "PullRequest": ["number", "title", "body", "url", "state", "isDraft", "merged", "mergeCommit", "headRefName",
                    "headRefOid", "baseRefName", "baseRefOid", "baseRef", "isCrossRepository", "author",
                    "authorAssociation", "files", "additions", "deletions", "changedFiles", "createdAt", "updatedAt",
                    "latestReviews", "latestOpinionatedReviews", "labels", "timelineItems", "commits"],
    "PullRequestChangedFileConnection": ["nodes", "totalCount", "pageInfo"],
    "PullRequestChangedFile": ["path", "additions", "deletions", "changeType"],
    "PullRequestReviewConnection": ["nodes", "totalCount", "pageInfo"],
    "PullRequestReview": ["databaseId", "author", "state", "commit", "submittedAt"],
    "LabelConnection": ["nodes", "totalCount", "pageInfo"],
    "Label": ["name"],
    "PullRequestTimelineItemsConnection": ["nodes", "totalCount", "pageInfo"],
    "PullRequestTimelineItems": ["LabeledEvent", "UnlabeledEvent"],
    "LabeledEvent": ["actor", "label", "createdAt"],
    "UnlabeledEvent": ["actor", "label", "createdAt"],
    "PullRequestCommitConnection": ["nodes", "totalCount"],
    "PullRequestCommit": ["commit"],
    "StatusCheckRollup": ["state", "contexts"],
    "StatusCheckRollupContextConnection": ["nodes", "totalCount", "pageInfo"],
    "StatusCheckRollupContext": ["CheckRun", "StatusContext"],
    "CheckRun": ["databaseId", "name", "status", "conclusion", "detailsUrl", "url", "checkSuite"],
    "CheckSuite": ["databaseId", "app", "status", "conclusion", "workflowRun", "checkRuns"],
    "App": ["slug", "name"],
    "StatusContext": ["context", "state", "targetUrl"],
    "PageInfo": ["hasNextPage", "endCursor"],
    "CreateCommitOnBranchPayload": ["clientMutationId", "commit", "ref"],
    "CreateRefPayload": ["clientMutationId", "ref"],
}


def _named(node: TypeNode) -> str:
    while isinstance(node, NonNullTypeNode | ListTypeNode):
        node = node.type
    return node.name.value  # type: ignore[attr-defined,no-any-return]


def extract(full: DocumentNode) -> DocumentNode:
    by_name = {d.name.value: d for d in full.definitions if hasattr(d, "name") and d.name is not None}
    keep: dict[str, object] = {}
    todo_inputs: list[str] = []

    def reach(name: str, where: str) -> None:
        node = by_name.get(name)
        if node is None:
            return  # a built-in scalar (String, Int, Boolean, ID, Float)
        if isinstance(node, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode | UnionTypeDefinitionNode):
            if name not in FIELDS:
                raise SystemExit(f"{where} returns {name}: add {name} to FIELDS")
            return
        if name not in keep:
            keep[name] = node
            if isinstance(node, InputObjectTypeDefinitionNode):
                todo_inputs.append(name)

    for type_name, wanted in FIELDS.items():
        node = by_name.get(type_name)
        if node is None:
            raise SystemExit(f"{type_name} is not in GitHub's schema")
        if isinstance(node, UnionTypeDefinitionNode):
            members = [m for m in node.types if m.name.value in wanted]
            missing = set(wanted) - {m.name.value for m in node.types}
            if missing:
                raise SystemExit(f"{type_name} has no members {sorted(missing)}")
            keep[type_name] = UnionTypeDefinitionNode(name=node.name, description=node.description,
                                                      directives=node.directives, types=tuple(members))
            continue
        assert isinstance(node, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode), type_name
        fields = {f.name.value: f for f in node.fields}
        missing = [f for f in wanted if f not in fields]
        if missing:
            raise SystemExit(f"{type_name} has no fields {missing}")
        seen: set[str] = set()
        chosen = []
        for field in node.fields:  # GitHub's schema defines a few fields twice: keep the first
            if field.name.value in wanted and field.name.value not in seen:
                seen.add(field.name.value)
                chosen.append(field)
                reach(_named(field.type), f"{type_name}.{field.name.value}")
                for arg in field.arguments or ():
                    reach(_named(arg.type), f"{type_name}.{field.name.value}({arg.name.value})")
        interfaces = tuple(i for i in node.interfaces or () if i.name.value in FIELDS)
        cls = type(node)
        keep[type_name] = cls(name=node.name, description=node.description, directives=node.directives,
                              interfaces=interfaces, fields=tuple(chosen))
    while todo_inputs:
        node = by_name[todo_inputs.pop()]
        assert isinstance(node, InputObjectTypeDefinitionNode)
        for field in node.fields or ():
            reach(_named(field.type), f"input {node.name.value}.{field.name.value}")
    directives = [d for d in full.definitions if isinstance(d, DirectiveDefinitionNode)]
    for directive in directives:
        for arg in directive.arguments or ():
            reach(_named(arg.type), f"@{directive.name.value}({arg.name.value})")
    schema_defs = [d for d in full.definitions if isinstance(d, SchemaDefinitionNode)]
    ordered = [keep[n] for n in sorted(keep)]
    assert all(isinstance(n, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode | UnionTypeDefinitionNode
                          | InputObjectTypeDefinitionNode | EnumTypeDefinitionNode | ScalarTypeDefinitionNode)
               for n in ordered)
    return DocumentNode(definitions=tuple([*schema_defs, *directives, *ordered]))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    package = Path(argv[1])
    full = parse((package / "schema.graphql").read_text(encoding="utf-8"), no_location=True)
    subset = extract(full)
    text = ("# A subset of GitHub's GraphQL schema (npm @octokit/graphql-schema, MIT, see LICENSE.md), made by\n"
            "# tests/fakegithub/extract_graphql.py: the fields FakeGitHub serves, each verbatim.\n\n"
            + print_ast(subset) + "\n")
    built = build_ast_schema(parse(text), assume_valid_sdl=False)
    problems = validate_schema(built)
    if problems:
        raise SystemExit("the subset is not a valid schema:\n" + "\n".join(p.message for p in problems))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "schema.subset.graphql").write_text(text, encoding="utf-8")
    shutil.copy(package / "LICENSE.md", OUT / "LICENSE.md")
    version = next((line.split('"')[3] for line in (package / "package.json").read_text().splitlines()
                    if line.strip().startswith('"version"')), "?")
    (OUT / "SOURCE").write_text(f"@octokit/graphql-schema {version} schema.graphql\n", encoding="utf-8")
    print(f"{OUT / 'schema.subset.graphql'}: {len(text):,} bytes, {len(subset.definitions)} definitions "
          f"(from @octokit/graphql-schema {version})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
