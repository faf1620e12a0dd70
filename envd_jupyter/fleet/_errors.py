"""The fleet's one error base."""

from envd_jupyter._errors import ShortError


class FleetError(ShortError):
    """A fleet could not be set up or reach any of its builders; says which and why."""
