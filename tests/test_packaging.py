"""A wheel built from the checkout installs into a fresh virtualenv and works there with no checkout:
`pnldb render`, `pnldb migrate` and `pnldb demo` find the SQL layer, the migrations and the sample data
inside the installed package."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from pnldb import schema

CHECKOUT = Path(__file__).resolve().parents[1]
PACKAGE_DATA = ("sql", "migrations", "data", "templates")
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                    ".hypothesis", ".ruff_cache")
# A setuptools warning in pip's verbose build output: a Python warning ("...Warning: ...") or a distutils
# log line ("warning: ..."). pip's own "WARNING:" lines are about the machine's pip configuration.
SETUPTOOLS_WARNING = re.compile(r"Warning: |^\s*warning: ")


@dataclass
class Installed:
    root: Path
    wheel: Path
    build_log: str

    @property
    def bin(self) -> Path:
        return self.root / "venv" / "bin"

    def run(self, *args: str | Path, timeout: int = 120) -> subprocess.CompletedProcess:
        """Run in the virtualenv, from a directory outside the checkout, with nothing pointing back at it."""
        return subprocess.run([str(a) for a in args], cwd=self.root, env=_clean_env(), capture_output=True, text=True,
                              timeout=timeout, check=False)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PNLDB_DSN", "DATABASE_URL", "PYTHONDONTWRITEBYTECODE"}}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(CHECKOUT)))
    return env


def _checked(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{' '.join(result.args)}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    root = tmp_path_factory.mktemp("pnldb-installed")
    assert not root.is_relative_to(CHECKOUT)
    # Built from a copy of the sources, so that a stale build/ directory of the checkout cannot leak into it.
    source = root / "source"
    shutil.copytree(CHECKOUT, source, ignore=NOT_SOURCE)
    build = _checked(subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--wheel-dir", str(root / "dist"), str(source)],
        env=_clean_env(), capture_output=True, text=True, timeout=600, check=False))
    shutil.rmtree(source)
    (wheel,) = (root / "dist").glob("pnldb-*.whl")
    # The virtualenv is fresh, but without a pip of its own (ensurepip takes longer than the rest): the
    # tests' pip installs into it. Its dependencies come from the package index, as for any user.
    _checked(subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], capture_output=True,
                            text=True, env=_clean_env(), timeout=300, check=False))
    here = Installed(root, wheel, build.stdout + build.stderr)
    _checked(here.run(sys.executable, "-m", "pip", "--python", here.bin / "python", "install", "--quiet", wheel,
                      timeout=600))
    return here


def test_the_wheel_builds_without_setuptools_warnings_and_carries_all_package_data(installed):
    assert "Successfully built pnldb" in installed.build_log
    assert [line for line in installed.build_log.splitlines() if SETUPTOOLS_WARNING.search(line)] == []
    in_wheel = set(zipfile.ZipFile(installed.wheel).namelist())
    shipped = {path.relative_to(CHECKOUT).as_posix() for folder in PACKAGE_DATA
               for path in (CHECKOUT / "pnldb" / folder).rglob("*")
               if path.is_file() and "__pycache__" not in path.parts}
    assert {f"pnldb/sql/{name}" for name in schema.sql_files()} <= shipped
    assert {f"pnldb/migrations/{m}.sql" for m in schema.migration_ids()} <= shipped
    assert shipped - in_wheel == set()


def test_the_virtualenv_imports_the_installed_package_not_the_checkout(installed):
    result = _checked(installed.run(installed.bin / "python", "-c", "import pnldb, sys; print(pnldb.__file__); "
                                    "print('\\n'.join(sys.path))"))
    module, *path = result.stdout.splitlines()
    assert Path(module).is_relative_to(installed.root / "venv")
    assert not any(entry and Path(entry).resolve().is_relative_to(CHECKOUT) for entry in path), path


def test_installed_render_prints_the_whole_layer(installed):
    result = _checked(installed.run(installed.bin / "pnldb", "render"))
    assert result.stdout == schema.render_sql("pnl")
    headers = re.findall(r"^-- sql/(\S+)$", result.stdout, re.MULTILINE)
    assert headers == sorted(path.name for path in (CHECKOUT / "pnldb" / "sql").glob("[0-9]*.sql"))


def test_installed_migrate_builds_the_schema_a_checkout_builds(installed, empty_db_url, conn):
    set_up = _checked(installed.run(installed.bin / "pnldb", "--dsn", empty_db_url, "roles", "create"))
    assert "installed the DDL guard of schema pnl" in set_up.stderr
    first = _checked(installed.run(installed.bin / "pnldb", "--dsn", empty_db_url, "migrate"))
    assert f"applied {len(schema.migration_ids())} migration(s): {', '.join(schema.migration_ids())}" in first.stderr
    assert f"installed {len(schema.sql_files())} SQL object file(s) into schema pnl" in first.stderr
    second = _checked(installed.run(installed.bin / "pnldb", "--dsn", empty_db_url, "migrate"))
    assert "no pending migrations" in second.stderr
    with psycopg.connect(empty_db_url, autocommit=True) as migrated:
        assert schema.describe_catalog(migrated).splitlines() == schema.describe_catalog(conn).splitlines()


def test_installed_demo_runs_the_whole_flow_on_its_own_embedded_postgres(installed):
    result = _checked(installed.run(installed.bin / "pnldb", "demo", timeout=600))
    assert "Runs of 2025-12-24" in result.stdout
    assert "Report of 'Adjusted v2'" in result.stdout
    assert "What changed from 'Initial Run' to 'Adjusted v2'" in result.stdout
    assert "== stopped and removed the embedded PostgreSQL" in result.stderr
