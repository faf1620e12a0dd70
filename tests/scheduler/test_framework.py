"""The cycle and scheduler mechanics: call order, clamping, errors, fallback, reservations, records."""

import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from envd_jupyter.scheduler import (
    Endpoint, Filter, NoEndpointsError, Pick, Picker, Scheduler, Scorer, register,
)
import envd_jupyter.scheduler as scheduler_package
from envd_jupyter.scheduler._framework.cycle import Profile, _weighted_sum, clamp_scores

from .helpers import chain, make_plugin, request

CALLS: list[tuple[str, str, int]] = []


@register("test-counting-filter")
class CountingFilter(Filter):
    """Keeps endpoints whose name is not in ``drop``; logs every call."""

    @dataclass(frozen=True)
    class Params:
        drop: tuple[str, ...] = ()

    def filter(self, cycle, endpoints):
        CALLS.append(("filter", self.name, len(endpoints)))
        return [e for e in endpoints if e.name not in self.params.drop]


@register("test-fixed-scorer")
class FixedScorer(Scorer):
    """Scores from a table (any value, to exercise clamping); logs every call."""

    @dataclass(frozen=True)
    class Params:
        scores: dict[str, float]

    def score(self, cycle, endpoints):
        CALLS.append(("score", self.name, len(endpoints)))
        return [self.params.scores.get(e.name, 0.0) for e in endpoints]


@register("test-first-picker")
class FirstPicker(Picker):
    def pick(self, cycle, endpoints, totals):
        CALLS.append(("pick", self.name, len(endpoints)))
        return Pick([0], [0])


COUNTING = """
plugins:
- {type: test-counting-filter, name: f1, parameters: {drop: [c]}}
- {type: test-counting-filter, name: f2}
- {type: test-fixed-scorer, name: s1, parameters: {scores: {a: 0.2, b: 0.9}}}
- {type: test-fixed-scorer, name: s2, parameters: {scores: {a: 1.0, b: 0.1}}}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: f1
  - pluginRef: f2
  - {pluginRef: s1, weight: 1}
  - {pluginRef: s2, weight: 2}
"""
EPS = [Endpoint("a"), Endpoint("b"), Endpoint("c")]


def test_extension_points_run_once_each_in_order():
    CALLS.clear()
    result = Scheduler(COUNTING).schedule(request(), EPS)
    assert CALLS == [("filter", "f1", 3), ("filter", "f2", 2), ("score", "s1", 2), ("score", "s2", 2)]
    record = result.records[0]
    assert record.totals == pytest.approx([0.2 + 2.0, 0.9 + 0.2])
    assert result.endpoint.name == "a"


def test_record_keeps_raw_clamped_weighted_and_is_json():
    config = COUNTING.replace("{a: 0.2, b: 0.9}", "{a: -3.0, b: 7.0}")
    result = Scheduler(config).schedule(request(), EPS)
    data = json.loads(json.dumps(result.to_dict()))
    cyc = data["cycles"][0]
    assert cyc["filters"] == [{"filter": "f1", "removed": ["c"]}]
    assert cyc["scores"]["a"]["scorers"]["s1"] == {"raw": -3.0, "clamped": 0.0, "weighted": 0.0}
    assert cyc["scores"]["b"]["scorers"]["s1"] == {"raw": 7.0, "clamped": 1.0, "weighted": 1.0}
    assert cyc["scores"]["a"]["scorers"]["s2"] == {"raw": 1.0, "clamped": 1.0, "weighted": 2.0}
    assert cyc["scores"]["a"]["total"] == 2.0 and cyc["scores"]["b"]["total"] == pytest.approx(1.2)
    assert cyc["picked"] == ["a"] and cyc["tie_group"] == ["a"]
    assert set(cyc["latency_us"]) == {"Filter/f1", "Filter/f2", "Scorer/s1", "Scorer/s2", "Picker/max-score-picker"}
    assert cyc["snapshot"]["version"] == 0


@pytest.mark.parametrize(
    "raw, clamped",
    [([0.5, -1.0, 2.0], [0.5, 0.0, 1.0]), ([float("nan"), float("inf"), float("-inf")], [0.0, 1.0, 0.0])],
)
def test_clamp(raw, clamped):
    assert clamp_scores(raw) == clamped


@pytest.mark.parametrize("weight", [-1.0, math.inf, math.nan])
def test_negative_or_non_finite_weight_rejected_by_profile(weight):
    scorer = make_plugin("in-flight-scorer")
    with pytest.raises(ValueError, match="needs a finite weight >= 0"):
        Profile("p", [], [(scorer, weight)], make_plugin("max-score-picker"))


