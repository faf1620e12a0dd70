"""Secrets reach the RUN that mounts them and nothing else: not the Definition, logs or reprs."""

from __future__ import annotations

import hashlib
import secrets as random_tokens

import pytest

from envd_jupyter.buildkit import LocalDir
from envd_jupyter.buildkit._session.secrets import Secret, SecretError, SecretsService
from envd_jupyter.llb._exec import secret_mount
from envd_jupyter.llb._source import image, scratch


def _hashing_state(busybox, network):
    """A RUN that proves it saw the secret (its sha256) and logs around it without printing it.

    A nonce in the command keeps BuildKit from reusing an earlier run: secrets are not in cache keys.
    """
    nonce = random_tokens.token_hex(4)
    ran = image(busybox).run(
        f"echo reading the token {nonce}; sha256sum /run/secrets/tok | cut -d' ' -f1 > /seen; echo done",
        mounts=[secret_mount("/run/secrets/tok", "tok")], network=network,
    )
    return scratch().copy(ran, "/seen", "/seen")


@pytest.mark.parametrize("source_kind", ["file", "env", "value"])
def test_secret_visible_to_run_but_not_in_definition_or_logs(any_client, busybox, network, tmp_path,
                                                             monkeypatch, source_kind):
    token = "tok-" + random_tokens.token_hex(16)
    if source_kind == "file":
        (tmp_path / "token").write_text(token)
        source = Secret(file=tmp_path / "token")
    elif source_kind == "env":
        monkeypatch.setenv("ENVD_TEST_TOKEN", token)
        source = Secret(env="ENVD_TEST_TOKEN")
    else:
        source = Secret(value=token.encode())
    state = _hashing_state(busybox, network)
    definition = state.marshal().to_bytes()
    logs = []
    out = tmp_path / "out"
    result = any_client.solve(state, secrets={"tok": source}, exports=[LocalDir(out)],
                              on_event=lambda event: logs.append(event.log.data if event.log else b""))

    assert (out / "seen").read_text().strip() == hashlib.sha256(token.encode()).hexdigest()
    all_logs = b"".join(logs)
    assert b"reading the token" in all_logs  # logs were captured at all
    assert token.encode() not in all_logs
    assert token.encode() not in definition
    assert token not in repr(source) and token not in repr(SecretsService({"tok": source}))
    assert token not in repr(result)


def test_missing_secret_fails_with_its_id(any_client, busybox, network):
    with pytest.raises(Exception) as failure:
        any_client.solve(_hashing_state(busybox, network), secrets={"other": b"x"})
    assert "tok" in str(failure.value)


def test_unreadable_secret_file_is_a_clear_error(tmp_path):
    with pytest.raises(SecretError, match="'tok'.*cannot read"):
        Secret(file=tmp_path / "absent").read("tok")


def test_a_secret_value_passed_as_str_is_not_in_the_solve_error(any_client, busybox, network):
    """A str is an env var or a file path (like buildctl); a value passed by mistake is never echoed back."""
    token = "tok-" + random_tokens.token_hex(16)
    events = []
    with pytest.raises(Exception) as failure:
        any_client.solve(_hashing_state(busybox, network), secrets={"tok": token}, on_event=events.append)
    text = str(failure.value) + repr(failure.value) + str(getattr(failure.value, "detail", ""))
    assert "tok" in text
    assert token not in text
    assert all(token not in (event.vertex.error + event.vertex.name) for event in events)
