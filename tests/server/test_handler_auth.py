"""Every route under /envd/ is authenticated: a static walk of the app's routes (each method wrapped by
tornado's ``authenticated`` or jupyter_server's ``ws_authenticated``, and ``authorized``), requests without
a token (403), and the XSRF check on a cookie session's POST and DELETE."""

from __future__ import annotations

import json
import re
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest
from jupyter_server.auth import Authorizer
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.httpclient import HTTPClientError
from tornado.routing import PathMatches, RuleRouter
from traitlets.config import Config

from envd_jupyter.server._handlers import EnvdHandler

_AUTHENTICATING = {web.authenticated(lambda self: None).__code__, ws_authenticated(lambda self: None).__code__}
_AUTHORIZING = authorized(lambda self: None).__code__
# A CORS preflight carries no credentials by design; APIHandler's answers with headers only.
_PREFLIGHT = APIHandler.options


def envd_routes(web_app) -> dict[str, type]:
    """Path pattern -> handler class of every route under /envd/, however deeply the routers nest."""
    found: dict[str, type] = {}

    def walk(router) -> None:
        for rule in router.rules:
            if isinstance(rule.target, RuleRouter):
                walk(rule.target)
            elif isinstance(rule.matcher, PathMatches) and "/envd/" in rule.matcher.regex.pattern:
                found[rule.matcher.regex.pattern] = rule.target

    walk(web_app.default_router)
    walk(web_app.wildcard_router)
    return found


def _wrapper_codes(method) -> set:
    codes = set()
    while method is not None:
        codes.add(method.__code__)
        method = getattr(method, "__wrapped__", None)
    return codes


def unauthenticated_methods(handler: type) -> list[str]:
    """The HTTP methods ``handler`` serves without the authentication (and authorization) decorators."""
    missing = []
    for verb in handler.SUPPORTED_METHODS:
        method = getattr(handler, verb.lower(), None)
        if method is None or method is getattr(web.RequestHandler, verb.lower(), None) or method is _PREFLIGHT:
            continue  # not served (405), or the credential-free CORS preflight
        codes = _wrapper_codes(method)
        is_socket = ws_authenticated(lambda self: None).__code__ in codes
        if not codes & _AUTHENTICATING or (not is_socket and _AUTHORIZING not in codes):
            missing.append(verb)
    return missing


def test_the_checker_flags_a_handler_without_the_decorators():
    class Careless(EnvdHandler):
        async def get(self):
            pass

        @web.authenticated
        async def post(self):
            pass

    assert unauthenticated_methods(Careless) == ["GET", "POST"]


def test_every_envd_route_is_authenticated_and_authorized(jp_serverapp):
    routes = envd_routes(jp_serverapp.web_app)
    assert len(routes) == 6  # builders, history, one build, pin, events, unknown endpoints
    assert {pattern: unauthenticated_methods(handler) for pattern, handler in routes.items()} == {
        pattern: [] for pattern in routes}


def _sample_path(pattern: str) -> str:
    """A concrete path below the base URL that the route's pattern matches (each group made "x")."""
    route = pattern[pattern.index("envd/"):].removesuffix("$")
    path = re.sub(r"\(/[^)]*\)\?", "/x", route)
    path = re.sub(r"\([^)]*\)", "x", path)
    assert re.fullmatch(route, path), (route, path)
    return path


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_every_envd_route_refuses_a_request_without_a_token(jp_serverapp, jp_fetch, method):
    for pattern, handler in envd_routes(jp_serverapp.web_app).items():
        if method == "GET" and handler.__name__ == "EventsSocket":
            continue  # a plain GET of the socket is below, as a WebSocket
        with pytest.raises(HTTPClientError) as failure:
            await jp_fetch(_sample_path(pattern), method=method,
                           headers={"Authorization": ""}, allow_nonstandard_methods=True,
                           body=b'{"pinned": true}' if method == "POST" else None)
        assert failure.value.code in (403, 405), (pattern, method, failure.value.code)
        if getattr(handler, method.lower(), None) is not getattr(web.RequestHandler, method.lower()):
            assert failure.value.code == 403, (pattern, method)


async def test_the_events_socket_refuses_a_connection_without_a_token(jp_ws_fetch):
    with pytest.raises(HTTPClientError) as failure:
        await jp_ws_fetch("envd", "api", "events", headers={"Authorization": ""})
    assert failure.value.code == 403


