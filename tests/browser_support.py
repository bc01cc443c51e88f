"""What the browser tests share: the system chromium, how it is launched, and the skip marks.

The session fixture ``chromium_browser`` (tests/conftest.py) starts one headless chromium for
the whole run; test modules mark themselves with :data:`PYTESTMARK`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ENABLE_HINT = "run `make test` as root, or `sudo apt-get install chromium fonts-ipaexfont-gothic`"
SCREENSHOT_DIR = ROOT / "reports" / "screenshots"

# skipped before any fixture runs (the shared sample run is not started for nothing)
PYTESTMARK = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"{CHROMIUM} not found; to enable the browser tests, {ENABLE_HINT}"
    ),
]
