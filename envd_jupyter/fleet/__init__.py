"""Route solves across several BuildKit daemons with the scheduler, fail over, share a registry cache.

    fleet = Fleet({"a": "docker+unix:///run/a.sock", "b": "unix:///run/buildkit/buildkitd.sock"},
                  registry_cache="127.0.0.1:5000")              # or from_file / from_project / from_buildx /
                                                                 # from_docker_contexts
    result = fleet.solve(state, exports=["dir=out"])             # RoutedResult: builder, scheduling, model
    handle = fleet.start_solve(state); handle.result()           # the same in its own thread
    with fleet.interactive(state) as build: build.solve(state)   # a Build on the pick
    stage = fleet.build(state, name="my build", on_event=renderer)   # schedule, solve, keep it open
    stage.builder, stage.scheduling.records[0].to_dict(), stage.read_file("/etc/os-release")
    fleet.builders()                                             # the refresher's last reports
    fleet.add("d", "tcp://10.0.0.4:1234"); fleet.remove("a")

A builder's entry is an address or ``{"address": ..., "tls": {ca, cert, key, server_name, verify} | False}``
(``builder_entry`` checks one). One builder is a fleet of one (``Fleet.single(address)``). A builder that
dies mid-solve is marked down and the build moves to the next choice (``FailoverWarning``, one line each).
Imports ``buildkit`` and ``scheduler``; neither imports this package.
"""

from envd_jupyter.fleet._building import RoutedBuild, SteppedBuild
from envd_jupyter.fleet._entries import builder_entry
from envd_jupyter.fleet._errors import FleetError
from envd_jupyter.fleet._fleet import Fleet, parse_export
from envd_jupyter.fleet._project import project_builders, project_env
from envd_jupyter.fleet._reports import BuilderInfo
from envd_jupyter.fleet._routing import FailoverWarning, RoutedResult, RoutedSolve
from envd_jupyter.fleet._stage import Stage

__all__ = ["BuilderInfo", "FailoverWarning", "Fleet", "FleetError", "RoutedBuild", "RoutedResult", "RoutedSolve",
           "Stage", "SteppedBuild", "builder_entry", "parse_export", "project_builders", "project_env"]
