"""Pickers: choose from the scored survivors (one picker per profile)."""

from . import max_score, random, weighted_random  # noqa: F401
