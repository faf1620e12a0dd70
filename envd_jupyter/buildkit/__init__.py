"""BuildKit client over gRPC: connect to buildkitd or dockerd, solve LLB, follow progress, sessions.

Addresses: ``unix:///run/buildkit/buildkitd.sock`` and ``tcp://host:port`` (optionally
``tls=TLSConfig(ca=..., cert=..., key=..., server_name=...)``) reach buildkitd;
``docker+unix:///path/docker.sock``, ``docker+tcp://host:port`` (TLS from ``tls=`` or docker's
``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``) and ``docker://`` (the default socket) reach dockerd's
embedded BuildKit. Plain text to a remote tcp address is refused unless ``tls=False``; so is TLS that
does not check a remote daemon (docker's ``DOCKER_CERT_PATH`` without ``DOCKER_TLS_VERIFY``) unless
``tls=TLSConfig(..., verify=False)``. ``tls_setting(value, where=...)`` reads a config file's ``tls:``.
BuildKit's connection helpers reach buildkitd through a child process per connection:
``docker-container://NAME``, ``podman-container://NAME``, ``nerdctl-container://NAME``,
``kube-pod://POD?namespace=NS``, ``ssh://user@host[/buildkitd.sock]``; ``docker+ssh://user@host`` (or
``DOCKER_HOST=ssh://...``) reaches a remote dockerd through ``docker system dial-stdio`` over ssh.
``connect()`` without an address tries ``BUILDKIT_HOST``, ``DOCKER_HOST``,
``/run/buildkit/buildkitd.sock``, ``/var/run/docker.sock``.

    with connect("docker+unix:///var/run/docker.sock") as client:
        result = client.solve(state, on_event=PlainRenderer())      # = client.start_solve(state).result()
        result.model.fully_cached
        handle = client.start_solve(state, name="nightly")          # runs in its own thread
        handle.model, handle.events(), handle.cancel(), await handle
        with client.interactive(exports=[Image("app:dev")]) as build:
            stage = build.solve(state)                              # Ref: read_file / read_dir / stat
            stage.exec(["ls", "/"], on_output=print)                # ExecResult; the stage is unchanged
            for step in build.stepper(state, breakpoints=["compile"]):  # one vertex at a time (or .resume())
                step.vertex.name, step.ref.read_dir("/")
            build.finish(stage)                                     # SolveResult
        client.history(limit=20)       # the daemon's build history (any client's builds): HistoryRecord
        client.history_logs(ref), client.history_steps(ref), client.pin_history(ref), client.delete_history(ref)
        watch = client.watch_history(lambda kind, record: ...); watch.close()

Imports nothing from IPython or widgets; the notebook layer builds on these calls.
"""

from envd_jupyter.buildkit._client import BuildKitInfo, Caps, Client, UsageRecord, Worker
from envd_jupyter.buildkit._coalesce import EventCoalescer
from envd_jupyter.buildkit._connect import connect
from envd_jupyter.buildkit._container import ExecError, ExecResult
from envd_jupyter.buildkit._errors import (BuildKitError, CapsError, ConnectError, DaemonError, ExportError,
                                          GatewayError, InvalidDefinitionError, RegistryAuthError, SolveCancelled,
                                          SolveError)
from envd_jupyter.buildkit._exports import CacheSpec, Image, LocalDir, PushViaDocker, Tarball
from envd_jupyter.buildkit._gateway import Build
from envd_jupyter.buildkit._handle import SolveHandle
from envd_jupyter.buildkit._history import (HistoryNotFound, HistoryRecord, HistoryStep, HistoryUnavailable,
                                           HistoryWatch)
from envd_jupyter.buildkit._lifecycle import SolveResult
from envd_jupyter.buildkit._progress import EVENT_SCHEMA_VERSION, BuildModel, VertexEvent, VertexState
from envd_jupyter.buildkit._ref import FileStat, Ref
from envd_jupyter.buildkit._render import PlainRenderer, TtyRenderer
from envd_jupyter.buildkit._stepper import Step, Stepper
from envd_jupyter.buildkit._tls import TLSConfig, TLSConfigError, tls_setting

__all__ = [
    "EVENT_SCHEMA_VERSION", "Build", "BuildKitError", "BuildKitInfo", "BuildModel", "CacheSpec", "Caps",
    "CapsError", "Client", "ConnectError", "DaemonError", "EventCoalescer", "ExecError", "ExecResult",
    "ExportError", "FileStat", "GatewayError", "HistoryNotFound", "HistoryRecord", "HistoryStep",
    "HistoryUnavailable", "HistoryWatch", "Image", "InvalidDefinitionError", "LocalDir", "PlainRenderer",
    "PushViaDocker", "Ref", "RegistryAuthError", "SolveCancelled", "SolveError", "SolveHandle", "SolveResult",
    "Step", "Stepper", "TLSConfig", "TLSConfigError", "Tarball", "TtyRenderer", "UsageRecord", "VertexEvent",
    "VertexState", "Worker", "connect", "tls_setting",
]
