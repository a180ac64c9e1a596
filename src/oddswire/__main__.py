"""Command line: ``oddswire --version``."""

from __future__ import annotations

import argparse
import sys

from oddswire import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="oddswire", description=__doc__)
    parser.add_argument("--version", action="store_true", help="print versions and build info")
    args = parser.parse_args(argv)
    if args.version:
        import oddswire_native as native

        print(f"oddswire {__version__} (oddswire-native {native.__version__}, "
              f"{native.BUILD_PROFILE} build)")
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
