"""Profile handlers: single, multi-cycle, shadow, attribute selection."""

import pytest

from envd_jupyter.scheduler import Endpoint, Scheduler, SchedulingError

from .helpers import request

MULTI = """
plugins:
- {type: in-flight-scorer}
- {type: registry-proximity-scorer}
- {type: prior-pick-scorer, name: same-as-build, parameters: {profile: build}}
- {type: multi-cycle-profile-handler, parameters: {rounds: [[build], [export]], primary: build}}
schedulingProfiles:
- name: build
  plugins: [{pluginRef: in-flight-scorer}]
- name: export
  plugins: [{pluginRef: registry-proximity-scorer, weight: 2}, {pluginRef: same-as-build}]
"""


def test_multi_cycle_export_prefers_the_endpoint_near_the_registry():
    eps = [
        Endpoint("idle-far", in_flight=0, registry_rtt_ms={"reg": 80.0}),
        Endpoint("busy-near", in_flight=3, registry_rtt_ms={"reg": 2.0}),
    ]
    result = Scheduler(MULTI).schedule(request(attributes={"registry": "reg"}), eps)
    assert result.primary == "build" and result.endpoint.name == "idle-far"
    assert result.profile_results["export"].endpoint.name == "busy-near"
    assert [r.profile for r in result.records] == ["build", "export"]


def test_multi_cycle_stops_after_a_failed_round():
    config = MULTI.replace("plugins: [{pluginRef: in-flight-scorer}]", "plugins: [{pluginRef: h}, {pluginRef: in-flight-scorer}]")
    config = config.replace("plugins:\n- {type: in-flight-scorer}", "plugins:\n- {type: healthy-filter, name: h}\n- {type: in-flight-scorer}")
    with pytest.raises(SchedulingError, match="filter 'h'"):
        Scheduler(config).schedule(request(), [Endpoint("down", healthy=False)])


SHADOW = """
plugins:
- {type: in-flight-scorer}
- {type: free-disk-scorer}
- {type: label-filter, name: never, parameters: {required: {nope: "1"}}}
- {type: shadow-profile-handler, parameters: {primary: current, shadows: [candidate, broken]}}
schedulingProfiles:
- {name: current, plugins: [{pluginRef: in-flight-scorer}]}
- {name: candidate, plugins: [{pluginRef: free-disk-scorer}]}
- {name: broken, plugins: [{pluginRef: never}, {pluginRef: in-flight-scorer}]}
"""


def test_shadow_records_agreement_and_never_routes():
    scheduler = Scheduler(SHADOW)
    eps = [Endpoint("idle", disk_free_bytes=1, disk_total_bytes=10), Endpoint("roomy", in_flight=2, disk_free_bytes=9, disk_total_bytes=10)]
    result = scheduler.schedule(request(), eps)
    assert result.endpoint.name == "idle"
    assert result.shadows["candidate"] == {"picked": "roomy", "agrees": False, "error": None}
    assert result.shadows["broken"]["picked"] is None and "filter 'never'" in result.shadows["broken"]["error"]
    assert scheduler.metrics.to_dict()["shadow_agreement"] == {"broken/disagree": 1, "candidate/disagree": 1}
    # only the primary's pick is reserved
    assert scheduler.schedule(request(), eps).records[0].snapshot.reserved == {"idle": 1}


ATTR = """
plugins:
- {type: in-flight-scorer}
- {type: random-picker}
- {type: attribute-profile-handler, parameters: {attribute: profile, default: fast}}
schedulingProfiles:
- {name: fast, plugins: [{pluginRef: in-flight-scorer}]}
- {name: spread, plugins: [{pluginRef: in-flight-scorer}, {pluginRef: random-picker}]}
"""


@pytest.mark.parametrize("attributes, profile", [({}, "fast"), ({"profile": "spread"}, "spread"), ({"profile": "fast"}, "fast")])
def test_attribute_handler_selects_by_request_attribute(attributes, profile):
    result = Scheduler(ATTR).schedule(request(attributes=attributes), [Endpoint("a")])
    assert result.primary == profile and list(result.profile_results) == [profile]


def test_attribute_handler_rejects_unknown_profile():
    with pytest.raises(SchedulingError, match="profile='nope' names no profile; defined: fast, spread"):
        Scheduler(ATTR).schedule(request(attributes={"profile": "nope"}), [Endpoint("a")])


def test_attribute_handler_without_default_needs_the_attribute():
    config = ATTR.replace("{attribute: profile, default: fast}", "{attribute: profile}")
    scheduler = Scheduler(config)
    with pytest.raises(SchedulingError, match="request has no 'profile' attribute and no default profile"):
        scheduler.schedule(request(), [Endpoint("a")])
    assert scheduler.metrics.to_dict()["attempts"] == {"error": 1}
