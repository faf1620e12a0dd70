"""Secrets session service: the daemon asks for a secret by id when a RUN mounts it.

Values are read only when the daemon asks, so they never enter a Definition; reprs and errors
name the id and source, never the value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import grpc

from envd_jupyter._proto import secrets_pb2

MAX_SECRET_SIZE = 500 * 1024  # BuildKit refuses larger secrets


class SecretError(ValueError):
    """A secret that cannot be served (missing source, too big)."""


@dataclass(frozen=True)
class Secret:
    """Where one secret comes from: exactly one of ``file``, ``env`` or ``value``.

    ``hidden`` (set for the plain-``str`` shorthand, which may be the secret itself passed by
    mistake) keeps the source out of reprs and errors as well.
    """

    file: str | Path | None = None
    env: str | None = None
    value: bytes | None = None
    hidden: bool = field(default=False, repr=False, compare=False)

    def __repr__(self) -> str:
        if self.hidden:
            return "Secret(<str source>)"
        source = f"file={str(self.file)!r}" if self.file else f"env={self.env!r}" if self.env else "value=<hidden>"
        return f"Secret({source})"

    def read(self, secret_id: str) -> bytes:
        if self.value is not None:
            data = self.value
        elif self.env is not None:
            if self.env not in os.environ:
                raise SecretError(f"secret {secret_id!r}: environment variable {self.env} is not set")
            data = os.environ[self.env].encode()
        else:
            try:
                data = Path(self.file).read_bytes()
            except OSError as exc:
                if self.hidden:
                    raise SecretError(f"secret {secret_id!r}: the str given names neither a set environment variable "
                                      "nor a readable file (pass bytes or Secret(value=...) for a value)") from None
                raise SecretError(f"secret {secret_id!r}: cannot read {self.file}: {exc.strerror}") from None
        if len(data) > MAX_SECRET_SIZE:
            raise SecretError(f"secret {secret_id!r} is {len(data)} bytes; BuildKit allows {MAX_SECRET_SIZE}")
        return data


def as_secret(source: Secret | str | bytes | Path) -> Secret:
    """Shorthands: bytes are the value, a Path a file, a str an env var if set else a file (like buildctl).

    A str source is never shown (it may be the secret itself), not even in the error for a missing file.
    """
    if isinstance(source, Secret):
        return source
    if isinstance(source, bytes):
        return Secret(value=source)
    if isinstance(source, Path):
        return Secret(file=source)
    return Secret(env=source, hidden=True) if source in os.environ else Secret(file=source, hidden=True)


class SecretsService:
    method_paths = ("/moby.buildkit.secrets.v1.Secrets/GetSecret",)

    def __init__(self, secrets: Mapping[str, Secret | str | bytes | Path]):
        self.secrets = {secret_id: as_secret(source) for secret_id, source in secrets.items()}

    def __repr__(self) -> str:
        return f"SecretsService(ids={sorted(self.secrets)})"

    def add_to_server(self, server: grpc.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            self._get_secret,
            request_deserializer=secrets_pb2.GetSecretRequest.FromString,
            response_serializer=secrets_pb2.GetSecretResponse.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("moby.buildkit.secrets.v1.Secrets", {"GetSecret": handler}),)
        )

    def _get_secret(self, request, context):
        source = self.secrets.get(request.ID)
        if source is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"secret {request.ID!r} not found in this session")
        try:
            return secrets_pb2.GetSecretResponse(data=source.read(request.ID))
        except SecretError as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
