"""No secret in errors, reprs or what the daemon is told (issue 17 item 7), with a fake daemon peer.

A str secret source may be the secret itself, passed by mistake: it never appears in a repr or in
the error sent to the daemon (and so never in the SolveError built from the daemon's answer). A
session handler's unexpected exception reaches the daemon as its type only, on either server.
"""

from __future__ import annotations

import grpc
import pytest

from envd_jupyter._proto import secrets_pb2
from envd_jupyter.buildkit._session.grpcio_server import GrpcioServer
from envd_jupyter.buildkit._session.h2server import H2Server
from envd_jupyter.buildkit._session.secrets import SecretsService, as_secret

from hostile import FakeDaemon

VALUE = "hunter2-not-a-path-3f9c"
GET_SECRET = "/moby.buildkit.secrets.v1.Secrets/GetSecret"
SERVERS = {"h2": H2Server, "grpcio": GrpcioServer}


def _get_secret(daemon: FakeDaemon, secret_id: str) -> bytes:
    return daemon.unary(GET_SECRET, secrets_pb2.GetSecretRequest(ID=secret_id).SerializeToString())


@pytest.mark.parametrize("server", list(SERVERS))
def test_a_str_secret_that_is_no_file_is_never_echoed(server):
    service = SecretsService({"tok": VALUE})
    assert VALUE not in repr(service) and VALUE not in repr(service.secrets["tok"])
    with FakeDaemon([service], server_factory=SERVERS[server]) as daemon:
        with pytest.raises(grpc.RpcError) as refused:
            _get_secret(daemon, "tok")
    details = refused.value.details()
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'tok'" in details and "neither a set environment variable nor a readable file" in details
    assert VALUE not in details


def test_a_str_secret_naming_an_env_var_or_file_still_works(tmp_path, monkeypatch):
    monkeypatch.setenv("ENVD_TEST_SECRET_VAR", "from-env")
    (tmp_path / "f").write_text("from-file")
    service = SecretsService({"env": "ENVD_TEST_SECRET_VAR", "file": str(tmp_path / "f")})
    with FakeDaemon([service]) as daemon:
        assert secrets_pb2.GetSecretResponse.FromString(_get_secret(daemon, "env")).data == b"from-env"
        assert secrets_pb2.GetSecretResponse.FromString(_get_secret(daemon, "file")).data == b"from-file"
    assert "ENVD_TEST_SECRET_VAR" not in repr(as_secret("ENVD_TEST_SECRET_VAR"))


class _Broken:
    """A session service whose handler fails with a message holding a secret."""

    method_paths = ("/test.Broken/Call", "/test.Broken/Stream")

    def add_to_server(self, server) -> None:
        def call(request, context):
            raise ValueError(f"could not use {VALUE}")

        def stream(requests, context):
            for _ in requests:
                yield b"one"
                raise KeyError(VALUE)

        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Broken", {
            "Call": grpc.unary_unary_rpc_method_handler(call),
            "Stream": grpc.stream_stream_rpc_method_handler(stream),
        }),))


@pytest.mark.parametrize("server", list(SERVERS))
def test_a_handlers_exception_reaches_the_daemon_as_its_type_only(server):
    with FakeDaemon([_Broken()], server_factory=SERVERS[server]) as daemon:
        with pytest.raises(grpc.RpcError) as unary:
            daemon.unary("/test.Broken/Call", b"x")
        with pytest.raises(grpc.RpcError) as streaming:
            daemon.stream("/test.Broken/Stream", [b"x"])
    assert (unary.value.code(), unary.value.details()) == (grpc.StatusCode.UNKNOWN, "ValueError")
    assert (streaming.value.code(), streaming.value.details()) == (grpc.StatusCode.UNKNOWN, "KeyError")


class _Recorder(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Every request message the client sends the daemon, serialized."""

    def __init__(self):
        self.sent: list[bytes] = []

    def _requests(self, requests):
        for request in requests:
            self.sent.append(request.SerializeToString())
            yield request

    def intercept_unary_unary(self, continuation, details, request):
        self.sent.append(request.SerializeToString())
        return continuation(details, request)

    intercept_unary_stream = intercept_unary_unary

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(details, self._requests(requests))

    intercept_stream_stream = intercept_stream_unary


def test_an_exception_inside_an_interactive_build_cancels_it_and_its_text_is_never_sent(docker_current,
                                                                                        monkeypatch):
    from envd_jupyter.buildkit import connect
    from envd_jupyter.llb import scratch

    recorder = _Recorder()
    plain_channel = grpc.insecure_channel
    monkeypatch.setattr(grpc, "insecure_channel",
                        lambda *args, **kwargs: grpc.intercept_channel(plain_channel(*args, **kwargs), recorder))
    with connect(f"docker+unix://{docker_current}") as client:
        with pytest.raises(ValueError, match=VALUE):
            with client.interactive() as build:
                build.solve(scratch().mkfile("/a", b"a"))
                raise ValueError(VALUE)
        assert build.ended and client.workers()  # the build is over; the client goes on
    assert len(recorder.sent) >= 4  # ListWorkers, Solve, the gateway's Ping and Solve at least
    assert not [request for request in recorder.sent if VALUE.encode() in request]
