"""Filters: drop endpoints that cannot or should not take the request."""

from . import cache_affinity, caps, healthy, labels, platform, saturation  # noqa: F401
