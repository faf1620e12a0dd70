"""The archive with the real daemons: what %%envd records, the merged view, records past the daemon, secrets."""

from __future__ import annotations

import secrets as random_tokens
import uuid
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from envd_jupyter import fleet as fleets
from envd_jupyter.buildkit import SolveError, connect
from envd_jupyter.buildkit._session.secrets import Secret
from envd_jupyter.history import Archive, merged_history
from envd_jupyter.llb import image, secret_env
from envd_jupyter.notebook._record import BuildRecording, FleetFacts


@pytest.fixture
def client_for():
    """connect() to a docker socket path; every client is closed after the test."""
    clients = []

    def make(socket_path: str):
        clients.append(connect(f"docker+unix://{socket_path}"))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def archive_path(tmp_path):
    return tmp_path / "history.sqlite3"


@pytest.fixture
def shell(docker_current, tmp_path, archive_path, monkeypatch, daemon_env):
    """An IPython shell with the extension loaded, one builder, and the archive at ``archive_path``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "analysis.ipynb"))
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "envd_jupyter")
    ip.run_line_magic("config", f'Envd.builder = "docker+unix://{docker_current}"')
    ip.run_line_magic("config", 'Envd.progress = "none"')
    ip.run_line_magic("config", f'Envd.history = "{archive_path}"')
    ip.user_ns["BUSYBOX"] = daemon_env["ENVD_IMAGE_BUSYBOX"]
    yield ip
    ip.run_line_magic("unload_ext", "envd_jupyter")
    InteractiveShell.clear_instance()


def written(ip) -> None:
    """Wait (bounded) until the magics' archive writer has stored what it was given."""
    ip.magics_manager.registry["Envd"]._archive_writer.flush()


def test_each_envd_build_ok_or_failed_is_one_archive_entry(shell, archive_path, docker_current, capsys):
    token = uuid.uuid4().hex[:12]
    shell.run_cell_magic("envd", "app", f'llb.image(BUSYBOX).run("echo {token} > /t", name="write")')
    with pytest.raises(SolveError):
        shell.run_cell_magic("envd", "broken", f'llb.image(BUSYBOX).run("echo {token}; exit 3", name="fail")')
    written(shell)
    assert "not recorded" not in capsys.readouterr().err
    archive = Archive(archive_path)
    items, total = archive.list()
    assert total == 2 and [i["state"] for i in items] == ["broken", "app"]
    broken, app = items
    assert app["status"] == "ok" and app["error"] == "" and app["ran"] == 1  # the fresh RUN
    assert app["cached"] + app["ran"] <= app["total"]  # the image may count as cached, or not
    assert broken["status"] == "failed" and "exit code 3" in broken["error"] and "\n" not in broken["error"]
    for item in items:
        assert item["notebook"].endswith("analysis.ipynb") and item["builder"] == "default"
        assert item["address"] == f"docker+unix://{docker_current}" and item["cell_id"] == f"name:{item['state']}"
        assert item["name"] == f"analysis.ipynb: {item['state']}" and item["created"] <= item["completed"]
    full = archive.get(app["id"])
    assert [n["name"] for n in full["graph"]["nodes"]][-1] == "write"
    assert {s["name"] for s in full["steps"]} >= {"write"} and len(full["steps"]) == app["total"]
    assert full["scheduling"][0]["candidates"] == ["default"]


def test_a_build_that_failed_before_any_stage_is_still_joined_by_its_daemon_ref(shell, archive_path,
                                                                                 docker_current, client_for):
    missing = f"envd-jupyter/no-such-image-{uuid.uuid4().hex[:8]}:latest"
    with pytest.raises(SolveError):
        shell.run_cell_magic("envd", "nowhere", f'llb.image("{missing}").run("true")')
    written(shell)
    [entry], _ = Archive(archive_path).list()
    assert entry["status"] == "failed" and not entry["id"].startswith("local-")
    items, _ = merged_history(Archive(archive_path), {"default": client_for(docker_current)}, name="nowhere")
    assert [i["source"] for i in items if i["id"] == entry["id"]] == ["both"]  # earlier runs share the name


