"""The jupyter_server extension behind the JupyterLab panel: REST and a WebSocket under ``/envd/api/``.

Builders and history come from the fleet the server is configured with (``c.EnvdServer.fleet``, else
the project's daemons), the daemons' own build history and the archive the kernels write
(``envd_jupyter.history``); see docs/lab-panel.md. Enabled by
``etc/jupyter/jupyter_server_config.d/envd_jupyter.json``, which the wheel installs. The top layer:
imports ``fleet``, ``buildkit`` and ``history``; nothing imports it.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "envd_jupyter.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Add the handlers; no daemon is reached until a panel asks (loading stays cheap for every server)."""
    from envd_jupyter.server._events import EventHub
    from envd_jupyter.server._handlers import routes
    from envd_jupyter.server._service import EnvdService
    from envd_jupyter.server._settings import EnvdServer

    service = EnvdService(EnvdServer(parent=serverapp))
    web_app = serverapp.web_app
    web_app.settings.update(envd_service=service, envd_events=EventHub(service))
    web_app.add_handlers(".*$", routes(web_app.settings["base_url"]))
    serverapp.log.info("envd_jupyter.server: /envd/api/ ready")
