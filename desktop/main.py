"""The ``exo-bridge`` entry point: a subcommand goes to the headless CLI.

Qt is imported only when the tray app starts, so the headless commands stay fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from router.cli import main as cli_main

    return cli_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
