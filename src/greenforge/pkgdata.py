"""Data files shipped inside greenforge's packages (grid tables, hardware catalog)."""

from __future__ import annotations

import sys
from pathlib import Path


def read_data(package: str, relative: str) -> bytes:
    """Returns the bytes of the file ``relative`` (e.g. ``"data/zones.json.gz"``) shipped in
    the imported ``package``.

    Read from the package's directory, so a tracker's start does not import
    ``importlib.resources`` (~6 ms, it brings ``tempfile``); a package that does not live on
    a file system (a zip) is read through ``importlib.resources``.
    """
    module = sys.modules.get(package)
    location = getattr(module, "__file__", None)
    if location:
        try:
            return (Path(location).parent / relative).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            pass
    from importlib import resources

    return resources.files(package).joinpath(relative).read_bytes()
