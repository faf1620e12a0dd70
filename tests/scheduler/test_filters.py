"""Each filter's rule, table-driven."""

import pytest

from envd_jupyter.scheduler import BuildRequest, Endpoint
from envd_jupyter.scheduler._cache_index import CacheIndex

from .helpers import chain, cycle, make_plugin, names, request


@pytest.mark.parametrize(
    "wanted, default, expected",
    [
        (None, None, ["amd", "arm", "armv7"]),
        ("linux/amd64", None, ["amd"]),
        ("linux/arm64", None, ["arm"]),
        ("linux/arm/v7", None, ["armv7"]),
        ("linux/arm/v6", None, []),
        (None, "linux/arm64", ["arm"]),
    ],
)
def test_platform_filter(wanted, default, expected):
    eps = [Endpoint("amd"), Endpoint("arm", platforms=("linux/arm64/v8",)), Endpoint("armv7", platforms=("linux/arm/v7",))]
    f = make_plugin("platform-filter", {"defaultPlatform": default})
    assert names(f.filter(cycle(request(platform=wanted), eps), eps)) == expected


@pytest.mark.parametrize("max_age, expected", [(0.0, ["fresh", "stale"]), (5.0, ["fresh"])])
def test_healthy_filter_drops_unhealthy_and_stale(max_age, expected):
    eps = [Endpoint("fresh", reported_at=99.0), Endpoint("stale", reported_at=10.0), Endpoint("sick", healthy=False)]
    f = make_plugin("healthy-filter", {"maxReportAgeSeconds": max_age})
    assert names(f.filter(cycle(endpoints=eps, now=100.0), eps)) == expected


@pytest.mark.parametrize(
    "static, from_request, expected",
    [
        ({}, {}, ["gpu", "cpu"]),
        ({"pool": "ci"}, {}, ["gpu", "cpu"]),
        ({"pool": "ci"}, {"gpu": "yes"}, ["gpu"]),
        ({}, {"pool": "dev"}, []),
    ],
)
def test_label_filter_requires_every_label(static, from_request, expected):
    eps = [Endpoint("gpu", labels={"pool": "ci", "gpu": "yes"}), Endpoint("cpu", labels={"pool": "ci"})]
    f = make_plugin("label-filter", {"required": static})
    assert names(f.filter(cycle(request(labels=from_request), eps), eps)) == expected


@pytest.mark.parametrize(
    "default, reserved, expected",
    [
        (0, {}, ["a", "b", "c"]),
        (2, {}, ["a", "c"]),
        (2, {"a": 1}, ["c"]),
    ],
)
def test_saturation_filter(default, reserved, expected):
    eps = [Endpoint("a", in_flight=1), Endpoint("b", in_flight=2), Endpoint("c", in_flight=5, max_in_flight=8)]
    f = make_plugin("saturation-filter", {"maxInFlight": default})
    assert names(f.filter(cycle(endpoints=eps, reserved=reserved), eps)) == expected


@pytest.mark.parametrize(
    "hot_load, cold_load, gap, expected",
    [
        (0, 0, 2, ["hot"]),
        (2, 0, 2, ["hot"]),
        (3, 0, 2, ["cold"]),   # much busier than the best cold one: copy the chain elsewhere
        (3, 1, 2, ["hot"]),
    ],
)
def test_cache_affinity_filter_is_sticky_until_saturated(hot_load, cold_load, gap, expected):
    index = CacheIndex()
    req = BuildRequest(chain("s", 4))
    index.record("hot", req.chain_keys)
    eps = [Endpoint("hot", in_flight=hot_load), Endpoint("cold", in_flight=cold_load)]
    f = make_plugin("cache-affinity-filter", {"threshold": 0.5, "maxLoadGap": gap}, index)
    assert names(f.filter(cycle(req, eps), eps)) == expected


def test_cache_affinity_filter_drops_only_the_saturated_sticky_endpoints():
    index = CacheIndex()
    req = BuildRequest(chain("s", 4))
    index.record("hot-busy", req.chain_keys)
    index.record("hot-idle", req.chain_keys)
    eps = [Endpoint("hot-busy", in_flight=5), Endpoint("hot-idle", in_flight=1), Endpoint("cold", in_flight=0)]
    f = make_plugin("cache-affinity-filter", {"maxLoadGap": 2}, index)
    assert names(f.filter(cycle(req, eps), eps)) == ["hot-idle"]


def test_cache_affinity_filter_keeps_everyone_without_a_sticky_endpoint():
    eps = [Endpoint("a"), Endpoint("b")]
    f = make_plugin("cache-affinity-filter")
    assert names(f.filter(cycle(BuildRequest(chain("z", 2)), eps), eps)) == ["a", "b"]


@pytest.mark.parametrize(
    "required, drop_unreported, expected",
    [
        (set(), False, ["modern", "old", "silent"]),
        ({"file.base"}, False, ["modern", "old", "silent"]),
        ({"file.base", "diffop"}, False, ["modern", "silent"]),
        ({"file.base", "diffop"}, True, ["modern"]),
        ({"exec.mount.ssh"}, True, []),
    ],
)
def test_caps_filter_needs_every_required_cap(required, drop_unreported, expected):
    eps = [Endpoint("modern", caps=frozenset({"file.base", "diffop", "mergeop"})),
           Endpoint("old", caps=frozenset({"file.base"})), Endpoint("silent")]
    f = make_plugin("caps-filter", {"dropUnreported": drop_unreported})
    assert names(f.filter(cycle(request(required_caps=required), eps), eps)) == expected
