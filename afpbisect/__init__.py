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
# dockerfiles/ and patches/ sit at the project's top level (design card); an editable
# install (the README's) keeps them beside the package.
PROJECT_DIR = PACKAGE_DIR.parent
DOCKERFILES_DIR = PROJECT_DIR / "dockerfiles"
PATCHES_DIR = PROJECT_DIR / "patches"
TEMPLATES_DIR = PACKAGE_DIR / "templates"
