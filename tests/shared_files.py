"""Where the shared reference folder is: beside the repository, or ``IMGSTREAM_SHARED``.

Its images are never copied into the repository; tests that need them skip cleanly when
it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path


def shared_dir() -> Path | None:
    sibling = Path(__file__).resolve().parents[2] / "shared"
    if sibling.is_dir():
        return sibling
    env = os.environ.get("IMGSTREAM_SHARED")
    return Path(env) if env and Path(env).is_dir() else None
