"""BuildKit's build history on the real daemons: builds by buildx and by us, logs, steps, pin, delete, watch."""

from __future__ import annotations

import threading
import time

import pytest

from envd_jupyter.buildkit import DaemonError, HistoryNotFound, HistoryRecord, HistoryUnavailable
from envd_jupyter.llb import image

WAIT = 60.0  # seconds any event may take on a loaded machine (a bound, not a timing assertion)


def finished_record(client, ref: str) -> HistoryRecord:
    """The record once the daemon has finalized it (it does so just after the build's call returns)."""
    deadline = time.monotonic() + WAIT
    while True:
        [record] = client.history(ref=ref)
        if record.status != "running" or time.monotonic() > deadline:
            return record
        time.sleep(0.1)


@pytest.mark.parametrize("flavour", ["docker_current", "docker_classic"])
def test_a_buildx_build_is_in_the_history_with_its_step_counts(flavour, request, client_for, buildx_build):
    socket_path = request.getfixturevalue(flavour)
    made = buildx_build(socket_path)
    client = client_for(socket_path)
    [record] = client.history(ref=made.ref)
    assert isinstance(record, HistoryRecord) and record.status == "ok" and record.error == ""
    assert record.name == "Dockerfile"  # buildx sends no build name: the Dockerfile names it
    assert record.steps_total >= 3 and record.steps_completed == record.steps_total
    assert 0 <= record.steps_cached < record.steps_total  # the two RUNs carry a fresh token: they ran
    assert record.created <= record.completed and record.pinned is False
    assert "containerimage.config" in record.exporter_response
    data = record.to_dict()
    assert data["ref"] == made.ref and data["status"] == "ok" and isinstance(data["exporter_response"], dict)
    newest = client.history(limit=5)
    assert len(newest) == 5 and [r.created for r in newest] == sorted((r.created for r in newest), reverse=True)


def test_logs_and_provenance_steps_of_a_past_buildx_build(docker_current, client_for, buildx_build):
    made = buildx_build(docker_current)
    client = client_for(docker_current)
    model = client.history_logs(made.ref)
    runs = [v for v in model.vertices.values() if f"buildx-{made.token}" in v.name]
    assert len(runs) == 1 and runs[0].done and not runs[0].cached
    steps = client.history_steps(made.ref)
    commands = [s.summary for s in steps if s.kind == "exec"]
    assert commands == [f"/bin/sh -c echo buildx-{made.token} > /token", "/bin/sh -c echo two > /two"]
    assert [s.kind for s in steps][0] == "image" and all(s.digest.startswith("sha256:") for s in steps)
    by_digest = {s.digest: s for s in steps}
    assert all(i in by_digest for s in steps for i in s.inputs)  # inputs name steps of the same build


def test_our_failed_solve_is_recorded_failed_with_one_line(docker_current, client_for, busybox, network, unique):
    client = client_for(docker_current)
    with pytest.raises(Exception):
        client.solve(image(busybox).run(f"echo {unique}; exit 3", network=network), name=f"history-{unique}")
    [record] = client.history(name=f"history-{unique}")
    assert record.status == "failed" and "exit code: 3" in record.error and "\n" not in record.error
    assert client.history(name=f"history-{unique}", status="ok") == []


def test_pin_unpin_and_delete(docker_current, client_for, busybox, network, unique):
    client = client_for(docker_current)
    ref = client.solve(image(busybox).run(f"echo {unique}", network=network), name=f"pin-{unique}").ref
    client.pin_history(ref)
    assert client.history(ref=ref)[0].pinned is True
    client.pin_history(ref, pinned=False)
    assert client.history(ref=ref)[0].pinned is False
    client.delete_history(ref)
    assert client.history(ref=ref) == []
    with pytest.raises(HistoryNotFound, match=ref):
        client.history_logs(ref)
    with pytest.raises(HistoryNotFound):
        client.pin_history("nosuchrefnosuchrefnosuchr")


def test_a_watch_sees_a_build_start_and_complete_and_stops_on_close(docker_current, client_for, busybox,
                                                                    network, unique):
    client = client_for(docker_current)
    seen: list[tuple[str, HistoryRecord]] = []
    completed = threading.Event()

    def on_event(kind: str, record: HistoryRecord) -> None:
        if record.name == f"watch-{unique}":
            seen.append((kind, record))
            if kind == "completed":
                completed.set()

    watch = client.watch_history(on_event)
    ref = client.solve(image(busybox).run(f"echo {unique}", network=network), name=f"watch-{unique}").ref
    assert completed.wait(WAIT)
    kinds = [kind for kind, record in seen if record.ref == ref]
    assert kinds[0] == "started" and "completed" in kinds
    assert [r for k, r in seen if k == "completed"][0].status == "ok"
    watch.close()
    assert watch.ended.wait(WAIT) and watch.error is None
    assert not watch._thread.is_alive()


def test_a_watch_reports_the_daemon_going_away(docker_current, client_for):
    client = client_for(docker_current)
    errors = []
    watch = client.watch_history(lambda kind, record: None, on_error=errors.append)
    client.close()  # the channel under the open stream
    assert watch.ended.wait(WAIT)
    assert watch.error is not None and errors == [watch.error] and "\n" not in str(watch.error)


def test_an_old_daemon_has_no_history_in_one_line(docker_old, client_for):
    client = client_for(docker_old)
    for call in (client.history, lambda: client.watch_history(lambda kind, record: None),
                 lambda: client.delete_history("x" * 25)):
        with pytest.raises(HistoryUnavailable, match="has no build history") as failure:
            call()
        assert "\n" not in str(failure.value)


def test_every_listing_is_bounded_by_the_client_timeout(docker_current, client_for):
    client = client_for(docker_current)
    client.timeout = 0.001  # after connecting: a listing of thousands of records cannot finish in that
    started = time.monotonic()
    with pytest.raises(DaemonError, match="no complete answer in 0.001s") as failure:
        client.history()
    assert "\n" not in str(failure.value) and time.monotonic() - started < WAIT


def test_an_open_build_is_running_and_its_logs_come_back_within_the_timeout(docker_current, client_for, busybox,
                                                                            network, unique):
    client = client_for(docker_current)
    with client.interactive(name=f"open-{unique}") as build:
        build.solve(image(busybox).run(f"echo open-{unique}", network=network, name=f"say {unique}"))
        [record] = client.history(ref=build.ref)
        assert record.status == "running" and record.completed is None
        assert [r.ref for r in client.history(active_only=True) if r.ref == build.ref] == [build.ref]
        model = client.history_logs(build.ref, timeout=2)  # the job goes on: what came by then
        [step] = [v for v in model.vertices.values() if v.name == f"say {unique}"]
        assert step.done and f"open-{unique}" in step.log_text()
    done = finished_record(client, build.ref)
    assert done.status == "ok" and done.completed is not None
