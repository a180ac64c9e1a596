"""The installed build: release profile, shipped stubs and .pxd, clear error when missing."""

from __future__ import annotations

import importlib
import pathlib
import subprocess
import sys

import pytest

import oddswire
import oddswire_native
from oddswire._build_info import COMPILED_MODULES, CYTHON_MODULES

EXT = pathlib.Path(__file__).resolve().parents[1] / "ext" / "oddswire"


def test_native_module_is_a_release_build():
    assert oddswire_native.BUILD_PROFILE == "release", (
        "oddswire_native is a debug build: every benchmark would be 10-50x off. "
        "Rebuild with `pip install ./rust` or `maturin develop --release`."
    )


def test_versions_match():
    assert oddswire_native.__version__ == oddswire.__version__


def test_the_module_list_is_complete():
    assert sorted(p.stem for p in EXT.glob("*.pyx")) == sorted(CYTHON_MODULES)


@pytest.mark.parametrize("name", COMPILED_MODULES)
def test_compiled_module_imports_and_ships_its_stub(name):
    module = importlib.import_module(name)
    origin = pathlib.Path(module.__file__)
    if hasattr(module, "__path__"):  # maturin's layout: a package around the extension
        stub = origin.parent / "__init__.pyi"
        assert (origin.parent / "py.typed").is_file()
    else:
        assert origin.suffix in (".so", ".pyd"), f"{name} is not compiled: {origin}"
        stub = origin.parent / (origin.name.split(".")[0] + ".pyi")
    assert stub.is_file(), f"{name} ships no stub ({stub})"


# Only modules that publish a C-level API have a .pxd (the others keep theirs private).
@pytest.mark.parametrize("name", [n for n in CYTHON_MODULES if (EXT / f"{n}.pxd").is_file()])
def test_package_ships_the_pxd_of_ext_stamped(name):
    pkg = pathlib.Path(oddswire.__file__).parent
    assert (pkg / "py.typed").is_file()
    source = EXT / f"{name}.pxd"
    shipped = (pkg / f"{name}.pxd").read_text(encoding="utf-8")
    stamp = f"# Generated from ext/oddswire/{name}.pxd by setup.py; edit that file.\n"
    assert shipped == stamp + source.read_text(encoding="utf-8"), (
        f"{name}.pxd in the package is stale: reinstall (pip install -e . --no-build-isolation)")


def test_public_names_are_exported():
    for name in oddswire.__all__:
        assert hasattr(oddswire, name), name


def test_every_error_class_is_exported():
    import oddswire.errors as errors

    classes = {name for name, obj in vars(errors).items()
               if isinstance(obj, type) and issubclass(obj, BaseException)
               and obj.__module__ == errors.__name__}
    assert classes == set(errors.__all__)
    assert classes <= set(oddswire.__all__)
    for name in classes:
        assert getattr(oddswire, name) is getattr(errors, name)


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
