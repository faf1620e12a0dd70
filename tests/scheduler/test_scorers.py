"""Each scorer's formula, table-driven."""

import math

import pytest

from envd_jupyter.scheduler import BuildRequest, Endpoint, Vertex
from envd_jupyter.scheduler._cache_index import CacheIndex

from .helpers import chain, cycle, make_plugin, request

GIB = 1 << 30


@pytest.mark.parametrize(
    "loads, reserved, expected",
    [
        ([0, 2, 4], {}, [1.0, 0.5, 0.0]),
        ([3, 3], {}, [1.0, 1.0]),
        ([1, 1], {"b": 2}, [1.0, 0.0]),
        ([5], {}, [1.0]),
        ([5000, 9000, 7000], {}, [1.0, 0.0, 0.5]),
    ],
)
def test_in_flight_is_min_max_of_reported_plus_reserved(loads, reserved, expected):
    eps = [Endpoint(n, in_flight=x) for n, x in zip("abc", loads)]
    assert make_plugin("in-flight-scorer").score(cycle(endpoints=eps, reserved=reserved), eps) == expected


@pytest.mark.parametrize(
    "free, total, params, expected",
    [
        (25 * GIB, 100 * GIB, {}, 0.25),
        (0, 100 * GIB, {}, 0.0),
        (5, 0, {}, 0.0),
        (5, 0, {"unknownScore": 0.5}, 0.5),
    ],
)
def test_free_disk_is_free_share(free, total, params, expected):
    eps = [Endpoint("a", disk_free_bytes=free, disk_total_bytes=total)]
    assert make_plugin("free-disk-scorer", params).score(cycle(endpoints=eps), eps) == [expected]


@pytest.mark.parametrize("load, expected", [(0.0, 1.0), (0.25, 0.75), (1.0, 0.0), (1.5, 0.0)])
def test_cpu_load_is_one_minus_normalised_load(load, expected):
    eps = [Endpoint("a", cpu_load=load)]
    assert make_plugin("cpu-load-scorer").score(cycle(endpoints=eps), eps) == [pytest.approx(expected)]


@pytest.mark.parametrize(
    "solves, failures, pseudo, expected",
    [(0, 0, 2.0, 1.0), (8, 2, 2.0, 0.8), (1, 1, 1.0, 0.5), (4, 4, 0.0, 0.0)],
)
def test_failure_rate_uses_pseudo_count(solves, failures, pseudo, expected):
    eps = [Endpoint("a", recent_solves=solves, recent_failures=failures)]
    got = make_plugin("failure-rate-scorer", {"pseudoSolves": pseudo}).score(cycle(endpoints=eps), eps)
    assert got == [pytest.approx(expected)]


def test_cache_affinity_weights_by_kind_and_duration():
    index = CacheIndex()
    base = [Vertex("sha256:img", "image"), Vertex("sha256:run", "exec", duration=30.0, inputs=(0,))]
    full = BuildRequest(base + [Vertex("sha256:user", "file", inputs=(1,))])
    index.record("warm", BuildRequest(base).chain_keys)
    eps = [Endpoint("warm"), Endpoint("cold")]
    scorer = make_plugin("cache-affinity-scorer", {"kindWeights": {"image": 5.0, "file": 1.0}}, index)
    # exec (weight "*" 1) recorded 30 s: 30 s per weight unit, so image 5 → 150 s and file 1 → 30 s;
    # image + exec are cached, file is not → 180 / 210
    assert scorer.score(cycle(full, eps), eps) == [pytest.approx(180 / 210), 0.0]
    by_kind = make_plugin("cache-affinity-scorer", {"kindWeights": {"image": 5.0, "exec": 10.0, "file": 1.0}, "useDurations": False}, index)
    assert by_kind.score(cycle(full, eps), eps) == [pytest.approx(15 / 16), 0.0]


def test_cache_affinity_needs_the_same_history_not_just_the_digest():
    index = CacheIndex()
    index.record("a", BuildRequest([Vertex("sha256:base-x"), Vertex("sha256:step", inputs=(0,))]).chain_keys)
    other_base = BuildRequest([Vertex("sha256:base-y"), Vertex("sha256:step", inputs=(0,))])
    eps = [Endpoint("a")]
    assert make_plugin("cache-affinity-scorer", index=index).score(cycle(other_base, eps), eps) == [0.0]


