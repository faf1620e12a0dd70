"""Scorers: one number in [0, 1] per endpoint; the profile weights and sums them."""

from . import cache_affinity, cpu_load, failure_rate, free_disk, in_flight, prior_pick, registry_proximity  # noqa: F401
