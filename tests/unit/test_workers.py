"""Which ends of a `--workers N` worker call for a new one, and how they are reported."""

from __future__ import annotations

import pytest

from pgstore.cli._base import Exit
from pgstore.cli.workers import describe, unexpected


@pytest.mark.parametrize(
    ("returncode", "replace"),
    [
        (Exit.UNEXPECTED, True),
        (-9, True),  # kill -9, the OOM killer
        (Exit.OK, False),
        (Exit.CONFIGURATION, False),  # it would end the same way again
        (Exit.USAGE, False),
        (Exit.UNAVAILABLE, False),
    ],
)
def test_only_an_unexpected_end_is_replaced(returncode: int, replace: bool) -> None:
    assert unexpected(returncode) is replace


def test_ends_are_described_by_signal_name_or_exit_code() -> None:
    assert describe(-9) == "signal SIGKILL"
    assert describe(-40) == "signal 40"  # a real-time signal has no name
    assert describe(6) == "exit code 6"
