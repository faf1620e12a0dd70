"""``[tool.envd_jupyter]`` in a ``pyproject.toml`` beside the notebook, applied to the magics' traits.

Values given with ``%config`` (or an IPython profile) win over the file. A broken file never stops
the extension from loading: its problem is printed as one line and the defaults stay.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from traitlets import TraitError


def apply_pyproject_settings(configurable, directory: Path) -> None:
    path = directory / "pyproject.toml"
    if not path.is_file():
        return
    try:
        settings = tomllib.loads(path.read_text()).get("tool", {}).get("envd_jupyter", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        print(f"envd: ignoring {path}: {exc}", file=sys.stderr)
        return
    given = configurable.config.get(type(configurable).__name__, {})
    known = configurable.class_trait_names(config=True)
    for key, value in settings.items():
        name = key.replace("-", "_")
        if name not in known:
            print(f"envd: {path}: [tool.envd_jupyter] has no setting {key!r} (known: {', '.join(sorted(known))})",
                  file=sys.stderr)
        elif name not in given:
            try:
                setattr(configurable, name, value)
            except TraitError as exc:
                print(f"envd: {path}: {key}: {' '.join(str(exc).split())[:200]}", file=sys.stderr)


def checked_tls(value, where: str = "Envd.tls"):
    """``Envd.tls`` checked now (a TraitError naming ``where``), its paths made absolute from the current
    directory so a later ``%cd`` does not change which files it names."""
    from envd_jupyter import buildkit

    try:
        tls = buildkit.tls_setting(value, where=where, relative_to=Path.cwd())
    except buildkit.TLSConfigError as exc:
        raise TraitError(str(exc)) from None
    if not isinstance(tls, buildkit.TLSConfig):
        return tls
    fields = {"ca": tls.ca, "cert": tls.cert, "key": tls.key, "server_name": tls.server_name}
    return {**{key: str(field) for key, field in fields.items() if field is not None}, "verify": tls.verify}


def checked_builders(value) -> dict:
    """``Envd.builders`` checked now, each entry an address or ``{address, tls}`` (as in a fleet file)."""
    from envd_jupyter import fleet

    checked = {}
    for name, entry in value.items():
        try:
            address, _ = fleet.builder_entry(entry, where=f"Envd.builders.{name}")
        except fleet.FleetError as exc:
            raise TraitError(str(exc)) from None
        checked[name] = entry if isinstance(entry, str) else {
            "address": address, "tls": checked_tls(entry.get("tls"), f"Envd.builders.{name}.tls")}
    return checked
