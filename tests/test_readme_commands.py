"""Every command README.md shows in a ```sh block runs, as written, against a fresh database: the README
cannot drift from the CLI.

The commands are read from README.md itself. They run one after the other in one bash (so that the
walkthrough's `RUN_A=$(...)` lines carry over), with the installed `pnldb` first on PATH, PNLDB_DSN set
to a fresh empty database and the one placeholder, the URL of the `export PNLDB_DSN=...` line, replaced
by that database's. They run in a scratch directory that links `pnldb/` to the checkout's, so the
relative sample paths resolve as they do from the repository's root and `run.html` lands in the scratch
directory. Skipped: the Quick start's `scripts/dev demo` and `scripts/dev test`, which would set up a
.venv and run the demo or this very suite; the demo is run by tests/test_demo.py, the suite is this.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
README = CHECKOUT / "README.md"
PLACEHOLDER_DSN = "postgresql://user@host/db"
SKIPPED = ("scripts/dev demo", "scripts/dev test")


def readme_commands() -> list[str]:
    blocks = re.findall(r"^```sh\n(.*?)^```$", README.read_text(), re.MULTILINE | re.DOTALL)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_readme_shows_the_commands_this_test_expects():
    commands = readme_commands()
    assert [c for c in commands if c.startswith(SKIPPED)] == [
        "scripts/dev demo     # creates .venv, installs pnldb, runs `pnldb demo` on a throw-away PostgreSQL",
        "scripts/dev test     # creates .venv, installs pnldb with its test extra, runs the test suite (pytest)"]
    assert commands.count(f"export PNLDB_DSN={PLACEHOLDER_DSN}") == 1
    assert any(c.startswith("pnldb use-case list") for c in commands)
    text = README.read_text()
    assert "`pnldb --dsn URL demo`" in text and "demo --dsn" not in text  # --dsn is the group's option
    assert "`scripts/dev shell`" in text  # how to get pnldb on PATH, before the walkthrough needs it
    assert text.index("`scripts/dev shell`") < text.index(f"export PNLDB_DSN={PLACEHOLDER_DSN}")


def test_every_command_of_the_readme_exits_0(empty_db_url, tmp_path):
    commands = [c for c in readme_commands() if not c.startswith(SKIPPED)]
    (tmp_path / "pnldb").symlink_to(CHECKOUT / "pnldb")
    script = ["set -o pipefail"]
    for i, command in enumerate(commands):
        command = command.replace(PLACEHOLDER_DSN, shlex.quote(empty_db_url))
        script += [f"echo {shlex.quote(f'>>> {i} {command}')} >&2", command,
                   f"status=$?; if [ $status -ne 0 ]; then echo \"<<< {i} exited $status\" >&2; exit 99; fi"]
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "pnldb").exists(), f"no pnldb installed beside {sys.executable}"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "PNLDB_DSN": empty_db_url}
    result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, f"{result.stderr[-3000:]}\n--- stdout ---\n{result.stdout[-2000:]}"
    assert result.stderr.count(">>> ") == len(commands)

    # what the walkthrough says it does, it did
    assert "Initial Run" in result.stdout and "Adjusted v2" in result.stdout
    assert (tmp_path / "run.html").read_text().startswith("<!DOCTYPE html>")
    assert "would delete use case 'Project Sterling'" in result.stdout
