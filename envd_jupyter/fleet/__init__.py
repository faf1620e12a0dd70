"""Route solves across several BuildKit daemons with the scheduler, and keep solved stages open.

    fleet = Fleet({"a": "docker+unix:///run/a.sock", "b": "unix:///run/buildkit/buildkitd.sock"})
    stage = fleet.build(state, name="my build", on_event=renderer)   # schedule, solve, keep it open
    stage.builder, stage.scheduling.records[0].to_dict(), stage.read_file("/etc/os-release")
    fleet.builders()                                                 # what each daemon reports

A builder's entry is an address or ``{"address": ..., "tls": {ca, cert, key, server_name, verify} | False}``
(``builder_entry`` checks one). One builder is a fleet of one (``Fleet.single(address)``). Imports
``buildkit`` and ``scheduler``; neither imports this package.
"""

from envd_jupyter.fleet._entries import builder_entry
from envd_jupyter.fleet._errors import FleetError
from envd_jupyter.fleet._fleet import BuilderInfo, Fleet, SteppedBuild, project_builders
from envd_jupyter.fleet._stage import Stage

__all__ = ["BuilderInfo", "Fleet", "FleetError", "Stage", "SteppedBuild", "builder_entry", "project_builders"]
