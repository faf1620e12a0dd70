"""A user's event callback that raises cancels the build on the daemon and surfaces as itself.

Covers the plain Control.Solve, the gateway route ``Client.solve`` takes for image exports with a
config, and ``client.interactive()``. ``timeout=`` only guards against a hang: the tests assert
the user's own exception, so a timeout would fail them.
"""

import threading

import pytest

from envd_jupyter.buildkit import Image, LocalDir

from llbdefs import chain
from test_faults import _eventually, _procs_with

GUARD = 300.0


def _sleep_step(marker: str) -> str:
    """Prints before it sleeps: raising on that log line means the process surely runs (cancelling a
    container that is still starting can leave its process behind on dockerd 26, a daemon race)."""
    return f"echo started-{marker}; sleep 4242; echo {marker}"


class WidgetBroke(Exception):
    pass


def _raising_when_running(marker: str):
    """An on_event callback that raises WidgetBroke once the step logs ``started-<marker>``; counts later calls."""
    state = {"raised": None, "calls_after": 0}

    def on_event(event):
        if state["raised"] is not None:
            state["calls_after"] += 1
        elif event.kind == "log" and f"started-{marker}".encode() in event.log.data:
            state["raised"] = WidgetBroke(f"widget failed on {event.vertex.name}")
            raise state["raised"]

    return on_event, state


def test_raising_callback_cancels_solve_and_keeps_old_export(any_client, busybox, network, unique, tmp_path):
    marker = f"cb-{unique}"
    out = tmp_path / "out"
    out.mkdir()
    (out / "previous").write_text("kept")
    export = LocalDir(out, overwrite=True)
    on_event, state = _raising_when_running(marker)
    baseline = threading.active_count()
    with pytest.raises(WidgetBroke) as failure:
        any_client.solve(chain(busybox, [_sleep_step(marker)], network=network), exports=[export],
                         on_event=on_event, timeout=GUARD)
    assert failure.value is state["raised"]
    assert state["calls_after"] == 0
    _eventually(lambda: not _procs_with(marker), "the step is cancelled on the daemon")
    _eventually(lambda: threading.active_count() <= baseline, "no solve thread outlives the solve")
    assert export.ok is False and (out / "previous").read_text() == "kept"


def test_raising_callback_on_the_gateway_route(docker_classic, client_for, busybox, network, unique):
    """An image export with a config goes through the gateway (dockerd's moby exporter needs it)."""
    marker = f"cb-gw-{unique}"
    export = Image(f"envd-jupyter-test/cb:{unique}", attrs={"containerimage.config": "{}"})
    on_event, state = _raising_when_running(marker)
    with pytest.raises(WidgetBroke) as failure:
        client_for(docker_classic).solve(chain(busybox, [_sleep_step(marker)], network=network),
                                         exports=[export], on_event=on_event, timeout=GUARD)
    assert failure.value is state["raised"]
    _eventually(lambda: not _procs_with(marker), "the step is cancelled on the daemon")
    assert export.ok is False


@pytest.mark.parametrize("flavour", ["current", "old"])
def test_raising_callback_in_an_interactive_build(request, flavour, client_for, busybox, network, unique):
    marker = f"cb-int-{unique}"
    client = client_for(request.getfixturevalue(f"docker_{flavour}"))
    on_event, state = _raising_when_running(marker)
    with pytest.raises(WidgetBroke) as failure:
        with client.interactive(on_event=on_event, timeout=GUARD) as build:
            build.solve(chain(busybox, [_sleep_step(marker)], network=network), timeout=GUARD)
    assert failure.value is state["raised"]
    _eventually(lambda: not _procs_with(marker), "the step is cancelled on the daemon")
    # The client is still usable afterwards.
    assert client.solve(chain(busybox, [f"echo after-{marker}"], network=network)).model.total >= 2
