"""Every tutorial notebook runs top to bottom against the real daemons."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_tutorial_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(notebook, daemon_env):
    result = subprocess.run([sys.executable, str(ROOT / "scripts/run-notebooks"), str(notebook)],
                            capture_output=True, text=True, timeout=1150)
    assert result.returncode == 0, result.stdout + result.stderr
