"""Credential lookup as docker's CLI does it: credHelpers, credsStore, auths; helpers run for real."""

from __future__ import annotations

import base64
import json

import pytest

from envd_jupyter.buildkit import RegistryAuthError
from envd_jupyter.buildkit._session.auth import (AuthService, Credentials, DockerConfig, docker_registry_auth_header,
                                                registry_host, run_helper)

from credhelpers import calls, write_config, write_helper

SECRET = "s3cret-not-for-logs"


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", f"{path}:{__import__('os').environ['PATH']}")
    return path


def _basic(user, password):
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_cred_helpers_win_over_creds_store_which_wins_over_auths(tmp_path, bin_dir):
    write_helper(bin_dir, "perhost", {"a.example:5000": ("alice", "from-perhost")})
    write_helper(bin_dir, "store", {"b.example": ("bob", "from-store")})
    config = DockerConfig.load(write_config(
        tmp_path / "cfg", credsStore="store", credHelpers={"a.example:5000": "perhost"},
        auths={"b.example": {"auth": _basic("static", "from-auths")}}))

    assert config.credentials("a.example:5000") == Credentials("alice", "from-perhost")
    assert config.credentials("http://b.example/v2/") == Credentials("bob", "from-store")
    assert config.credentials("c.example").anonymous  # the store says "not found": anonymous, like docker
    assert calls(bin_dir, "perhost") == ["get a.example:5000"]  # the server address went in on stdin
    assert calls(bin_dir, "store") == ["get b.example", "get c.example"]


def test_static_auths_in_every_form(tmp_path):
    config = DockerConfig.load(write_config(tmp_path, auths={
        "https://one.example/v1/": {"auth": _basic("u1", "p:with:colons")},
        "two.example": {"username": "u2", "password": "p2"},
        "three.example": {"identitytoken": "tok3"},
        "https://index.docker.io/v1/": {"auth": _basic("hub", "hubpass")},
    }))
    assert config.credentials("one.example") == Credentials("u1", "p:with:colons")
    assert config.credentials("two.example") == Credentials("u2", "p2")
    assert config.credentials("three.example") == Credentials("", "tok3")
    assert config.credentials("registry-1.docker.io") == Credentials("hub", "hubpass")
    assert config.credentials("four.example").anonymous


def test_token_username_means_identity_token(bin_dir):
    write_helper(bin_dir, "tok", {"r.example": ("<token>", "refresh-token")})
    assert run_helper("tok", "r.example") == Credentials("", "refresh-token")


def test_absent_or_broken_config_is_anonymous(tmp_path):
    assert DockerConfig.load(tmp_path / "absent.json").credentials("r.example").anonymous
    (tmp_path / "bad.json").write_text("{not json")
    assert DockerConfig.load(tmp_path / "bad.json").credentials("r.example").anonymous


def test_missing_helper_names_helper_host_and_setting(tmp_path, bin_dir):
    config = DockerConfig.load(write_config(tmp_path, credHelpers={"r.example": "absent"}))
    with pytest.raises(RegistryAuthError) as failure:
        config.credentials("r.example")
    message = str(failure.value)
    assert "docker-credential-absent" in message and "r.example" in message and "credHelpers" in message
    assert "\n" not in message


def test_failing_helper_is_one_line_naming_helper_and_host(bin_dir):
    write_helper(bin_dir, "locked", fail="keychain is locked")
    with pytest.raises(RegistryAuthError, match=r"docker-credential-locked failed for r\.example "
                                                r"\(exit status 1\): keychain is locked$"):
        run_helper("locked", "r.example")


def test_a_failing_helpers_stdout_is_never_echoed(bin_dir):
    write_helper(bin_dir, "crashy", leak_then_fail=SECRET)
    with pytest.raises(RegistryAuthError) as failure:
        run_helper("crashy", "r.example")
    assert str(failure.value) == "credential helper docker-credential-crashy failed for r.example (exit status 1)"


def test_hanging_helper_is_stopped_after_the_timeout(bin_dir):
    write_helper(bin_dir, "slow", {"r.example": ("u", "p")}, sleep=30)
    with pytest.raises(RegistryAuthError, match="docker-credential-slow for r.example did not answer within 0.5s"):
        run_helper("slow", "r.example", timeout=0.5)


def test_malformed_helper_output_is_not_echoed(bin_dir):
    write_helper(bin_dir, "garbled", raw=f"Username={SECRET}")
    with pytest.raises(RegistryAuthError) as failure:
        run_helper("garbled", "r.example")
    assert "docker-credential-garbled" in str(failure.value) and SECRET not in str(failure.value)


def test_auth_service_reports_one_helper_failure_and_hides_secrets(tmp_path, bin_dir):
    write_helper(bin_dir, "store", {"good.example": ("u", SECRET)})
    service = AuthService(write_config(tmp_path, credsStore="store", credHelpers={"bad.example": "absent"}))
    assert service.lookup("good.example") == Credentials("u", SECRET)
    service.lookup("good.example")
    assert calls(bin_dir, "store") == ["get good.example"]  # asked once per solve
    with pytest.raises(RegistryAuthError):
        service.lookup("bad.example")
    assert "docker-credential-absent" in str(service.failure)
    assert SECRET not in repr(service) and SECRET not in repr(Credentials("u", SECRET))


def test_x_registry_auth_header(tmp_path):
    config = DockerConfig.load(write_config(tmp_path, auths={"r.example:5000": {"auth": _basic("u", "p")},
                                                             "t.example": {"identitytoken": "tok"}}))

    def decode(host):
        return json.loads(base64.urlsafe_b64decode(docker_registry_auth_header(host, config.credentials(host))))

    assert decode("r.example:5000") == {"username": "u", "password": "p", "serveraddress": "r.example:5000"}
    assert decode("t.example") == {"identitytoken": "tok", "serveraddress": "t.example"}
    assert decode("other.example") == {}


@pytest.mark.parametrize("name, host", [
    ("127.0.0.1:5020/a/b:tag", "127.0.0.1:5020"),
    ("localhost/x", "localhost"),
    ("registry.example/x@sha256:00", "registry.example"),
    ("library/busybox", "https://index.docker.io/v1/"),
    ("busybox:latest", "https://index.docker.io/v1/"),
])
def test_registry_host_of_an_image_name(name, host):
    assert registry_host(name) == host
