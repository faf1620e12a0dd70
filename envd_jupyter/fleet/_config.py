"""Fleet config files: every mistake is one FleetError line naming the file and the key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from envd_jupyter.fleet._entries import builder_entry
from envd_jupyter.fleet._errors import FleetError

KEYS = ("builders", "scheduler", "registry_cache")
_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$")


def read_fleet_file(path: str | Path) -> tuple[dict[str, str], dict[str, Any]]:
    """``builders: {name: address | {address, tls}}`` (TLS paths relative to the file), optional ``scheduler:`` (EndpointPickerConfig) and ``registry_cache: HOST:PORT``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise FleetError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise FleetError(f"{path}: not YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict) or not isinstance(data.get("builders"), dict) or not data["builders"]:
        raise FleetError(f"{path}: builders: must map each builder's name to its address")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise FleetError(f"{path}: unknown key {unknown[0]!r} (expected {', '.join(KEYS)})")
    settings: dict[str, Any] = {"config": data.get("scheduler")}
    registry = data.get("registry_cache")
    if registry is not None:
        if not isinstance(registry, str) or not _HOST_PORT.match(registry):
            raise FleetError(f"{path}: registry_cache: expected HOST:PORT of a registry every builder reaches, "
                             f"got {registry!r}")
        settings["registry_cache"] = registry
    builders, tls = {}, {}
    for name, value in data["builders"].items():
        builders[str(name)], tls[str(name)] = builder_entry(value, where=f"{path}: builders.{name}",
                                                            relative_to=path.parent)
    settings["tls"] = tls
    return builders, settings
