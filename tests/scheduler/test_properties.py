"""Properties over random endpoints and requests: scores in [0, 1], picks pass the filters,
a fixed seed replays the same decisions."""

from hypothesis import given, settings, strategies as st

from envd_jupyter.scheduler import BuildRequest, Endpoint, NoEndpointsError, Scheduler, Vertex
from envd_jupyter.scheduler._registry import plugin_types

from .helpers import cycle, make_plugin

ALL_SCORERS = """
plugins:
- {type: healthy-filter}
- {type: platform-filter}
- {type: label-filter}
- {type: saturation-filter, parameters: {maxInFlight: 6}}
- {type: cache-affinity-filter, parameters: {threshold: 0.3}}
- {type: cache-affinity-scorer}
- {type: cache-affinity-scorer, name: precise, parameters: {mode: precise}}
- {type: in-flight-scorer}
- {type: free-disk-scorer}
- {type: cpu-load-scorer}
- {type: failure-rate-scorer}
- {type: registry-proximity-scorer}
- {type: PICKER}
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: healthy-filter}
  - {pluginRef: platform-filter}
  - {pluginRef: label-filter}
  - {pluginRef: saturation-filter}
  - {pluginRef: cache-affinity-filter}
  - {pluginRef: cache-affinity-scorer, weight: 3}
  - {pluginRef: precise, weight: 0.5}
  - {pluginRef: in-flight-scorer, weight: 2}
  - {pluginRef: free-disk-scorer}
  - {pluginRef: cpu-load-scorer}
  - {pluginRef: failure-rate-scorer}
  - {pluginRef: registry-proximity-scorer}
  - {pluginRef: PICKER}
"""
PICKERS = ["max-score-picker", "random-picker", "round-robin-picker", "sticky-hash-picker", "weighted-random-picker"]
DIGESTS = [f"sha256:d{i}" for i in range(8)]


@st.composite
def endpoints(draw):
    count = draw(st.integers(1, 12))
    result = []
    for i in range(count):
        total = draw(st.integers(0, 1000))
        solves = draw(st.integers(0, 20))
        result.append(Endpoint(
            f"e{i}",
            platforms=(draw(st.sampled_from(["linux/amd64", "linux/arm64"])),),
            labels={"pool": draw(st.sampled_from(["ci", "dev"]))},
            healthy=draw(st.booleans()),
            in_flight=draw(st.integers(0, 8)),
            max_in_flight=draw(st.integers(0, 6)),
            disk_total_bytes=total,
            disk_free_bytes=draw(st.integers(0, total)),
            cpu_load=draw(st.floats(0, 3)),
            recent_solves=solves,
            recent_failures=draw(st.integers(0, solves)),
            cached_digests=frozenset(draw(st.lists(st.sampled_from(DIGESTS), max_size=5))),
            registry_rtt_ms=draw(st.dictionaries(st.just("reg"), st.floats(0, 500))),
        ))
    return result


@st.composite
def requests(draw):
    n = draw(st.integers(0, 8))
    vertices = [
        Vertex(draw(st.sampled_from(DIGESTS)), draw(st.sampled_from(["exec", "image", "file", "merge", "odd"])),
               draw(st.one_of(st.none(), st.floats(0, 100))),
               tuple(draw(st.lists(st.integers(0, position - 1), max_size=3))) if position else ())
        for position in range(n)
    ]
    return BuildRequest(
        vertices,
        platform=draw(st.sampled_from([None, "linux/amd64", "linux/arm64"])),
        labels=draw(st.sampled_from([{}, {"pool": "ci"}])),
        attributes={"registry": "reg"},
    )


@settings(max_examples=150, deadline=None)
@given(eps=endpoints(), req=requests(), warm=st.lists(st.integers(0, 11), max_size=4))
def test_every_scorer_lands_in_unit_interval(eps, req, warm):
    scheduler = Scheduler(ALL_SCORERS.replace("PICKER", "max-score-picker"))
    for i in warm:
        if i < len(eps):
            scheduler.record_solved(eps[i], req)
    for type_name, cls in plugin_types().items():
        if cls.kind != "scorer" or type_name.startswith("test-") or type_name == "prior-pick-scorer":
            continue
        params = {"mode": "precise"} if type_name == "cache-affinity-scorer" and warm else None
        scorer = make_plugin(type_name, params, scheduler.cache_index)
        raw = scorer.score(cycle(req, eps), eps)
        assert len(raw) == len(eps)
        if cls.bounded:
            assert all(0.0 <= s <= 1.0 for s in raw), (type_name, raw)
    try:
        result = scheduler.schedule(req, eps)
    except NoEndpointsError:
        return
    for step in result.records[0].scorers:
        assert all(0.0 <= s <= 1.0 for s in step.clamped)


@settings(max_examples=150, deadline=None)
@given(eps=endpoints(), req=requests(), picker=st.sampled_from(PICKERS), seed=st.integers(0, 2**32))
def test_pick_always_passed_every_filter(eps, req, picker, seed):
    scheduler = Scheduler(ALL_SCORERS.replace("PICKER", picker), seed=seed)
    try:
        result = scheduler.schedule(req, eps)
    except NoEndpointsError as error:
        assert error.filter_name in {"healthy-filter", "platform-filter", "label-filter", "saturation-filter"}
        return
    chosen = result.endpoint
    record = result.records[0]
    assert chosen in record.survivors and chosen.name not in record.removed_by()
    assert chosen.healthy
    assert req.platform is None or req.platform in chosen.platforms
    assert all(chosen.labels.get(k) == v for k, v in req.labels.items())
    limit = chosen.max_in_flight or 6
    assert chosen.in_flight < limit


@settings(max_examples=60, deadline=None)
@given(eps=endpoints(), reqs=st.lists(requests(), min_size=1, max_size=6), picker=st.sampled_from(PICKERS), seed=st.integers(0, 2**32))
def test_fixed_seed_replays_the_same_decisions(eps, reqs, picker, seed):
    def run():
        scheduler = Scheduler(ALL_SCORERS.replace("PICKER", picker), seed=seed)
        out = []
        for req in reqs:
            try:
                result = scheduler.schedule(req, eps)
            except NoEndpointsError as error:
                out.append(("error", error.filter_name))
                continue
            record = result.to_dict()["cycles"][0]
            record.pop("latency_us")
            record["snapshot"].pop("age_s")
            out.append((result.endpoint.name, record))
        return out

    assert run() == run()