def test_merged_history_joins_our_builds_and_keeps_what_the_daemon_dropped(shell, archive_path, docker_current,
                                                                          client_for):
    shell.run_cell_magic("envd", "kept", f'llb.image(BUSYBOX).run("echo {uuid.uuid4().hex}")')
    written(shell)
    archive = Archive(archive_path)
    [entry], _ = archive.list()
    client = client_for(docker_current)
    items, _ = merged_history(archive, {"default": client}, name="kept")
    [joined] = [i for i in items if i["id"] == entry["id"]]
    assert joined["source"] == "both" and joined["state"] == "kept" and joined["status"] == "ok"
    assert joined["notebook"].endswith("analysis.ipynb") and joined["ran"] == 1
    shell.run_line_magic("unload_ext", "envd_jupyter")  # ends the kept stage's build, so the daemon can delete it
    client.delete_history(entry["id"])
    assert client.history(ref=entry["id"]) == []
    items, _ = merged_history(archive, {"default": client}, name="kept")
    [dropped] = [i for i in items if i["id"] == entry["id"]]
    assert dropped["source"] == "archive" and dropped["state"] == "kept" and dropped["status"] == "ok"
    shell.run_line_magic("load_ext", "envd_jupyter")  # the fixture unloads it again


def test_a_kernel_entry_joins_its_daemon_record_whatever_the_server_calls_the_builder(shell, archive_path,
                                                                                       docker_current, client_for):
    """The kernel names the daemon "default" (Envd.builder); the server's fleet calls it "current"."""
    shell.run_cell_magic("envd", "named", f'llb.image(BUSYBOX).run("echo {uuid.uuid4().hex}")')
    written(shell)
    archive = Archive(archive_path)
    [entry], _ = archive.list()
    assert entry["builder"] == "default"
    for only in (None, "current"):
        items, _ = merged_history(archive, {"current": client_for(docker_current)}, builder=only, name="named")
        [joined] = [i for i in items if i["id"] == entry["id"]]  # one row, not one per name
        assert (joined["source"], joined["builder"], joined["state"]) == ("both", "current", "named")


def test_a_buildx_build_in_the_merged_history_and_a_failing_daemon_reported(docker_current, docker_old,
                                                                            client_for, buildx_build, tmp_path):
    made = buildx_build(docker_current)
    archive = Archive(tmp_path / "h.sqlite3")
    archive.add({"id": "old-build", "builder": "old", "state": "legacy", "status": "ok", "created": 1.0, "total": 2})
    errors: dict[str, str] = {}
    clients = {"current": client_for(docker_current), "old": client_for(docker_old)}
    items, total = merged_history(archive, clients, limit=None, errors=errors)
    [item] = [i for i in items if i["id"] == made.ref]
    assert item["source"] == "daemon" and item["builder"] == "current" and item["status"] == "ok"
    assert item["total"] >= 3 and item["ran"] >= 2 and item["total"] == item["cached"] + item["ran"]
    assert set(errors) == {"old"} and "has no build history" in errors["old"] and "\n" not in errors["old"]
    assert [i["source"] for i in items if i["id"] == "old-build"] == ["archive"]
    page, _ = merged_history(archive, clients, builder="current", offset=1, limit=2)
    assert len(page) == 2 and {i["builder"] for i in page} == {"current"}  # other helpers build meanwhile
    old_only, old_total = merged_history(archive, clients, builder="old")
    assert old_total == 1 and old_only[0]["id"] == "old-build"


def test_remembered_daemon_summaries_outlive_the_daemon_record(docker_current, client_for, buildx_build, tmp_path):
    made = buildx_build(docker_current)
    archive = Archive(tmp_path / "h.sqlite3")
    client = client_for(docker_current)
    merged_history(archive, {"current": client}, limit=1, remember=True)
    client.delete_history(made.ref)
    items, _ = merged_history(archive, {"current": client}, limit=None)
    [item] = [i for i in items if i["id"] == made.ref]
    assert item["source"] == "archive" and item["name"] == "Dockerfile" and item["total"] >= 3


