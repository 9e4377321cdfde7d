"""The public API of ``loopforge`` is fixed here (like httpx's tests/test_exported_members.py): adding, removing or
renaming a top-level name is a deliberate change of this list, not a side effect of an import."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import loopforge

PUBLIC_API = [
    "VALID_TRANSITIONS",
    "CheckResult",
    "ConcurrencyError",
    "LoopForgeError",
    "LoopRecord",
    "LoopService",
    "LoopState",
    "LoopTransition",
    "Outcome",
    "Page",
    "RecordExists",
    "RecordHead",
    "RecordNotFound",
    "RecordQuery",
    "RecordSpec",
    "Repository",
    "TransitionError",
    "TransitionHook",
    "TransitionResult",
    "VerifyReport",
    "Veto",
    "create_record",
    "record_id_for",
]


def test_all_is_exactly_the_public_api() -> None:
    assert loopforge.__all__ == PUBLIC_API


def test_all_is_sorted_and_has_no_duplicates() -> None:
    # ruff's RUF022 order (isort-style: SCREAMING_CASE, then CamelCase, then the rest), so a new name has one place
    constants = [n for n in loopforge.__all__ if n.isupper()]
    classes = [n for n in loopforge.__all__ if n[0].isupper() and not n.isupper()]
    functions = [n for n in loopforge.__all__ if n[0].islower()]
    assert loopforge.__all__ == sorted(constants) + sorted(classes) + sorted(functions)
    assert len(set(loopforge.__all__)) == len(loopforge.__all__)


def test_every_public_attribute_is_exported() -> None:
    """Nothing public sits at the top level without being in ``__all__`` (submodules aside)."""
    public = [name for name, value in vars(loopforge).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)]
    assert sorted(public) == sorted(loopforge.__all__)


def test_every_exported_name_is_importable_and_defined_in_loopforge() -> None:
    namespace: dict[str, object] = {}
    exec("from loopforge import *", namespace)  # the star import is what is under test
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(PUBLIC_API)
    for name in PUBLIC_API:
        value = getattr(loopforge, name)
        if isinstance(value, type | types.FunctionType):  # defined in loopforge, importable from where it lives
            assert value.__module__.split(".")[0] == "loopforge", (name, value.__module__)
            assert getattr(importlib.import_module(value.__module__), name) is value, (name, value.__module__)


def test_the_public_api_imports_in_a_fresh_interpreter_without_optional_dependencies() -> None:
    """``import loopforge`` pulls in neither the GitHub, policy, AWS nor report layers."""
    code = ("import sys, loopforge\nfrom loopforge import *\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'boto3', 'botocore', 'pygal', 'yaml'}"
            " or m.startswith(('loopforge.github', 'loopforge.policy', 'loopforge.action', 'loopforge.report')))\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
