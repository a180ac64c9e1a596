"""oddswire: fast, dependable clients for real-time betting and trading feeds.

Hot paths are compiled (Cython in ``oddswire._framing``, Rust in ``oddswire_native``);
``import oddswire`` fails with build instructions if either is missing.
"""

from oddswire import _compiled  # noqa: F401  (fails early, with build instructions)
from oddswire.betcore import HubDecoder
from oddswire.codec import ChunkedLineSplitter, CountingLineSink, LineSink, RecordSplitter
from oddswire.errors import (
    AccountSwitchError,
    AuthError,
    BuildError,
    CallbackError,
    CertificateError,
    ConfigError,
    ConnectError,
    DecodeError,
    HandshakeError,
    HTTPStatusError,
    OddswireError,
    ProtocolError,
    RecordingError,
    RecordingVersionError,
    RepeatedError,
    ResyncRequired,
    StaleFeedError,
)

__version__ = "0.1.0"

__all__ = [
    "AccountSwitchError",
    "AuthError",
    "BuildError",
    "CallbackError",
    "CertificateError",
    "ChunkedLineSplitter",
    "ConfigError",
    "ConnectError",
    "CountingLineSink",
    "DecodeError",
    "HTTPStatusError",
    "HandshakeError",
    "HubDecoder",
    "LineSink",
    "OddswireError",
    "ProtocolError",
    "RecordSplitter",
    "RecordingError",
    "RecordingVersionError",
    "RepeatedError",
    "ResyncRequired",
    "StaleFeedError",
    "__version__",
]
