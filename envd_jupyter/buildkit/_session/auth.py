"""Registry credentials for the daemon, looked up the way docker's CLI does (``$DOCKER_CONFIG`` or ``~/.docker``).

For a host, ``credHelpers[host]`` names its credential helper, else ``credsStore`` names the
default one, else the static ``auths`` entry is used (``auth`` or ``username``/``password``,
``identitytoken``). A helper is the program ``docker-credential-<name>``: ``get`` with the server
address on stdin prints ``{"Username", "Secret"}`` (``Username == "<token>"`` means Secret is an
identity token). "credentials not found" from a helper, or no entry at all, means anonymous.
A helper that is missing, fails or hangs raises ``RegistryAuthError`` naming helper and host;
secrets never appear in reprs, logs or errors. ``AuthService`` hands them out within a solve's
credential scope, and fetches scoped tokens itself for token-auth registries (``registry_tokens``).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import grpc

from envd_jupyter._proto import auth_pb2
from envd_jupyter.buildkit._errors import RegistryAuthError
from envd_jupyter.buildkit._session.registry_tokens import (Challenge, TokenError, authority_key, fetch_token, host_seed,
                                                           public_key, registry_challenge, sign)
from envd_jupyter.llb._reference import split_domain

_DOCKER_HUB_ALIASES = ("docker.io", "registry-1.docker.io", "index.docker.io")
_DOCKER_HUB_KEY = "https://index.docker.io/v1/"
HELPER_TIMEOUT = 20.0  # seconds a credential helper may take (a keychain prompt should not hang a build)
_NOT_FOUND = "credentials not found in native keychain"
_TOKEN_USERNAME = "<token>"


def docker_config_path(config: Path | None = None) -> Path:
    """``config`` if given, else ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``."""
    if config is not None:
        return Path(config)
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
    """The session's Auth service for one solve, handing out only what ``scope`` allows.

    Raw credentials (``Credentials``, which basic-auth registries need) and client-fetched scoped
    tokens (``FetchToken``, once the daemon has our token authority) go only to hosts and scopes in
    ``scope`` (a ``credscope.CredentialScope``; none when not given). Each hand-out is told once to
    ``note`` as a progress line "[auth] credentials for HOST (helper X)", never with the secret.
    Remembers the first helper failure so the solve can raise it.
    """

    method_paths = tuple(
        f"/moby.filesync.v1.Auth/{name}"
        for name in ("Credentials", "FetchToken", "GetTokenAuthority", "VerifyTokenAuthority")
    )

    def __init__(self, config: Path | None = None, *, scope=None, note: Callable[[str], None] | None = None):
        from envd_jupyter.buildkit._session.credscope import CredentialScope

        self.config = config
        self.scope = scope if scope is not None else CredentialScope()
        self.note = note
        self.failure: RegistryAuthError | None = None
        self.handed_out: list[tuple[str, str]] = []  # (what, host): "credentials", "token", "withheld", "kept"
        self._answers: dict[str, Credentials | RegistryAuthError] = {}  # one helper run per host and solve
        self._challenges: dict[str, Challenge | None | TokenError] = {}
        self._lock = threading.Lock()
        self._noted: set[str] = set()

    def __repr__(self) -> str:
        return f"AuthService(config={str(self.config or docker_config_path())!r})"

    def add_to_server(self, server: grpc.Server) -> None:
        handlers = {}
        for name, request, response, behaviour in (
            ("Credentials", auth_pb2.CredentialsRequest, auth_pb2.CredentialsResponse, self._credentials),
            ("FetchToken", auth_pb2.FetchTokenRequest, auth_pb2.FetchTokenResponse, self._fetch_token),
            ("GetTokenAuthority", auth_pb2.GetTokenAuthorityRequest, auth_pb2.GetTokenAuthorityResponse,
             self._get_token_authority),
            ("VerifyTokenAuthority", auth_pb2.VerifyTokenAuthorityRequest, auth_pb2.VerifyTokenAuthorityResponse,
             self._verify_token_authority),
        ):
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                behaviour, request_deserializer=request.FromString, response_serializer=response.SerializeToString)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("moby.filesync.v1.Auth", handlers),))

    def lookup(self, host: str) -> Credentials:
        host = normalise_host(host)
        with self._lock:
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

    def source(self, host: str) -> str:
        """Where ``host``'s credentials come from, for progress lines: "helper X" or the config's auths."""
        config = DockerConfig.load(self.config)
        helper, _ = config.helper_for(normalise_host(host))
        return f"helper {helper}" if helper else f"auths in {config.path}"

    def anonymous_hint(self, message: str) -> str:
        """A hint naming a host in ``message`` that we had no credentials for ("" if there is none)."""
        for host, answer in self._answers.items():
            if isinstance(answer, Credentials) and answer.anonymous and host in message:
                return no_credentials_hint(host, self.config or docker_config_path())
        return ""

    def _record(self, what: str, host: str, line: str) -> None:
        with self._lock:
            self.handed_out.append((what, host))
            first = line not in self._noted
            self._noted.add(line)
        if first and self.note is not None:
            self.note(line)

    def _creds_or_abort(self, host: str, context) -> Credentials:
        try:
            return self.lookup(host)
        except RegistryAuthError as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))

    def _credentials(self, request, context):
        host = request.Host
        if not self.scope.host_allowed(host):
            self._record("withheld", host, f"[auth] credentials for {host} withheld: the build does not use it")
            return auth_pb2.CredentialsResponse()
        creds = self._creds_or_abort(host, context)
        if creds.anonymous:
            return auth_pb2.CredentialsResponse()
        if self._issues_tokens(host):
            self._record("kept", host, f"[auth] credentials for {host} kept on the client: its registry issues "
                                       "tokens, fetched here")
            return auth_pb2.CredentialsResponse()
        self._record("credentials", host, f"[auth] credentials for {host} ({self.source(host)})")
        return auth_pb2.CredentialsResponse(Username=creds.username, Secret=creds.secret)

    def _issues_tokens(self, host: str) -> bool:
        """A Bearer registry gets scoped tokens from FetchToken, never the raw secret (which the daemon also
        asks for only to compare with fetchers cached from other sessions). Unknown: assume it does not."""
        if _client_tokens_disabled():
            return False
        try:
            return self._challenge(host) is not None
        except TokenError:
            return False

    # -- token authority and client-side token fetches (BuildKit's authprovider) ----------------------
    def _authority(self, host: str, salt: bytes, context):
        if _client_tokens_disabled():
            context.abort(grpc.StatusCode.UNAVAILABLE, "client side tokens disabled")
        if not self.scope.host_allowed(host):  # the daemon falls back to Credentials, which withholds them
            context.abort(grpc.StatusCode.UNAVAILABLE, f"no token authority for {host}: the build does not use it")
        creds = self._creds_or_abort(host, context)
        seed = host_seed(docker_config_path(self.config).parent, host)
        return authority_key(seed, salt, bool(creds.secret))

    def _get_token_authority(self, request, context):
        return auth_pb2.GetTokenAuthorityResponse(PublicKey=public_key(self._authority(request.Host, request.Salt,
                                                                                       context)))

    def _verify_token_authority(self, request, context):
        key = self._authority(request.Host, request.Salt, context)
        return auth_pb2.VerifyTokenAuthorityResponse(Signed=sign(key, request.Payload))

    def _challenge(self, host: str) -> Challenge | None:
        with self._lock:
            known = self._challenges.get(host, _UNKNOWN)
        if known is _UNKNOWN:
            try:
                known = registry_challenge(host)
            except TokenError as exc:
                known = exc
            with self._lock:
                self._challenges[host] = known
        if isinstance(known, TokenError):
            raise known
        return known

    def _fetch_token(self, request, context):
        host, scopes = request.Host, list(request.Scopes)
        if not self.scope.host_allowed(host):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"no token for {host}: the build does not use it")
        refused = self.scope.refused_scope(host, scopes)
        if refused:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"no token for {host}: the build does not use {refused}")
        creds = self._creds_or_abort(host, context)
        try:
            challenge = self._challenge(host)
            if challenge is None or challenge.realm != request.Realm or (
                    challenge.service and request.Service != challenge.service):
                context.abort(grpc.StatusCode.PERMISSION_DENIED,
                              f"no token for {host}: realm {request.Realm!r} is not the one the registry announces")
            token, expires_in, issued_at = fetch_token(host, challenge, scopes, creds.username, creds.secret)
        except TokenError as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        if not creds.anonymous:
            wanted = " ".join(scope.removeprefix("repository:") for scope in scopes)
            self._record("token", host, f"[auth] {wanted} token for {host}, from credentials for {host} "
                                        f"({self.source(host)})")
        return auth_pb2.FetchTokenResponse(Token=token, ExpiresIn=expires_in, IssuedAt=issued_at)


_UNKNOWN = object()


def _client_tokens_disabled() -> bool:
    """BuildKit's switch for clients that must leave token fetching to the daemon."""
    return os.environ.get("BUILDKIT_NO_CLIENT_TOKEN", "").lower() in ("1", "true")
