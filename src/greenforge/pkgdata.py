"""Data files shipped inside greenforge's packages (grid tables, hardware catalog)."""

from __future__ import annotations

import sys
from pathlib import Path


def data_file(package: str, relative: str) -> Path | None:
    """Returns the path of the file ``relative`` shipped in the imported ``package``, or None
    when it is not a file on a file system (a package in a zip)."""
    location = getattr(sys.modules.get(package), "__file__", None)
    if not location:
        return None
    path = Path(location).parent / relative
    return path if path.is_file() else None


def read_data(package: str, relative: str) -> bytes:
    """Returns the bytes of the file ``relative`` (e.g. ``"data/zones.json.gz"``) shipped in
    the imported ``package``.

    Read from the package's directory, so a tracker's start does not import
    ``importlib.resources`` (~6 ms, it brings ``tempfile``); a package that does not live on
    a file system (a zip) is read through ``importlib.resources``.
    """
    path = data_file(package, relative)
    if path is not None:
        return path.read_bytes()
    from importlib import resources

    return resources.files(package).joinpath(relative).read_bytes()