def test_history_off_records_nothing_and_a_broken_archive_is_one_warning(shell, archive_path, tmp_path, capsys):
    shell.run_line_magic("config", 'Envd.history = ""')
    shell.run_cell_magic("envd", "quiet", 'llb.image(BUSYBOX).run("true")')
    assert not archive_path.exists()
    (tmp_path / "not-a-dir").write_text("")
    shell.run_line_magic("config", f'Envd.history = "{tmp_path / "not-a-dir" / "h.sqlite3"}"')
    shell.run_cell_magic("envd", "still", 'llb.image(BUSYBOX).run("true")')  # the cell still succeeds
    written(shell)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "build history not recorded" in line]
    assert len(warnings) == 1 and warnings[0].startswith("envd: build history not recorded: build archive")


def test_a_secret_build_leaves_no_secret_in_the_archive(docker_current, daemon_env, tmp_path, network_mode):
    token = "tok-" + random_tokens.token_hex(16)
    state = image(daemon_env["ENVD_IMAGE_BUSYBOX"]).run(
        f'test -n "$TOKEN" && echo length ${{#TOKEN}} {uuid.uuid4().hex}',
        mounts=[secret_env("TOKEN", "tok")], network=network_mode, name="uses the token")
    fleet = fleets.Fleet.single(f"docker+unix://{docker_current}")
    recording = BuildRecording(state="secretive", name="secretive", cell_id="c1", notebook="n.ipynb",
                               definition=state.marshal())
    try:
        stage = fleet.build(state, secrets={"tok": Secret(value=token.encode())}, on_scheduled=recording.scheduled)
        entry = recording.entry(FleetFacts(fleet), stage=stage)
        assert any("length 36" in line for step in entry["steps"] for line in step.get("log_tail", []))
        stage.close()
    finally:
        fleet.close()
    with Archive(tmp_path / "h.sqlite3") as archive:
        archive.add(entry)
        assert archive.get(entry["id"])["graph"]["nodes"]
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("h.sqlite3"))
    assert b"uses the token" in stored and token.encode() not in stored


@pytest.fixture
def network_mode(daemon_env) -> str:
    return daemon_env.get("ENVD_RUN_NETWORK", "sandbox")


@pytest.mark.timeout(240)
def test_a_kernel_records_the_cell_id_lab_sends_and_writes_before_it_exits(docker_current, daemon_env, tmp_path,
                                                                          monkeypatch):
    """A real kernel, sent execute requests carrying ``cellId`` metadata as JupyterLab sends them."""
    from jupyter_client.manager import start_new_kernel

    root = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "lab.ipynb"))
    archive_path = tmp_path / "kernel-history.sqlite3"
    setup = (f"%load_ext envd_jupyter\n%config Envd.builder = 'docker+unix://{docker_current}'\n"
             f"%config Envd.history = '{archive_path}'\n%config Envd.progress = 'none'")
    build = f"%%envd app\nllb.image('{daemon_env['ENVD_IMAGE_BUSYBOX']}').run('echo {uuid.uuid4().hex}')"
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(root))
    try:
        for code, cell_id in ((setup, "cell-setup"), (build, "cell-build-7f3a")):
            request = client.session.msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                                             "user_expressions": {}, "allow_stdin": False},
                                         metadata={"cellId": cell_id})
            client.shell_channel.send(request)
            reply = client.get_shell_msg(timeout=120)
            while reply["parent_header"].get("msg_id") != request["header"]["msg_id"]:
                reply = client.get_shell_msg(timeout=120)
            assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel()  # a shutdown request: the kernel exits normally, its pending write done
    [item], total = Archive(archive_path).list()
    assert total == 1 and item["cell_id"] == "cell-build-7f3a" and item["state"] == "app"
    assert item["notebook"] == str(tmp_path / "lab.ipynb") and item["status"] == "ok"
