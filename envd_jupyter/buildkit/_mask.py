"""Secret values masked in what the daemon sends back: logs, step errors, warnings, the solve's error.

BuildKit (like docker buildx) shows a step's output as it is, so a step that prints a mounted secret
puts it in the progress log, and from there in notebook outputs saved with the notebook. The client
knows the values it offers (it serves them), so it replaces each one, and each line of a multi-line
one, with ``***`` before anything is kept or shown. Values shorter than ``MIN_LENGTH`` bytes are not
masked: they would blot out ordinary output and protect nothing. Output that transforms a value
(base64, a substring) is not recognised.
"""

from __future__ import annotations

from typing import Iterable

MASK = b"***"
MIN_LENGTH = 4


class SecretMask:
    """Replaces the values it was given; ``held`` says how much of a chunk's end may start one."""

    def __init__(self, values: Iterable[bytes] = ()):
        found = set()
        for value in values:
            for piece in (value, *value.splitlines(), value.strip()):
                piece = piece.strip(b"\r")
                if len(piece) >= MIN_LENGTH:
                    found.add(piece)
        self._values = sorted(found, key=len, reverse=True)  # a value before its own lines

    def __bool__(self) -> bool:
        return bool(self._values)

    def bytes(self, data: bytes) -> bytes:
        for value in self._values:
            if value in data:
                data = data.replace(value, MASK)
        return data

    def text(self, text: str) -> str:
        if not self._values or not text:
            return text
        return self.bytes(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")

    def held(self, data: bytes) -> int:
        """The length of the longest end of ``data`` that begins a value (held back until more arrives)."""
        longest = 0
        for value in self._values:
            window = data[-(len(value) - 1):]
            start = window.find(value[:1])
            while start != -1 and len(window) - start > longest:
                if value.startswith(window[start:]):
                    longest = len(window) - start
                    break
                start = window.find(value[:1], start + 1)
        return longest


def secret_values(secrets) -> list[bytes]:
    """The values of ``secrets`` ({id: source}) that can be read now; the ones that cannot are not served either."""
    if not secrets:
        return []
    from envd_jupyter.buildkit._session.secrets import SecretError, as_secret

    values = []
    for secret_id, source in secrets.items():
        try:
            values.append(as_secret(source).read(secret_id))
        except SecretError:
            continue
    return values
