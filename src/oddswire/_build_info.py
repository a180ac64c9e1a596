"""The compiled modules of oddswire: the one list setup.py, the import check and the tests use.

Standalone on purpose (no imports): setup.py runs it with ``runpy.run_path`` before the
package is built, so it must not import ``oddswire``.
"""

# Cython extensions: ext/oddswire/<name>.pyx is built into oddswire.<name>.
CYTHON_MODULES = ("_metrics", "_framing", "_databet", "_wire", "_tech55")

# The Rust core, built by maturin from rust/ (the oddswire-native distribution).
NATIVE_MODULE = "oddswire_native"

# Every compiled module ``import oddswire`` requires, by its import name.
COMPILED_MODULES = (*(f"oddswire.{name}" for name in CYTHON_MODULES), NATIVE_MODULE)
