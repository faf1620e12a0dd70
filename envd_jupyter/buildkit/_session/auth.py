"""Registry credentials for the daemon, looked up the way docker's CLI does (``$DOCKER_CONFIG`` or ``~/.docker``).

For a host, ``credHelpers[host]`` names its credential helper, else ``credsStore`` names the
default one, else the static ``auths`` entry is used (``auth`` or ``username``/``password``,
``identitytoken``). A helper is the program ``docker-credential-<name>``: ``get`` with the server
address on stdin prints ``{"Username", "Secret"}`` (``Username == "<token>"`` means Secret is an
identity token). "credentials not found" from a helper, or no entry at all, means anonymous.
A helper that is missing, fails or hangs raises ``RegistryAuthError`` naming helper and host;
secrets never appear in reprs, logs or errors. Token fetching stays with the daemon: we answer
Unimplemented for the token-authority calls, as buildctl may.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from envd_jupyter._proto import auth_pb2
from envd_jupyter.buildkit._errors import RegistryAuthError
from envd_jupyter.llb._reference import split_domain

_DOCKER_HUB_ALIASES = ("docker.io", "registry-1.docker.io", "index.docker.io")
_DOCKER_HUB_KEY = "https://index.docker.io/v1/"
HELPER_TIMEOUT = 20.0  # seconds a credential helper may take (a keychain prompt should not hang a build)
_NOT_FOUND = "credentials not found in native keychain"
_TOKEN_USERNAME = "<token>"


def docker_config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG")
    return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"


def normalise_host(host: str) -> str:
    """The config key for a registry host: a bare ``host[:port]``, Docker Hub as docker's legacy URL."""
    host = host.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    return _DOCKER_HUB_KEY if host in _DOCKER_HUB_ALIASES else host


def registry_host(image_name: str) -> str:
    """The config key of the registry an image name points at (the reference's own domain rule)."""
    return normalise_host(split_domain(image_name)[0])


def no_credentials_hint(host: str, config_path: Path) -> str:
    """What a registry refusal should add when we sent it no credentials."""
    return f" (no credentials for {host} in {config_path})"


@dataclass(frozen=True)
class Credentials:
    """``secret`` is a password, or an identity token when ``username`` is empty."""

    username: str = ""
    secret: str = field(default="", repr=False)

    @property
    def anonymous(self) -> bool:
        return not (self.username or self.secret)


@dataclass(frozen=True)
class DockerConfig:
    path: Path
    auths: dict = field(default_factory=dict, repr=False)
    creds_store: str = ""
    cred_helpers: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> "DockerConfig":
        """An unreadable or absent config means no credentials at all (anonymous everywhere)."""
        path = path or docker_config_path()
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls(path)
        if not isinstance(data, dict):
            return cls(path)
        return cls(path, data.get("auths") or {}, data.get("credsStore") or "", data.get("credHelpers") or {})

    def helper_for(self, host: str) -> tuple[str, str]:
        """(helper name, which setting named it) for ``host``; ("", "") when static auths apply."""
        if self.cred_helpers.get(host):
            return self.cred_helpers[host], f"credHelpers[{host!r}]"
        if self.creds_store:
            return self.creds_store, "credsStore"
        return "", ""

    def static(self, host: str) -> Credentials:
        for key, entry in self.auths.items():
            if normalise_host(key) == host and isinstance(entry, dict):
                return _static_entry(entry)
        return Credentials()

    def credentials(self, host: str, *, timeout: float = HELPER_TIMEOUT) -> Credentials:
        """What docker's CLI would send to ``host``; raises RegistryAuthError for a broken helper."""
        host = normalise_host(host)
        helper, origin = self.helper_for(host)
        if not helper:
            return self.static(host)
        return run_helper(helper, host, origin=f"{origin} in {self.path}", timeout=timeout)


def _static_entry(entry: dict) -> Credentials:
    if entry.get("identitytoken"):
        return Credentials("", entry["identitytoken"])
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"]).decode(errors="replace")
        except ValueError:
            return Credentials()
        username, _, secret = decoded.partition(":")
        return Credentials(username, secret)
    return Credentials(entry.get("username", ""), entry.get("password", ""))


def run_helper(helper: str, host: str, *, origin: str = "", timeout: float = HELPER_TIMEOUT) -> Credentials:
    """``docker-credential-<helper> get`` for ``host``; its output is never put into a message."""
    program = f"docker-credential-{helper}"
    where = f" ({origin})" if origin else ""
    path = shutil.which(program)
    if path is None:
        raise RegistryAuthError(f"credential helper {program} for {host} is not installed (not on PATH){where}")
    try:
        done = subprocess.run([path, "get"], input=host.encode(), capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RegistryAuthError(f"credential helper {program} for {host} did not answer within {timeout:g}s") from None
    except OSError as exc:
        raise RegistryAuthError(f"credential helper {program} for {host} cannot run: {exc.strerror}") from None
    if done.returncode != 0:
        if done.stdout.decode(errors="replace").strip() == _NOT_FOUND:
            return Credentials()
        # Only stderr is quoted: a helper that failed after printing its answer has the secret on stdout.
        reason = _first_line(done.stderr.decode(errors="replace"))
        raise RegistryAuthError(f"credential helper {program} failed for {host} "
                                f"(exit status {done.returncode}){': ' + reason if reason else ''}")
    try:
        answer = json.loads(done.stdout)
        username, secret = answer["Username"], answer["Secret"]
        if not isinstance(username, str) or not isinstance(secret, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise RegistryAuthError(f"credential helper {program} for {host} printed something other than "
                                '{"Username": ..., "Secret": ...}') from None
    return Credentials("", secret) if username == _TOKEN_USERNAME else Credentials(username, secret)


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit] + "..."


def docker_registry_auth_header(host: str, creds: Credentials) -> str:
    """dockerd's ``X-Registry-Auth`` value for ``host`` (base64url JSON; ``{}`` when anonymous)."""
    if creds.anonymous:
        payload = {}
    elif creds.username:
        payload = {"username": creds.username, "password": creds.secret, "serveraddress": host}
    else:
        payload = {"identitytoken": creds.secret, "serveraddress": host}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


class AuthService:
    """The session's Auth service; remembers the first helper failure so the solve can raise it."""

    method_paths = tuple(
        f"/moby.filesync.v1.Auth/{name}"
        for name in ("Credentials", "FetchToken", "GetTokenAuthority", "VerifyTokenAuthority")
    )

    def __init__(self, config: Path | None = None):
        self.config = config
        self.failure: RegistryAuthError | None = None
        self._answers: dict[str, Credentials | RegistryAuthError] = {}  # one helper run per host and solve

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

    def lookup(self, host: str) -> Credentials:
        host = normalise_host(host)
        if host not in self._answers:
            try:
                self._answers[host] = DockerConfig.load(self.config).credentials(host)
            except RegistryAuthError as exc:
                self._answers[host] = exc
        answer = self._answers[host]
        if isinstance(answer, RegistryAuthError):
            self.failure = self.failure or answer
            raise answer
        return answer

    def anonymous_hint(self, message: str) -> str:
        """A hint naming a host in ``message`` that we had no credentials for ("" if there is none)."""
        for host, answer in self._answers.items():
            if isinstance(answer, Credentials) and answer.anonymous and host in message:
                return no_credentials_hint(host, self.config or docker_config_path())
        return ""

    def _credentials(self, request, context):
        try:
            creds = self.lookup(request.Host)
        except RegistryAuthError as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        return auth_pb2.CredentialsResponse(Username=creds.username, Secret=creds.secret)

    def _unimplemented(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "token fetching is left to the daemon")
