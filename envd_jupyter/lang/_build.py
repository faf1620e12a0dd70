"""Build a recorded environment on a connected daemon, as one interactive (gateway) build.

1. Layer order (see ``layers``): the layers of the most similar image already in dockerd's store
   (by its ``LAYERS_LABEL``, from ``Client.labelled_images``) keep their order; new ones are weighed
   by solving them first, in parallel (``Build.solve_many``), and go heaviest first. They would be
   built first anyway: nothing waits longer.
2. The managed stage is solved and its venv read back: pip groups that disagree on a shared
   distribution stop the build there (``pip_conflicts``), before any user step runs.
3. The whole graph is solved and returned with the image config as *result metadata*: dockerd's
   moby exporters (20.10, 26 classic) read the config only from there, BuildKit's image exporter
   reads it there too, and it can carry the layer order decided during the build.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from envd_jupyter.lang._environment import Environment
from envd_jupyter.lang._graph import CONTEXT, EnvdBuild, compile_for_caps
from envd_jupyter.lang._image_config import EXPORTER_CONFIG_KEY
from envd_jupyter.lang._layers import LAYERS_LABEL, Layer, parse_layers_label
from envd_jupyter.lang._pip_conflicts import conflict_error, conflicts, distributions, site_packages_entries


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
    """Compile ``env`` for ``client``'s caps and solve it; with ``image_name``, export it with its config.

    A failing step raises buildkit's SolveError (step, exit code, the user's line, last log lines);
    Ctrl-C cancels the build on the daemon.
    """
    from envd_jupyter.buildkit import Image  # lang imports buildkit (and grpc) only to solve

    caps = client.caps().llb
    unique = context_unique_id(env)
    draft = compile_for_caps(env, caps, network=network)
    previous = previous_layers(client, draft.layers)
    solve_options.setdefault("local_dirs", {CONTEXT: str(env.context)})
    if network == "host":  # host networking is an entitlement the daemon must be asked for
        solve_options["entitlements"] = sorted({*solve_options.get("entitlements", ()), "network.host"})
    exports = [*solve_options.pop("exports", ()), *([Image(image_name)] if image_name else [])]
    with client.interactive(exports=exports, timeout=timeout, **solve_options) as session:
        fresh = [layer for layer in draft.layers if layer.identity not in previous]
        weights = weigh(session, fresh, unique, timeout) if len(fresh) > 1 else {}
        build = compile_for_caps(env, caps, network=network, previous=previous, weights=weights)
        definition = build.marshal(local_unique_id=unique)
        if len(env.groups_of("pip")) > 1:
            check_pip_groups(session, build, env, unique, timeout)
        ref = session.solve(definition, timeout=timeout)
        metadata = {EXPORTER_CONFIG_KEY: build.exporter_attrs()[EXPORTER_CONFIG_KEY]} if image_name else None
        result = session.finish(ref, metadata=metadata, timeout=timeout)
    return EnvironmentSolve(build, definition, result.model, result.exporter_response)


def previous_layers(client, layers: list[Layer]) -> list[str]:
    """The layer identities of the image in dockerd's store sharing most layers with ``layers`` (newest wins ties).

    Only dockerd has an image store that unpacks layers, which is where the order costs time;
    other daemons, or a store without such an image, give no history.
    """
    if not layers:
        return []
    from envd_jupyter.buildkit import DaemonError

    try:
        images = client.labelled_images(LAYERS_LABEL)
    except DaemonError:
        return []  # history only saves time; the build itself reaches the daemon or says why not
    wanted = {layer.identity for layer in layers}
    best, best_key = [], (0, 0)
    for image in images:
        identities = parse_layers_label((image.get("Labels") or {}).get(LAYERS_LABEL))
        key = (len(wanted.intersection(identities)), image.get("Created") or 0)
        if key[0] and key > best_key:
            best, best_key = identities, key
    return best


def weigh(session, fresh: list[Layer], unique: str, timeout: float | None) -> dict[str, float]:
    """Seconds each new layer took to build, solving them all at once (the first failure cancels the rest).

    Layers the daemon served from its cache are left out: their cost is unknown, and they predate
    this build, so ``arrange`` keeps them below the layers it ran.
    """
    refs = session.solve_many([layer.upper.marshal(local_unique_id=unique) for layer in fresh], timeout=timeout)
    return {layer.key: ref.elapsed for layer, ref in zip(fresh, refs) if not ref.cached}


def check_pip_groups(session, build: EnvdBuild, env: Environment, unique: str, timeout: float | None) -> None:
    """Raise PipConflictError, naming each group's version, if the merged venv holds two versions of one dist."""
    managed = session.solve(build.stages["managed"].marshal(local_unique_id=unique), timeout=timeout)
    found = conflicts(distributions(site_packages_entries(managed)))
    if not found:
        return
    name = next(iter(found))
    by_group = {}
    for i, group in enumerate(env.groups_of("pip")):
        ref = session.solve(build.steps[f"pip[{i}]"].marshal(local_unique_id=unique), timeout=timeout)
        versions = distributions(site_packages_entries(ref)).get(name)
        if versions:
            by_group[group.at] = ", ".join(sorted(versions))
    raise conflict_error(name, by_group)
