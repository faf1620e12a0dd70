"""Fixtures for real-browser tests: one JupyterLab server per session (see labdriver.py)."""

from pathlib import Path

import pytest
from labdriver import ARTIFACTS, UI_DIR, LabServer

_DEPS_HINT = "run scripts/ui-deps (make test does)"


@pytest.fixture(scope="session")
def jupyter_lab(tmp_path_factory) -> LabServer:
    if not Path("/usr/bin/chromium").is_file():
        pytest.fail(f"/usr/bin/chromium missing: {_DEPS_HINT}")
    if not (UI_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.fail(f"tests/ui/node_modules lacks playwright-core: {_DEPS_HINT}")
    with LabServer(root_dir=tmp_path_factory.mktemp("lab-root"), work_dir=tmp_path_factory.mktemp("lab-home"),
                   log_path=ARTIFACTS / "jupyterlab.log") as lab:
        yield lab
