"""The peers beside the engine: each peer's worker process started once, then for each repeat the
engine's create_snapshot and each peer's full run, interleaved, after one untimed run of each; then
every peer's rows compared with the engine's run. Wall time and total CPU (client and server) for all."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable

import psycopg

from pnldb import api
from pnldb.bench.generation import COB_DATE, MAIN_USE_CASE
from pnldb.bench.peers import common
from pnldb.errors import PnlError

PHASES = ("read_s", "compute_s", "write_s", "wall_s", "cpu_s", "client_cpu_s", "server_cpu_s")


class PeerProcess:
    """One peer's worker (pnldb.bench.peers.worker), run by run."""

    def __init__(self, peer: str, dsn: str, schema: str, use_case: uuid.UUID = MAIN_USE_CASE, pnl_date=COB_DATE):
        self.peer = peer
        self.err = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker; closed by close()
        code = "import sys; from pnldb.bench.peers.worker import main; main(*sys.argv[1:6])"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, dsn, schema, peer, str(use_case), str(pnl_date)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True)
        self._answer()  # ready

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            self.err.seek(0)
            message = self.err.read().decode(errors="replace").strip().splitlines()
            raise PnlError(f"peer {self.peer} failed: {message[-1] if message else 'no answer'}")
        return json.loads(line)

    def run(self) -> dict:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> float | None:
        """Ends the worker; its peak RSS in MB."""
        try:
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
            peak = self._answer().get("peak_rss_mb")
            self.process.wait(timeout=60)
            return peak
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.err.close()


def timed_engine(conn: psycopg.Connection, s: str, postmaster: int | None,
                 use_case: uuid.UUID = MAIN_USE_CASE, pnl_date=COB_DATE) -> dict:
    """create_snapshot timed as the peers are (wall, this process's and the server's CPU), in a
    transaction that is rolled back."""
    with conn.transaction(force_rollback=True):
        clock = common.Clock(postmaster)
        run_id = conn.execute(f"SELECT {s}.create_snapshot(%s, %s)", (use_case, pnl_date)).fetchone()[0]
        timings = clock.result()
        run = api.get_run(conn, run_id)
    if run["status"] != "COMPLETED":
        raise PnlError(f"create_snapshot did not complete: {run['status']}: {run['error_message']}")
    return timings


def measure_peers(conn: psycopg.Connection, dsn: str, schema: str, s: str, run_id: uuid.UUID,
                  peers: tuple[str, ...], repeat: int, progress: Callable[[str], None], label: str,
                  use_case: uuid.UUID = MAIN_USE_CASE, pnl_date=COB_DATE) -> dict:
    """{"engine": {phase: [samples]}, "peers": {peer: {phase: [samples], rows, matches_engine,
    peak_rss_mb}}}; a peer whose rows differ from the engine's run `run_id` fails the bench."""
    postmaster = common.postmaster_pid(conn)
    engine: dict[str, list] = {"wall_s": [], "cpu_s": [], "client_cpu_s": [], "server_cpu_s": []}
    samples: dict[str, dict[str, list]] = {peer: {phase: [] for phase in PHASES} for peer in peers}
    processes: dict[str, PeerProcess] = {}
    out: dict = {"engine": engine, "peers": {}}
    try:
        for peer in peers:
            progress(f"{label}: starting peer {peer}")
            processes[peer] = PeerProcess(peer, dsn, schema, use_case, pnl_date)
        progress(f"{label}: warming up the engine and the peers")
        timed_engine(conn, s, postmaster, use_case, pnl_date)
        for process in processes.values():
            process.run()
        for i in range(repeat):
            progress(f"{label}: engine and peers {i + 1}/{repeat}")
            for phase, value in timed_engine(conn, s, postmaster, use_case, pnl_date).items():
                if phase in engine:
                    engine[phase].append(value)
            for peer, process in processes.items():
                timings = process.run()
                for phase in PHASES:
                    samples[peer][phase].append(timings.get(phase))
                samples[peer]["rows"] = timings["rows"]
        for peer in peers:
            progress(f"{label}: comparing peer {peer}'s rows with the engine's")
            samples[peer].update(common.compare_with_engine(conn, s, peer, run_id))
    finally:
        for peer, process in processes.items():
            try:
                samples[peer]["peak_rss_mb"] = process.close()
            except PnlError:  # already failing: the worker's own error is the one raised
                samples[peer]["peak_rss_mb"] = None
        for peer in peers:
            conn.execute(f"DROP TABLE IF EXISTS {s}.{common.table_name(peer)}")
    out["peers"] = samples
    return out