def test_cache_affinity_precise_mode_reads_daemon_reports():
    req = BuildRequest(chain("p", 4))  # exec weight 10 each
    eps = [Endpoint("a", cached_digests=frozenset({"sha256:p0", "sha256:p1", "sha256:p2"})), Endpoint("b")]
    assert make_plugin("cache-affinity-scorer", {"mode": "precise"}).score(cycle(req, eps), eps) == [0.75, 0.0]


def test_cache_affinity_learns_from_routed_picks_and_bounds_with_disk():
    index = CacheIndex()
    scorer = make_plugin("cache-affinity-scorer", {"bytesPerEntry": 10}, index)
    req = BuildRequest(chain("q", 5))
    scorer.on_picked(req, Endpoint("a", disk_total_bytes=30))
    assert index.capacity("a") == 3
    eps = [Endpoint("a")]
    assert scorer.score(cycle(req, eps), eps) == [pytest.approx(3 / 5)]


@pytest.mark.parametrize(
    "rtts, expected",
    [
        ({"a": 10.0, "b": 30.0, "c": 20.0}, [1.0, 0.0, 0.5]),
        ({"a": 10.0}, [1.0, 0.0, 0.0]),
        ({}, [0.0, 0.0, 0.0]),
    ],
)
def test_registry_proximity_min_max_over_reported_rtts(rtts, expected):
    eps = [Endpoint(n, registry_rtt_ms={"reg:5000": rtts[n]} if n in rtts else {}) for n in "abc"]
    req = request(attributes={"registry": "reg:5000"})
    assert make_plugin("registry-proximity-scorer").score(cycle(req, eps), eps) == expected


def test_prior_pick_scores_the_earlier_profiles_choice():
    from envd_jupyter.scheduler._framework.result import ProfileRunResult

    eps = [Endpoint("a"), Endpoint("b")]
    earlier = {"build": ProfileRunResult("build", (eps[1],), None)}
    scorer = make_plugin("prior-pick-scorer", {"profile": "build"})
    assert scorer.score(cycle(endpoints=eps, results=earlier), eps) == [0.0, 1.0]
    assert scorer.score(cycle(endpoints=eps), eps) == [0.0, 0.0]


def test_empty_request_scores_zero_affinity():
    eps = [Endpoint("a")]
    got = make_plugin("cache-affinity-scorer").score(cycle(BuildRequest([]), eps), eps)
    assert got == [0.0] and not math.isnan(got[0])


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"in_flight": -1}, "in_flight=-1"),
        ({"disk_free_bytes": 11, "disk_total_bytes": 10}, "exceeds disk_total_bytes=10"),
        ({"cpu_load": float("nan")}, "cpu_load=nan"),
        ({"cpu_load": -0.1}, "cpu_load=-0.1"),
        ({"recent_failures": 3, "recent_solves": 2}, "recent_failures=3"),
        ({"registry_rtt_ms": {"r": -1.0}}, "registry_rtt_ms"),
    ],
)
def test_impossible_reports_are_rejected_once_at_the_endpoint(fields, message):
    with pytest.raises(ValueError, match=f"endpoint 'x': .*{message}"):
        Endpoint("x", **fields)


def test_untimed_vertices_weigh_their_kind_on_the_timed_vertices_scale():
    # two exec steps recorded at 2 s and 4 s (weight 10 each: 0.3 s per unit); a new exec and a file are not timed
    req = BuildRequest([Vertex("sha256:a", "exec", duration=2.0), Vertex("sha256:b", "exec", duration=4.0, inputs=(0,)),
                        Vertex("sha256:c", "exec", inputs=(1,)), Vertex("sha256:d", "file", inputs=(2,))])
    weights, total = req.work({"exec": 10.0, "file": 1.0})
    assert weights == pytest.approx((2.0, 4.0, 3.0, 0.3)) and total == pytest.approx(9.3)
    assert req.work({"exec": 10.0, "file": 1.0}, use_durations=False) == ((10.0, 10.0, 10.0, 1.0), 31.0)


def test_non_finite_durations_fall_back_to_kind_weights():
    req = BuildRequest([Vertex("sha256:a", "exec", duration=float("inf")), Vertex("sha256:b", "file", duration=float("nan"))])
    assert req.work({"exec": 10.0, "file": 1.0}) == ((10.0, 1.0), 11.0)
