"""Every script in tools/ answers `--help` with its usage and exits 0, without starting its
work (some train, convert or install for minutes, or write the records in tools/results)
and without a line on stderr (TensorFlow's start-up chatter comes with importing it, which
a tool leaves until its arguments are read)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = sorted((Path(__file__).parents[1] / "tools").glob("*.py"))


@pytest.mark.parametrize("tool", TOOLS, ids=[tool.stem for tool in TOOLS])
def test_help_prints_the_usage_and_does_nothing_else(tool, tmp_path):
    result = subprocess.run(
        [sys.executable, str(tool), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = ast.get_docstring(ast.parse(tool.read_text(encoding="utf-8"))).splitlines()[0]
    assert result.stdout.startswith("usage:") or result.stdout.startswith(summary), result.stdout[:300]
    assert not list(tmp_path.iterdir())  # nothing written where it ran
    assert not result.stderr.strip(), result.stderr[-2000:]
