"""Tiny pure-Python wheels written at test time and served as a PEP 503 index on loopback.

Builds inside BuildKit reach it with network mode host; nothing leaves the machine. The server is
the stdlib ``http.server`` plus a ``Cache-Control`` header: without one pip's HTTP cache stores
nothing, and the shared-pip-cache test needs pip to say "Using cached".
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(directory: Path, name: str, version: str, payload_bytes: int = 0) -> Path:
    """A py3-none-any wheel whose module ``name`` has ``VERSION = version``.

    ``payload_bytes`` of incompressible data (``payload.bin``) stand in for a real package's size.
    """
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: envd-jupyter-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if payload_bytes:
        files[f"{module}/payload.bin"] = os.urandom(payload_bytes)
    record = [_record_line(path, data) for path, data in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    target = directory / "simple" / name.replace("_", "-") / f"{module}-{version}-py3-none-any.whl"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(directory: Path, timeout: float = 10.0):
    """Serve ``directory`` with http.server on 127.0.0.1; yields the index URL (``.../simple/``)."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, str(port), str(directory)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"wheelhouse server on port {port} did not start")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/simple/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class _CacheableHandler(http.server.SimpleHTTPRequestHandler):
    def end_headers(self):
        self.send_header("Cache-Control", "max-age=3600")
        super().end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    handler = functools.partial(_CacheableHandler, directory=sys.argv[2])
    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
