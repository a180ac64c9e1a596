"""Hypothesis profiles: ``fast`` by default (CI), ``slow`` with ODDSWIRE_HYPOTHESIS=slow."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "fast", max_examples=150, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "slow", max_examples=5000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("ODDSWIRE_HYPOTHESIS", "fast"))
