"""Build the Cython extensions in ext/ into the oddswire package.

Compiler directives live here and only here. ODDSWIRE_CYTHON_DEBUG=1 builds with bounds
checks, line tracing (for coverage) and asserts; the default is the release build.
"""

import os
import shutil
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

MODULES = ["_framing", "_wire"]


def mirror_pxd() -> None:
    """Ship the .pxd files of ext/ inside the package (regular and editable installs alike)
    so users can cimport the C-level API; ext/ stays the one source, the copies are ignored."""
    for pxd in (HERE / "ext" / "oddswire").glob("*.pxd"):
        if pxd.name != "__init__.pxd":
            shutil.copy2(pxd, HERE / "src" / "oddswire" / pxd.name)


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
