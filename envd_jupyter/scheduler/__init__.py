"""Place BuildKit solves on one of several daemons: profiles of filters, weighted scorers and a
picker, chosen by a profile handler, with a record of every decision (pure library: no grpc).

    scheduler = Scheduler(yaml_text)            # or Scheduler() for the default profile
    result = scheduler.schedule(BuildRequest(vertices), endpoints)
    result.endpoint, result.records[0].to_dict()
"""

from ._config import ConfigError, config_json_schema, load_config, parse_config
from ._framework.cycle import Cycle
from ._framework.endpoint import Endpoint
from ._framework.interfaces import Filter, HandlerDecision, Pick, Picker, ProfileHandler, Scorer
from ._framework.request import BuildRequest, Vertex
from ._framework.result import NoEndpointsError, SchedulingError, SchedulingResult
from ._framework.scheduler import Scheduler
from ._registry import ParamError, register

__all__ = [
    "BuildRequest", "ConfigError", "Cycle", "Endpoint", "Filter", "HandlerDecision", "NoEndpointsError",
    "ParamError", "Pick", "Picker", "ProfileHandler", "Scheduler", "SchedulingError", "SchedulingResult",
    "Scorer", "Vertex", "config_json_schema", "load_config", "parse_config", "register",
]
