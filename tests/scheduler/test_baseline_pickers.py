"""The baselines the fleet benchmark races: round-robin and buildx's sticky hashing."""

import collections

import pytest

from envd_jupyter.scheduler import BuildRequest, Endpoint, Scheduler, Vertex
from envd_jupyter.scheduler._registry import ParamError

from .helpers import cycle, make_plugin, request

EPS = [Endpoint(n) for n in ("b1", "b2", "b3")]


def keyed(key: str) -> BuildRequest:
    return request(attributes={"context": key})


def test_round_robin_takes_every_survivor_in_turn_ignoring_scores():
    picker = make_plugin("round-robin-picker")
    c = cycle(endpoints=EPS)
    picks = [EPS[picker.pick(c, EPS, [1.0, 0.0, 0.0]).chosen[0]].name for _ in range(7)]
    assert picks == ["b1", "b2", "b3", "b1", "b2", "b3", "b1"]


def test_round_robin_skips_a_filtered_builder_and_keeps_the_order_of_the_rest():
    picker = make_plugin("round-robin-picker")
    c = cycle(endpoints=EPS)
    assert EPS[picker.pick(c, EPS, [0.0] * 3).chosen[0]].name == "b1"
    survivors = [EPS[0], EPS[2]]  # b2 is down
    assert [survivors[picker.pick(c, survivors, [0.0] * 2).chosen[0]].name for _ in range(3)] == ["b3", "b1", "b3"]
    assert EPS[picker.pick(c, EPS, [0.0] * 3).chosen[0]].name == "b1"  # b2 is back: after b3 comes b1


def test_round_robin_many_are_consecutive_and_distinct():
    picker = make_plugin("round-robin-picker", {"maxNumOfEndpoints": 2})
    pick = picker.pick(cycle(endpoints=EPS), list(reversed(EPS)), [0.0] * 3)
    assert pick.chosen == [2, 1]  # b1 then b2, whatever the input order


def test_sticky_hash_sends_one_key_to_one_builder_and_spreads_keys():
    picker = make_plugin("sticky-hash-picker")
    owner = {f"/src/project{i}": picker.pick(cycle(keyed(f"/src/project{i}"), EPS), EPS, [0.0, 0.0, 9.0]).chosen[0]
             for i in range(60)}
    again = {key: picker.pick(cycle(keyed(key), EPS), EPS, [9.0, 0.0, 0.0]).chosen[0] for key in owner}
    assert again == owner  # scores never move a key
    assert min(collections.Counter(owner.values()).values()) >= 8  # each builder owns a fair share of 60 keys


def test_sticky_hash_remaps_only_the_keys_of_a_builder_that_went_away():
    picker = make_plugin("sticky-hash-picker")
    keys = [f"/src/p{i}" for i in range(90)]
    before = {k: EPS[picker.pick(cycle(keyed(k), EPS), EPS, [0.0] * 3).chosen[0]].name for k in keys}
    survivors = [EPS[0], EPS[2]]
    after = {k: survivors[picker.pick(cycle(keyed(k), survivors), survivors, [0.0] * 2).chosen[0]].name for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert moved and all(before[k] == "b2" for k in moved)
    assert len(moved) == sum(1 for k in keys if before[k] == "b2")


def test_sticky_hash_key_falls_back_to_the_context_source_then_the_id():
    picker = make_plugin("sticky-hash-picker", {"maxNumOfEndpoints": 3})
    context = [Vertex("sha256:ctx", "local"), Vertex("sha256:run", "exec", inputs=(0,))]
    edited = [Vertex("sha256:ctx", "local"), Vertex("sha256:run2", "exec", inputs=(0,))]
    first = picker.pick(cycle(BuildRequest(context), EPS), EPS, [0.0] * 3).chosen
    assert picker.pick(cycle(BuildRequest(edited), EPS), EPS, [0.0] * 3).chosen == first
    assert sorted(first) == [0, 1, 2]  # the next owners on the ring follow, each once
    by_id = [picker.pick(cycle(request(id="build-7"), EPS), EPS, [0.0] * 3).chosen for _ in range(3)]
    assert by_id[0] == by_id[1] == by_id[2]


def test_sticky_hash_without_any_key_is_random_over_survivors():
    picker = make_plugin("sticky-hash-picker")
    c = cycle(endpoints=EPS, seed=4)
    seen = {picker.pick(c, EPS, [0.0] * 3).chosen[0] for _ in range(60)}
    assert seen == {0, 1, 2}


@pytest.mark.parametrize("params, path", [({"virtualNodes": 0}, "virtualNodes"),
                                          ({"keyAttribute": ""}, "keyAttribute")])
def test_sticky_hash_refuses_bad_parameters(params, path):
    with pytest.raises(ParamError, match=path):
        make_plugin("sticky-hash-picker", params)


@pytest.mark.parametrize("picker", ["round-robin-picker", "sticky-hash-picker"])
def test_each_runs_inside_a_scheduler_from_yaml_and_keeps_its_state_across_decisions(picker):
    config = (f"plugins: [{{type: {picker}}}]\n"
              f"schedulingProfiles: [{{name: default, plugins: [{{pluginRef: {picker}}}]}}]")
    scheduler = Scheduler(config)
    picks = [scheduler.schedule(keyed("/src/a"), EPS) for _ in range(3)]
    assert all(p.records[0].to_dict()["picker"] == picker for p in picks)
    names = [p.endpoint.name for p in picks]
    assert names == (["b1", "b2", "b3"] if picker == "round-robin-picker" else [names[0]] * 3)