@pytest.mark.parametrize("weights", [
    [1.0], [3.0], [0.0], [0.0, 0.0], [3.0, 2.0, 1.0, 1.0], [3.0, 2.0, 1.0, 1.0, 1.0], [0.5, 0.0, 2.0],
    [1.5, 0.25, 2.0, 1.0, 3.0, 0.75], [1.5, 0.25, 2.0, 1.0, 3.0, 0.75, 4.0], [0.1 * k for k in range(1, 15)],
    [0.0] + [0.3] * 12,
])
def test_weighted_sum_is_the_left_to_right_sum_of_weighted_scores(weights):
    """Same floats as summing term by term in profile order (zero weights skipped), at any width."""
    rng = random.Random(len(weights))
    size = 7
    columns = [[rng.random() for _ in range(size)] for _ in weights]
    expected = []
    for row in zip(*columns):
        terms = [weight * score for weight, score in zip(weights, row) if weight != 0.0]
        total = terms[0] if terms else 0.0
        for term in terms[1:]:
            total += term
        expected.append(total)
    assert _weighted_sum(weights)(columns, size) == expected


def test_scheduler_source_has_no_eval_or_exec():
    """Generated code once turned a config weight of inf into a NameError on every schedule."""
    package = Path(scheduler_package.__file__).parent
    sources = sorted(package.rglob("*.py"))
    assert len(sources) > 10
    found = [f"{path.relative_to(package)}:{number}: {line.strip()}"
             for path in sources for number, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"\b(eval|exec)\s*\(", line)]
    assert found == []


def test_emptied_set_names_the_filter():
    config = COUNTING.replace("{drop: [c]}", "{drop: [a, b, c]}")
    with pytest.raises(NoEndpointsError, match="filter 'f1' removed the last endpoint") as info:
        Scheduler(config).schedule(request(), EPS)
    assert info.value.filter_name == "f1" and info.value.profile == "default"
    assert info.value.record.emptied_by == "f1"


def test_no_endpoints_at_all():
    with pytest.raises(NoEndpointsError, match="no endpoints were offered"):
        Scheduler().schedule(request(), [])


def test_fallback_profile_runs_when_filters_empty_the_set():
    config = """
plugins:
- {type: label-filter, name: gpu-only, parameters: {required: {gpu: "yes"}}}
- {type: in-flight-scorer}
- {type: attribute-profile-handler, parameters: {default: gpu}}
schedulingProfiles:
- {name: gpu, fallbackProfile: any, plugins: [{pluginRef: gpu-only}, {pluginRef: in-flight-scorer}]}
- {name: any, plugins: [{pluginRef: in-flight-scorer}]}
"""
    result = Scheduler(config).schedule(request(), [Endpoint("cpu1")])
    assert result.endpoint.name == "cpu1"
    assert result.profile_results["gpu"].fallback_for == "gpu"
    assert [r.profile for r in result.records] == ["gpu", "any"]
    assert result.records[0].emptied_by == "gpu-only"


def test_reservations_spread_a_burst_and_expire_with_newer_reports():
    scheduler = Scheduler("""
plugins: [{type: in-flight-scorer}]
schedulingProfiles: [{name: default, plugins: [{pluginRef: in-flight-scorer}]}]
""")
    eps = [Endpoint(n, version=1) for n in "abc"]
    burst = [scheduler.schedule(request(), eps).endpoint.name for _ in range(6)]
    assert sorted(burst) == ["a", "a", "b", "b", "c", "c"]
    assert scheduler.schedule(request(), eps).records[0].snapshot.reserved == {"a": 2, "b": 2, "c": 2}
    fresh = [Endpoint("a", version=2, in_flight=2), *eps[1:]]  # a's new report counts its solves
    record = scheduler.schedule(request(), fresh).records[0]
    assert "a" not in record.snapshot.reserved


def test_release_drops_a_reservation():
    scheduler = Scheduler()
    eps = [Endpoint("a"), Endpoint("b")]
    result = scheduler.schedule(request(), eps)
    scheduler.release(result)
    assert scheduler.schedule(request(), eps).records[0].snapshot.reserved == {}


def test_every_cycle_of_a_decision_reads_one_snapshot():
    config = """
plugins:
- {type: in-flight-scorer}
- {type: random-picker, name: rnd}
- {type: shadow-profile-handler, parameters: {primary: main, shadows: [alt]}}
schedulingProfiles:
- {name: main, plugins: [{pluginRef: in-flight-scorer}]}
- {name: alt, plugins: [{pluginRef: in-flight-scorer}, {pluginRef: rnd}]}
"""
    result = Scheduler(config).schedule(request(), [Endpoint("a"), Endpoint("b")])
    assert len(result.records) == 2 and result.records[0].snapshot is result.records[1].snapshot


def test_same_seed_same_decisions():
    eps = [Endpoint(f"e{i}") for i in range(6)]
    reqs = [request(chain(f"r{i % 3}-", 4)) for i in range(30)]

    def run(seed):
        scheduler = Scheduler(seed=seed)
        return [scheduler.schedule(r, eps).endpoint.name for r in reqs]

    assert run(4) == run(4)


def test_endpoints_may_be_any_iterable():
    scheduler = Scheduler("plugins: [{type: in-flight-scorer}]\nschedulingProfiles: [{name: d, plugins: [{pluginRef: in-flight-scorer}]}]")
    first = scheduler.schedule(request(), (Endpoint(n) for n in "ab")).endpoint.name
    result = scheduler.schedule(request(), (Endpoint(n) for n in "ab"))
    assert result.records[0].snapshot.reserved == {first: 1} and result.endpoint.name != first
