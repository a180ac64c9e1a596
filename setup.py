"""Build the Cython extensions in ext/ into the oddswire package.

Compiler directives live here and only here. ODDSWIRE_CYTHON_DEBUG=1 builds with bounds
checks, line tracing (for coverage) and asserts; the default is the release build.
"""

import os
import runpy
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent
DEBUG = os.environ.get("ODDSWIRE_CYTHON_DEBUG", "") not in ("", "0")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
    "linetrace": DEBUG,
}
MACROS = [("CYTHON_TRACE_NOGIL", "1")] if DEBUG else [("CYTHON_WITHOUT_ASSERTIONS", "1")]
CFLAGS = ["-O0", "-g"] if DEBUG else ["-O3"]

# The one list of compiled modules (read without importing the package, which is not built).
MODULES = runpy.run_path(str(HERE / "src" / "oddswire" / "_build_info.py"))["CYTHON_MODULES"]


def mirror_pxd() -> None:
    """Ship the .pxd files of ext/ inside the package (regular and editable installs alike)
    so users can cimport the C-level API; ext/ stays the one source, the copies are ignored
    by git and stamped so nobody edits them."""
    for pxd in (HERE / "ext" / "oddswire").glob("*.pxd"):
        if pxd.name == "__init__.pxd":
            continue
        stamp = f"# Generated from ext/oddswire/{pxd.name} by setup.py; edit that file.\n"
        text = stamp + pxd.read_text(encoding="utf-8")
        copy = HERE / "src" / "oddswire" / pxd.name
        if not copy.exists() or copy.read_text(encoding="utf-8") != text:
            copy.write_text(text, encoding="utf-8")


mirror_pxd()
extensions = [
    Extension(
        f"oddswire.{name}",
        [f"ext/oddswire/{name}.pyx"],
        define_macros=MACROS,
        extra_compile_args=CFLAGS,
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=DIRECTIVES,
        include_path=["ext"],
        build_dir="build/cython",
    ),
)
