"""grpc.health.v1 Check, which the daemon calls on every session (a failure ends the session).

Two fixed messages do not justify a proto or the grpcio-health-checking dependency: the reply
is HealthCheckResponse{status: SERVING}, i.e. field 1 = varint 1.
"""

from __future__ import annotations

import grpc

from envd_jupyter.buildkit._session import HEALTH_CHECK_PATH

SERVING_REPLY = b"\x08\x01"


class HealthService:
    method_paths = (HEALTH_CHECK_PATH,)

    def add_to_server(self, server: grpc.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            lambda request, context: SERVING_REPLY,
            request_deserializer=lambda data: data,
            response_serializer=lambda data: data,
        )
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("grpc.health.v1.Health",
                                                                             {"Check": handler}),))