async def test_a_wrong_token_is_refused(jp_fetch):
    with pytest.raises(HTTPClientError) as failure:
        await jp_fetch("envd", "api", "builders", headers={"Authorization": "token not-the-token"})
    assert failure.value.code == 403


async def _cookie_session(jp_fetch, jp_serverapp) -> dict[str, str]:
    """Log in as a browser does (the login form with the token as password); the session's cookies."""
    page = await jp_fetch("login", headers={"Authorization": ""})
    cookies = {k: v.value for k, v in SimpleCookie(page.headers.get("Set-Cookie", "")).items()}
    form = urlencode({"_xsrf": cookies["_xsrf"], "password": jp_serverapp.identity_provider.token})
    with pytest.raises(HTTPClientError) as redirect:  # a 302 to the next page
        await jp_fetch("login", method="POST", body=form, follow_redirects=False,
                       headers={"Authorization": "", "Cookie": f"_xsrf={cookies['_xsrf']}"})
    assert redirect.value.code == 302
    for header in redirect.value.response.headers.get_list("Set-Cookie"):
        cookies.update({k: v.value for k, v in SimpleCookie(header).items()})
    assert len(cookies) == 2  # _xsrf and the login cookie
    return cookies


async def test_a_cookie_session_must_send_the_xsrf_token_to_pin_or_delete(jp_fetch, jp_serverapp):
    cookies = await _cookie_session(jp_fetch, jp_serverapp)
    cookie_header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    builders = await jp_fetch("envd", "api", "builders", headers={"Authorization": "", "Cookie": cookie_header})
    assert json.loads(builders.body)["builders"]  # a GET needs no XSRF token
    for method, parts, payload in [("POST", ("gone", "abc", "pin"), b'{"pinned": true}'), ("DELETE", ("gone", "abc"), None)]:
        with pytest.raises(HTTPClientError) as refused:
            await jp_fetch("envd", "api", "history", *parts, method=method, body=payload,
                           allow_nonstandard_methods=True, headers={"Authorization": "", "Cookie": cookie_header})
        assert refused.value.code == 403, method
        with pytest.raises(HTTPClientError) as passed:  # past the XSRF check: the daemon went away
            await jp_fetch("envd", "api", "history", *parts, method=method, body=payload,
                           allow_nonstandard_methods=True,
                           headers={"Authorization": "", "Cookie": cookie_header, "X-XSRFToken": cookies["_xsrf"]})
        assert passed.value.code == 502, method


class ReadOnlyEnvd(Authorizer):
    """Lets a user read the panel's data but never pin, delete or anything else on resource envd."""

    def is_authorized(self, handler, user, action, resource):
        return resource != "envd" or action == "read"


class TestAnAuthorizerDecides:
    @pytest.fixture
    def jp_server_config(self, envd_config):
        return Config({"ServerApp": {"jpserver_extensions": {"envd_jupyter.server": True},
                                     "authorizer_class": ReadOnlyEnvd},
                       "EnvdServer": envd_config})

    async def test_reads_pass_and_writes_are_refused_on_resource_envd(self, jp_fetch, jp_ws_fetch):
        assert (await jp_fetch("envd", "api", "builders")).code == 200
        (await jp_ws_fetch("envd", "api", "events")).close()
        for method, parts, payload in [("POST", ("gone", "abc", "pin"), b'{"pinned": true}'),
                                       ("DELETE", ("gone", "abc"), None)]:
            with pytest.raises(HTTPClientError) as refused:
                await jp_fetch("envd", "api", "history", *parts, method=method, body=payload,
                               allow_nonstandard_methods=True)
            assert refused.value.code == 403, method


class NoEnvd(Authorizer):
    def is_authorized(self, handler, user, action, resource):
        return resource != "envd"


class TestAnAuthorizerRefusing:
    @pytest.fixture
    def jp_server_config(self, envd_config):
        return Config({"ServerApp": {"jpserver_extensions": {"envd_jupyter.server": True}, "authorizer_class": NoEnvd},
                       "EnvdServer": envd_config})

    async def test_every_envd_endpoint_and_the_socket_are_refused(self, jp_fetch, jp_ws_fetch):
        assert (await jp_fetch("api", "status")).code == 200  # the rest of the server is not envd's to refuse
        for parts in [("builders",), ("history",), ("history", "gone", "abc")]:
            with pytest.raises(HTTPClientError) as refused:
                await jp_fetch("envd", "api", *parts)
            assert refused.value.code == 403, parts
        with pytest.raises(HTTPClientError) as refused:
            await jp_ws_fetch("envd", "api", "events")
        assert refused.value.code == 403
