"""`python -m pgstore` runs the command line."""

from __future__ import annotations

from pgstore.cli import run

run()
