"""Pickers: choose from the scored survivors (one picker per profile)."""

from . import max_score, random, round_robin, sticky_hash, weighted_random  # noqa: F401
