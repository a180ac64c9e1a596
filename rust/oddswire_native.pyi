"""oddswire's compiled Rust core (PyO3 + rust-numpy). Import it through oddswire.codec,
oddswire.broker and oddswire.databet, not directly."""

from typing import Final, Literal

__version__: Final[str]
BUILD_PROFILE: Final[Literal["debug", "release"]]
