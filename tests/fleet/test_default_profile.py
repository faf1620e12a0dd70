"""The fleet's default "build" profile as pure logic (a real Scheduler over plain Endpoints, no daemon):
sticky until saturated, bounded by load, and the request's sticky key from its build context."""

from pathlib import Path

from envd_jupyter.buildkit._session.filesync import LocalDir
from envd_jupyter.fleet._building import key_attributes
from envd_jupyter.fleet._profiles import DEFAULT_CONFIG
from envd_jupyter.scheduler import BuildRequest, Endpoint, Scheduler, Vertex

NAMES = ("fleet1", "fleet2", "fleet3")


def build(base: int, env: int, number: int) -> BuildRequest:
    """The benchmark's shape: a base chain (3 runs), the environment's context and packages, the build's code."""
    vertices = [Vertex("sha256:busybox", "image")]
    vertices += [Vertex(f"sha256:base{base}-{i}", "exec", inputs=(i,)) for i in range(3)]
    vertices += [Vertex(f"sha256:context{env}", "local"), Vertex(f"sha256:copy{env}", "file", inputs=(3, 4)),
                 Vertex(f"sha256:packages{env}", "exec", inputs=(5,)),
                 Vertex(f"sha256:code{number}", "exec", inputs=(6,))]
    return BuildRequest(vertices)


def pick(scheduler: Scheduler, request: BuildRequest, in_flight: dict[str, int], down=()) -> str:
    endpoints = [Endpoint(name, in_flight=in_flight.get(name, 0), healthy=name not in down) for name in NAMES]
    result = scheduler.schedule(request, endpoints)
    scheduler.release(result)
    return result.endpoint.name


def warm_on_fleet1() -> Scheduler:
    scheduler = Scheduler(DEFAULT_CONFIG, seed=0)
    assert pick(scheduler, build(0, 0, 0), {"fleet2": 1, "fleet3": 1}) == "fleet1"  # all cold: the least busy
    return scheduler


def test_a_warm_base_keeps_a_build_on_its_builder_while_that_one_is_busier():
    """Scored alone, in-flight ×2 would send it to an idle builder (62% of the work × 3 < 2)."""
    scheduler = warm_on_fleet1()
    assert pick(scheduler, build(0, 2, 1), {"fleet1": 1}) == "fleet1"
    assert pick(scheduler, build(0, 4, 2), {"fleet1": 2}) == "fleet1"


def test_stickiness_ends_at_the_load_gap_and_the_chain_is_copied_to_the_least_busy():
    assert pick(warm_on_fleet1(), build(0, 2, 1), {"fleet1": 3, "fleet2": 1, "fleet3": 1}) == "fleet1"  # gap 2
    scheduler = warm_on_fleet1()
    assert pick(scheduler, build(0, 2, 1), {"fleet1": 3, "fleet2": 1}) == "fleet3"  # gap 3
    assert pick(scheduler, build(0, 4, 2), {"fleet1": 3, "fleet2": 1, "fleet3": 1}) == "fleet3"  # warm there too


def test_a_build_with_no_warm_builder_goes_to_the_least_busy():
    scheduler = warm_on_fleet1()
    assert pick(scheduler, build(1, 1, 1), {"fleet1": 1, "fleet3": 1}) == "fleet2"


def test_when_the_warm_builder_dies_its_builds_go_to_the_least_busy_survivor():
    scheduler = warm_on_fleet1()
    assert pick(scheduler, build(1, 1, 1), {"fleet1": 1, "fleet2": 1}) == "fleet3"  # fleet3 now holds base 1
    assert pick(scheduler, build(0, 0, 2), {"fleet2": 0, "fleet3": 2}, down={"fleet1"}) == "fleet2"
    assert pick(scheduler, build(0, 2, 3), {"fleet2": 1, "fleet3": 2}, down={"fleet1"}) == "fleet2"  # now warm


def test_the_sticky_key_is_the_build_contexts_path_unless_the_caller_names_one(tmp_path):
    assert key_attributes(None, {"context": str(tmp_path)}) == {"context": str(tmp_path)}
    assert key_attributes(None, {"b": "/b", "a": LocalDir(tmp_path)}) == {"context": str(tmp_path)}
    assert key_attributes({"context": "mine", "x": "1"}, {"a": "/a"}) == {"context": "mine", "x": "1"}
    assert key_attributes(None, {"a": "relative/dir"}) == {"context": str(Path.cwd() / "relative/dir")}
    assert key_attributes({"x": "1"}, None) == {"x": "1"}
