"""A stand-in for ``buildctl --addr unix://PATH dial-stdio``, which this machine lacks: copies stdin to the
socket at PATH and the socket to stdout, and exits when the daemon side ends (after our stdin's EOF)."""

import os
import socket
import sys
import threading


def main(path: str) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)

    def upstream() -> None:
        while data := os.read(0, 65536):
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, daemon=True).start()
    while data := sock.recv(65536):
        view = memoryview(data)
        while view:
            view = view[os.write(1, view):]


if __name__ == "__main__":
    main(sys.argv[1])
