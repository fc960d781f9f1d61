"""The frozen app's entry point (PyInstaller): the same as the `exo-bridge` console script."""

import sys

from desktop.main import main

sys.exit(main())
