"""The built wheel is the product: it holds every package and the bundled model, and
`stemwatch demo` runs from it, installed (not editable) into a fresh virtual environment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("stemwatch", "monitor", "trainer", "dashboard")
MODEL = "stemwatch/models/stemwatch-default.onnx"
# what a wheel is built from; caches, environments and run outputs stay behind
SKIP = {".git", ".venv", "venv", "build", "dist", "tests", "runs", "stemwatch-demo", "shared"}


def source_packages() -> set[str]:
    """Every folder with an ``__init__.py`` under the four top-level packages."""
    return {
        ".".join(init.parent.relative_to(REPO).parts)
        for root in ROOTS
        for init in (REPO / root).rglob("__init__.py")
    }


def test_pyproject_lists_every_package_and_maps_the_bundled_model() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    assert listed - {"stemwatch.models"} == source_packages()
    assert config["package-dir"] == {"stemwatch.models": "models"}
    assert (REPO / "models" / Path(MODEL).name).is_file()


def _ignore(folder: str, names: list[str]) -> set[str]:
    top = Path(folder) == REPO
    return {
        n
        for n in names
        if (top and n in SKIP) or n == "__pycache__" or n.endswith((".egg-info", "_cache", ".pyc"))
    }


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    )
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_the_installed_wheel_runs_the_demo_with_the_bundled_model(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    src, dist, venv, work = (tmp_path / d for d in ("src", "dist", "venv", "work"))
    shutil.copytree(REPO, src, ignore=_ignore)
    work.mkdir()

    # build offline with the setuptools and wheel at hand
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", str(src), "-w", str(dist)],
        work, env, timeout=120,
    )  # fmt: skip
    (wheel,) = dist.glob("stemwatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert MODEL in names
    in_wheel = {"/".join(n.split("/")[:-1]).replace("/", ".") for n in names if "__init__" in n}
    assert in_wheel == source_packages()

    # a fresh environment; torch, onnxruntime and the other dependencies come from the system
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
         work, env, timeout=60)  # fmt: skip
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
         work, env, timeout=120)  # fmt: skip
    where = _run(
        [str(python), "-c", "import dashboard, monitor, stemwatch, trainer\n"
         "for m in (dashboard, monitor, stemwatch, trainer): print(m.__file__)"],
        work, env, timeout=60,
    )  # fmt: skip
    site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
             work, env, timeout=60).strip()
    )  # fmt: skip
    files = [Path(line) for line in where.split()]
    assert len(files) == 4 and all(f.is_relative_to(site) for f in files), (site, where)

    out = _run(
        [str(venv / "bin" / "stemwatch"), "demo", "--exit", "--no-dashboard",
         "--workdir", str(work / "demo"), "--wells", "6", "--fields", "1", "--timepoints", "2",
         "--interval-s", "1", "--size", "256"],
        work, env, timeout=240,
    )  # fmt: skip
    assert "12 image files acquired" in out and "(2 induced)" in out, out[-2000:]
    used = re.search(r"model (\S+stemwatch-default\.onnx) \(", out)
    assert used is not None, out[-2000:]
    assert Path(used.group(1)) == site / MODEL  # the wheel's copy, not the repository's
