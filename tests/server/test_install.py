"""``pip install .`` into a fresh virtual environment enables the server extension: the wheel carries
etc/jupyter/jupyter_server_config.d/envd_jupyter.json, and ``jupyter server extension list`` finds,
imports and validates ``envd_jupyter.server`` there.

The venv sees this interpreter's packages (``--system-site-packages``), so only the build backend comes
from the registry (pip's isolated build) and the check takes seconds; the package is built from a copy of
this tree into the venv, whose own site-packages and etc/jupyter come first.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "envd_jupyter", "jupyter-config")


def test_pip_install_into_a_fresh_venv_enables_the_server_extension(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                    str(source)], check=True, timeout=300, capture_output=True)
    assert (venv / "etc/jupyter/jupyter_server_config.d/envd_jupyter.json").is_file()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "PYTHONPATH"))}
    listing = subprocess.run([str(python), "-m", "jupyter_server", "extension", "list"], cwd=tmp_path,
                             env=environment, capture_output=True, text=True, timeout=120)
    output = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)  # without its colours
    assert re.search(r"envd_jupyter\.server\s+enabled", output), output
    assert re.search(r"envd_jupyter\.server\s+OK", output), output  # imported and validated
    imported = subprocess.run([str(python), "-c", "import envd_jupyter.server as s; print(s.__file__)"],
                              cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60, check=True)
    assert imported.stdout.startswith(str(venv))  # the installed copy, not this tree
