"""``python -m zeroimage``: the zeroimage command line (also the ``zeroimage`` console script)."""

from __future__ import annotations

import sys

from zeroimage import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
