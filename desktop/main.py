"""The ``exo-bridge`` entry point: a subcommand goes to the headless CLI; no subcommand starts
the tray app (Qt is imported only then, so the headless commands stay fast)."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--keychain-helper"]:  # the tray's keychain reads, in the frozen app
        from router.keychain_helper import main as helper_main

        return helper_main(args[1:])
    from router.cli import COMMANDS  # after the keychain helper's branch: it stays light

    if args and (args[0] in (*COMMANDS, "-h", "--help", "--help-commands")):
        from router.cli.main import main as cli_main

        return cli_main(["--help"] if args[0] == "--help-commands" else args)
    from desktop.app import run_app

    return run_app(args)


if __name__ == "__main__":
    sys.exit(main())
