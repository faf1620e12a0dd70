"""Registry credentials for the daemon, from the user's docker config (``$DOCKER_CONFIG`` or ``~/.docker``).

Only static ``auths`` entries are served (``auth`` or ``username``/``password``, ``identitytoken``);
hosts without an entry get empty credentials, which BuildKit treats as anonymous. Token fetching
stays with the daemon: we answer Unimplemented for the token-authority calls, as buildctl may.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import grpc

from envd_jupyter._proto import auth_pb2

_DOCKER_HUB_ALIASES = ("docker.io", "registry-1.docker.io", "index.docker.io")
_DOCKER_HUB_KEY = "https://index.docker.io/v1/"


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def _normalise(host: str) -> str:
    host = host.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    return _DOCKER_HUB_KEY if host in _DOCKER_HUB_ALIASES else host


def load_credentials(config: Path | None = None) -> dict[str, tuple[str, str]]:
    """host → (username, secret); an unreadable or absent config means no credentials."""
    path = config or docker_config_path()
    try:
        auths = json.loads(path.read_text()).get("auths", {})
    except (OSError, ValueError):
        return {}
    found = {}
    for key, entry in auths.items():
        username, secret = entry.get("username", ""), entry.get("password", "")
        if entry.get("auth"):
            decoded = base64.b64decode(entry["auth"]).decode(errors="replace")
            username, _, secret = decoded.partition(":")
        if entry.get("identitytoken"):
            username, secret = "", entry["identitytoken"]
        if username or secret:
            found[_normalise(key)] = (username, secret)
    return found


class AuthService:
    method_paths = tuple(
        f"/moby.filesync.v1.Auth/{name}"
        for name in ("Credentials", "FetchToken", "GetTokenAuthority", "VerifyTokenAuthority")
    )

    def __init__(self, config: Path | None = None):
        self.config = config

    def __repr__(self) -> str:
        return f"AuthService(config={str(self.config or docker_config_path())!r})"

    def add_to_server(self, server: grpc.Server) -> None:
        handlers = {
            "Credentials": grpc.unary_unary_rpc_method_handler(
                self._credentials,
                request_deserializer=auth_pb2.CredentialsRequest.FromString,
                response_serializer=auth_pb2.CredentialsResponse.SerializeToString,
            ),
        }
        for name, request in (
            ("FetchToken", auth_pb2.FetchTokenRequest),
            ("GetTokenAuthority", auth_pb2.GetTokenAuthorityRequest),
            ("VerifyTokenAuthority", auth_pb2.VerifyTokenAuthorityRequest),
        ):
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                self._unimplemented, request_deserializer=request.FromString
            )
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("moby.filesync.v1.Auth", handlers),))

    def _credentials(self, request, context):
        username, secret = load_credentials(self.config).get(_normalise(request.Host), ("", ""))
        return auth_pb2.CredentialsResponse(Username=username, Secret=secret)

    def _unimplemented(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "token fetching is left to the daemon")
