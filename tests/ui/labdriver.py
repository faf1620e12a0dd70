"""A real JupyterLab server and Debian's chromium driving it, for tests of what users see.

`LabServer` runs `jupyter lab` on 127.0.0.1 (a port the OS picks, a random token, its own config,
runtime and settings folders), `drive()` runs tests/ui/drive.mjs (playwright-core) against it:
open a notebook, run all cells, wait for selectors in the outputs, return DOM facts, save a
screenshot under tests/artifacts/. scripts/ui-deps installs chromium and the node modules.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

import nbformat

UI_DIR = Path(__file__).resolve().parent
ROOT = UI_DIR.parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
DRIVER = UI_DIR / "drive.mjs"
PANEL_DRIVER = UI_DIR / "panel.mjs"
BUILT_PANEL = ROOT / "envd_jupyter" / "labextension"   # scripts/labext-build writes it
SERVER_CONFIG = ROOT / "jupyter-config" / "jupyter_server_config.d"

STARTUP_TIMEOUT_S = 180     # a loaded 2-core CI machine imports jupyterlab slowly
STOP_TIMEOUT_S = 30
DRIVE_TIMEOUT_S = 240       # the whole browser run: launch, open, run all cells, every wait
DRIVE_GRACE_S = 60          # on top, for drive.mjs to gather facts and screenshot after a failed wait
LOG_TAIL_LINES = 40

# Lab's "fetch official Jupyter news?" toast would cover part of every screenshot.
_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings":
             {"fetchNews": "false", "checkForUpdates": False}}


class LabError(Exception):
    """JupyterLab or the browser run did not get where the test needed it."""


class LabServer:
    """One `jupyter lab` process serving `root_dir`; kernels import this checkout's envd_jupyter."""

    def __init__(self, root_dir: Path, work_dir: Path, log_path: Path, *, env: Mapping[str, str] | None = None,
                 args: Sequence[str] = ()):
        self.root_dir, self.work_dir, self.log_path = root_dir, work_dir, log_path
        self.extra_env, self.extra_args = dict(env or {}), list(args)
        self.token = secrets.token_hex(16)
        self.url = ""
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> LabServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        runtime = self.work_dir / "runtime"
        settings = self.work_dir / "settings"
        for relative, values in _SETTINGS.items():
            (settings / relative).parent.mkdir(parents=True, exist_ok=True)
            (settings / relative).write_text(json.dumps(values))
        env = dict(os.environ,
                   JUPYTER_CONFIG_DIR=str(self._config_dir()), JUPYTER_RUNTIME_DIR=str(runtime),
                   JUPYTER_PATH=os.pathsep.join(filter(None, [str(self._data_dir()),
                                                              os.environ.get("JUPYTER_PATH")])),
                   JUPYTERLAB_SETTINGS_DIR=str(settings),
                   JUPYTERLAB_WORKSPACES_DIR=str(self.work_dir / "workspaces"),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        env.update(self.extra_env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", "--port=0",
                 f"--IdentityProvider.token={self.token}", "--allow-root",
                 f"--ServerApp.root_dir={self.root_dir}", *self.extra_args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=self.root_dir, start_new_session=True)
        self.url = self._wait_ready(runtime / f"jpserver-{self._process.pid}.json")

    def _config_dir(self) -> Path:
        """This checkout's server extension config (an editable install does not install data files)."""
        config = self.work_dir / "config"
        enabled = config / "jupyter_server_config.d"
        enabled.mkdir(parents=True, exist_ok=True)
        for file in SERVER_CONFIG.glob("*.json"):
            (enabled / file.name).write_text(file.read_text())
        return config

    def _data_dir(self) -> Path:
        """A JUPYTER_PATH entry whose labextensions/ holds this checkout's built panel (when built)."""
        data = self.work_dir / "data"
        link = data / "labextensions" / "envd-jupyter"
        link.parent.mkdir(parents=True, exist_ok=True)
        if (BUILT_PANEL / "package.json").is_file() and not link.is_symlink():
            link.symlink_to(BUILT_PANEL, target_is_directory=True)
        return data

    def _wait_ready(self, info_file: Path) -> str:
        """The server writes its info file once listening (port 0: the OS picked the port)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise LabError(f"jupyter lab exited with {self._process.returncode}\n{self.log_tail()}")
            if info_file.is_file():
                try:
                    url = json.loads(info_file.read_text())["url"]
                    with urllib.request.urlopen(f"{url}api/status?token={self.token}", timeout=5) as reply:
                        if reply.status == 200:
                            return url
                except (ValueError, KeyError, OSError):
                    pass          # info file half written, or not answering yet
            time.sleep(0.25)
        raise LabError(f"jupyter lab not answering after {STARTUP_TIMEOUT_S}s\n{self.log_tail()}")

    def stop(self) -> None:
        """Ask the server to shut down (it stops its kernels), then TERM and KILL its process group."""
        if self._process is None or self._process.poll() is not None:
            return
        if self.url:
            try:
                request = urllib.request.Request(f"{self.url}api/shutdown?token={self.token}", method="POST")
                urllib.request.urlopen(request, timeout=5).close()
                self._process.wait(timeout=STOP_TIMEOUT_S)
                return
            except (OSError, subprocess.TimeoutExpired):
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self._process.pid, sig)
                self._process.wait(timeout=STOP_TIMEOUT_S)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue

    def log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        return f"--- last lines of {self.log_path} ---\n" + "\n".join(lines)


def drive(lab: LabServer, notebook: Path, *, wait_for: list[str], screenshot: str,
          steps: Sequence[Mapping[str, str]] = (), shots: dict[str, str] | None = None,
          viewport: tuple[int, int] = (1400, 900), timeout: float = DRIVE_TIMEOUT_S) -> dict:
    """Open `notebook` (a path under lab.root_dir) in Lab, run all cells, wait for each selector
    in `wait_for` to appear in the outputs, then for each of `steps` ({"click": selector,
    "wait": selector}) click and wait; return drive.mjs's facts (see there) with `screenshot`
    set to tests/artifacts/<screenshot>.png and `shots` mapping each of `shots`' selectors
    (inside the notebook) to tests/artifacts/<name>.png. A taller `viewport` shows more of the
    notebook at once (Lab scrolls the notebook inside the page). Raises LabError if a wait failed."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = ARTIFACTS / f"{screenshot}.png"
    png.unlink(missing_ok=True)
    command = ["node", str(DRIVER), "--url", lab.url, "--token", lab.token,
               "--notebook", notebook.relative_to(lab.root_dir).as_posix(),
               "--screenshot", str(png), "--timeout", str(int(timeout)),
               "--viewport", f"{viewport[0]}x{viewport[1]}"]
    for selector in wait_for:
        command += ["--wait", selector]
    for step in steps:
        command += ["--step", json.dumps(step)]
    for selector, name in (shots or {}).items():
        shot = ARTIFACTS / f"{name}.png"
        shot.unlink(missing_ok=True)
        command += ["--shot", json.dumps({"selector": selector, "path": str(shot)})]
    try:
        result = subprocess.run(command, capture_output=True, text=True, cwd=UI_DIR,
                                timeout=timeout + DRIVE_GRACE_S)
    except subprocess.TimeoutExpired as err:
        raise LabError(f"drive.mjs still running after {timeout + DRIVE_GRACE_S}s\n{lab.log_tail()}") from err
    try:
        facts = json.loads(result.stdout)
    except ValueError:
        raise LabError(f"drive.mjs exited with {result.returncode} and no facts:\n"
                       f"{result.stderr.strip()}\n{lab.log_tail()}") from None
    if result.returncode != 0 or facts.get("error"):
        raise LabError(f"{facts.get('error')} (screenshot: {png})\n"
                       f"{json.dumps(facts, indent=1)}\n{result.stderr.strip()}\n{lab.log_tail()}")
    return facts


def drive_panel(lab: LabServer, notebook: Path, *, screenshot: str, wait_for: Sequence[str] = (),
                steps: Sequence[Mapping] = (), describe: Sequence[str] = (), time_refresh: bool = False,
                viewport: tuple[int, int] = (1400, 900), timeout: float = DRIVE_TIMEOUT_S) -> dict:
    """Open `notebook` in Lab, run all its cells, open the envd panel and run tests/ui/panel.mjs's
    waits and steps (selectors inside the panel; see there; a step's "shot" is a name under
    tests/artifacts/); return its facts, with the last page as tests/artifacts/<screenshot>.png.
    Raises LabError if a wait failed."""
    result = subprocess.run(panel_command(lab, notebook, screenshot=screenshot, wait_for=wait_for,
                                          steps=steps, describe=describe, time_refresh=time_refresh,
                                          viewport=viewport, timeout=timeout),
                            capture_output=True, text=True, cwd=UI_DIR, timeout=timeout + DRIVE_GRACE_S)
    return panel_facts(lab, result.stdout, result.stderr, result.returncode)


def panel_command(lab: LabServer, notebook: Path, *, screenshot: str, wait_for: Sequence[str] = (),
                  steps: Sequence[Mapping] = (), describe: Sequence[str] = (),
                  watch_names: Sequence[str] = (), time_refresh: bool = False,
                  viewport: tuple[int, int] = (1400, 900),
                  timeout: float = DRIVE_TIMEOUT_S) -> list[str]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    command = ["node", str(PANEL_DRIVER), "--url", lab.url, "--token", lab.token,
               "--notebook", notebook.relative_to(lab.root_dir).as_posix(),
               "--screenshot", str(ARTIFACTS / f"{screenshot}.png"), "--timeout", str(int(timeout)),
               "--viewport", f"{viewport[0]}x{viewport[1]}"]
    if time_refresh:
        command.append("--time-refresh")
    for name in watch_names:
        command += ["--watch-name", name]
    for selector in wait_for:
        command += ["--wait", selector]
    for step in steps:
        if "shot" in step:
            step = {**step, "shot": str(ARTIFACTS / f"{step['shot']}.png")}
        command += ["--step", json.dumps(step)]
    for selector in describe:
        command += ["--describe", selector]
    return command


def panel_facts(lab: LabServer, stdout: str, stderr: str, returncode: int) -> dict:
    try:
        facts = json.loads(stdout)
    except ValueError:
        raise LabError(f"panel.mjs exited with {returncode} and no facts:\n{stderr.strip()}\n"
                       f"{lab.log_tail()}") from None
    if returncode != 0 or facts.get("error"):
        raise LabError(f"{facts.get('error')}\n{json.dumps(facts, indent=1)[:6000]}\n{stderr.strip()}\n"
                       f"{lab.log_tail()}")
    return facts


def write_notebook(path: Path, *sources: str) -> Path:
    """A notebook of code cells with the `python3` kernelspec, as a test writes it into Lab's root."""
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in sources],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(notebook, path)
    return path


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])
