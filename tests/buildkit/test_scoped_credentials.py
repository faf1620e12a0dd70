"""Scoped credentials (issue 17 item 2), against a fake daemon peer and fake loopback registries.

Raw credentials go only to hosts the build references (or the user allowed) and never to a
registry that issues tokens; tokens are fetched on the client, as BuildKit's Go auth provider does,
only from the realm the registry itself announces and only for the repositories the build uses.
Every hand-out is one "[auth] ..." progress line naming host and helper, never the secret.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from envd_jupyter._proto import auth_pb2
from envd_jupyter.buildkit._session.auth import AuthService
from envd_jupyter.buildkit._session.credscope import CredentialScope

from credhelpers import write_config, write_helper
from hostile import FakeDaemon

USER, SECRET = "builder", "pat-5ecret-9d2f"
AUTH = "/moby.filesync.v1.Auth/"


class FakeRegistry:
    """A loopback registry's /v2/ challenge (Bearer or Basic) and, for Bearer, its token realm."""

    def __init__(self, scheme: str = "Bearer"):
        self.seen: list[tuple[str, str, str]] = []  # (method, path, Authorization)
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                registry.seen.append(("GET", self.path, self.headers.get("Authorization", "")))
                if self.path == "/v2/":
                    challenge = (f'Bearer realm="{registry.realm}",service="fake-registry"' if scheme == "Bearer"
                                 else 'Basic realm="fake"')
                    self._answer(401, b"{}", {"WWW-Authenticate": challenge})
                elif self.path.startswith("/token") and self.headers.get("Authorization"):
                    self._answer(200, json.dumps({"token": f"scoped:{self.path}", "expires_in": 300}).encode())
                else:
                    self._answer(401, b"{}")

            def do_POST(self):  # no OAuth endpoint, like the project's token server
                registry.seen.append(("POST", self.path, self.headers.get("Authorization", "")))
                self._answer(404, b"")

            def _answer(self, code, body, headers=None):
                self.send_response(code)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.realm = f"http://{self.host}/token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registries():
    made = {"token": FakeRegistry("Bearer"), "basic": FakeRegistry("Basic"), "evil": FakeRegistry("Bearer")}
    yield made
    for registry in made.values():
        registry.close()


@pytest.fixture
def config(tmp_path, monkeypatch, registries):
    """Credentials for every fake registry: static auths, plus a credsStore helper for the basic one."""
    bin_dir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    basic = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
    write_helper(bin_dir, "envdtest", {registries["basic"].host: (USER, SECRET)})
    return write_config(tmp_path / "docker", credHelpers={registries["basic"].host: "envdtest"},
                        auths={r.host: {"auth": basic} for r in registries.values()})


def _service(config, registries, notes, *, allowed=()):
    scope = CredentialScope(allowed)
    scope.add_image(f"{registries['token'].host}/team/app:1")
    scope.add_image(f"{registries['token'].host}/team/out:1", push=True)
    scope.add_image(f"{registries['basic'].host}/team/base:1")
    return AuthService(config, scope=scope, note=notes.append)


def _credentials(daemon, host):
    answer = daemon.unary(AUTH + "Credentials", auth_pb2.CredentialsRequest(Host=host).SerializeToString())
    return auth_pb2.CredentialsResponse.FromString(answer)


def _fetch_token(daemon, host, realm, scopes, service="fake-registry"):
    request = auth_pb2.FetchTokenRequest(ClientID="buildkit-client", Host=host, Realm=realm, Service=service,
                                         Scopes=scopes)
    return auth_pb2.FetchTokenResponse.FromString(daemon.unary(AUTH + "FetchToken", request.SerializeToString()))


def _authority(daemon, host, salt):
    request = auth_pb2.GetTokenAuthorityRequest(Host=host, Salt=salt).SerializeToString()
    return auth_pb2.GetTokenAuthorityResponse.FromString(daemon.unary(AUTH + "GetTokenAuthority", request)).PublicKey


