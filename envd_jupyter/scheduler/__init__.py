"""Place BuildKit solves on one of several daemons: profiles of filters, weighted scorers and a
picker, chosen by a profile handler, with a record of every decision (pure library: no grpc).

    scheduler = Scheduler(yaml_text)            # or Scheduler() for the default profile
    result = scheduler.schedule(BuildRequest(vertices), endpoints)
    result.endpoint, result.records[0].to_dict()
"""

from .cache_index import CacheIndex
from .config import ConfigError, SchedulerConfig, config_json_schema, default_config, load_config, parse_config
from .framework.cycle import Cycle
from .framework.endpoint import Endpoint, Snapshot
from .framework.interfaces import Filter, HandlerDecision, Pick, Picker, ProfileHandler, Scorer
from .framework.record import CycleRecord
from .framework.request import BuildRequest, Vertex
from .framework.result import NoEndpointsError, ProfileRunResult, SchedulingError, SchedulingResult
from .framework.scheduler import Scheduler
from .registry import ParamError, register

__all__ = [
    "BuildRequest", "CacheIndex", "ConfigError", "Cycle", "CycleRecord", "Endpoint", "Filter",
    "HandlerDecision", "NoEndpointsError", "ParamError", "Pick", "Picker", "ProfileHandler",
    "ProfileRunResult", "Scheduler", "SchedulerConfig", "SchedulingError", "SchedulingResult",
    "Scorer", "Snapshot", "Vertex", "config_json_schema", "default_config", "load_config",
    "parse_config", "register",
]
