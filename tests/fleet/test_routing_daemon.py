"""Routing on three equal real builders (scripts/fleet-up): affinity, the shared registry cache, failover,
builders joining at runtime, and the two scheduling cycles in the record."""

import os
import signal
import socket
import time
import uuid

import pytest

from envd_jupyter import buildkit, llb
from envd_jupyter.fleet import Fleet, FleetError

BUSYBOX = "envd-jupyter/busybox:latest"
WAIT = 120  # seconds any wait below may take at most


@pytest.fixture
def fleet(fleet_daemons, daemon_env):
    lines = []
    with Fleet(fleet_daemons, registry_cache=daemon_env["ENVD_REGISTRY"], on_failover=lines.append) as fleet:
        fleet.failover_lines = lines
        yield fleet


def unique_chain(token: str, steps: int = 3):
    state = llb.image(BUSYBOX)
    for i in range(steps):
        state = state.run(f"echo {i} {token} > /step{i}", name=f"step {i} {token[:8]}")
    return state


def steps(vertices) -> list[str]:
    """Names of this test's own steps among ``vertices`` (leaving out the cache export and image resolution)."""
    return sorted(v.name for v in vertices if v.name.startswith("step "))


def affinity(result, builder: str) -> float:
    build_cycle = next(r.to_dict() for r in result.scheduling.records if r.profile == "build")
    return build_cycle["scores"][builder]["scorers"]["cache-affinity-scorer"]["raw"]


def test_the_fleet_daemons_are_equal_builders_of_the_current_flavour(fleet, docker_current):
    reports = fleet.builders()
    assert [info.name for info in reports] == ["fleet1", "fleet2", "fleet3"] and all(i.healthy for i in reports)
    assert len({info.caps for info in reports}) == 1 and "mergeop" in reports[0].caps
    assert all(info.registry_cache for info in reports), "the containerd store exports registry cache"
    assert {info.address for info in reports}.isdisjoint({f"docker+unix://{docker_current}"})


def test_a_repeat_build_goes_to_the_warm_builder_and_runs_nothing(fleet):
    state = unique_chain(uuid.uuid4().hex)
    first = fleet.solve(state)
    assert len(steps(first.model.ran())) == 3
    again = fleet.solve(state)
    assert again.builder == first.builder
    assert affinity(again, first.builder) == 1.0
    build_cycle = next(r.to_dict() for r in again.scheduling.records if r.profile == "build")
    others = sorted(other for other in fleet.names if other != first.builder)
    assert {"filter": "sticky-until-saturated", "removed": others} in build_cycle["filters"], "sticky: idle ones left out"
    assert steps(again.model.ran()) == [] and len(steps(again.model.cached())) == 3
    [warm] = [info for info in fleet.builders(refresh=True) if info.name == first.builder]
    assert warm.disk_bytes > 0 and warm.solves == 2 and warm.failures == 0


def test_a_bare_local_source_keeps_its_digests_so_a_repeat_is_known_warm(fleet, tmp_path):
    (tmp_path / "app.py").write_text(uuid.uuid4().hex)
    state = unique_chain(uuid.uuid4().hex, steps=1).copy(llb.local("ctx"), "/app.py", "/app.py").run(
        "cat /app.py > /ran", name="step after context")  # no unique_id: llb draws one per marshal
    first = fleet.solve(state, local_dirs={"ctx": str(tmp_path)})
    again = fleet.solve(state, local_dirs={"ctx": str(tmp_path)})
    assert again.builder == first.builder and affinity(again, first.builder) == 1.0, "the steps after the context too"


