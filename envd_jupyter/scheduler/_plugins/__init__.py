"""Built-in plugins; importing this package registers them all by type name."""

from . import filters, handlers, pickers, scorers  # noqa: F401
