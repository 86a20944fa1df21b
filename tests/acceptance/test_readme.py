"""The README runs: every sh, sql and python block, in order, against a fresh database.

Directives (HTML comments just before a block) say what a block is:
  <!-- readme: skip REASON -->   shown, not run (the reason is required)
  <!-- readme: file PATH -->     must be exactly the file at PATH
  <!-- readme: output -->       the output of the block before it: each line must
                                 appear in that block's output, in order
  <!-- ci: main|test -->         the set-up commands, which `.ci/run` itself runs
A block with no directive runs and must succeed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.acceptance.subprocesses import ROOT, environment

DOCUMENTS = ("README.md", "ARCHITECTURE.md", "SCALING.md")
_FENCE = re.compile(r"^```(\w*)\s*$")
_DIRECTIVE = re.compile(r"^<!-- (readme|ci): ?(\w+)? ?(.*?) ?-->\s*$")


@dataclass
class Block:
    document: str
    line: int
    language: str
    text: str
    directive: str | None = None
    argument: str = ""

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"


def blocks(document: str) -> list[Block]:
    path = ROOT / document
    if not path.exists():
        return []
    found: list[Block] = []
    directive: tuple[str, str] | None = None
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        match = _DIRECTIVE.match(line)
        if match:
            kind, name, argument = match.groups()
            directive = ("ci", name) if kind == "ci" else (name or "", argument)
        fence = _FENCE.match(line)
        if fence:
            end = index + 1
            while not lines[end].startswith("```"):
                end += 1
            block = Block(document, index + 1, fence.group(1), "\n".join(lines[index + 1 : end]))
            if directive:
                block.directive, block.argument = directive
            found.append(block)
            directive = None
            index = end
        index += 1
    return found


ALL = [block for document in DOCUMENTS for block in blocks(document)]
RUNNABLE = ("sh", "sql", "python")


def test_every_block_is_accounted_for() -> None:
    """A block either runs, or says why not; an output block follows a runnable one."""
    for previous, block in zip([None, *ALL], ALL, strict=False):
        if block.directive == "skip":
            assert block.argument, f"{block.where}: a skipped block must give its reason"
        elif block.directive == "output":
            assert previous is not None and previous.language in RUNNABLE, block.where
        elif block.directive in (None, "file"):
            assert block.language in (*RUNNABLE, "text"), f"{block.where}: {block.language!r}"


@pytest.mark.parametrize("block", [b for b in ALL if b.directive == "file"], ids=lambda b: b.where)
def test_file_blocks_are_the_files(block: Block) -> None:
    assert block.text == (ROOT / block.argument).read_text().rstrip("\n"), block.where


@pytest.fixture(scope="module")
def readme_dsn(pg_server: Any) -> Iterator[str]:
    """One fresh database for all the README's blocks (they build on each other)."""
    host, port, user = pg_server.host, pg_server.port, pg_server.user
    admin = f"host={host} port={port} user={user} dbname=postgres"
    name = "readme_walkthrough"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(pg_server.template_dbname)
            )
        )
    yield f"host={host} port={port} user={user} dbname={name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _environment(dsn: str) -> dict[str, str]:
    # The commands a reader types (`pgstore`, `python`) are this virtualenv's, as after
    # `. .venv/bin/activate`.
    venv = str(Path(sys.executable).parent)
    return environment(dsn, PATH=venv + os.pathsep + os.environ.get("PATH", ""))


def run(block: Block, dsn: str) -> str:
    if block.language == "sql":
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(block.text.encode())  # several statements: simple query protocol
        return ""
    command = (
        ["bash", "-euo", "pipefail", "-c", block.text]
        if block.language == "sh"
        else [sys.executable, "-c", block.text]
    )
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=_environment(dsn),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        f"{block.where} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout + result.stderr


def test_the_blocks_run_in_order(readme_dsn: str) -> None:
    outputs: dict[int, str] = {}
    previous: Block | None = None
    for block in ALL:
        if block.directive == "output":
            assert previous is not None
            _contains_in_order(outputs[id(previous)], block.text, block.where)
        elif block.directive is None and block.language in RUNNABLE:
            outputs[id(block)] = run(block, readme_dsn)
        previous = block


def _contains_in_order(output: str, expected: str, where: str) -> None:
    position = 0
    for line in (line.strip() for line in expected.splitlines()):
        if not line:
            continue
        found = output.find(line, position)
        assert found >= 0, f"{where}: {line!r} not in the output:\n{output}"
        position = found + len(line)


def test_every_claim_names_a_test_that_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", readme)
    assert len(named) >= 20
    for path, test in named:
        assert (ROOT / path).exists(), path
        assert f"def {test}(" in (ROOT / path).read_text(), f"{path}::{test}"
