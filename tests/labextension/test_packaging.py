"""The prebuilt JupyterLab panel: built assets, the wheel's share/jupyter files, Lab finding it enabled.

These run without Node once scripts/labext-build has written envd_jupyter/labextension/ (make test
does); a missing build fails with that hint instead of skipping.
"""

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "labextension"
BUILT = ROOT / "envd_jupyter" / "labextension"
HINT = "run scripts/labext-build (make test does)"


@pytest.fixture(scope="module")
def built() -> dict:
    manifest = BUILT / "package.json"
    if not manifest.is_file():
        pytest.fail(f"{manifest} missing: {HINT}")
    return json.loads(manifest.read_text())


def test_the_build_is_a_prebuilt_extension_named_like_the_python_package(built):
    assert built["name"] == "envd-jupyter"
    assert built["version"] == json.loads((SOURCE / "package.json").read_text())["version"]
    load = built["jupyterlab"]["_build"]["load"]
    assert (BUILT / load).is_file(), load
    assert (BUILT / "static" / "style.js").is_file()
    assert json.loads((BUILT / "install.json").read_text())["packageName"] == "envd-jupyter"


def test_the_lockfile_and_registry_pins_are_committed():
    tracked = subprocess.run(["git", "ls-files", "labextension"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert {"labextension/package.json", "labextension/yarn.lock", "labextension/install.json"} <= set(tracked)
    resolutions = json.loads((SOURCE / "package.json").read_text())["resolutions"]
    for name in ("@jupyterlab/documentsearch", "@jupyterlab/lsp", "@jupyterlab/markedparser-extension"):
        assert resolutions[name] == "4.6.4"


# The panel talks to the Jupyter server only: ServerConnection for REST, the server's ws URL for events.
NETWORK = re.compile(r"\bfetch\(|XMLHttpRequest|new WebSocket\(|https?://(?!www\.w3\.org/2000/svg)")


def test_the_panel_source_makes_no_network_calls_of_its_own():
    offending = [f"{path.name}:{number}: {line.strip()}"
                 for path in sorted((SOURCE / "src").glob("*.ts"))
                 for number, line in enumerate(path.read_text().splitlines(), 1) if NETWORK.search(line)]
    assert offending == []


def test_jupyterlab_lists_the_built_panel_enabled(built, tmp_path):
    data = tmp_path / "data"
    (data / "labextensions").mkdir(parents=True)
    (data / "labextensions" / "envd-jupyter").symlink_to(BUILT, target_is_directory=True)
    env = dict(os.environ, JUPYTER_PATH=str(data), JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    listed = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"], env=env,
                            capture_output=True, text=True, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)
    [line] = [line for line in text.splitlines() if "envd-jupyter" in line]
    assert re.search(r"envd-jupyter v0\.1\.0 enabled\s+OK", line), text


@pytest.mark.timeout(300)
def test_the_wheel_ships_the_panel_under_share_jupyter(built, tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=280)
    [wheel] = tmp_path.glob("envd_jupyter-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    share = "envd_jupyter-0.1.0.data/data/share/jupyter/labextensions/envd-jupyter/"
    assert {share + "package.json", share + "install.json", share + built["jupyterlab"]["_build"]["load"]} <= names
    shipped = {name.removeprefix(share) for name in names if name.startswith(share)}
    assert shipped == {"package.json", "install.json"} | {f"static/{p.name}" for p in (BUILT / "static").iterdir()}
