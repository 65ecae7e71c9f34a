"""A wheel (what a plain `pip install .` installs) carries everything the tool reads at run
time: the Dockerfile template, the patches, the templates, eras.toml, the container driver.

The wheel is built from a copy of the tracked files and installed into a fresh venv; every
check runs from a directory outside the source tree, without PYTHONPATH, so only the
installed copy can answer.  About 10 s with pip's cache warm.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Source folder -> where the wheel puts it inside the package (pyproject's package-dir).
SHIPPED = {"dockerfiles": "dockerfiles", "patches": "patches",
           "afpbisect/templates": "templates", "afpbisect/machinery/container": "machinery/container"}


def _clean_env():
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def _run(cmd, cwd, **kw):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_clean_env(), capture_output=True,
                          text=True, timeout=300, **kw)
    assert proc.returncode == 0, f"{cmd}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _tracked_copy(dest: Path) -> Path:
    """The tracked files only: what a clone would build from, not this tree's leftovers."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split("\0")
    for f in filter(None, files):
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    return dest


def build_wheel(tmp: Path) -> Path:
    src = _tracked_copy(tmp / "src")
    # Without build isolation when the backend is at hand here (fast, offline); else pip
    # fetches setuptools into an isolated build env from the package index.
    try:
        import setuptools  # noqa: F401
        import wheel  # noqa: F401
        iso = ["--no-build-isolation"]
    except ImportError:
        iso = []
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *iso, "-w", tmp / "dist", src], cwd=tmp)
    (whl,) = (tmp / "dist").glob("afpbisect-*.whl")
    return whl


@pytest.fixture(scope="module")
def wheel_file(tmp_path_factory):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know the tracked files")
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def running_site_dirs() -> list[str]:
    """The site-packages directories the running interpreter imports from (its venv's, the
    base's when that venv sees them, the user site): where the dependencies are here."""
    return [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]


def make_venv(python, where: Path, inherit_running: bool) -> Path:
    """A fresh venv.  With inherit_running, the running interpreter's site-packages are added
    after the venv's own (a .pth of plain paths: their own .pth files, such as an editable
    install of this checkout, are not processed), so the dependencies need no download.
    `venv --system-site-packages` would not do: run from inside a virtualenv it exposes the
    *base* interpreter's site-packages, not the virtualenv's where `pip install -e .[test]`
    put the dependencies (the README's own test setup)."""
    _run([python, "-m", "venv", where], cwd=where.parent)
    if inherit_running:
        (site,) = (where / "lib").glob("python3*/site-packages")
        (site / "_running_interpreter.pth").write_text("".join(d + "\n" for d in running_site_dirs()))
    return where / "bin"


def _installed_package(bindir: Path, cwd: Path) -> Path:
    code = "import afpbisect, pathlib; print(pathlib.Path(afpbisect.__file__).parent)"
    return Path(_run([bindir / "python", "-c", code], cwd=cwd).stdout.strip())


def test_wheel_install_finds_its_data(wheel_file, tmp_path):
    # The dependencies come from the running interpreter's site-packages: no download.
    bindir = make_venv(sys.executable, tmp_path / "venv", inherit_running=True)
    _run([bindir / "python", "-m", "pip", "install", "-q", "--no-deps", wheel_file], cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pkg = _installed_package(bindir, elsewhere)
    assert pkg.is_relative_to(tmp_path / "venv"), pkg
    assert "afpbisect" in _run([bindir / "afpbisect", "--version"], cwd=elsewhere).stdout
    for src, dest in SHIPPED.items():
        wanted = {p.relative_to(ROOT / src) for p in (ROOT / src).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts}
        assert wanted and all((pkg / dest / w).is_file() for w in wanted), (src, wanted)
    code = ("import afpbisect as a; print(a.DOCKERFILES_DIR); print(a.PATCHES_DIR)")
    dirs = _run([bindir / "python", "-c", code], cwd=elsewhere).stdout.split()
    assert dirs == [str(pkg / "dockerfiles"), str(pkg / "patches")]
    _doctor_sees_package_data(bindir, elsewhere, pkg)


def _doctor_sees_package_data(bindir: Path, cwd: Path, pkg: Path):
    env = {**os.environ, "DOCKER_HOST": f"unix://{cwd}/no.sock"}   # fast: Docker is not the point here
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([bindir / "afpbisect", "doctor", "--workdir", cwd / "w", "--json"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["package data"]["ok"], checks["package data"]
    assert str(pkg) in checks["package data"]["detail"]


def _python310():
    """A working 3.10 (a pyenv shim on PATH may name one that is not selected: ask it)."""
    for cand in (shutil.which("python3.10"), *map(str, Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"))):
        if cand and subprocess.run([cand, "-c", "import sys, venv; assert sys.version_info[:2] == (3, 10)"],
                                   capture_output=True).returncode == 0:
            return cand
    return None


# Binary wheels only: what the test installs then never depends on a compiler, Rust or
# crates.io being at hand (cryptography, bcrypt and PyNaCl, through docker[ssh] -> paramiko,
# would otherwise build from source wherever no wheel fits), only on the package index.
BINARY_ONLY = ["--only-binary", ":all:"]


def _index_unreachable(bindir: Path, where: Path) -> str | None:
    """Why pip cannot get a wheel from the package index (its own configuration: index URL,
    find-links, proxy), or None when it can."""
    proc = subprocess.run([bindir / "python", "-m", "pip", "download", "-q", "--no-deps", *BINARY_ONLY,
                           "--retries", "1", "--timeout", "20", "-d", where / "probe", "tomli"],
                          cwd=where, env=_clean_env(), capture_output=True, text=True, timeout=120)
    return None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]


@pytest.mark.skipif(_python310() is None, reason="no Python 3.10 interpreter on this machine")
def test_wheel_on_python_310(wheel_file, tmp_path):
    """requires-python allows 3.10, which has no tomllib: the wheel must pull tomli and work.
    The venv is a bare 3.10, so its dependencies come from the package index (PyPI, which CI
    reaches; binary wheels only, nothing else); skipped with pip's reason when the index cannot
    be reached."""
    bindir = make_venv(_python310(), tmp_path / "venv310", inherit_running=False)
    why = _index_unreachable(bindir, tmp_path)
    if why:
        pytest.skip(f"the package index is not reachable from pip: {why}")
    _run([bindir / "python", "-m", "pip", "install", "-q", *BINARY_ONLY, wheel_file], cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pkg = _installed_package(bindir, elsewhere)
    # Every module imports under 3.10 (syntax and stdlib), not only the ones --version touches.
    code = ("import pkgutil, importlib, afpbisect; "
            "[importlib.import_module(m.name) for m in pkgutil.walk_packages(afpbisect.__path__, 'afpbisect.') "
            "if not m.name.endswith('.__main__') and 'afpdriver' not in m.name]; import tomli")
    _run([bindir / "python", "-c", code], cwd=elsewhere)
    assert "afpbisect" in _run([bindir / "afpbisect", "--version"], cwd=elsewhere).stdout
    _doctor_sees_package_data(bindir, elsewhere, pkg)
