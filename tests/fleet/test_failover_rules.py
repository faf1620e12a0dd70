"""The failover rules as pure logic: which failures move a build, what is said, when it stops, backoff,
and a refresh round that never waits on a hung probe (no daemon: a real Scheduler over plain Endpoints)."""

import threading

import pytest

from envd_jupyter import buildkit
from envd_jupyter.buildkit import BuildModel
from envd_jupyter.fleet import FleetError
from envd_jupyter.fleet._reports import BACKOFF_FIRST, BACKOFF_MAX, BuilderInfo, Health, Refresher
from envd_jupyter.fleet._routing import export_started, route, unrepeatable
from envd_jupyter.scheduler import BuildRequest, Endpoint, NoEndpointsError, Scheduler, Vertex


class FakeFleet:
    """Just what ``route`` uses: schedule_request (excluding tried builders), scheduler, mark_down."""

    def __init__(self, names):
        self.scheduler = Scheduler(seed=0)
        self.endpoints = [Endpoint(name) for name in names]
        self.marked = []

    def schedule_request(self, request, *, exclude=()):
        offered = [e for e in self.endpoints if e.name not in exclude and e.name not in self.marked]
        return self.scheduler.schedule(request, offered)

    def mark_down(self, name, reason):
        self.marked.append(name)
        return 2.0


REQUEST = BuildRequest([Vertex("sha256:a", "image"), Vertex("sha256:b", "exec", inputs=(0,))])


def dies_on(*dying):
    def attempt(builder, reservation, failovers):
        if builder in dying:
            raise buildkit.DaemonError(f"the daemon at {builder}.sock went away mid-solve (Socket closed)")
        return builder, failovers
    return attempt


def test_a_dying_pick_is_marked_down_and_the_build_moves_with_one_line():
    fleet, lines, first = FakeFleet(["a", "b", "c"]), [], []

    def attempt(builder, reservation, failovers):
        if not first:
            first.append(builder)
            raise buildkit.DaemonError(f"the daemon at {builder}.sock went away mid-solve (Socket closed)")
        return builder, failovers

    builder, failovers = route(fleet, REQUEST, attempt, max_attempts=3, on_failover=lines.append)
    assert builder != first[0] and fleet.marked == first
    assert lines == list(failovers) and len(lines) == 1
    assert lines[0] == (f"fleet: {first[0]} failed (the daemon at {first[0]}.sock went away mid-solve (Socket closed)); "
                        f"marked down for 2s; retrying on {builder} (attempt 2 of 3)")


def test_a_pick_that_cannot_be_reached_fails_over_too():
    fleet, tried = FakeFleet(["a", "b"]), []

    def attempt(builder, reservation, failovers):
        tried.append(builder)
        if len(tried) == 1:
            raise buildkit.ConnectError(f"opening a session to {builder}.sock: nothing answered (ConnectionRefusedError)")
        return builder

    assert route(fleet, REQUEST, attempt, max_attempts=3, on_failover=lambda line: None) != tried[0]
    assert fleet.marked == tried[:1]


def test_a_bare_socket_error_is_a_bug_raised_as_it_is_not_a_failover():
    """buildkit wraps every socket error of a dying daemon (tests/buildkit/test_session_open.py)."""
    fleet = FakeFleet(["a", "b"])

    def attempt(builder, reservation, failovers):
        raise ConnectionResetError(104, "Connection reset by peer")

    with pytest.raises(ConnectionResetError):
        route(fleet, REQUEST, attempt, max_attempts=3, on_failover=None)
    assert fleet.marked == []


def test_failover_is_bounded_by_max_attempts():
    fleet, lines = FakeFleet(["a", "b", "c"]), []
    with pytest.raises(FleetError, match=r"gave up after 2 attempts \(\w, \w\)"):
        route(fleet, REQUEST, dies_on("a", "b", "c"), max_attempts=2, on_failover=lines.append)
    assert len(lines) == 1 and len(fleet.marked) == 2


def test_with_no_builder_left_the_error_says_what_failed():
    fleet = FakeFleet(["a"])
    with pytest.raises(FleetError, match="fleet: a failed .*; no other builder can take the build"):
        route(fleet, REQUEST, dies_on("a"), max_attempts=3, on_failover=lambda line: None)


def test_no_healthy_builder_at_all_is_the_schedulers_error():
    fleet = FakeFleet([])
    with pytest.raises(NoEndpointsError):
        route(fleet, REQUEST, dies_on(), max_attempts=3, on_failover=None)


def test_a_failing_step_is_the_builds_own_failure_and_never_moves():
    fleet = FakeFleet(["a", "b"])

    def attempt(builder, reservation, failovers):
        raise buildkit.SolveError("step 'x' failed with exit code 2", exit_code=2)

    with pytest.raises(buildkit.SolveError):
        route(fleet, REQUEST, attempt, max_attempts=3, on_failover=None)
    assert fleet.marked == []


def test_a_blocked_retry_is_one_error_saying_why():
    fleet = FakeFleet(["a", "b"])
    with pytest.raises(FleetError, match="; not retried: its exports had begun$"):
        route(fleet, REQUEST, dies_on("a", "b"), max_attempts=3, on_failover=None,
              retry_blocked=lambda error: "its exports had begun")
    assert len(fleet.marked) == 1


