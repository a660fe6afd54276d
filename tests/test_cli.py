"""The command line: every subcommand explains itself, and the module and console script both work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

from lenet5.__main__ import build_parser, main

SUBCOMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001 - argparse has no API


def test_every_documented_subcommand_exists():
    expected = {"data", "summary", "train", "evaluate", "report", "bench", "plot", "export", "predict", "read", "serve"}
    assert expected <= set(SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lenet5 " + command) and len(out.splitlines()) > 3


def test_top_level_help_as_a_subprocess():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in SUBCOMMANDS:
        assert command in result.stdout


def test_console_script_is_installed():
    script = shutil.which("lenet5", path=str(Path(sys.executable).parent))
    assert script, "the lenet5 console script is not installed next to this python"
    result = subprocess.run([script, "summary", "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and '"connections": 340908' in result.stdout


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: lenet5" in capsys.readouterr().out


def test_unknown_flag_is_a_usage_error():
    result = run_cli("train", "--epochz", "3")
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr and "Traceback" not in result.stderr


def test_a_reader_that_goes_away_is_not_a_traceback():
    """`lenet5 ... | head` closes the pipe early: the command stops quietly with status 141, as cat does."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    proc = subprocess.run(
        [sys.executable, "-m", "lenet5", "summary", "--json"], stdout=write_end, stderr=subprocess.PIPE, text=True
    )
    os.close(write_end)
    assert proc.returncode == 141 and proc.stderr == "", proc.stderr
