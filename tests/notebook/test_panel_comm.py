"""The kernel side of the panel's comm through a real IPython kernel (jupyter_client): the test opens
comm ``envd-jupyter-panel`` as the panel does and reads what the kernel sends on iopub."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from jupyter_client import KernelManager

ROOT = Path(__file__).resolve().parents[2]
BUSYBOX = "envd-jupyter/busybox:latest"
TARGET = "envd-jupyter-panel"
WAIT = 120


@pytest.fixture
def kernel(tmp_path):
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(tmp_path), env=os.environ | {"PYTHONPATH": str(ROOT)})  # this tree's package
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=WAIT)
    yield client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


class Panel:
    """The panel's end of the comm: sends on shell, collects its comm's messages from iopub."""

    def __init__(self, client):
        self.client = client
        self.comm_id = uuid.uuid4().hex
        self.received: list[dict] = []

    def _until_idle(self, parent_id: str, *, fails: bool = False) -> list[dict]:
        """Every message of this comm until the kernel is idle after ``parent_id`` (bounded); an error
        raised in the kernel fails the test unless ``fails``."""
        new = []
        while True:
            message = self.client.get_iopub_msg(timeout=WAIT)
            kind, content = message["msg_type"], message["content"]
            if kind == "comm_msg" and content["comm_id"] == self.comm_id:
                new.append(content["data"])
            elif kind == "error" and not fails:
                raise AssertionError("\n".join(content["traceback"]))
            elif (kind == "status" and content["execution_state"] == "idle"
                  and message["parent_header"].get("msg_id") == parent_id):
                self.received.extend(new)
                return new

    def open(self) -> list[dict]:
        message = self.client.session.msg("comm_open", {"comm_id": self.comm_id, "target_name": TARGET, "data": {}})
        self.client.shell_channel.send(message)
        return self._until_idle(message["header"]["msg_id"])

    def send(self, data: dict) -> list[dict]:
        message = self.client.session.msg("comm_msg", {"comm_id": self.comm_id, "data": data})
        self.client.shell_channel.send(message)
        return self._until_idle(message["header"]["msg_id"])

    def run(self, code: str, *, fails: bool = False) -> list[dict]:
        return self._until_idle(self.client.execute(code), fails=fails)

    def next_states(self, wanted) -> list[dict]:
        """The next states message ``wanted(states)`` accepts, whatever sent it (a build's own thread)."""
        while True:
            message = self.client.get_iopub_msg(timeout=WAIT)
            content = message["content"]
            if message["msg_type"] == "comm_msg" and content["comm_id"] == self.comm_id:
                data = content["data"]
                if data["type"] == "states" and wanted(data["states"]):
                    return data["states"]


def states(messages: list[dict]) -> list[list[dict]]:
    return [m["states"] for m in messages if m["type"] == "states"]


def test_the_panel_gets_the_states_after_every_envd_cell_and_on_refresh(kernel):
    panel = Panel(kernel)
    panel.run("%load_ext envd_jupyter")
    assert panel.open() == [{"type": "states", "states": []}]
    after = panel.run("%%envd base --no-solve\nllb.image('busybox').run('echo hi', name='hello')")
    [[base]] = states(after)
    assert (base["name"], base["status"], base["builder"]) == ("base", "defined", "")
    assert base["cell_id"]  # the front end's cell id, or the name where none was sent
    assert "hello" in [node["name"] for node in base["graph"]["nodes"]] and base["graph"]["edges"]
    again = panel.run("%%envd base --no-solve\nllb.image('busybox').run('echo hi', name='hello')")
    assert len(states(again)) == 1  # after every %%envd, even unchanged
    assert panel.run("1 + 1") == []  # other cells send nothing when nothing changed
    refreshed = panel.send({"type": "refresh"})
    assert states(refreshed) == [[base]]
    assert panel.send({"type": "no such request"}) == []


def test_a_panel_opened_later_gets_the_states_at_once(kernel):
    panel = Panel(kernel)
    panel.run("%load_ext envd_jupyter")
    panel.run("%%envd first --no-solve\nllb.image('busybox')")
    panel.run("%%envd second --no-solve\nllb.image('busybox').run('true')")
    [opened] = states(panel.open())
    assert [s["name"] for s in opened] == ["first", "second"]


def test_builds_and_stepping_reach_the_panel(kernel, docker_current):
    panel = Panel(kernel)
    panel.run(f"%load_ext envd_jupyter\n%config Envd.builder = 'docker+unix://{docker_current}'\n"
              "%config Envd.progress = 'none'")
    panel.open()
    token = uuid.uuid4().hex[:12]
    built = panel.run(f"%%envd app\nllb.image('{BUSYBOX}').run('echo {token} > /t', name='write')")
    statuses = [[s["status"] for s in sent] for sent in states(built)]
    assert statuses[0] == ["running"] and statuses[-1] == ["ok"]
    [app] = states(built)[-1]
    assert app["builder"] == "default"

    body = f"llb.image('{BUSYBOX}').run('echo {token} > /a', name='a').run('echo b > /b', name='b')"
    panel.run(f"%%envd walk --no-solve\n{body}")
    graph = states(panel.received)[-1][-1]["graph"]
    names = {node["id"]: node["name"] for node in graph["nodes"]}
    first = panel.run("%envd_step walk")
    [position] = [m for m in first if m["type"] == "stepper"]
    assert position["state"] == "walk" and names.get(position["position"], "").startswith("image")
    second = [m for m in panel.run("%envd_step walk") if m["type"] == "stepper"]
    assert [names.get(m["position"]) for m in second] == ["a"]
    stopped = [m for m in panel.run("%envd_step walk --stop") if m["type"] == "stepper"]
    assert stopped == [{"type": "stepper", "state": "walk", "position": None}]


def test_a_background_build_settles_on_its_own_and_a_failed_one_says_so(kernel, docker_current):
    panel = Panel(kernel)
    panel.run(f"%load_ext envd_jupyter\n%config Envd.builder = 'docker+unix://{docker_current}'\n"
              "%config Envd.progress = 'none'")
    panel.open()
    token = uuid.uuid4().hex[:12]
    started = states(panel.run(f"%%envd bg --background\nllb.image('{BUSYBOX}').run('sleep 1; echo {token}')"))
    assert [s["status"] for s in started[-1]] == ["running"]
    [bg] = panel.next_states(lambda sent: sent[0]["status"] != "running")  # sent from the build's thread
    assert (bg["name"], bg["status"], bg["builder"]) == ("bg", "ok", "default")
    panel.run(f"%%envd broken\nllb.image('{BUSYBOX}').run('echo {token}; exit 3', name='fails')", fails=True)
    broken = [s for s in states(panel.received)[-1] if s["name"] == "broken"]
    assert [(s["status"], s["builder"]) for s in broken] == [("failed", "default")]  # its failed step kept open


class RecordingComm:
    """The kernel's end of one panel comm, recording what is sent (the real comm is tested above)."""

    def __init__(self):
        self.sent: list[dict] = []

    def send(self, data):
        self.sent.append(data)

    def on_msg(self, callback):
        pass

    def on_close(self, callback):
        pass


def test_stepping_stopped_outside_any_cell_still_tells_the_panel(docker_current, tmp_path, monkeypatch):
    """The stepper's Stop button runs on a thread of its own, after its cell ended: no post_run_cell follows."""
    from IPython.core.interactiveshell import InteractiveShell

    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "envd_jupyter")
    try:
        shell.run_line_magic("config", f'Envd.builder = "docker+unix://{docker_current}"')
        shell.run_line_magic("config", 'Envd.progress = "none"')
        magics = shell.magics_manager.registry["Envd"]
        comm = RecordingComm()
        magics.panel._opened(comm, {})
        token = uuid.uuid4().hex[:12]
        shell.run_cell_magic("envd", "walk --no-solve", f"llb.image('{BUSYBOX}').run('echo {token}', name='a')")
        shell.run_line_magic("envd_step", "walk")
        assert [m["position"] for m in comm.sent if m["type"] == "stepper"][-1] is not None
        magics._steppers["walk"].stop()  # what the button's handler calls, outside any cell
        assert [m for m in comm.sent if m["type"] == "stepper"][-1] == {"type": "stepper", "state": "walk",
                                                                         "position": None}
    finally:
        shell.run_line_magic("unload_ext", "envd_jupyter")
        InteractiveShell.clear_instance()
