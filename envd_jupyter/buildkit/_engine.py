"""dockerd's HTTP API, for what BuildKit's gRPC API cannot answer: the image store and pushes."""

from __future__ import annotations

import http.client
import json
import urllib.parse

from envd_jupyter.buildkit._address import Address
from envd_jupyter.buildkit._hijack import open_socket
from envd_jupyter.buildkit._tls import TLSConfig


class EngineConnection(http.client.HTTPConnection):
    """HTTP/1.1 to dockerd over its unix socket or tcp address (TLS when given), ``timeout`` on every wait."""

    def __init__(self, address: Address | str, timeout: float, tls: TLSConfig | None = None):
        super().__init__("docker", timeout=timeout)
        self.address = address if isinstance(address, Address) else Address("docker", "unix", address)
        self.tls = tls

    def connect(self) -> None:
        self.sock = open_socket(self.address, self.timeout, self.tls)


def labelled_images(address: Address, label: str, *, timeout: float = 10.0, tls: TLSConfig | None = None) -> list[dict]:
    """Summaries (Id, Created, Labels, ...) of the images in dockerd's store that carry ``label``."""
    query = urllib.parse.urlencode({"filters": json.dumps({"label": [label]})})
    conn = EngineConnection(address, timeout, tls)
    try:
        conn.request("GET", f"/images/json?{query}")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise OSError(f"dockerd at {address} answered {response.status} to an image listing: {body[:200]!r}")
    return json.loads(body)
