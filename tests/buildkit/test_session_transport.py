"""Session transport: health over both bridges, and close() never waits on a stuck service."""

import threading

import grpc
import pytest

from envd_jupyter.buildkit._session.grpcio_server import GrpcioServer
from envd_jupyter.buildkit._session.h2server import H2Server
from envd_jupyter.buildkit._session.transport import Session


class _StuckService:
    """A handler that ignores its context and blocks until the test releases it."""

    method_paths = ("/envd.test.Stuck/Wait",)

    def __init__(self):
        self.entered, self.release = threading.Event(), threading.Event()

    def add_to_server(self, server):
        def wait(request, context):
            self.entered.set()
            self.release.wait()
            return b""

        handler = grpc.unary_unary_rpc_method_handler(wait, request_deserializer=bytes, response_serializer=bytes)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("envd.test.Stuck", {"Wait": handler}),))


def test_headers_announce_every_method():
    service = _StuckService()
    with Session([service], name="probe") as session:
        headers = session.headers()
    assert ("X-Docker-Expose-Session-Uuid", session.id) in headers
    assert ("X-Docker-Expose-Session-Name", "probe") in headers
    methods = [value for key, value in headers if key == "X-Docker-Expose-Session-Grpc-Method"]
    assert methods == ["/grpc.health.v1.Health/Check", "/envd.test.Stuck/Wait"]


SERVERS = {"grpcio": GrpcioServer, "h2": H2Server}


@pytest.mark.parametrize("factory", list(SERVERS.values()), ids=list(SERVERS))
def test_close_returns_while_a_service_is_stuck(docker_current, client_for, factory):
    service = _StuckService()
    session = Session([service], server_factory=factory).start(client_for(docker_current).transport)
    channel = grpc.insecure_channel("unix:" + session.socket_path)
    call = channel.unary_unary("/envd.test.Stuck/Wait", request_serializer=bytes, response_deserializer=bytes).future(
        b"", timeout=60)
    try:
        assert service.entered.wait(10), "the stuck handler started"
        session.close()
        assert not service.release.is_set(), "close() returned without the handler giving up"
    finally:
        service.release.set()
        call.cancel()
        channel.close()


@pytest.mark.parametrize("factory", list(SERVERS.values()), ids=list(SERVERS))
def test_health_answers_serving(docker_old, client_for, factory):
    with Session(server_factory=factory).start(client_for(docker_old).transport) as session:
        channel = grpc.insecure_channel("unix:" + session.socket_path)
        check = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=bytes,
                                    response_deserializer=bytes)
        assert check(b"", timeout=5) == b"\x08\x01"
        channel.close()
