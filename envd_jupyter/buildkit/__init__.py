"""BuildKit client over gRPC: connect to buildkitd or dockerd, solve LLB, follow progress, sessions.

Imports nothing from IPython or widgets; the notebook layer builds on these calls.
"""

from envd_jupyter.buildkit.client import BuildKitInfo, Caps, Client, UsageRecord, Worker
from envd_jupyter.buildkit.connect import connect
from envd_jupyter.buildkit.errors import (BuildKitError, CapsError, ConnectError, DaemonError,
                                          InvalidDefinitionError, SolveCancelled, SolveError)
from envd_jupyter.buildkit.progress import BuildModel, VertexEvent, VertexState
from envd_jupyter.buildkit.render import PlainRenderer, TtyRenderer
from envd_jupyter.buildkit.solve import SolveResult
from envd_jupyter.buildkit.transport import TLSConfig

__all__ = [
    "BuildKitError", "BuildKitInfo", "BuildModel", "Caps", "CapsError", "Client", "ConnectError",
    "DaemonError", "InvalidDefinitionError", "PlainRenderer", "SolveCancelled", "SolveError", "SolveResult", "TLSConfig",
    "TtyRenderer", "UsageRecord", "VertexEvent", "VertexState", "Worker", "connect",
]
