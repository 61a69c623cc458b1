"""Named, versioned thresholds profiles (``<name>.toml``); ``default`` is the seed design's.

``load_profile("default")`` reads the packaged file; a folder given by the caller (the
``IMGSTREAM_PROFILES_DIR`` setting) is searched first, so operators can add profiles
without a release.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from imaging.errors import ConfigurationError
from imaging.profile import Profile, parse_profile


def load_profile(name: str, folder: Path | None = None) -> Profile:
    """Read and validate ``<name>.toml``; ConfigurationError says what is wrong."""
    candidates = []
    if folder is not None:
        candidates.append(Path(folder) / f"{name}.toml")
    candidates.append(resources.files("profiles") / f"{name}.toml")
    for path in candidates:
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigurationError(f"profile {name}: not valid TOML: {exc}") from None
            profile = parse_profile(data, f"{name}.toml")
            if profile.name != name:
                raise ConfigurationError(
                    f"profile {name}.toml: name: says {profile.name!r}, file is {name!r}")
            return profile
    raise ConfigurationError(f"profile {name!r} not found (looked in "
                             f"{', '.join(str(c) for c in candidates)})")