def test_the_steps_reported_durations_weigh_the_next_request(fleet):
    token = uuid.uuid4().hex
    chain = (llb.image(BUSYBOX).run(f"echo {token} > /quick", name=f"step quick {token[:8]}")
             .run(f"sleep 1; echo {token} > /slow", name=f"step slow {token[:8]}"))
    before = fleet.request(chain.run("echo new > /new"))
    assert all(v.duration is None for v in before.vertices), "nothing has run yet: every step weighs its kind"
    first = fleet.solve(chain)
    ran = {v.name.split()[1]: v for v in first.model.ran() if v.name.startswith("step ")}
    assert ran["slow"].duration >= 1.0
    nxt = fleet.request(chain.run("echo new > /new"))
    weights = dict(zip((v.digest for v in nxt.vertices), nxt.work({"exec": 10.0, "image": 5.0})[0]))
    assert weights[ran["quick"].digest] == pytest.approx(ran["quick"].duration)
    assert weights[ran["slow"].digest] == pytest.approx(ran["slow"].duration)
    assert weights[ran["slow"].digest] > weights[ran["quick"].digest], "equal by kind, not by what they cost"
    again = fleet.solve(chain)  # all cached: a cached report does not erase the real run's duration
    assert not steps(again.model.ran())
    assert {v.digest: v.duration for v in fleet.request(chain).vertices}[ran["slow"].digest] == pytest.approx(ran["slow"].duration)


def test_each_decision_records_a_build_and_an_export_cycle(fleet):
    result = fleet.solve(unique_chain(uuid.uuid4().hex, steps=1))
    cycles = result.to_dict()["scheduling"]
    assert [cycle["profile"] for cycle in cycles] == ["build", "export"]
    assert cycles[1]["scores"][result.builder]["scorers"]["same-as-build"]["raw"] == 1.0
    assert result.scheduling.to_dict()["endpoint"] == result.builder


def test_a_burst_of_builds_spreads_over_the_idle_builders(fleet):
    """Three decisions at once: each pick stays reserved until its solve is counted in flight."""
    handles = [fleet.start_solve(llb.image(BUSYBOX).run(f"sleep 1; echo {uuid.uuid4().hex}")) for _ in range(3)]
    assert sorted(handle.result(timeout=WAIT).builder for handle in handles) == ["fleet1", "fleet2", "fleet3"]


def test_a_cold_builder_imports_the_warm_ones_work_from_the_registry_cache(fleet):
    state = unique_chain(uuid.uuid4().hex)
    warm = fleet.solve(state).builder
    fleet.remove(warm)  # the next pick must be a builder that never ran these steps
    cold = fleet.solve(state)
    assert cold.builder != warm
    assert 0 < affinity(cold, cold.builder) < 1.0, "registry-reachable cache is a weaker hit"
    assert steps(cold.model.ran()) == [] and len(steps(cold.model.cached())) == 3, "every step came from the shared cache"


def test_a_built_stage_shares_its_cache_and_a_cold_builder_imports_it(fleet, tmp_path):
    (tmp_path / "requirements.txt").write_text(uuid.uuid4().hex)
    state = unique_chain(uuid.uuid4().hex).copy(llb.local("ctx"), "/requirements.txt", "/req").run(
        "cat /req > /used", name="step uses context")
    stage = fleet.build(state, local_dirs={"ctx": str(tmp_path)})
    try:
        assert stage.shared is not None, "a stage on a builder that can export registry cache shares it"
        ref = stage.shared.result(timeout=WAIT)
        assert ref.startswith(f"{fleet.shared_cache.registry}/envd-jupyter/fleet-cache:")
        assert fleet.shared_cache.holds(fleet.request(state)), "the registry now holds every step of the stage"
        assert stage.read_file("/used") == (tmp_path / "requirements.txt").read_bytes(), "the stage stayed open"
    finally:
        stage.close()
    again = fleet.build(state, local_dirs={"ctx": str(tmp_path)})
    again.close()
    assert again.shared is None, "nothing left to share"
    fleet.remove(stage.builder)
    cold = fleet.solve(state, local_dirs={"ctx": str(tmp_path)})
    assert cold.builder != stage.builder
    assert steps(cold.model.ran()) == [] and len(steps(cold.model.cached())) == 4, "every step came from the share"


