"""Guards named ``module:function``: loaded by file path from the base-branch checkout, nowhere else."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopforge import LoopService, LoopState
from loopforge.policy import (
    FakeContext,
    GuardLoadError,
    Status,
    evaluate,
    load_guard,
    load_policy,
    load_policy_guards,
)
from loopforge.policy.guards import forget_loaded_guards

GUARD = '''
from loopforge import TransitionError

def require_ticket(record, previous_state, new_state, trigger):
    if not record.metadata.get("ticket"):
        raise TransitionError("no change ticket in the record", rule="ticket")

def refuse(record, previous_state, new_state, trigger):
    return False

def crash(record, previous_state, new_state, trigger):
    raise ValueError("bad guard")

NOT_CALLABLE = 3
'''


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    forget_loaded_guards()
    yield
    forget_loaded_guards()


def base(tmp_path: Path, files: dict[str, str], code_dir: str = ".github/loopforge") -> Path:
    root = tmp_path / "base"
    for name, text in files.items():
        path = root / code_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / code_dir).mkdir(parents=True, exist_ok=True)
    return root


def test_load_guard_from_code_dir(tmp_path: Path) -> None:
    root = base(tmp_path, {"release_guards.py": GUARD})
    fn = load_guard("release_guards:refuse", root, code_dir=".github/loopforge")
    assert fn(None, None, None, "t") is False
    assert "release_guards" not in sys.modules  # registered under a private name only
    assert fn.__module__.startswith("_loopforge_guards_")


def test_guard_packages_and_relative_imports(tmp_path: Path) -> None:
    root = base(tmp_path, {"pkg/__init__.py": "", "pkg/helpers.py": "VALUE = 42\n",
                           "pkg/checks.py": "from .helpers import VALUE\n\ndef g(*a):\n    return VALUE\n"})
    assert load_guard("pkg.checks:g", root, code_dir=".github/loopforge")() == 42


def test_guard_is_not_taken_from_sys_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    evil = tmp_path / "pr_head"
    evil.mkdir()
    (evil / "shadow_guard.py").write_text("def g(*a):\n    return 'from the PR'\n")
    monkeypatch.syspath_prepend(str(evil))
    monkeypatch.chdir(evil)
    root = base(tmp_path, {})
    with pytest.raises(GuardLoadError, match="module shadow_guard not found under code_dir"):
        load_guard("shadow_guard:g", root, code_dir=".github/loopforge")
    root2 = base(tmp_path, {"shadow_guard.py": "def g(*a):\n    return 'from the base'\n"})
    assert load_guard("shadow_guard:g", root2, code_dir=".github/loopforge")() == "from the base"


@pytest.mark.parametrize(("spec", "code_dir", "message"), [
    ("../evil:g", ".", "expected module:function"),
    ("/etc/passwd:g", ".", "expected module:function"),
    ("evil/x:g", ".", "expected module:function"),
    ("ok:g", "../outside", "must be relative"),
    ("ok:g", "/tmp", "must be relative"),
])
def test_paths_outside_are_refused(tmp_path: Path, spec: str, code_dir: str, message: str) -> None:
    root = base(tmp_path, {"ok.py": "def g(*a):\n    return True\n"}, code_dir=".")
    with pytest.raises(GuardLoadError, match=message):
        load_guard(spec, root, code_dir=code_dir)


def test_symlink_escaping_the_checkout_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.py").write_text("def g(*a):\n    return True\n")
    root = base(tmp_path, {})
    os.symlink(outside / "evil.py", root / ".github" / "loopforge" / "linked.py")
    with pytest.raises(GuardLoadError, match="resolves outside the base-branch checkout"):
        load_guard("linked:g", root, code_dir=".github/loopforge")
    os.symlink(outside, root / "escape")
    with pytest.raises(GuardLoadError, match="resolves outside"):
        load_guard("evil:g", root, code_dir="escape")


def test_load_errors_are_one_line(tmp_path: Path) -> None:
    root = base(tmp_path, {"g.py": GUARD, "broken.py": "raise ImportError('nope')\n"})
    with pytest.raises(GuardLoadError, match="has no missing"):
        load_guard("g:missing", root, code_dir=".github/loopforge")
    with pytest.raises(GuardLoadError, match="is not callable"):
        load_guard("g:NOT_CALLABLE", root, code_dir=".github/loopforge")
    with pytest.raises(GuardLoadError, match="importing broken failed: ImportError: nope"):
        load_guard("broken:g", root, code_dir=".github/loopforge")
    with pytest.raises(GuardLoadError, match="not a directory"):
        load_guard("g:refuse", tmp_path / "nope")


def test_guard_requirement_in_a_rule(tmp_path: Path) -> None:
    root = base(tmp_path, {"release_guards.py": GUARD})
    service = LoopService()
    record = service.create("octo/repo#1", state=LoopState.PR_CREATED)

    def rule(spec: str) -> tuple[Status, str]:
        policy = load_policy(f"version: 1\nrules:\n  - name: r\n    require: {{guard: '{spec}'}}\n")
        result = evaluate(policy, FakeContext(), record=record, base_dir=root).result("r")
        return result.status, result.reason

    assert rule("release_guards:require_ticket") == (
        Status.FAILED, "guard release_guards:require_ticket refused: no change ticket in the record")
    assert rule("release_guards:refuse") == (Status.FAILED, "guard release_guards:refuse refused")
    assert rule("release_guards:crash") == (Status.FAILED, "guard release_guards:crash failed: ValueError: bad guard")
    assert rule("nope:g")[0] is Status.FAILED
    service.note(record.record_id, "ticket", metadata={"ticket": "CHG-1"})
    record = service.get(record.record_id)  # type: ignore[assignment]
    assert rule("release_guards:require_ticket") == (Status.PASSED, "guard release_guards:require_ticket allowed")


def test_guard_requirement_without_checkout_or_record_is_pending(tmp_path: Path) -> None:
    policy = load_policy("version: 1\nrules:\n  - name: r\n    require: {guard: 'g:f'}\n")
    assert evaluate(policy, FakeContext()).result("r").reason == "guard g:f not run: needs the base-branch checkout"
    assert evaluate(policy, FakeContext(), base_dir=tmp_path).result("r").reason == \
        "guard g:f not run: needs the LoopForge record"


def test_top_level_guards_for_loop_service(tmp_path: Path) -> None:
    root = base(tmp_path, {"release_guards.py": GUARD})
    policy = load_policy("version: 1\nguards: ['release_guards:require_ticket']\n")
    service = LoopService(guards=load_policy_guards(policy, root))
    record = service.create("octo/repo#2", state=LoopState.PR_CREATED)
    result = service.transition(record.record_id, LoopState.CI_PENDING, "ci")
    assert not result.success and result.error == "no change ticket in the record"
