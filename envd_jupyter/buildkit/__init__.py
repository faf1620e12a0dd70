"""BuildKit client over gRPC: connect to buildkitd or dockerd, solve LLB, follow progress, sessions.

Addresses: ``unix:///run/buildkit/buildkitd.sock`` and ``tcp://host:port`` (optionally
``tls=TLSConfig(ca=..., cert=..., key=..., server_name=...)``) reach buildkitd;
``docker+unix:///path/docker.sock``, ``docker+tcp://host:port`` and ``docker://`` (the default
socket) reach dockerd's embedded BuildKit. ``connect()`` without an address tries
``BUILDKIT_HOST``, ``DOCKER_HOST``, ``/run/buildkit/buildkitd.sock``, ``/var/run/docker.sock``.

    with connect("docker+unix:///var/run/docker.sock") as client:
        result = client.solve(state, on_event=PlainRenderer())
        result.model.fully_cached

Imports nothing from IPython or widgets; the notebook layer builds on these calls.
"""

from envd_jupyter.buildkit._client import BuildKitInfo, Caps, Client, UsageRecord, Worker
from envd_jupyter.buildkit._coalesce import EventCoalescer
from envd_jupyter.buildkit._connect import connect
from envd_jupyter.buildkit._errors import (BuildKitError, CapsError, ConnectError, DaemonError,
                                          InvalidDefinitionError, RegistryAuthError, SolveCancelled,
                                          SolveError)
from envd_jupyter.buildkit._progress import EVENT_SCHEMA_VERSION, BuildModel, VertexEvent, VertexState
from envd_jupyter.buildkit._render import PlainRenderer, TtyRenderer
from envd_jupyter.buildkit._solve import SolveResult
from envd_jupyter.buildkit._transport import TLSConfig

__all__ = [
    "EVENT_SCHEMA_VERSION", "BuildKitError", "BuildKitInfo", "BuildModel", "Caps", "CapsError", "Client",
    "ConnectError", "DaemonError", "EventCoalescer", "InvalidDefinitionError", "PlainRenderer",
    "RegistryAuthError", "SolveCancelled", "SolveError", "SolveResult", "TLSConfig",
    "TtyRenderer", "UsageRecord", "VertexEvent", "VertexState", "Worker", "connect",
]
