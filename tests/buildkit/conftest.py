"""Clients for the real daemons (fixtures from tests/conftest.py) and small helpers."""

import threading

import pytest

from envd_jupyter.buildkit import connect


@pytest.fixture
def client_for():
    """connect() to a docker socket path; every client is closed after the test."""
    clients = []

    def make(socket_path: str, **kwargs):
        client = connect(f"docker+unix://{socket_path}", **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def any_client(any_daemon, client_for):
    return client_for(any_daemon)


@pytest.fixture
def busybox(daemon_env) -> str:
    return daemon_env["ENVD_IMAGE_BUSYBOX"]


@pytest.fixture
def network(daemon_env) -> str:
    return daemon_env.get("ENVD_RUN_NETWORK", "sandbox")


def thread_names() -> set[str]:
    return {t.name for t in threading.enumerate()}


@pytest.fixture
def unique() -> str:
    """A fresh token per test run, so steps that must execute are never served from cache."""
    import uuid

    return uuid.uuid4().hex[:12]
