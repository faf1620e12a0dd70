"""Profile handlers: which profiles run for a request, and whose result routes it."""

from . import attribute, multi_cycle, shadow, single  # noqa: F401
