"""The distribution: ``pip install .`` ships one ``crampdx`` package with its data files and
nothing generic at the top level of site-packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import crampdx
import crampdx.contract

ROOT = Path(__file__).resolve().parents[1]
DATA_FILES = (
    "crampdx/contract/findings.toml",
    "crampdx/synthetic/knowledge/examples.toml",
    "crampdx/synthetic/knowledge/leg_cramps/base.toml",
    "crampdx/synthetic/knowledge/leg_cramps/classes/hypokalemia.toml",
    "crampdx/synthetic/knowledge/seed/leg-cramps-differential.txt",
    "crampdx/model/assessment.schema.json",
    "crampdx/dashboard/pages/differential.py",
    "crampdx/data/vignettes/dev.jsonl",
)


def _source_copy(target: Path) -> Path:
    """The project's files without the virtual environment, caches or build output."""
    ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache",
                                    ".hypothesis", "*.csv", "*.parquet")
    return Path(shutil.copytree(ROOT, target / "src", ignore=ignore))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    build = tmp_path_factory.mktemp("wheel")
    source = _source_copy(build)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(build / "dist"),
                             str(source)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    (path,) = (build / "dist").glob("crampdx-*.whl")
    return path


@pytest.mark.slow
def test_the_wheel_holds_one_crampdx_package_and_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"crampdx", f"crampdx-{crampdx.__version__}.dist-info"}, top
    for data in DATA_FILES:
        assert data in names, data
    entry_points = zipfile.ZipFile(wheel).read(f"crampdx-{crampdx.__version__}.dist-info/entry_points.txt").decode()
    assert "crampdx = crampdx.cli.main:main" in entry_points


@pytest.mark.slow
def test_the_installed_wheel_works_outside_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
                   check=True, timeout=300)
    assert not {"model", "synthetic", "training", "contract", "cli"} & {p.name for p in target.iterdir()}
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        # the project's own editable install must not answer for crampdx.* (its finder sits on meta_path)
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()];"
        "import crampdx, crampdx.synthetic as s, crampdx.contract as c;"
        "assert all(m.__file__.startswith(sys.argv[1]) for m in (crampdx, s, c)), (s.__file__, c.__file__);"
        "kb = s.load_knowledge(); f = s.generate(50, seed=1);"
        "print(len(c.load_schema()), len(kb.classes), len(f))"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(target)], capture_output=True, text=True, cwd=tmp_path,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    n_findings, n_classes, n_cases = map(int, result.stdout.split())
    assert n_findings == len(crampdx.contract.load_schema()) and n_classes >= 25 and n_cases == 50
