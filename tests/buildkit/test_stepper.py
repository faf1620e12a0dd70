"""Stepping through a branching graph in one interactive build: Next in dependency order, resume to a breakpoint."""

from __future__ import annotations

import pytest

from envd_jupyter.buildkit import SolveError, Step
from envd_jupyter.llb import bind_mount, image


def _branching(busybox, network, unique):
    base = image(busybox)
    left = base.run(f"echo {unique} > /left", name="left", network=network)
    right = base.run(f"echo {unique} > /right", name="right", network=network)
    joined = left.run("cp /r/right /joined", name="join", mounts=[bind_mount("/r", right)], network=network)
    return joined.run("echo done > /done", name="finish", network=network)


def test_next_solves_each_vertex_after_its_inputs_and_pauses_on_its_filesystem(any_client, busybox, network, unique):
    with any_client.interactive() as build:
        stepper = build.stepper(_branching(busybox, network, unique))
        steps = list(stepper)
        assert stepper.done and all(isinstance(step, Step) for step in steps)
        names = [step.vertex.name for step in steps]
        assert names[0].startswith("image ") and sorted(names[1:3]) == ["left", "right"] and names[3:] == ["join", "finish"]
        solved: set[str] = set()
        for step in steps:  # dependency order: every input was solved at an earlier pause
            assert set(step.vertex.inputs) <= solved
            solved.add(step.vertex.digest)
        by_name = {step.vertex.name: step for step in steps}
        assert "left" not in [e.path for e in by_name["right"].ref.read_dir("/")]
        assert by_name["join"].ref.read_file("/joined") == f"{unique}\n".encode()
        assert "done" not in [e.path for e in by_name["join"].ref.read_dir("/")]
        assert str(by_name["finish"]) == "step 5/5: finish"


def test_resume_runs_on_to_the_next_breakpoint_then_the_end(any_client, busybox, network, unique):
    with any_client.interactive() as build:
        stepper = build.stepper(_branching(busybox, network, unique), breakpoints=["join"])
        first = stepper.next()
        assert first.position == 1
        paused = stepper.resume()
        assert paused.vertex.name == "join" and paused.position == 4
        assert paused.ref.read_file("/joined") == f"{unique}\n".encode()
        last = stepper.resume()
        assert last.vertex.name == "finish" and stepper.done and stepper.resume() is None
        with pytest.raises(StopIteration):
            stepper.next()


def test_a_failing_vertex_stops_the_stepper_with_a_solve_error(any_client, busybox, network):
    with any_client.interactive() as build:
        stepper = build.stepper(image(busybox).run("exit 4", name="breaks", network=network).run("true"))
        stepper.next()
        with pytest.raises(SolveError) as caught:
            stepper.next()
        assert caught.value.exit_code == 4 and caught.value.step == "breaks" and stepper.position == 1


def test_resume_pauses_at_a_breakpoint_marked_in_the_graph(any_client, busybox, network, unique):
    base = image(busybox).run(f"echo {unique} > /a", name="a", network=network)
    state = base.run("echo b > /b", name="b", network=network).breakpoint().run("echo c > /c", name="c", network=network)
    with any_client.interactive() as build:
        stepper = build.stepper(state)
        paused = stepper.resume()
        assert paused.vertex.name == "b" and "c" not in [e.path for e in paused.ref.read_dir("/")]
        assert stepper.resume().vertex.name == "c" and stepper.done
