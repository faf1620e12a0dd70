"""Solve handles: a solve started in its own thread, watched through its live model and events, cancelled,
waited for from threads and asyncio; build names; dockerd's labelled images."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from envd_jupyter.buildkit import Caps, Image, SolveCancelled, SolveHandle, SolveResult, connect
from envd_jupyter.buildkit._request import BUILD_NAME_ATTR, build_request

from llbdefs import chain
from test_faults import WAIT, _Step


def test_a_handle_is_watched_while_it_runs_then_cancelled(any_client, busybox, network, unique):
    step = _Step(busybox, network, f"handle-{unique}")
    handle = any_client.start_solve(step.state, on_event=step.on_event, timeout=WAIT)
    assert isinstance(handle, SolveHandle) and handle.ref
    seen = []
    for event in handle.events(timeout=WAIT):
        seen.append(event.kind)
        if event.kind == "log" and step.marker.encode() in event.log.data:
            (vertex,) = [v for v in handle.model.vertices.values() if step.marker in v.name]
            assert vertex.state == "running" and not handle.done  # the model is live
            with pytest.raises(TimeoutError):
                handle.result(timeout=0.1)
            handle.cancel()
    assert "started" in seen and seen[-1] == "error"  # events run to the end: the daemon's cancel report
    with pytest.raises(SolveCancelled):
        handle.result(WAIT)
    assert handle.done
    step.assert_cancelled_on_the_daemon()


def test_done_callbacks_run_once_whenever_they_are_added(docker_old, client_for, busybox, network, unique):
    called = []
    handle = client_for(docker_old).start_solve(chain(busybox, [f"echo {unique}"], network=network))
    handle.add_done_callback(lambda h: called.append(("before", h)))
    result = handle.result(WAIT)
    handle.add_done_callback(lambda h: called.append(("after", h)))
    assert isinstance(result, SolveResult) and result.ref == handle.ref and result.model is handle.model
    assert sorted(called, key=lambda c: c[0]) == [("after", handle), ("before", handle)]
    assert list(handle.events()) == []  # subscribed after the end: nothing more will come


def test_a_handle_is_awaited_from_asyncio_and_from_another_thread(docker_classic, client_for, busybox, network,
                                                                 unique):
    client = client_for(docker_classic)
    handle = client.start_solve(chain(busybox, [f"echo async-{unique}"], network=network))
    from_thread = []
    waiter = threading.Thread(target=lambda: from_thread.append(handle.result(WAIT)))
    waiter.start()

    async def main():
        return await asyncio.wait_for(handle, WAIT)

    result = asyncio.run(main())
    waiter.join(WAIT)
    assert from_thread == [result] and [v.log_tail() for v in result.model.ran()] == [[f"async-{unique}"]]


def test_the_build_name_reaches_the_request_and_every_daemon_accepts_it(any_client, busybox, network, unique):
    request = build_request("ref", "session", None, [], Caps(frozenset(), frozenset()), name=f"nightly {unique}")
    assert request.FrontendAttrs[BUILD_NAME_ATTR] == f"nightly {unique}"
    result = any_client.solve(chain(busybox, [f"echo named-{unique}"], network=network), name=f"nightly {unique}")
    assert result.model.ran()
    with any_client.interactive(name=f"nightly-build {unique}") as build:
        assert build.solve(chain(busybox, [f"echo named-build-{unique}"], network=network)).cached is False


@pytest.mark.parametrize("flavour", ["current", "classic", "old"])
def test_labelled_images_come_from_dockerds_store(request, flavour, client_for, busybox, network, unique):
    socket_path = request.getfixturevalue(f"docker_{flavour}")
    client = client_for(socket_path)
    label = f"envd-jupyter-test.label-{unique}"
    config = {"architecture": "amd64", "os": "linux", "config": {"Labels": {label: "yes"}},
              "rootfs": {"type": "layers", "diff_ids": []}}
    name = f"envd-jupyter-test/labelled:{unique}"
    client.solve(chain(busybox, [f"echo {unique} > /labelled"], network=network),
                 exports=[Image(name, attrs={"containerimage.config": json.dumps(config)})])
    (found,) = client.labelled_images(label)
    assert found["Labels"][label] == "yes" and any(tag.endswith(name) for tag in found["RepoTags"])
    assert client.labelled_images(f"{label}-never") == []
    with connect(f"unix://{client.transport.channel_target}") as direct:  # a buildkitd address: no image store
        assert direct.labelled_images(label) == []