def test_every_reservation_is_released_whatever_the_attempt_did():
    fleet = FakeFleet(["a", "b"])
    route(fleet, REQUEST, dies_on("a"), max_attempts=3, on_failover=lambda line: None)
    snapshot_reserved = fleet.scheduler.schedule(REQUEST, fleet.endpoints).records[0].to_dict()["snapshot"]["reserved"]
    assert snapshot_reserved == {}


def test_which_exports_may_be_made_again():
    assert unrepeatable([buildkit.Image("x:1")]) == ""
    assert "pushes through one builder's dockerd" in unrepeatable([buildkit.PushViaDocker("r/x:1", "/d.sock")])
    assert "pass 'dir=PATH'" in unrepeatable([buildkit.LocalDir("/tmp/out-never-written")])


def test_an_export_has_begun_once_an_exporting_step_started_but_not_a_cache_export():
    model = BuildModel()
    model.vertices["c"] = buildkit.VertexState("c", 1, name="exporting cache to registry", started=1.0)
    assert not export_started(model)
    model.vertices["e"] = buildkit.VertexState("e", 2, name="exporting to client tarball")
    assert not export_started(model)
    model.vertices["e"].started = 2.0
    assert export_started(model)


def test_backoff_doubles_up_to_its_ceiling_and_an_answer_resets_it():
    health = Health()
    backoffs = [health.mark_down("gone") for _ in range(8)]
    assert backoffs[:3] == [BACKOFF_FIRST, 2 * BACKOFF_FIRST, 4 * BACKOFF_FIRST] and backoffs[-1] == BACKOFF_MAX
    assert health.down() and not health.overlay(BuilderInfo("a", "x", True), 0).healthy
    health.answered()
    assert not health.down() and health.mark_down("again") == BACKOFF_FIRST


def test_a_hung_probe_is_reported_unhealthy_after_the_round_timeout_and_not_piled_up():
    release, calls = threading.Event(), []

    def probe(name, disk_age):
        calls.append(name)
        if name == "hung":
            release.wait(30)
        return BuilderInfo(name, "addr", True)

    refresher = Refresher(probe, lambda: ["ok", "hung"], lambda name, why: BuilderInfo(name, "addr", False, error=why),
                          interval=3600, timeout=0.5)
    try:
        reports = refresher.reports()
        assert reports["ok"].healthy
        assert not reports["hung"].healthy and reports["hung"].error == "no answer within 0.5s"
        refresher.refresh()
        assert calls.count("hung") == 1, "a probe still running is waited for, not started again"
    finally:
        release.set()
        refresher.close()


def test_closing_under_a_round_ends_the_refresher_quietly(monkeypatch):
    """More builders than probe threads, all hung: close() cancels the queued probes; the round skips them."""
    errors, release, started = [], threading.Event(), threading.Semaphore(0)
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))

    def probe(name, disk_age):
        started.release()
        release.wait(30)
        return BuilderInfo(name, "addr", True)

    names = [f"b{i}" for i in range(10)]
    refresher = Refresher(probe, lambda: names, lambda name, why: BuilderInfo(name, "addr", False, error=why),
                          interval=3600, timeout=1.0)
    refresher._start()
    assert all(started.acquire(timeout=30) for _ in range(8)), "the pool's eight threads are busy"
    refresher.close()
    release.set()
    refresher._thread.join(timeout=30)
    assert not refresher._thread.is_alive() and errors == []


def test_the_shared_cache_exports_a_chain_once_and_imports_it_where_it_is_missing():
    from envd_jupyter.fleet._cache import SharedCache

    scheduler = Scheduler()
    cache = SharedCache("127.0.0.1:5000", scheduler.cache_index)
    imports, exports = cache.specs(REQUEST, frozenset(), True, ())
    assert imports == [] and [(e.type, e.attrs["mode"]) for e in exports] == [("registry", "max")]
    cache.exported(REQUEST, exports, (), REQUEST.chain_keys)
    assert cache.specs(REQUEST, frozenset(), True, ())[1] == [], "the registry holds every step already"
    cold_imports = cache.specs(REQUEST, frozenset(), True, ())[0]
    assert [spec.attrs["ref"] for spec in cold_imports] == [cache.ref_for(REQUEST)]
    assert cache.specs(REQUEST, frozenset({"sha256:a", "sha256:b"}), True, ())[0] == [], "the builder has it all"
    assert cache.specs(REQUEST, frozenset(), False, ())[1] == [], "no push to carry inline cache"


def test_a_builder_marked_down_stays_out_after_its_backoff_until_a_probe_answers(monkeypatch):
    from envd_jupyter.fleet import Fleet
    from envd_jupyter.fleet import _reports

    fleet = Fleet({"a": "unix:///nowhere-a.sock", "b": "unix:///nowhere-b.sock"}, refresh_interval=3600)
    monkeypatch.setattr(fleet, "_probe", lambda name, disk_age: BuilderInfo(name, "x", True, updated=1.0))
    fleet.refresher._probe_one = fleet._probe
    try:
        assert all(info.healthy for info in fleet.builders())
        monkeypatch.setattr(_reports, "BACKOFF_FIRST", 0.0)  # the backoff is over at once
        fleet.mark_down("a", "went away mid-solve")
        [a] = [info for info in fleet.builders() if info.name == "a"]
        assert not a.healthy and a.error == "went away mid-solve"
        fleet.refresher.refresh()
        assert all(info.healthy for info in fleet.builders()), "a probe that answers brings it back"
    finally:
        fleet.close()
