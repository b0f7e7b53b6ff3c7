"""A throw-away PostgreSQL cluster for `pnldb demo`, `pnldb bench` and the tests.

initdb and postgres refuse to run as root, so as root the server runs as the
unprivileged `postgres` OS user through small setpriv wrappers.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import stat
import tempfile
from pathlib import Path

from pnldb.errors import PnlError

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, postgres) not found on PATH or under "
    "/usr/lib/postgresql/*/bin; install them, e.g. `apt-get update && apt-get install -y postgresql`"
)


def find_server_bindir() -> Path:
    """The directory that holds initdb and postgres; newest version first."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("postgres"):
        return Path(os.path.realpath(on_path)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for bindir in candidates:
        if os.access(os.path.join(bindir, "initdb"), os.X_OK) and os.access(
            os.path.join(bindir, "postgres"), os.X_OK
        ):
            return Path(bindir)
    raise PnlError(INSTALL_HINT)


def _write_wrapper(path: Path, binary: Path) -> None:
    path.write_text(
        "#!/bin/sh\n"
        f'exec setpriv --reuid=postgres --regid=postgres --init-groups -- "{binary}" "$@"\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


class EmbeddedPostgres:
    """Context manager: `with EmbeddedPostgres() as pg: pg.url`."""

    def __init__(self, settings: dict[str, str] | None = None):
        self.settings = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                         "max_connections": "100"}
        self.settings.update(settings or {})
        self._server = None
        self._base_dir: Path | None = None

    @property
    def url(self) -> str:
        return self._server.url()

    def start(self) -> EmbeddedPostgres:
        import testing.postgresql

        bindir = find_server_bindir()
        self._base_dir = Path(tempfile.mkdtemp(prefix="pnldb-pg-"))
        kwargs = {
            "base_dir": str(self._base_dir),
            "postgres_args": "-h 127.0.0.1 -F -c logging_collector=off "
            + " ".join(f"-c {k}={v}" for k, v in self.settings.items()),
        }
        initdb, postgres = bindir / "initdb", bindir / "postgres"
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise PnlError(
                    "running as root needs the unprivileged 'postgres' OS user to run the "
                    "embedded server; install the postgresql package or create that user"
                ) from None
            self._base_dir.chmod(0o755)
            for sub in ("data", "tmp"):
                (self._base_dir / sub).mkdir(mode=0o700)
                os.chown(self._base_dir / sub, owner.pw_uid, owner.pw_gid)
            wrappers = self._base_dir / "bin"
            wrappers.mkdir()
            initdb, postgres = wrappers / "initdb", wrappers / "postgres"
            _write_wrapper(initdb, bindir / "initdb")
            _write_wrapper(postgres, bindir / "postgres")
        kwargs.update(initdb=str(initdb), postgres=str(postgres))
        try:
            self._server = testing.postgresql.Postgresql(**kwargs)
        except RuntimeError as exc:
            shutil.rmtree(self._base_dir, ignore_errors=True)
            raise PnlError(f"embedded PostgreSQL failed to start: {exc}") from None
        return self

    def restart(self, stop_signal: int = signal.SIGQUIT) -> None:
        """Stop the server (by default as abruptly as a crash: immediate shutdown) and start it again
        on the same data directory and port."""
        self._server.terminate(stop_signal)
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._base_dir is not None:
            shutil.rmtree(self._base_dir, ignore_errors=True)
            self._base_dir = None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
