"""The image labels envd writes (pkg/lang/ir/v1/compile.go Labels), so envd's tools read our images.

``envd up`` runs an image from its runtime graph label (commands, daemons, init script, environment,
exposed ports); the package lists, GPU settings, ports and repository are what ``envd envs describe``
shows (envd's container-name label is left out: the image config never depends on the name, as
cache ids do not). What envd keeps only in its general graph (mounts, GPU count, shared memory size) goes into
``RUNTIME_LABEL`` as one JSON document.
"""

from __future__ import annotations

import json

from envd_jupyter.lang._environment import Environment
from envd_jupyter.lang._image_config import ImageConfig
from envd_jupyter.lang._settings import RSTUDIO_PORT

RUNTIME_LABEL = "org.envd-jupyter.runtime"
SSH_PORT, JUPYTER_PORT = 2222, 8888  # envd's ports in the container (pkg/config)


def _dump(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def runtime_graph(env: Environment, config: ImageConfig) -> dict:
    """envd's ir.RuntimeGraph as JSON (its field names; empty fields left out, as Go's omitempty does)."""
    rt = env.runtime
    graph = {
        "commands": dict(rt.commands),
        "daemon": [list(argv) for argv in rt.daemon],
        "init_script": [list(script) for script in rt.init_script],
        "environ": {k: v for k, v in config.env},
        "env_paths": list(config.path),
        "expose": [{"EnvdPort": port, "HostPort": host, "ServiceName": service, "ListeningAddr": addr}
                   for port, host, service, addr in rt.expose],
    }
    return {key: value for key, value in graph.items() if value}


def envd_labels(env: Environment, config: ImageConfig) -> dict[str, str]:
    apt = [item for g in env.groups if g.role == "apt" for item in g.items]
    pypi = [item for g in env.groups if g.role == "pip" for item in g.items]
    ports = [{"name": "ssh", "port": SSH_PORT}]
    if "ai.tensorchord.envd.jupyter.port" in dict(config.labels):
        ports.append({"name": "jupyter", "port": JUPYTER_PORT})
    if f"{RSTUDIO_PORT}/tcp" in config.exposed_ports:
        ports.append({"name": "rstudio-server", "port": RSTUDIO_PORT})
    ports += [{"name": service, "port": port} for port, _, service, _ in env.runtime.expose]
    labels = {
        "ai.tensorchord.envd.syntax.version": "v1",
        "ai.tensorchord.envd.vendor": "envd",
        "ai.tensorchord.envd.apt.packages": _dump(apt),
        "ai.tensorchord.envd.pypi.commands": _dump(pypi),
        "ai.tensorchord.envd.r.packages": _dump([list(g.items) for g in env.groups if g.role == "r_packages"]),
        "ai.tensorchord.envd.graph.runtime": _dump(runtime_graph(env, config)),
        "ai.tensorchord.envd.ports": _dump(ports),
    }
    if env.cuda is not None:
        labels.update({"ai.tensorchord.envd.gpu": "true", "ai.tensorchord.envd.gpu.cuda": env.cuda[0],
                       "ai.tensorchord.envd.gpu.cudnn": env.cuda[1]})
    rt = env.runtime
    extra = {"mounts": [{"source": s, "destination": d} for s, d in rt.mounts], "gpus": rt.gpus,
             "shm_size": rt.shm_size}
    extra = {key: value for key, value in extra.items() if value}
    if extra:
        labels[RUNTIME_LABEL] = _dump(extra)
    return labels
