"""The fleet's default scheduler config: a "build" profile that routes, then an "export" profile.

Two cycles per decision, both in the record: "build" places the solve (healthy, platform, caps,
labels, saturation, sticky until saturated; cache affinity ×3, in-flight ×2, free disk, CPU load,
failure rate);
"export" chooses where an export without a named builder runs: the endpoint nearest the registry the
build pushes to or shares its cache in (×2), else the build's own pick (same-as-build), so it
reuses that cache. ``Fleet.export`` follows the "export" pick; everything else the "build" pick.

Why the sticky filter: a warm base is often well under two thirds of a build's work (by kind before
any step has run, by the durations the daemons reported after), and scored alone, in-flight ×2
outweighs affinity ×3 below that share (3 × 0.6 < 2): an idle builder wins over the busier one
holding the base, which is then built again. The
``cache-affinity-filter`` keeps a build on the builders holding at least half its work
(``threshold``) while they are at most ``maxLoadGap`` solves busier than the least busy other
builder; past that bound the build goes to the others (a hot chain is copied rather than piled up),
and a builder that died is out of both sets, so its work moves to whoever is least busy.
"""

DEFAULT_CONFIG = """\
plugins:
- type: healthy-filter
- type: platform-filter
- type: caps-filter
- type: label-filter
- type: saturation-filter
- name: sticky-until-saturated
  type: cache-affinity-filter
  parameters: {threshold: 0.5, maxLoadGap: 2}
- type: cache-affinity-scorer
- type: in-flight-scorer
- type: free-disk-scorer
- type: cpu-load-scorer
- type: failure-rate-scorer
- type: registry-proximity-scorer
- name: same-as-build
  type: prior-pick-scorer
  parameters: {profile: build}
- type: multi-cycle-profile-handler
  parameters:
    rounds: [[build], [export]]
    primary: build
schedulingProfiles:
- name: build
  plugins:
  - pluginRef: healthy-filter
  - pluginRef: platform-filter
  - pluginRef: caps-filter
  - pluginRef: label-filter
  - pluginRef: saturation-filter
  - pluginRef: sticky-until-saturated
  - {pluginRef: cache-affinity-scorer, weight: 3}
  - {pluginRef: in-flight-scorer, weight: 2}
  - pluginRef: free-disk-scorer
  - pluginRef: cpu-load-scorer
  - pluginRef: failure-rate-scorer
- name: export
  plugins:
  - pluginRef: healthy-filter
  - pluginRef: caps-filter
  - {pluginRef: registry-proximity-scorer, weight: 2}
  - pluginRef: same-as-build
"""

EXPORT_PROFILE = "export"
