"""afpbisect: bisect and verify the Suricata AF-PACKET inline-IPS startup race (ticket 8667).

The pipeline, one module a stage:
  refs (which commits) -> worktree (check out + patch) -> build (Docker build container,
  cached product) -> repro (elevated container, cold-start cycles) -> signals (log -> record)
  -> verdict (record -> GOOD/BAD/SKIP/ERROR) -> search (pure bisection) -> policy/bisection
  (calibration, adaptive cycles, confirmation) -> report.  cli.py only parses and wires.
"""
from pathlib import Path

__version__ = "0.1.0"

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent


def _data_dir(name: str) -> Path:
    """dockerfiles/ and patches/ sit at the project's top level (design card).  A wheel or
    a plain `pip install .` ships them inside the package (pyproject's package-dir mapping);
    a source tree or an editable install has them only beside the package."""
    shipped = PACKAGE_DIR / name
    return shipped if shipped.is_dir() else PROJECT_DIR / name


DOCKERFILES_DIR = _data_dir("dockerfiles")
PATCHES_DIR = _data_dir("patches")
TEMPLATES_DIR = PACKAGE_DIR / "templates"
