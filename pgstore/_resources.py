"""Where pgstore's SQL files are: in the wheel, or at the top of a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the `sql` or `migrations` directory.

    A built wheel carries them as ``pgstore/_resources/<name>``; an editable install
    or a checkout uses the top-level directories next to the package.
    """
    for candidate in (_PACKAGE / "_resources" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"pgstore's {name}/ directory is missing from {_PACKAGE}")
