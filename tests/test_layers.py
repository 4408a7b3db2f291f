"""The architecture: layers that only point down, one namespace, small modules.

Every Python file of the package is parsed and every import statement in it, at any line
(inside functions too), is checked: a module may import only its own layer and the layers
below it. Layers, bottom up: the root helpers (``crampdx/``), the contract, interoperability
(FHIR records read into a case), the knowledge layer, inference, renderers (of an Assessment and of evaluation figures), training (whose
model card uses the renderers), and the front ends (CLI, dashboard, service), which import
one another not at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {  # folder -> (import name, layer)
    "crampdx": ("crampdx", 0),
    "data": ("crampdx.data", 0),
    "contract": ("crampdx.contract", 1),
    "interop": ("crampdx.interop", 1.5),  # external records (FHIR) -> a case: the contract only
    "synthetic": ("crampdx.synthetic", 2),
    "model": ("crampdx.model", 3),
    "render": ("crampdx.render", 4),
    "training": ("crampdx.training", 5),
    "cli": ("crampdx.cli", 6),
    "dashboard": ("crampdx.dashboard", 6),
    "service": ("crampdx.service", 6),
}
FRONT_END = 6
GENERIC_NAMES = {"model", "synthetic", "training", "contract", "render", "cli", "dashboard", "service", "data"}
MAX_LINES = 350


def _modules() -> list[Path]:
    files = [ROOT / "app.py"]
    for folder in FOLDERS:
        files += sorted((ROOT / folder).rglob("*.py"))
    return [f for f in files if f.exists()]


def _package_of(name: str) -> str | None:
    """The crampdx subpackage an absolute import name belongs to (``crampdx`` for the root)."""
    if name != "crampdx" and not name.startswith("crampdx."):
        return None
    parts = name.split(".")
    sub = f"crampdx.{parts[1]}" if len(parts) > 1 else "crampdx"
    return sub if any(sub == import_name for import_name, _ in FOLDERS.values()) else "crampdx"


LAYER_OF = {import_name: layer for import_name, layer in FOLDERS.values()}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import; use the crampdx.* name"
            module = node.module or ""
            if module == "crampdx":  # from crampdx import training: the subpackage is the target
                found += [(node.lineno, f"crampdx.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, module))
            found += [(node.lineno, f"{module}:{alias.name}") for alias in node.names
                      if alias.name.startswith("_") and not alias.name.endswith("__")]
    return found


def _own_package(path: Path) -> str:
    if path == ROOT / "app.py":
        return "crampdx.dashboard"
    return FOLDERS[path.relative_to(ROOT).parts[0]][0]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down_and_never_use_a_generic_top_level_name(path):
    own = _own_package(path)
    problems = []
    for line, name in _imports(path):
        if ":" in name:  # a private name: only within its own package
            module, private = name.split(":")
            if _package_of(module) not in (None, own):
                problems.append(f"line {line}: imports the private {private} from {module}")
            continue
        top = name.split(".")[0]
        if top in GENERIC_NAMES:
            problems.append(f"line {line}: imports {name!r}; use crampdx.{name}")
            continue
        target = _package_of(name)
        if target is None or target == own:
            continue
        if LAYER_OF[target] > LAYER_OF[own]:
            problems.append(f"line {line}: {own} (layer {LAYER_OF[own]}) imports {name} (layer {LAYER_OF[target]})")
        elif LAYER_OF[target] == LAYER_OF[own] == FRONT_END:
            problems.append(f"line {line}: front end {own} imports another front end, {name}")
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)


def test_the_checker_sees_an_aliased_upward_import_and_a_private_name(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from crampdx import training\nfrom crampdx.synthetic.predictive import _reference_cases\n")
    names = [name for _, name in _imports(bad)]
    assert "crampdx.training" in names and "crampdx.synthetic.predictive:_reference_cases" in names


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rule above can fail: an upward import hidden in a function is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from crampdx.training.train import train\n    return train\n")
    (line, name), = _imports(bad)
    assert (line, name) == (2, "crampdx.training.train")
    assert LAYER_OF[_package_of(name)] > LAYER_OF["crampdx.model"]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_stay_small(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by job"