def test_a_builder_killed_mid_solve_fails_over_and_the_build_completes(fleet, fleet_up):
    token = uuid.uuid4().hex
    state = llb.image(BUSYBOX).run(f"echo {token}; sleep 5; echo {token} > /done", name="slow step")
    handle = fleet.start_solve(state)
    try:
        deadline = time.monotonic() + WAIT
        while not (handle.model and any(v.started for v in handle.model.vertices.values() if v.name == "slow step")):
            assert time.monotonic() < deadline and not handle.done(), "the slow step never started"
            time.sleep(0.05)
        victim = handle.builder
        pid = int((daemon_dir(victim) / "docker.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        result = handle.result(timeout=WAIT)
    finally:
        fleet_up()  # the killed daemon comes back (scripts/fleet-up) for the other tests
    assert result.builder != victim
    assert "slow step" in [v.name for v in result.model.ran()]
    [line] = fleet.failover_lines
    assert line.startswith(f"fleet: {victim} failed (") and f"retrying on {result.builder} (attempt 2 of 3)" in line
    assert result.failovers == (line,)
    [down] = [info for info in fleet.builders() if info.name == victim]
    assert not down.healthy and down.error


def test_a_builder_added_at_runtime_receives_work(fleet_daemons, daemon_env):
    first, *_, last = sorted(fleet_daemons)
    with Fleet({first: fleet_daemons[first]}) as fleet:
        busy = fleet.start_solve(llb.image(BUSYBOX).run(f"sleep 30; echo {uuid.uuid4().hex}", name="busy"))
        try:
            deadline = time.monotonic() + WAIT
            while busy.builder is None:
                assert time.monotonic() < deadline and not busy.done()
                time.sleep(0.05)
            fleet.add(last, fleet_daemons[last])
            assert [info.name for info in fleet.builders() if info.healthy] == [first, last]
            result = fleet.solve(unique_chain(uuid.uuid4().hex, steps=1))
            assert result.builder == last  # the newcomer is idle, the first builder has one solve in flight
        finally:
            busy.cancel()
        with pytest.raises(buildkit.SolveCancelled):
            busy.result(timeout=WAIT)


def test_a_hung_daemon_holds_reports_and_decisions_no_longer_than_the_refresh_timeout(fleet_daemons, tmp_path):
    """A peer that accepts and never answers: reported unhealthy by the round's bound, not the 30 s client timeout."""
    first = sorted(fleet_daemons)[0]
    with socket.socket(socket.AF_UNIX) as hung:
        hung.bind(str(tmp_path / "hung.sock"))
        hung.listen(8)
        builders = {first: fleet_daemons[first], "hung": f"docker+unix://{tmp_path}/hung.sock"}
        with Fleet(builders, timeout=30, refresh_timeout=1) as fleet:
            reports = {info.name: info for info in fleet.builders()}
            assert reports[first].healthy and reports[first].latency_ms is not None and reports[first].updated
            assert not reports["hung"].healthy and reports["hung"].error == "no answer within 1s"
            assert fleet.solve(unique_chain(uuid.uuid4().hex, steps=1)).builder == first


def test_interactive_builds_open_on_the_pick_and_teach_the_fleet(fleet):
    state = unique_chain(uuid.uuid4().hex, steps=2)
    with fleet.interactive(state) as build:
        ref = build.solve(state)
        assert ref.read_file("/step1").decode().startswith("1 ")
        builder = build.builder
    assert fleet.solve(state).builder == builder  # what the build ran there is known to be there


def test_a_fleet_from_the_users_docker_contexts_routes_to_them(fleet_daemons, tmp_path):
    socket_path = fleet_daemons["fleet1"].removeprefix("docker+unix://")
    environ = {"DOCKER_CONFIG": str(tmp_path), "DOCKER_HOST": f"unix://{socket_path}"}  # the default context
    with Fleet.from_docker_contexts(environ) as fleet:
        assert fleet.names == ["default"] and fleet.address("default") == fleet_daemons["fleet1"]
        assert fleet.solve(unique_chain(uuid.uuid4().hex, steps=1)).builder == "default"
    with pytest.raises(FleetError, match="^no usable buildx builders$"):
        Fleet.from_buildx(environ)


def daemon_dir(name: str):
    from envd_jupyter.fleet._project import state_dir

    return state_dir() / "daemons" / name
