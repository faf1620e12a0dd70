"""One builder's entry, in a fleet file or a notebook's ``Envd.builders``: an address, or
``{address, tls}`` where ``tls`` is a ``buildkit.tls_setting`` (``{ca, cert, key, server_name,
verify}`` or ``false``). Mistakes are one FleetError naming the entry's path."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from envd_jupyter import buildkit
from envd_jupyter.fleet._errors import FleetError

_KEYS = ("address", "tls")


def builder_entry(value: object, *, where: str,
                  relative_to: str | Path | None = None) -> tuple[str, buildkit.TLSConfig | bool | None]:
    """``(address, tls)`` of one entry; ``tls`` None follows the address's defaults (docker's environment)."""
    if isinstance(value, str) and value:
        return value, None
    if not isinstance(value, Mapping):
        raise FleetError(f"{where}: the address must be a string such as docker+unix:///path, or {{address, tls}}")
    unknown = sorted(str(key) for key in value if key not in _KEYS)
    if unknown:
        raise FleetError(f"{where}: unknown key {unknown[0]!r} (expected {', '.join(_KEYS)})")
    address = value.get("address")
    if not isinstance(address, str) or not address:
        raise FleetError(f"{where}.address: expected an address such as docker+tcp://host:2376")
    try:
        return address, buildkit.tls_setting(value.get("tls"), where=f"{where}.tls", relative_to=relative_to)
    except buildkit.TLSConfigError as exc:
        raise FleetError(str(exc)) from None
