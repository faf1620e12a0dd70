"""Metrics (dict and Prometheus text) and the cache index's LRU bookkeeping."""

import re

from envd_jupyter.scheduler import BuildRequest, Endpoint, NoEndpointsError, Scheduler, Vertex
from envd_jupyter.scheduler._cache_index import CacheIndex

from .helpers import chain, request


def test_metrics_count_attempts_latency_and_cache():
    scheduler = Scheduler()
    req = request(chain("m", 4))
    eps = [Endpoint("a"), Endpoint("b")]
    scheduler.schedule(req, eps)
    scheduler.schedule(req, eps)
    try:
        scheduler.schedule(req, [Endpoint("down", healthy=False)])
    except NoEndpointsError:
        pass
    data = scheduler.metrics.to_dict()
    assert data["attempts"] == {"no_endpoints": 1, "success": 2}
    assert data["schedule_latency_seconds"]["count"] == 3
    assert data["plugin_latency_seconds"]["Scorer/cache-affinity-scorer/cache-affinity-scorer"]["count"] == 2
    assert data["plugin_latency_seconds"]["Filter/healthy-filter/healthy-filter"]["count"] == 3
    assert data["cache_index"]["entries"] == 4 and data["cache_index"]["hit_ratio"] == 0.5
    text = scheduler.metrics.to_prometheus()
    assert 'envd_scheduler_attempts_total{status="success"} 2' in text
    assert "envd_scheduler_cache_index_hit_ratio 0.5" in text
    assert re.search(r'envd_scheduler_plugin_duration_seconds_count\{extension_point="Picker",plugin_type="max-score-picker",plugin_name="max-score-picker"\} 2', text)
    assert 'envd_scheduler_schedule_duration_seconds_bucket{le="+Inf"} 3' in text
    assert 'extension_point="ProfileHandler",plugin_type="single-profile-handler"' in text
    buckets = data["schedule_latency_seconds"]["buckets"]
    assert list(buckets.values()) == sorted(buckets.values()) and buckets["+Inf"] == 3


def test_lru_evicts_oldest_and_updates_holders():
    index = CacheIndex(default_capacity=3)
    index.record("a", [1, 2, 3])
    index.record("a", [1])          # touch 1
    index.record("a", [4])          # evicts 2
    assert [index.holds("a", k) for k in (1, 2, 3, 4)] == [True, False, True, True]
    assert index.matched_work([2, 3], [1.0, 1.0]) == {"a": 1.0}
    index.forget("a")
    assert index.size == 0 and index.matched_work([1], [1.0]) == {}


def test_record_returns_the_work_already_there():
    index = CacheIndex()
    assert index.record("a", [1, 2], [5.0, 1.0]) == 0.0
    assert index.record("a", [1, 3], [5.0, 2.0]) == 5.0
    assert index.hit_ratio == 5.0 / 13.0


def test_chain_keys_follow_dag_inputs():
    base = Vertex("sha256:base", inputs=())
    left = BuildRequest([base, Vertex("sha256:x", inputs=(0,)), Vertex("sha256:y", inputs=(0,)), Vertex("sha256:m", "merge", inputs=(1, 2))])
    swapped = BuildRequest([base, Vertex("sha256:y", inputs=(0,)), Vertex("sha256:x", inputs=(0,)), Vertex("sha256:m", "merge", inputs=(1, 2))])
    assert left.chain_keys[1] == swapped.chain_keys[2]  # same vertex, same history
    assert left.chain_keys[3] != swapped.chain_keys[3]  # merge of (y, x) is not merge of (x, y)
    assert len(set(left.chain_keys)) == 4


def test_replicated_chains_share_holders_and_narrow_on_eviction():
    index = CacheIndex(default_capacity=4)
    index.record("a", [1, 2, 3])
    index.record("b", [1, 2, 3])
    assert index.matched_work([1, 2, 3, 9], [1.0, 2.0, 3.0, 4.0]) == {"a": 6.0, "b": 6.0}
    index.record("a", [7, 8])                      # a is over capacity by one: evicts 1
    assert index.matched_work([1, 2, 3], [1.0, 2.0, 3.0]) == {"a": 5.0, "b": 6.0}
    index.forget("b")
    assert index.matched_work([1, 2, 3, 7], [1.0, 2.0, 3.0, 4.0]) == {"a": 9.0}
    assert index.stats()["keys"] == 4 and index.evictions == 1
