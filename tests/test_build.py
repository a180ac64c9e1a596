"""The installed build: release profile, shipped stubs and .pxd, clear error when missing."""

from __future__ import annotations

import importlib
import pathlib
import subprocess
import sys

import pytest

import oddswire
import oddswire_native


def test_native_module_is_a_release_build():
    assert oddswire_native.BUILD_PROFILE == "release", (
        "oddswire_native is a debug build: every benchmark would be 10-50x off. "
        "Rebuild with `pip install ./rust` or `maturin develop --release`."
    )


def test_versions_match():
    assert oddswire_native.__version__ == oddswire.__version__


def test_package_ships_stubs_and_pxd():
    pkg = pathlib.Path(oddswire.__file__).parent
    for name in ("py.typed", "_framing.pyi", "_framing.pxd"):
        assert (pkg / name).is_file(), name


def test_public_names_are_exported():
    for name in oddswire.__all__:
        assert hasattr(oddswire, name), name


def test_missing_compiled_module_fails_with_build_instructions(monkeypatch):
    import oddswire._compiled as compiled

    monkeypatch.setitem(sys.modules, "oddswire_native", None)
    with pytest.raises(ImportError, match=r"pip install \./rust \."):
        importlib.reload(compiled)


def test_cli_version():
    out = subprocess.run([sys.executable, "-m", "oddswire", "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith(f"oddswire {oddswire.__version__}")
    assert "release build" in out