def test_raw_credentials_only_for_a_basic_registry_the_build_uses(config, registries):
    notes = []
    with FakeDaemon([_service(config, registries, notes)]) as daemon:
        basic = _credentials(daemon, registries["basic"].host)
        other = _credentials(daemon, "registry.example.com")
        token = _credentials(daemon, registries["token"].host)
    assert (basic.Username, basic.Secret) == (USER, SECRET)
    assert (other.Username, other.Secret) == ("", "")
    assert (token.Username, token.Secret) == ("", "")  # a token registry gets tokens, not the password
    assert notes == [f"[auth] credentials for {registries['basic'].host} (helper envdtest)",
                     "[auth] credentials for registry.example.com withheld: the build does not use it",
                     f"[auth] credentials for {registries['token'].host} kept on the client: its registry issues "
                     "tokens, fetched here"]
    assert not any(SECRET in note for note in notes)


def test_a_host_the_user_allowed_gets_credentials(config, registries):
    notes = []
    with FakeDaemon([_service(config, registries, notes, allowed=[registries["evil"].host])]) as daemon:
        token = _fetch_token(daemon, registries["evil"].host, registries["evil"].realm, ["registry:catalog:*"])
    assert token.Token.startswith("scoped:")


def test_tokens_are_fetched_on_the_client_scoped_to_what_the_build_uses(config, registries):
    notes = []
    token_registry = registries["token"]
    with FakeDaemon([_service(config, registries, notes)]) as daemon:
        answer = _fetch_token(daemon, token_registry.host, token_registry.realm,
                              ["repository:team/app:pull", "repository:team/out:pull,push"])
    assert answer.Token.startswith("scoped:/token?") and answer.ExpiresIn == 300
    assert "scope=repository%3Ateam%2Fapp%3Apull" in answer.Token
    token_requests = [entry for entry in token_registry.seen if entry[1].startswith("/token")]
    assert [method for method, _, _ in token_requests] == ["POST", "GET"]  # OAuth first, then GET as Go does
    assert token_requests[-1][2] == "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
    host = token_registry.host
    assert notes == [f"[auth] team/app:pull team/out:pull,push token for {host}, from credentials for {host} "
                     f"(auths in {config})"]


@pytest.mark.parametrize("scopes", [["repository:team/app:pull,push"], ["repository:other/repo:push"],
                                    ["registry:catalog:*"], ["repository:team/app:delete"]])
def test_a_token_for_scopes_the_build_does_not_use_is_refused(config, registries, scopes):
    notes = []
    with FakeDaemon([_service(config, registries, notes)]) as daemon:
        with pytest.raises(grpc.RpcError) as refused:
            _fetch_token(daemon, registries["token"].host, registries["token"].realm, scopes)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert scopes[0] in refused.value.details()
    assert not [entry for entry in registries["token"].seen if entry[1].startswith("/token")] and notes == []


def test_a_realm_the_registry_did_not_announce_gets_nothing(config, registries):
    """A daemon naming its own realm would collect the password Go's provider sends there."""
    notes = []
    with FakeDaemon([_service(config, registries, notes)]) as daemon:
        for realm, service in ((registries["evil"].realm, "fake-registry"),
                               (registries["token"].realm, "another-service")):
            with pytest.raises(grpc.RpcError) as refused:
                _fetch_token(daemon, registries["token"].host, realm, ["repository:team/app:pull"], service)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert registries["evil"].seen == []
    assert not any(entry[2] for entry in registries["token"].seen)  # only the anonymous /v2/ probe
    assert notes == []


def test_a_host_the_build_does_not_use_gets_no_token_and_no_authority(config, registries):
    with FakeDaemon([_service(config, registries, [])]) as daemon:
        with pytest.raises(grpc.RpcError) as no_token:
            _fetch_token(daemon, registries["evil"].host, registries["evil"].realm, ["repository:x:pull"])
        with pytest.raises(grpc.RpcError) as no_authority:
            _authority(daemon, registries["evil"].host, b"salt")
    assert no_token.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert no_authority.value.code() == grpc.StatusCode.UNAVAILABLE  # the daemon then asks Credentials: withheld
    assert registries["evil"].seen == []


