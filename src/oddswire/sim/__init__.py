"""Local simulators and traffic generators for every feed (loopback only)."""

from oddswire.sim.databet_world import DatabetWorld, encode_version

__all__ = ["DatabetWorld", "encode_version"]
