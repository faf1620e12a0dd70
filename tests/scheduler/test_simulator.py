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
