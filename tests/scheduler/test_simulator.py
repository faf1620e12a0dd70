"""The replay simulator: reproducible traces, and affinity routing reusing more cache than random."""

from envd_jupyter.scheduler import Scheduler
from envd_jupyter.scheduler._simulator import TraceParams, make_trace, round_robin_policy, scheduler_policy, simulate

AFFINITY = """
plugins:
- {type: cache-affinity-filter}
- {type: cache-affinity-scorer, parameters: {lruCapacity: 60}}
- {type: in-flight-scorer}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: cache-affinity-filter}, {pluginRef: cache-affinity-scorer, weight: 2}, {pluginRef: in-flight-scorer}]
"""


def test_trace_is_reproducible():
    a, b = make_trace(TraceParams(builds=50, seed=3)), make_trace(TraceParams(builds=50, seed=3))
    assert [t.request.chain_keys for t in a] == [t.request.chain_keys for t in b]
    assert [t.arrival for t in a] == [t.arrival for t in b]


def test_affinity_serves_more_work_from_cache_than_round_robin():
    trace = make_trace(TraceParams(builds=400, bases=12, arrival_rate=0.05, seed=1))
    affinity = simulate(trace, 6, scheduler_policy(Scheduler(AFFINITY)), name="affinity", cache_entries=60)
    spread = simulate(trace, 6, round_robin_policy(), name="rr", cache_entries=60)
    assert affinity.hit_share > spread.hit_share + 0.1
    assert affinity.mean_time < spread.mean_time
    again = simulate(trace, 6, scheduler_policy(Scheduler(AFFINITY)), name="affinity", cache_entries=60)
    assert again == affinity


STICKY = "plugins: [{type: sticky-hash-picker}]\nschedulingProfiles: [{name: default, plugins: [{pluginRef: sticky-hash-picker}]}]"


def test_projects_are_sticky_keys_that_leave_the_rest_of_the_trace_unchanged():
    trace = make_trace(TraceParams(builds=200, bases=4, projects_per_base=2, seed=5))
    contexts = {t.request.attributes["context"] for t in trace}
    assert len(contexts) == 8 and all(c.startswith("/src/base") for c in contexts)
    fewer = make_trace(TraceParams(builds=200, bases=4, projects_per_base=1, seed=5))
    assert [t.request.chain_keys for t in fewer] == [t.request.chain_keys for t in trace]


def test_sticky_hashing_lands_between_round_robin_and_affinity():
    trace = make_trace(TraceParams(builds=400, bases=12, arrival_rate=0.05, seed=1))
    affinity = simulate(trace, 6, scheduler_policy(Scheduler(AFFINITY)), name="affinity", cache_entries=60)
    sticky = simulate(trace, 6, scheduler_policy(Scheduler(STICKY)), name="sticky", cache_entries=60)
    spread = simulate(trace, 6, round_robin_policy(), name="rr", cache_entries=60)
    assert spread.hit_share < sticky.hit_share < affinity.hit_share
