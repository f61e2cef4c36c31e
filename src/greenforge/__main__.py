"""``python -m greenforge``."""

from __future__ import annotations

import sys

from greenforge.cli.app import main

sys.exit(main())