def test_the_token_authority_is_buildkits(config, registries):
    """An ed25519 key from HMAC(salt, per-host seed): stable across sessions, per salt, NaCl-signed answers."""
    host = registries["token"].host
    with FakeDaemon([_service(config, registries, [])]) as daemon:
        key = _authority(daemon, host, b"salt-1")
        payload = os.urandom(32)
        request = auth_pb2.VerifyTokenAuthorityRequest(Host=host, Salt=b"salt-1", Payload=payload)
        signed = auth_pb2.VerifyTokenAuthorityResponse.FromString(
            daemon.unary(AUTH + "VerifyTokenAuthority", request.SerializeToString())).Signed
        other_salt = _authority(daemon, host, b"salt-2")
    with FakeDaemon([_service(config, registries, [])]) as later:
        again = _authority(later, host, b"salt-1")
    assert len(key) == 32 and key == again and key != other_salt
    assert signed[64:] == payload
    Ed25519PublicKey.from_public_bytes(key).verify(signed[:64], payload)  # raises if it does not verify
    seeds = json.loads((config.parent / ".token_seed").read_text())
    assert set(seeds) == {host} and len(base64.b64decode(seeds[host]["Seed"])) == 16
    assert oct((config.parent / ".token_seed").stat().st_mode & 0o777) == "0o600"


def test_scope_from_definitions_exports_and_caches():
    from envd_jupyter.buildkit import CacheSpec, Image
    from envd_jupyter.buildkit._cache import cache_entry
    from envd_jupyter.llb._source import image

    scope = CredentialScope()
    scope.add_definition(image("reg.example:5000/team/base:1").marshal().to_bytes())
    scope.add_exports([Image("push.example/team/app:2", store="buildkit", push=True), Image("local-only:1")])
    scope.add_cache([cache_entry(CacheSpec.registry("cache.example/team/cache:x"))], export=True)
    assert scope.host_allowed("reg.example:5000") and scope.host_allowed("push.example")
    assert scope.host_allowed("cache.example") and not scope.host_allowed("docker.io")
    assert scope.refused_scope("reg.example:5000", ["repository:team/base:pull"]) == ""
    assert scope.refused_scope("reg.example:5000", ["repository:team/base:push"]) == "repository:team/base:push"
    assert scope.refused_scope("reg.example:5000", ["repository:team/other:pull"]) == ""  # cross-repo blob mounts
    assert scope.refused_scope("unused.example", ["repository:team/base:pull"]) == "repository:team/base:pull"
    assert scope.refused_scope("push.example", ["repository:team/app:pull,push"]) == ""
    assert scope.refused_scope("cache.example", ["repository:team/cache:pull,push"]) == ""


class _Redirecting(BaseHTTPRequestHandler):
    """A realm that answers every request with a redirect to ``target``."""

    target = ""

    def do_GET(self):
        self.send_response(307)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_a_realm_that_redirects_gets_credentials_once_and_the_redirect_is_not_followed(registries):
    """A redirect would carry the Authorization header (or the OAuth form) to wherever it points."""
    from envd_jupyter.buildkit._session.registry_tokens import Challenge, TokenError, fetch_token

    evil = registries["evil"]
    handler = type("ToEvil", (_Redirecting,), {"target": f"http://{evil.host}/token"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        realm = f"http://127.0.0.1:{server.server_address[1]}/token"
        with pytest.raises(TokenError) as refused:
            fetch_token("registry.test", Challenge(realm, "svc"), ["repository:team/app:pull"], USER, SECRET)
    finally:
        server.shutdown()
        server.server_close()
    assert "answered 307" in str(refused.value) and SECRET not in str(refused.value)
    assert evil.seen == []


@pytest.mark.parametrize("realm", ["http://192.0.2.7/token", "ftp://192.0.2.7/token", "file:///etc/passwd"])
def test_credentials_go_to_a_remote_realm_over_https_only(realm):
    from envd_jupyter.buildkit._session.registry_tokens import Challenge, TokenError, fetch_token

    with pytest.raises(TokenError, match="not https"):
        fetch_token("registry.test", Challenge(realm, "svc"), ["repository:team/app:pull"], USER, SECRET, timeout=1)
