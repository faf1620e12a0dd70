"""A real jupyter_server with envd_jupyter.server loaded (pytest-jupyter), and an archive to fill.

pytest-jupyter's fixtures and its coroutine-test hooks are imported here, so they apply to this
directory's tests only.
"""

from __future__ import annotations

import json

import pytest
from traitlets.config import Config

from envd_jupyter import history
from pytest_jupyter.jupyter_server import *  # noqa: F403  (jp_fetch, jp_ws_fetch, jp_serverapp, async tests)

GONE_BUILDER = "gone"


@pytest.fixture
def archive_path(tmp_path):
    return tmp_path / "archive" / "history.sqlite3"


@pytest.fixture
def archive(archive_path):
    return history.Archive(archive_path)


@pytest.fixture
def gone_address(tmp_path) -> str:
    """A builder whose daemon went away: its socket path exists no more."""
    return f"docker+unix://{tmp_path}/daemon-that-went-away.sock"


@pytest.fixture
def builders(gone_address) -> dict[str, str]:
    """The builders of the server's fleet file; daemon tests add real ones."""
    return {GONE_BUILDER: gone_address}


@pytest.fixture
def fleet_file(tmp_path, builders):
    path = tmp_path / "fleet.yaml"
    path.write_text(json.dumps({"builders": builders}))  # JSON is YAML
    return path


@pytest.fixture
def envd_config(fleet_file, archive_path) -> dict:
    return {"fleet": str(fleet_file), "history": str(archive_path), "timeout": 10.0, "archive_check_interval": 0.1}


@pytest.fixture
def jp_server_config(envd_config):
    return Config({"ServerApp": {"jpserver_extensions": {"envd_jupyter.server": True}}, "EnvdServer": envd_config})


def archive_entry(number: int, **fields) -> dict:
    """One build the way the magics record it (the archive contract's keys)."""
    entry = {
        "id": f"build{number:04d}", "builder": "kernel-builder", "address": "docker+unix:///kernel.sock",
        "notebook": "analysis.ipynb", "cell_id": f"cell-{number}", "state": f"state{number}", "name": f"analysis.ipynb: state{number}",
        "created": 1_700_000_000.0 + number, "completed": 1_700_000_010.0 + number, "status": "ok", "error": "",
        "total": 3, "cached": 1, "ran": 2,
        "steps": [{"digest": f"sha256:{number:064d}", "index": 1, "name": "RUN make", "inputs": [], "state": "done",
                   "started": 1.0, "completed": 3.0, "duration": 2.0, "cached": False, "error": "", "log_bytes": 12,
                   "statuses": [], "log_tail": ["compiling", "done"]}],
        "graph": {"nodes": [{"id": f"sha256:{number:064d}", "kind": "exec", "name": "RUN make"}], "edges": []},
        "scheduling": [{"pick": "kernel-builder", "scores": {"kernel-builder": 100}}],
    }
    entry.update(fields)
    return entry


def body(response) -> dict:
    return json.loads(response.body.decode())

