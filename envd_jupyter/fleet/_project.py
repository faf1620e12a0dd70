"""The project's daemons: ``scripts/buildkit-up`` and ``scripts/fleet-up`` write their addresses to ``$STATE/env``.

This is the one reader of that file; tests, benchmarks and tutorials ask here.
"""

from __future__ import annotations

import os
from pathlib import Path

from envd_jupyter.fleet._errors import FleetError

FLAVOURS = {"current": "ENVD_DOCKER_CURRENT", "classic": "ENVD_DOCKER_CLASSIC", "old": "ENVD_DOCKER_OLD"}
FLEET_PREFIX = "ENVD_FLEET_"  # ENVD_FLEET_1..3: the equal builders of scripts/fleet-up


def state_dir(directory: str | Path | None = None) -> Path:
    return Path(directory or os.environ.get("ENVD_JUPYTER_STATE", "/var/lib/envd-jupyter"))


def project_env(directory: str | Path | None = None) -> dict[str, str]:
    """Every ``KEY=value`` of the env file (daemon sockets, registries, base images)."""
    env_file = state_dir(directory) / "env"
    try:
        text = env_file.read_text()
    except OSError as exc:
        raise FleetError(f"no project daemons: cannot read {env_file} ({exc.strerror}); run scripts/buildkit-up") from None
    pairs = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            pairs[key.strip()] = value.strip()
    return pairs


def project_builders(directory: str | Path | None = None, *, which: str = "flavours") -> dict[str, str]:
    """Builder addresses by name: ``flavours`` (current, classic, old) or ``fleet`` (fleet1..3, equal builders)."""
    env = project_env(directory)
    if which == "flavours":
        return {name: "docker+unix://" + env[key] for name, key in FLAVOURS.items() if key in env}
    if which == "fleet":
        found = {f"fleet{key.removeprefix(FLEET_PREFIX)}": "docker+unix://" + value
                 for key, value in sorted(env.items()) if key.startswith(FLEET_PREFIX)}
        if not found:
            raise FleetError(f"no fleet daemons in {state_dir(directory) / 'env'}: run scripts/fleet-up")
        return found
    raise FleetError(f"which={which!r}: expected 'flavours' or 'fleet'")
