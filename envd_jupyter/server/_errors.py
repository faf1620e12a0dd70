"""The server extension's errors: each carries the HTTP status its handler answers with."""

from envd_jupyter._errors import ShortError


class ServerError(ShortError):
    """A request the extension cannot answer; ``status`` is the HTTP code, the message one line."""

    status = 500


class BadRequest(ServerError):
    """A malformed id, query parameter or body."""

    status = 400


class NotFound(ServerError):
    """No such builder, or no build with that id on it nor in the archive."""

    status = 404


class NoHistory(ServerError):
    """The builder's daemon keeps no build history (BuildKit before 0.11)."""

    status = 409


class DaemonUnavailable(ServerError):
    """The builder's daemon did not answer, or answered with an error."""

    status = 502


class DaemonTimeout(ServerError):
    """The builder's daemon did not answer within ``EnvdServer.timeout``."""

    status = 504
