"""No secret value in anything a notebook shows or keeps (issue 17 item 7), on a real daemon.

A ``%%envd`` cell mounts a secret (``Envd.secrets``) as a file and an environment variable, and its
step prints it; another cell prints it and fails. Everything a front end would receive is recorded —
display bundles (DAG, progress, scores, summaries, error lines), every widget's state at open and each
update, printed text — with the line magics' results, the build model's and events' dicts, the
Definition and the build history archive (its SQLite files and what it reads back), and all of it is
searched for the value: it may appear only as ``***``.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell
from ipywidgets import Widget
from nbclient import NotebookClient

from envd_jupyter.history import Archive
from envd_jupyter.notebook import _magics

BUSYBOX = "envd-jupyter/busybox:latest"
ROOT = Path(__file__).resolve().parents[2]
USES_THE_SECRET = """llb.image(BUSYBOX).run(
    "echo run {token}; echo token is $TOK; cat /run/secrets/tok; echo; "
    "test \\"$TOK\\" = \\"$(cat /run/secrets/tok)\\" && echo both-the-same{fail}",
    mounts=[llb.secret_mount("/run/secrets/tok", "tok"), llb.secret_env("TOK", "tok")],
    name="uses the secret")"""


@pytest.fixture
def secret(monkeypatch) -> str:
    value = f"s3cr3t-{uuid.uuid4().hex}"
    monkeypatch.setenv("ENVD_TEST_SECRET", value)
    return value


@pytest.fixture
def seen(monkeypatch) -> list[str]:
    """Everything a front end would be sent, as JSON text: display messages, widget states and updates."""
    records: list[str] = []

    def record(*items) -> None:
        records.append(json.dumps(items, default=repr))

    shell = InteractiveShell.instance()
    monkeypatch.setattr(shell.display_pub, "publish", lambda data, metadata=None, **kw: record(data, metadata, kw))
    opened, sent = Widget.open, Widget._send

    def open_widget(self):
        record(self.get_state())
        return opened(self)

    def send(self, msg, buffers=None):
        record(msg, [bytes(b) for b in buffers or ()])
        return sent(self, msg, buffers)

    monkeypatch.setattr(Widget, "open", open_widget)
    monkeypatch.setattr(Widget, "_send", send)
    return records


@pytest.fixture(params=["widget", "plain"])
def shell(request, docker_current, tmp_path, monkeypatch, secret, seen):
    """The extension in an IPython shell showing widgets (as in Jupyter) or plain text, with secret ``tok``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_magics, "_in_jupyter_kernel", lambda shell: request.param == "widget")
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "envd_jupyter")
    ip.run_line_magic("config", f'Envd.builder = "docker+unix://{docker_current}"')
    ip.run_line_magic("config", 'Envd.secrets = {"tok": "ENVD_TEST_SECRET"}')
    ip.run_line_magic("config", f'Envd.history = "{tmp_path / "history.sqlite3"}"')
    ip.user_ns["BUSYBOX"] = BUSYBOX
    yield ip
    ip.run_line_magic("unload_ext", "envd_jupyter")
    InteractiveShell.clear_instance()


def run(ip, source: str, seen: list[str]):
    """Run a cell as a front end would; its result's rich bundle is recorded too."""
    outcome = ip.run_cell(source)
    if outcome.result is not None:
        seen.append(json.dumps(ip.display_formatter.format(outcome.result), default=repr))
    return outcome


def test_a_secret_a_step_prints_is_masked_everywhere_the_notebook_shows_or_keeps(shell, seen, secret, capsys,
                                                                                 tmp_path):
    token = uuid.uuid4().hex
    for run_token in (f"{token}-first", token):  # twice, so %envd_why has a change to explain
        assert run(shell, "%%envd app\n" + USES_THE_SECRET.format(token=run_token, fail=""), seen).success
    for line in ("%envd_dag app", "%envd_logs app", "%envd_logs app secret", "%envd_scores", "%envd_builders",
                 "%envd_ls app /", "%envd_why app"):
        assert run(shell, line, seen).success, line
    stage = _magics_of(shell)._stages["app"].result()
    logs = stage.logs()
    assert "token is ***" in logs and "both-the-same" in logs  # the secret was served, and masked
    kept = [json.dumps(stage.model.to_dict(), default=repr), repr(stage.definition.to_graph()),
            stage.definition.to_bytes().decode("latin-1")]

    failed = run(shell, "%%envd bad\n" + USES_THE_SECRET.format(token=token, fail="; exit 3"), seen)
    assert not failed.success
    error = failed.error_in_exec
    kept += [str(error), "\n".join(error._render_traceback_()), repr(error.__dict__)]

    _magics_of(shell)._archive_writer.flush()  # the build history archive, as stored and as read back
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("history.sqlite3*")).decode("latin-1")
    assert "token is ***" in stored and "exit code 3" in stored
    archive = Archive(tmp_path / "history.sqlite3")
    items, _ = archive.list()
    assert items and all(archive.get(item["id"])["secrets"] == ["tok"] for item in items)  # the panel's cue
    kept += [stored, json.dumps([items, [archive.get(item["id"]) for item in items]], default=repr)]
    archive.close()

    printed = capsys.readouterr()
    assert "exit code 3" in printed.out + printed.err and "token is ***" in printed.out + printed.err
    everything = "\n".join([*seen, *kept, printed.out, printed.err])
    assert secret not in everything
    assert secret[:12] not in everything  # not even the start of it, split over two log chunks
    assert any("application/vnd.envd-jupyter.summary+json" in record for record in seen)  # what was searched
    assert any("both-the-same" in record for record in seen)  # the step's log reached the outputs


class _RecordingClient(NotebookClient):
    """Runs a notebook in a real kernel and keeps every iopub message it receives (comms included)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received: list[str] = []

    def process_message(self, msg, cell, cell_index):
        self.received.append(json.dumps(msg.get("content", {}), default=repr))
        return super().process_message(msg, cell, cell_index)


@pytest.mark.timeout(240)
def test_a_real_kernel_sends_and_saves_no_secret(docker_current, tmp_path, secret):
    """The same in Jupyter's own terms: every message the kernel sent and the notebook file as saved."""
    token = uuid.uuid4().hex
    cells = ["%load_ext envd_jupyter\n"
             f'%config Envd.builder = "docker+unix://{docker_current}"\n'
             '%config Envd.secrets = {"tok": "ENVD_TEST_SECRET"}\n'
             f'BUSYBOX = "{BUSYBOX}"',
             "%%envd app\n" + USES_THE_SECRET.format(token=token, fail=""),
             "%envd_logs app secret",
             "%%envd bad\n" + USES_THE_SECRET.format(token=token, fail="; exit 3")]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    client = _RecordingClient(notebook, timeout=180, kernel_name="python3", allow_errors=True,
                              store_widget_state=True, resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env={**os.environ, "PYTHONPATH": str(ROOT)})  # this checkout's envd_jupyter
    saved = nbformat.writes(notebook)
    assert "token is ***" in saved and "exit code 3" in saved  # the build ran, printed, and failed
    assert any("comm_open" in record or "comm_id" in record for record in client.received)  # widgets spoke
    assert secret not in saved and not [record for record in client.received if secret in record]


def _magics_of(ip) -> _magics.Envd:
    return ip.magics_manager.registry["Envd"]
