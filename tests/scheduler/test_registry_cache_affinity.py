"""A shared registry cache counts as a weaker hit for the endpoints that reach it."""

import pytest

from envd_jupyter.scheduler import BuildRequest, ConfigError, Endpoint, Scheduler
from envd_jupyter.scheduler._cache_index import CacheIndex

from .helpers import chain, cycle, make_plugin

REGISTRY = "127.0.0.1:5000"


def scores(params=None, *, local=(), registry=(), endpoints=None, mode="approximate"):
    index = CacheIndex()
    req = BuildRequest(chain("r", 4))  # four execs of equal weight
    for name, count in local:
        index.record(name, req.chain_keys[:count])
    if registry:
        index.record(index.registry_holder(REGISTRY), req.chain_keys[:registry])
    eps = endpoints or [Endpoint("warm"), Endpoint("reaches", registry_rtt_ms={REGISTRY: 0.2}), Endpoint("far")]
    scorer = make_plugin("cache-affinity-scorer", {"mode": mode, **(params or {})}, index)
    return scorer.score(cycle(req, eps), eps)


def test_registry_cache_is_half_a_hit_by_default_and_only_where_the_registry_is_reached():
    assert scores(local=[("warm", 4)], registry=4) == [1.0, pytest.approx(0.5), 0.0]


def test_a_local_hit_is_not_counted_twice_and_the_registry_adds_what_is_missing():
    endpoints = [Endpoint("warm", registry_rtt_ms={REGISTRY: 0.2})]
    # warm holds 2 of 4 itself; the registry holds all 4: 2 full + 2 × 0.5 = 3 of 4
    assert scores(local=[("warm", 2)], registry=4, endpoints=endpoints) == [pytest.approx(0.75)]


def test_the_weight_is_a_parameter_and_zero_turns_it_off():
    assert scores({"registryHitWeight": 0.25}, registry=4)[1] == pytest.approx(0.25)
    assert scores({"registryHitWeight": 0.0}, registry=4)[1] == 0.0


def test_precise_mode_adds_the_registry_to_what_the_daemon_reported():
    endpoints = [Endpoint("a", cached_digests=frozenset({"sha256:r0"}), registry_rtt_ms={REGISTRY: 1.0})]
    # r0 reported by the daemon (1 of 4); r1..r3 from the registry at half weight: 1/4 + 0.5 × 3/4
    assert scores(mode="precise", registry=4, endpoints=endpoints) == [pytest.approx(0.625)]


@pytest.mark.parametrize("weight", [1.5, -0.1, ".nan"])
def test_a_weight_outside_zero_to_one_is_refused_with_its_path(weight):
    config = (f"plugins:\n- type: cache-affinity-scorer\n  parameters: {{registryHitWeight: {weight}}}\n"
              "schedulingProfiles:\n- name: p\n  plugins:\n  - pluginRef: cache-affinity-scorer\n")
    with pytest.raises(ConfigError, match=r"plugins\[0\]\.parameters\.registryHitWeight"):
        Scheduler(config)
