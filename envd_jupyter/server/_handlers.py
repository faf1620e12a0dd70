"""The REST and WebSocket handlers under ``/envd/api/``: parse, ask ``EnvdService``, answer JSON.

Every method is ``@web.authenticated`` (Jupyter's token or login cookie; POST and DELETE also pass
jupyter_server's XSRF check unless token-authenticated) and ``@authorized`` on resource ``envd``;
``tests/server/test_auth.py`` walks the routes and fails on any that is not. Errors are one-line JSON
(``{"message": ..., "reason": ...}``) with a 4xx for the request's mistakes and 502/504 for a daemon's.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.utils import url_path_join
from tornado import web, websocket

from envd_jupyter.server._errors import NotFound, ServerError
from envd_jupyter.server._events import EventHub
from envd_jupyter.server._requests import build_id, builder_name, history_query, pin_body
from envd_jupyter.server._service import EnvdService, one_line

AUTH_RESOURCE = "envd"


class EnvdHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def service(self) -> EnvdService:
        return self.settings["envd_service"]

    async def answer(self, call: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        """Finish with ``call()``'s JSON, or with its ServerError's status and one line."""
        try:
            body = await call()
        except ServerError as exc:
            raise web.HTTPError(exc.status, one_line(exc)) from None
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class BuildersHandler(EnvdHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.answer(self.service.builders)


class HistoryHandler(EnvdHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.answer(lambda: self.service.history(history_query(self.request.query_arguments)))


class BuildHandler(EnvdHandler):
    @web.authenticated
    @authorized
    async def get(self, builder: str, ref: str) -> None:
        await self.answer(lambda: self.service.detail(builder_name(builder), build_id(ref)))

    @web.authenticated
    @authorized
    async def delete(self, builder: str, ref: str) -> None:
        await self.answer(lambda: self.service.delete(builder_name(builder), build_id(ref)))


class PinHandler(EnvdHandler):
    @web.authenticated
    @authorized
    async def post(self, builder: str, ref: str) -> None:
        await self.answer(lambda: self.service.pin(builder_name(builder), build_id(ref), pin_body(self.request.body)))


class UnknownEndpointHandler(EnvdHandler):
    """Any other path under ``/envd/api/``: a JSON 404, not the server's HTML page."""

    @web.authenticated
    @authorized
    async def get(self, path: str | None = None) -> None:
        await self._unknown()

    @web.authenticated
    @authorized
    async def post(self, path: str | None = None) -> None:
        await self._unknown()

    @web.authenticated
    @authorized
    async def delete(self, path: str | None = None) -> None:
        await self._unknown()

    async def _unknown(self) -> None:
        async def unknown() -> dict[str, Any]:
            raise NotFound(f"no endpoint {self.request.path} (see docs/lab-panel.md)")
        await self.answer(unknown)


class EventsSocket(WebSocketMixin, websocket.WebSocketHandler, JupyterHandler):
    """Live history messages for one panel; every socket shares the hub's watches."""

    auth_resource = AUTH_RESOURCE

    @property
    def hub(self) -> EventHub:
        return self.settings["envd_events"]

    def set_default_headers(self) -> None:
        """JupyterHandler's page headers mean nothing to a WebSocket (as jupyter_server's kernel socket)."""

    @ws_authenticated
    async def get(self, *args: Any, **kwargs: Any) -> None:
        allowed = await ensure_async(self.authorizer.is_authorized(self, self.current_user, "read", AUTH_RESOURCE))
        if not allowed:
            raise web.HTTPError(403, "not authorized to read envd history")
        await super().get(*args, **kwargs)

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)  # starts the keep-alive pings
        self.hub.subscribe(self.send_event)

    def send_event(self, message: dict[str, Any]) -> None:
        try:
            self.write_message(json.dumps(message))
        except websocket.WebSocketClosedError:
            self.hub.unsubscribe(self.send_event)

    def on_message(self, message: str | bytes) -> None:
        """The panel has nothing to say on this socket (it asks over REST)."""

    def on_close(self) -> None:
        self.hub.unsubscribe(self.send_event)


def routes(base_url: str) -> list[tuple[str, type]]:
    api = url_path_join(base_url, "envd/api")
    return [
        (api + "/builders", BuildersHandler),
        (api + "/history", HistoryHandler),
        (api + "/history/([^/]+)/([^/]+)", BuildHandler),
        (api + "/history/([^/]+)/([^/]+)/pin", PinHandler),
        (api + "/events", EventsSocket),
        (api + "(/.*)?", UnknownEndpointHandler),
    ]
