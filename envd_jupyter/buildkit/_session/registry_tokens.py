"""Scoped registry tokens fetched on the client, as BuildKit's Go auth provider does it.

When a registry answers with a Bearer challenge, the daemon asks the session for a *token
authority* (an ed25519 key derived from a per-host seed kept beside the docker config and a salt
the daemon chooses) and then for short-lived tokens (``FetchToken``) scoped to what it pulls or
pushes. The client trades its credentials for a token at the registry's realm itself, so the
password or identity token never reaches the daemon.

Unlike Go's provider, the realm and service the daemon names are checked against the challenge
the registry itself announces (probed once per host and solve), so a daemon cannot redirect the
user's credentials to a server of its choosing; credentials never travel over plain http except
to a loopback address.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from envd_jupyter.buildkit._tls import is_loopback

DEFAULT_EXPIRY = 60  # seconds, when the token server names none (BuildKit's default)
CLIENT_ID = "buildkit-client"
HTTP_TIMEOUT = 30.0
MAX_TOKEN_RESPONSE = 1 << 20


class TokenError(Exception):
    """A token that cannot be had; the message names host and realm, never a credential."""


def authority_key(seed: bytes, salt: bytes, has_secret: bool) -> Ed25519PrivateKey:
    """BuildKit's derivation: HMAC-SHA256(salt, seed if credentials exist), its first 32 bytes as the seed."""
    mac = hmac.new(salt, seed if has_secret else b"", hashlib.sha256).digest()
    return Ed25519PrivateKey.from_private_bytes(mac[:32])


def public_key(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(key: Ed25519PrivateKey, payload: bytes) -> bytes:
    """NaCl's ``sign.Sign`` output: the 64-byte signature followed by the message."""
    return key.sign(payload) + payload


def host_seed(config_dir: Path, host: str) -> bytes:
    """The per-host random seed in ``<config dir>/.token_seed`` (BuildKit's file and format, shared with buildx)."""
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / ".token_seed"
    with open(config_dir / ".token_seed.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            seeds = json.loads(path.read_text())
            if not isinstance(seeds, dict):
                seeds = {}
        except (OSError, ValueError):
            seeds = {}
        entry = seeds.get(host)
        try:
            return base64.b64decode(entry["Seed"], validate=True)
        except (TypeError, KeyError, ValueError):
            pass
        seed = secrets.token_bytes(16)
        seeds[host] = {"Seed": base64.b64encode(seed).decode()}
        temporary = path.with_name(f".token_seed.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(seeds, out, indent=2)
        os.replace(temporary, path)
        return seed


@dataclass(frozen=True)
class Challenge:
    realm: str
    service: str


def parse_bearer(header: str) -> Challenge | None:
    """The Bearer challenge of a WWW-Authenticate header (None when it is not one)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    params: dict[str, str] = {}
    rest = rest.strip()
    while rest:
        key, _, rest = rest.partition("=")
        if rest.startswith('"'):
            value, _, rest = rest[1:].partition('"')
        else:
            value, _, rest = rest.partition(",")
        params[key.strip().lower()] = value
        rest = rest.lstrip(", ")
    return Challenge(params.get("realm", ""), params.get("service", "")) if params.get("realm") else None


def registry_challenge(host: str, *, timeout: float = HTTP_TIMEOUT) -> Challenge | None:
    """What the registry at ``host`` itself announces on ``/v2/`` (https; plain http only for loopback)."""
    schemes = ("https", "http") if is_loopback(host) else ("https",)
    last_error: Exception | None = None
    for scheme in schemes:
        try:
            with _open(urllib.request.Request(f"{scheme}://{host}/v2/"), timeout):
                return None  # no auth at all
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                return parse_bearer(exc.headers.get("WWW-Authenticate", ""))
            last_error = exc
        except (OSError, ssl.SSLError) as exc:
            last_error = exc
    raise TokenError(f"cannot read the auth challenge of registry {host}: {_reason(last_error)}")


def fetch_token(host: str, challenge: Challenge, scopes: list[str], username: str, secret: str,
                *, timeout: float = HTTP_TIMEOUT) -> tuple[str, int, int]:
    """(token, expires_in, issued_at) from the realm; OAuth POST first when there is a secret, then GET,
    as BuildKit's client does."""
    realm = urllib.parse.urlsplit(challenge.realm)
    if realm.scheme != "https" and not (realm.scheme == "http" and is_loopback(realm.netloc)):
        raise TokenError(f"refusing to send credentials for {host} to {challenge.realm}: not https")
    if secret:
        form = {"client_id": CLIENT_ID, "scope": " ".join(scopes), "service": challenge.service,
                "access_type": "offline"}
        form.update({"grant_type": "password", "username": username, "password": secret} if username
                     else {"grant_type": "refresh_token", "refresh_token": secret})
        request = urllib.request.Request(challenge.realm, data=urllib.parse.urlencode(form).encode(),
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        try:
            return _token_answer(request, host, timeout, key="access_token")
        except urllib.error.HTTPError as exc:
            if not (exc.code in (404, 401) or (exc.code == 405 and username)):
                raise TokenError(f"token for {host}: {challenge.realm} answered {exc.code}") from None
    query = [("service", challenge.service)] if challenge.service else []
    query += [("scope", scope) for scope in scopes]
    url = challenge.realm + ("&" if "?" in challenge.realm else "?") + urllib.parse.urlencode(query)
    headers = {}
    if secret:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{username}:{secret}".encode()).decode()
    try:
        return _token_answer(urllib.request.Request(url, headers=headers), host, timeout, key="token")
    except urllib.error.HTTPError as exc:
        raise TokenError(f"token for {host}: {challenge.realm} answered {exc.code}") from None


def _token_answer(request, host: str, timeout: float, *, key: str) -> tuple[str, int, int]:
    try:
        with _open(request, timeout) as response:
            body = response.read(MAX_TOKEN_RESPONSE + 1)
    except urllib.error.HTTPError:
        raise
    except (OSError, ssl.SSLError) as exc:
        raise TokenError(f"token for {host}: {_reason(exc)}") from None
    try:
        answer = json.loads(body) if len(body) <= MAX_TOKEN_RESPONSE else None
        token = answer.get(key) or answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise TypeError
    except (ValueError, TypeError, AttributeError):
        raise TokenError(f"token for {host}: the realm's answer holds no token") from None
    expires = answer.get("expires_in")
    expires = expires if isinstance(expires, int) and expires > 0 else DEFAULT_EXPIRY
    return token, expires, _issued_at(answer.get("issued_at"))


def _issued_at(text) -> int:
    if not isinstance(text, str) or not text:
        return 0
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return int(time.time())


def _open(request, timeout: float):
    """No redirects followed: a redirect could carry the Authorization header to another host."""
    opener = urllib.request.build_opener(_NoRedirect)
    return opener.open(request, timeout=timeout)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _reason(exc: Exception | None) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) if exc else "no answer"
