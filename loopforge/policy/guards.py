"""Python guards named in the policy as ``module:function``, loaded from the base-branch checkout only.

A guard has the published hook signature ``(record, previous_state, new_state, trigger)``: it returns
``False`` or raises ``TransitionError`` to refuse. The module is imported *by file path* from
``<base_dir>/<options.code_dir>``: never through ``sys.path`` (so a module of the same name in the PR's
workspace or site-packages is never picked), and never from a path that resolves outside ``base_dir``
(``..``, absolute paths and symlinks pointing out are refused). Modules are registered under a private name
(``_loopforge_guards_<hash>.<module>``) so relative imports inside a guard package work and nothing shadows a
real module.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopforge.errors import PolicyError
from loopforge.policy.model import Policy

Guard = Callable[..., Any]

_SPEC = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<function>[A-Za-z_]\w*)$")
_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str], types.ModuleType] = {}


class GuardLoadError(PolicyError):
    """A guard named in the policy cannot be loaded (one line saying why)."""


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _checked(path: Path, base: Path, what: str) -> Path:
    resolved = path.resolve()
    if not _inside(resolved, base):
        raise GuardLoadError(f"{what} resolves outside the base-branch checkout ({resolved}); refused")
    return resolved


def _exec_module(name: str, file: Path, *, package_dir: Path | None = None) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(
        name, file, submodule_search_locations=[str(package_dir)] if package_dir is not None else None)
    if spec is None or spec.loader is None:  # pragma: no cover - only for non-.py files
        raise GuardLoadError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _namespace(name: str, directory: Path) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = [str(directory)]
    module.__package__ = name
    sys.modules[name] = module
    return module


def _load_module(module: str, base: Path, root: Path) -> types.ModuleType:
    key = (str(root), module)
    if key in _LOADED:
        return _LOADED[key]
    prefix = "_loopforge_guards_" + hashlib.sha256(str(root).encode()).hexdigest()[:12]
    if prefix not in sys.modules:
        _namespace(prefix, root)
    parts = module.split(".")
    directory = root
    name = prefix
    for part in parts[:-1]:  # parent packages: their __init__ runs if present, all inside the checkout
        directory = _checked(directory / part, base, f"package {part}")
        if not directory.is_dir():
            raise GuardLoadError(f"module {module}: no package directory {part}/ under code_dir")
        name = f"{name}.{part}"
        if name not in sys.modules:
            init = directory / "__init__.py"
            if init.is_file():
                _exec_module(name, _checked(init, base, f"{part}/__init__.py"), package_dir=directory)
            else:
                _namespace(name, directory)
    last = parts[-1]
    name = f"{name}.{last}"
    file = directory / f"{last}.py"
    package = directory / last / "__init__.py"
    if file.is_file():
        loaded = _exec_module(name, _checked(file, base, f"{module}"))
    elif package.is_file():
        loaded = _exec_module(name, _checked(package, base, f"{module}"),
                              package_dir=_checked(directory / last, base, module))
    else:
        raise GuardLoadError(f"module {module} not found under code_dir "
                             f"(looked for {file.relative_to(root)} and {package.relative_to(root)})")
    _LOADED[key] = loaded
    return loaded


def load_guard(spec: str, base_dir: str | Path, *, code_dir: str = ".") -> Guard:
    """The callable named by ``spec`` (``module:function``), imported from ``base_dir/code_dir``.

    Raises ``GuardLoadError`` for a malformed spec, a path outside ``base_dir``, a missing module or function,
    or an import that fails.
    """
    m = _SPEC.match(spec)
    if not m:
        raise GuardLoadError(f"guard {spec!r}: expected module:function (a dotted module name, no path)")
    base = Path(base_dir).resolve()
    if not base.is_dir():
        raise GuardLoadError(f"guard {spec}: base-branch checkout {base_dir} is not a directory")
    if Path(code_dir).is_absolute() or ".." in Path(code_dir).parts:
        raise GuardLoadError(f"code_dir {code_dir!r} must be relative to the checkout; refused")
    root = _checked(base / code_dir, base, f"code_dir {code_dir}")
    if not root.is_dir():
        raise GuardLoadError(f"code_dir {code_dir} is not a directory in the base-branch checkout")
    with _LOCK:
        try:
            module = _load_module(m["module"], base, root)
        except GuardLoadError as exc:
            raise GuardLoadError(f"guard {spec}: {exc}") from None
        except Exception as exc:
            raise GuardLoadError(f"guard {spec}: importing {m['module']} failed: {type(exc).__name__}: {exc}") from exc
    fn = getattr(module, m["function"], None)
    if fn is None:
        raise GuardLoadError(f"guard {spec}: module {m['module']} has no {m['function']}")
    if not callable(fn):
        raise GuardLoadError(f"guard {spec}: {m['function']} is not callable")
    return fn  # type: ignore[no-any-return]


def load_policy_guards(policy: Policy, base_dir: str | Path) -> list[Guard]:
    """The policy's top-level ``guards`` (for ``LoopService(guards=...)``), loaded from the base checkout."""
    return [load_guard(spec, base_dir, code_dir=policy.options.code_dir) for spec in policy.guards]


def forget_loaded_guards() -> None:
    """Drop the module cache (tests, or a long-lived process that checks out a new base)."""
    with _LOCK:
        for (_, _module), loaded in list(_LOADED.items()):
            sys.modules.pop(loaded.__name__, None)
        _LOADED.clear()
