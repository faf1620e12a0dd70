"""Build a recorded environment on a connected daemon: the graph form its caps allow, and the image export.

The image config must reach the exporter. BuildKit's own image exporters read it from the
``containerimage.config`` exporter attribute, but dockerd's moby exporters (20.10, and 26 with the
classic store) read it only from the *result metadata*, which a plain Control.Solve cannot set.
So an image export goes through an interactive (gateway) build whose Return carries the config
as result metadata, which every flavour honours; the attribute is sent too for BuildKit exporters.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from envd_jupyter.lang.environment import Environment
from envd_jupyter.lang.graph import CONTEXT, EnvdBuild, compile_for_caps
from envd_jupyter.lang.image_config import EXPORTER_CONFIG_KEY


@dataclass
class EnvironmentSolve:
    build: EnvdBuild
    definition: Any  # llb.Definition that was solved
    model: Any  # buildkit.progress.BuildModel: which vertices ran, which were cached
    exporter_response: dict[str, str]


def context_unique_id(env: Environment) -> str:
    """A stable ``local.unique`` per build context, so unchanged context steps stay cached between runs."""
    return "envd-" + hashlib.sha256(str(env.context.resolve()).encode()).hexdigest()[:24]


def solve_environment(client, env: Environment, *, image_name: str | None = None, network: str | None = None,
                      timeout: float | None = None, **solve_options: Any) -> EnvironmentSolve:
    """Compile ``env`` for ``client``'s caps and solve it; with ``image_name``, export it with its config."""
    build = compile_for_caps(env, client.caps().llb, network=network)
    definition = build.marshal(local_unique_id=context_unique_id(env))
    solve_options.setdefault("local_dirs", {CONTEXT: str(env.context)})
    if network == "host":  # host networking is an entitlement the daemon must be asked for
        solve_options["entitlements"] = sorted({*solve_options.get("entitlements", ()), "network.host"})
    if not image_name:
        result = client.solve(definition, timeout=timeout, **solve_options)
        return EnvironmentSolve(build, definition, result.model, result.exporter_response)
    from envd_jupyter.buildkit.exports import Image

    image = Image(image_name, attrs=build.exporter_attrs())
    with client.interactive(exports=[image], timeout=timeout, **solve_options) as session:
        ref = session.solve(definition, timeout=timeout)
        response = session.finish(ref, metadata={EXPORTER_CONFIG_KEY: build.exporter_attrs()[EXPORTER_CONFIG_KEY]},
                                  timeout=timeout)
    return EnvironmentSolve(build, definition, session.model, dict(response.ExporterResponse))
