"""The bench's verdict: medians and ratios per size, the targets met or missed, and the table."""
from __future__ import annotations

import itertools
import statistics

from pnldb import format as fmt
from pnldb.bench.generation import RULE_LAYOUTS

TARGET_RATIO = 3.0  # create_snapshot within 3x the floor at 1,000,000 facts per scenario
TARGET_REFERENCE = 10.0  # the engine at least 10x faster than the Python reference at 100,000
TARGET_RSS_MB = 150.0
TARGET_SCOPE = 1.2
TARGET_SUPERSEDED = 1.1  # a slice behind superseded versions of itself within 1.1x of one with none
TARGET_CURRENCIES = 1.2  # the slice in five currencies within 1.2x of the same facts in one (contract §8)
TARGET_VERIFY = 1.0  # verify_run no slower than a snapshot
TARGET_EXPLAIN_S = 1.0  # explain_node's first 1,000 rows of the root at 1,000,000 facts per scenario
TARGET_ENTITLED = 1.05  # a snapshot by an operator entitled to one use case within 1.05x of the superuser's
TARGET_LAYOUT = 1.5  # create_snapshot within 1.5x the floor in every rule layout at 1,000,000 (issue 15)
TARGET_PEERS = 2.0  # the engine at least 2x faster than the fastest peer, wall and total CPU (issue 15)
TARGET_FRESH_TREE = 1.5  # the first snapshot after a fresh hierarchy load within 1.5x of the next one
LINEAR_TOLERANCE = 1.1  # growth within 10% of linear still counts as linear (timing noise)


def median(samples: list[float]) -> float | None:
    samples = [s for s in samples if s is not None]
    return statistics.median(samples) if samples else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def summarize(report: dict) -> dict:
    rows, targets = [], []
    for size in report["sizes"]:
        floor, snap = median(size["floor_s"]), median(size["snapshot_s"])
        only = median(size["scope_only_date"]["snapshot_s"])
        ref = size["reference"]
        ref_median = median(ref.get("seconds", []))
        write_floor = median(size["write_floor_s"])
        readers, superseded = size.get("run_readers", {}), size.get("superseded", {})
        readers_snapshot = median(readers.get("snapshot_s", []))
        none, behind = median(superseded.get("none_s", [])), median(superseded.get("superseded_s", []))
        currencies = size.get("currencies", {})
        one, five = median(currencies.get("one_s", [])), median(currencies.get("five_s", []))
        mixed = median(currencies.get("mixed_s", []))
        rows.append({
            "facts_per_scenario": size["facts_per_scenario"],
            "floor_s": floor, "snapshot_s": snap, "snapshot_over_floor": _ratio(snap, floor),
            "write_floor_s": write_floor,
            "reference_over_floors": _ratio(ref_median, floor + write_floor),
            "snapshot_only_date_s": only, "floor_only_date_s": median(size["scope_only_date"]["floor_s"]),
            "scope_ratio": _ratio(snap, only),
            "reference_s": ref_median, "reference_over_engine": _ratio(ref_median, snap),
            "reference_note": ref.get("skipped"), "reference_peak_rss_mb": ref.get("peak_rss_mb"),
            "load_rows_per_s": size["load"].get("rows_per_s"), "load_note": size["load"].get("skipped"),
            "load_peak_rss_mb": size["load"].get("peak_rss_mb"),
            "peak_rss_mb": size["peak_rss_mb"],
            "verify_s": median(readers.get("verify_s", [])), "readers_snapshot_s": readers_snapshot,
            "verify_over_snapshot": _ratio(median(readers.get("verify_s", [])), readers_snapshot),
            "explain_first_1000_s": median(readers.get("explain_first_1000_s", [])),
            "superseded_versions": superseded.get("versions"), "superseded_s": behind, "not_superseded_s": none,
            "superseded_ratio": _ratio(behind, none),
            "currencies": currencies.get("currencies"), "one_currency_s": one, "five_currencies_s": five,
            "currencies_ratio": _ratio(five, one), "mixed_currencies_s": mixed,
            "mixed_currencies_ratio": _ratio(mixed, one),
        })

    def target(name: str, met: bool | None, value: str) -> None:
        targets.append({"target": name, "met": met, "measured": value})

    layouts = _layout_rows(report, rows)

    big = [r for r in rows if r["facts_per_scenario"] >= 1_000_000]
    if big:
        worst = max(big, key=lambda r: r["snapshot_over_floor"])
        target(f"create_snapshot within {TARGET_RATIO:g}x the floor at >= 1,000,000 facts/scenario",
               worst["snapshot_over_floor"] <= TARGET_RATIO,
               ", ".join(f"{r['snapshot_over_floor']:.2f}x at {r['facts_per_scenario']:,}" for r in big))
    else:
        target(f"create_snapshot within {TARGET_RATIO:g}x the floor at >= 1,000,000 facts/scenario", None,
               "no size >= 1,000,000")
    with_ref = [r for r in rows if r["reference_over_engine"] is not None]
    if with_ref:
        r = max(with_ref, key=lambda r: r["facts_per_scenario"])
        target(f"engine >= {TARGET_REFERENCE:g}x faster than the Python reference",
               r["reference_over_engine"] >= TARGET_REFERENCE,
               f"{r['reference_over_engine']:.1f}x at {r['facts_per_scenario']:,}; an engine that took no more than "
               f"the floor plus the write floor would be {r['reference_over_floors']:.1f}x")
    else:
        target(f"engine >= {TARGET_REFERENCE:g}x faster than the Python reference", None,
               "reference not run" + (f" ({rows[0]['reference_note']})" if rows else ""))
    load_rss = [r["load_peak_rss_mb"] for r in rows if r["load_peak_rss_mb"] is not None]
    rss = max([report.get("peak_rss_mb") or 0] + load_rss)
    target(f"pnldb process under {TARGET_RSS_MB:g} MB", rss < TARGET_RSS_MB,
           f"bench {report.get('peak_rss_mb', 0):.0f} MB" + (f", load {max(load_rss):.0f} MB" if load_rss else ""))
    worst_scope = max(rows, key=lambda r: r["scope_ratio"]) if rows else None
    if worst_scope:
        target(f"one date among 20 others and a second use case within {TARGET_SCOPE:g}x of that date alone",
               worst_scope["scope_ratio"] <= TARGET_SCOPE,
               ", ".join(f"{r['scope_ratio']:.2f}x at {r['facts_per_scenario']:,}" for r in rows))
    with_superseded = [r for r in rows if r["superseded_ratio"] is not None]
    if with_superseded:
        worst = max(with_superseded, key=lambda r: r["superseded_ratio"])
        target(f"a snapshot with {worst['superseded_versions']} superseded versions of its slice in the table within "
               f"{TARGET_SUPERSEDED:g}x of one with none", worst["superseded_ratio"] <= TARGET_SUPERSEDED,
               ", ".join(f"{r['superseded_ratio']:.2f}x at {r['facts_per_scenario']:,}" for r in with_superseded))
    with_currencies = [r for r in rows if r["currencies_ratio"] is not None]
    if with_currencies:
        worst = max(with_currencies, key=lambda r: r["currencies_ratio"])
        target(f"a snapshot of books in {worst['currencies']} currencies within {TARGET_CURRENCIES:g}x of the same "
               "facts in one", worst["currencies_ratio"] <= TARGET_CURRENCIES,
               ", ".join(f"{r['currencies_ratio']:.2f}x at {r['facts_per_scenario']:,}" for r in with_currencies))
    with_verify = [r for r in rows if r["verify_over_snapshot"] is not None]
    if with_verify:
        worst = max(with_verify, key=lambda r: r["verify_over_snapshot"])
        target("verify_run of a run costs no more than a snapshot", worst["verify_over_snapshot"] <= TARGET_VERIFY,
               ", ".join(f"{r['verify_over_snapshot']:.2f}x at {r['facts_per_scenario']:,}" for r in with_verify))
    entitled = [(size["facts_per_scenario"], _ratio(median(size["entitled"]["operator_s"]),
                                                    median(size["entitled"]["superuser_s"])))
                for size in report["sizes"] if size.get("entitled")]
    if entitled:
        judged = [ratio for n, ratio in entitled if n >= 1_000_000] or [entitled[-1][1]]
        target(f"entitled operator snapshot ≤ {TARGET_ENTITLED:g}x superuser",
               max(judged) <= TARGET_ENTITLED, ", ".join(f"{ratio:.2f}x at {n:,}" for n, ratio in entitled))
    big_explain = [r for r in big if r["explain_first_1000_s"] is not None]
    target(f"explain_node of the root: its first 1,000 rows in under {TARGET_EXPLAIN_S:g} s at >= 1,000,000 "
           "facts/scenario",
           all(r["explain_first_1000_s"] < TARGET_EXPLAIN_S for r in big_explain) if big_explain else None,
           ", ".join(f"{_s(r['explain_first_1000_s'])} at {r['facts_per_scenario']:,}" for r in big_explain)
           or "no size >= 1,000,000")
    if len(rows) >= 2:
        ordered = sorted(rows, key=lambda r: r["facts_per_scenario"])
        growth = [(_ratio(b["snapshot_s"], a["snapshot_s"]) / (b["facts_per_scenario"] / a["facts_per_scenario"]),
                   a["facts_per_scenario"], b["facts_per_scenario"]) for a, b in itertools.pairwise(ordered)]
        target("time grows no faster than linearly (snapshot time ratio / size ratio)",
               all(g <= LINEAR_TOLERANCE for g, _, _ in growth),
               ", ".join(f"{g:.2f} from {a:,} to {b:,}" for g, a, b in growth))
    if layouts:
        judged = [r for r in layouts if r["facts_per_scenario"] >= 1_000_000]
        target(f"create_snapshot within {TARGET_LAYOUT:g}x the floor in every rule layout at >= 1,000,000 "
               "facts/scenario", max(r["snapshot_over_floor"] for r in judged) <= TARGET_LAYOUT if judged else None,
               ", ".join(f"{r['layout']} {r['snapshot_over_floor']:.2f}x" for r in judged) or "no size >= 1,000,000")
    wide = (report.get("hierarchies") or {}).get("wide")
    if wide:
        fresh = _ratio(wide["first_snapshot_s"], wide["snapshot_again_s"])
        target(f"the first snapshot after a fresh {wide['nodes']:,}-node hierarchy load within "
               f"{TARGET_FRESH_TREE:g}x of the next", fresh <= TARGET_FRESH_TREE,
               f"{fresh:.2f}x ({_s(wide['first_snapshot_s'])}, then {_s(wide['snapshot_again_s'])})")
    peer_rows = _peer_rows(report)
    for n in dict.fromkeys(r["facts_per_scenario"] for r in peer_rows):
        at = [r for r in peer_rows if r["facts_per_scenario"] == n]
        engine, others = at[0], [r for r in at if r["who"] != "engine"]
        fastest_wall = min(others, key=lambda r: r["wall_s"])
        timed_cpu = [r for r in others if r["cpu_s"] is not None]
        fastest_cpu = min(timed_cpu, key=lambda r: r["cpu_s"]) if timed_cpu and engine["cpu_s"] else None
        wall = _ratio(fastest_wall["wall_s"], engine["wall_s"])
        cpu = _ratio(fastest_cpu["cpu_s"], engine["cpu_s"]) if fastest_cpu else None
        target(f"engine >= {TARGET_PEERS:g}x faster than the fastest peer (wall and CPU) at {n:,} facts/scenario",
               None if cpu is None else wall >= TARGET_PEERS and cpu >= TARGET_PEERS,
               f"wall {_x(wall)} (fastest {fastest_wall['who']} {_s(fastest_wall['wall_s'])}, engine "
               f"{_s(engine['wall_s'])}), CPU " + ("n/a (the server's CPU is not readable from here)" if cpu is None
                                                   else f"{_x(cpu)} (fastest {fastest_cpu['who']} "
                                                        f"{_s(fastest_cpu['cpu_s'])}, engine {_s(engine['cpu_s'])})"))
    failed = [t for t in targets if t["met"] is False]
    summary = {"rows": rows, "targets": targets, "targets_missed": len(failed)}
    if layouts:
        summary["layouts"] = layouts
    if peer_rows:
        summary["peers"] = peer_rows
    shard_rows = _shard_rows(report)
    if shard_rows:
        summary["shards"] = shard_rows
    return summary


def _shard_rows(report: dict) -> list[dict]:
    """Per size that timed a cluster (--shards): medians of the single server's and the coordinator's
    create_snapshot, their ratio, the CPU of the coordinator's backend and of the shards' backends, the whole
    server's CPU on each side, and whether the two runs' rows are equal."""
    out = []
    for size in report["sizes"]:
        timed = size.get("shards")
        if not timed:
            continue
        single, distributed = timed["single"], timed["distributed"]
        single_s, distributed_s = median(single["wall_s"]), median(distributed["wall_s"])
        out.append({"facts_per_scenario": size["facts_per_scenario"], "shards": timed["shards"],
                    "single_s": single_s, "distributed_s": distributed_s,
                    "distributed_over_single": _ratio(distributed_s, single_s),
                    "single_backend_cpu_s": median(single["backend_cpu_s"]),
                    "single_server_cpu_s": median(single["server_cpu_s"]),
                    "coordinator_cpu_s": median(distributed["backend_cpu_s"]),
                    "shards_cpu_s": median(distributed["shards_cpu_s"]),
                    "distributed_server_cpu_s": median(distributed["server_cpu_s"]),
                    "load_single_s": timed["load_s"]["single"], "load_distributed_s": timed["load_s"]["distributed"],
                    "shard_facts": timed["shard_facts"], "rows": timed["check"]["single_rows"],
                    "rows_equal": timed["check"]["rows_equal"]})
    return out


def shard_mismatches(report: dict) -> list[str]:
    """One loud line per size whose distributed run's rows differ from the single server's."""
    lines = []
    for size in report["sizes"]:
        check = (size.get("shards") or {}).get("check")
        if check and not check["rows_equal"]:
            lines.append(
                f"FAILED: {size['facts_per_scenario']:,} facts/scenario on {size['shards']['shards']} shards: the "
                f"distributed run's rows differ from the single server's: {check['single_rows']:,} single rows, "
                f"{check['distributed_rows']:,} distributed rows, {check['only_single']:,} single row(s) and "
                f"{check['only_distributed']:,} distributed row(s) without an equal; first single row without an "
                f"equal: {(check['first_only_single'] or [None])[0]}; first distributed row without an equal: "
                f"{(check['first_only_distributed'] or [None])[0]}")
    return lines


def _peer_rows(report: dict) -> list[dict]:
    """Per size that timed peers: the engine, then each peer, medians of read / compute / write / wall /
    CPU (client + server), and each one's wall and CPU over the engine's."""
    out = []
    for size in report["sizes"]:
        timed = size.get("peers")
        if not timed or not timed.get("peers"):
            continue
        engine = {k: median(v) for k, v in timed["engine"].items()}
        out.append({"facts_per_scenario": size["facts_per_scenario"], "who": "engine", "read_s": None,
                    "compute_s": None, "write_s": None, **engine, "wall_x_engine": 1.0,
                    "cpu_x_engine": 1.0 if engine.get("cpu_s") else None, "rows": None, "matches_engine": None,
                    "peak_rss_mb": None})
        for peer, samples in timed["peers"].items():
            values = {k: median(v) for k, v in samples.items() if isinstance(v, list)}
            out.append({"facts_per_scenario": size["facts_per_scenario"], "who": peer, **values,
                        "wall_x_engine": _ratio(values.get("wall_s"), engine.get("wall_s")),
                        "cpu_x_engine": _ratio(values.get("cpu_s"), engine.get("cpu_s")),
                        "rows": samples.get("rows"), "matches_engine": samples.get("matches_engine"),
                        "peak_rss_mb": samples.get("peak_rss_mb")})
    return out


def _layout_rows(report: dict, rows: list[dict]) -> list[dict]:
    """Per size that timed other rule layouts: the nested one (the size's main timings) and each other."""
    out = []
    for size, row in zip(report["sizes"], rows, strict=True):
        if not size.get("layouts"):
            continue
        out.append({"facts_per_scenario": row["facts_per_scenario"], "layout": "nested",
                    "rules": report["options"]["rules"], "floor_s": row["floor_s"], "snapshot_s": row["snapshot_s"],
                    "snapshot_over_floor": row["snapshot_over_floor"]})
        for layout, samples in size["layouts"].items():
            floor, snap = median(samples["floor_s"]), median(samples["snapshot_s"])
            out.append({"facts_per_scenario": row["facts_per_scenario"], "layout": layout, "rules": samples["rules"],
                        "floor_s": floor, "snapshot_s": snap, "snapshot_over_floor": _ratio(snap, floor)})
    return out


def _s(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def _x(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def format_report(report: dict) -> str:
    m, st = report["machine"], report["settings"]
    lines = [
        f"pnldb bench, {report['started_at']}: {m['cpus']} CPUs, {m['memory_gb']} GiB, {m['platform']}; "
        f"load average {m['load_average_at_start'][0]:.2f} at start, {m['load_average_at_end'][0]:.2f} at end",
        f"PostgreSQL {st['server_version']} ({report['server']}): shared_buffers {st['shared_buffers']}, "
        f"work_mem {st['work_mem']}, max_parallel_workers_per_gather {st['max_parallel_workers_per_gather']}, "
        f"jit {st['jit']}",
        f"{report['hierarchy_nodes']:,} nodes in {report['hierarchy_depth']} levels, {report['options']['rules']:,} "
        f"rules; scope: {report['options']['other_dates']} other dates + a second use case; "
        f"medians of {report['options']['repeat']} (floor and snapshot interleaved)",
        "",
    ]
    header = ("facts/scenario", "floor", "write floor", "snapshot", "x floor", "1 date alone", "x alone",
              "reference", "ref/engine", "load rows/s", "peak RSS")
    rows = [(f"{r['facts_per_scenario']:,}", _s(r["floor_s"]), _s(r["write_floor_s"]), _s(r["snapshot_s"]),
             _x(r["snapshot_over_floor"]), _s(r["snapshot_only_date_s"]), _x(r["scope_ratio"]),
             _s(r["reference_s"]), _x(r["reference_over_engine"]),
             f"{r['load_rows_per_s']:,.0f}" if r["load_rows_per_s"] is not None else "n/a",
             f"{r['peak_rss_mb']:.0f} MB") for r in report["summary"]["rows"]]
    lines += fmt.table(header, rows, align="r" * len(header), rule=True)
    readers = [r for r in report["summary"]["rows"] if r["verify_s"] is not None or r["superseded_s"] is not None]
    if readers:
        header = ("facts/scenario", "snapshot", "verify_run", "x snapshot", "explain 1,000", "superseded",
                  "snapshot behind", "x none")
        lines += [""] + fmt.table(header, [
            (f"{r['facts_per_scenario']:,}", _s(r["readers_snapshot_s"]), _s(r["verify_s"]),
             _x(r["verify_over_snapshot"]), _s(r["explain_first_1000_s"]),
             "n/a" if r["superseded_versions"] is None else f"{r['superseded_versions']} versions",
             _s(r["superseded_s"]), _x(r["superseded_ratio"])) for r in readers], align="r" * len(header), rule=True)
    if report["summary"].get("layouts"):
        header = ("facts/scenario", "rule layout", "rules", "floor", "snapshot", "x floor")
        lines += [""] + fmt.table(header, [
            (f"{r['facts_per_scenario']:,}", f"{r['layout']}: {RULE_LAYOUTS[r['layout']]}", f"{r['rules']:,}",
             _s(r["floor_s"]), _s(r["snapshot_s"]), _x(r["snapshot_over_floor"]))
            for r in report["summary"]["layouts"]], align="rlrrrr", rule=True)
    if report["summary"].get("peers"):
        header = ("facts/scenario", "who", "read", "compute", "write", "wall", "CPU", "client CPU", "server CPU",
                  "wall x engine", "CPU x engine", "peak RSS")
        lines += [""] + fmt.table(header, [
            (f"{r['facts_per_scenario']:,}", r["who"], _s(r["read_s"]), _s(r["compute_s"]), _s(r["write_s"]),
             _s(r["wall_s"]), _s(r["cpu_s"]), _s(r["client_cpu_s"]), _s(r["server_cpu_s"]), _x(r["wall_x_engine"]),
             _x(r["cpu_x_engine"]), "n/a" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f} MB")
            for r in report["summary"]["peers"]], align="rl" + "r" * (len(header) - 2), rule=True)
    if report["summary"].get("shards"):
        header = ("facts/scenario", "shards", "single", "distributed", "dist/single", "coordinator CPU",
                  "shards CPU", "rows equal")
        lines += [""] + fmt.table(header, [
            (f"{r['facts_per_scenario']:,}", r["shards"], _s(r["single_s"]), _s(r["distributed_s"]),
             _x(r["distributed_over_single"]), _s(r["coordinator_cpu_s"]), _s(r["shards_cpu_s"]),
             "yes" if r["rows_equal"] else "NO") for r in report["summary"]["shards"]],
            align="r" * len(header), rule=True)
    notes = ["write floor: one INSERT of a run's result rows (3 per node) with their indexes and foreign key "
             "checks, the least any engine that stores them pays",
             "verify_run and explain 1,000 (explain_node of the root, its first 1,000 rows) interleaved with a "
             "snapshot; snapshot behind: the same current facts behind superseded versions of them, interleaved "
             "with a snapshot of them alone (x none)"]
    for r in report["summary"]["rows"]:
        if r["currencies_ratio"] is not None:
            mixed = "" if r["mixed_currencies_ratio"] is None else (
                f", every book in all {r['currencies']} {_s(r['mixed_currencies_s'])} "
                f"({_x(r['mixed_currencies_ratio'])})")
            notes.append(f"{r['facts_per_scenario']:,}: the same facts with each book in one of {r['currencies']} "
                         f"currencies {_s(r['five_currencies_s'])}, in one currency {_s(r['one_currency_s'])} "
                         f"({_x(r['currencies_ratio'])}){mixed}, interleaved")
        for what, note in (("reference", r["reference_note"]), ("load", r["load_note"])):
            if note:
                notes.append(f"{r['facts_per_scenario']:,}: {what} n/a: {note}")
        if r["load_peak_rss_mb"] is not None:
            notes.append(f"{r['facts_per_scenario']:,}: `pnldb load facts` process peak RSS "
                         f"{r['load_peak_rss_mb']:.0f} MB")
        if r["reference_peak_rss_mb"] is not None:
            notes.append(f"{r['facts_per_scenario']:,}: Python reference process peak RSS "
                         f"{r['reference_peak_rss_mb']:.0f} MB (not part of the target)")
    for size in report["sizes"]:
        if size.get("entitled"):
            operator, superuser = median(size["entitled"]["operator_s"]), median(size["entitled"]["superuser_s"])
            notes.append(f"{size['facts_per_scenario']:,}: create_snapshot as an operator login entitled to the use "
                         f"case by a grant of its own {_s(operator)}, as the superuser {_s(superuser)} "
                         f"({_x(_ratio(operator, superuser))}), interleaved")
    if report["summary"].get("peers"):
        notes.append("peers: each reads the in-scope facts by its fastest path, computes the snapshot in its own "
                     "engine (exact: int64 cents or DECIMAL), COPYs the rows back; engine and peers interleaved; "
                     "CPU = the process's and the server's; every peer's rows equal the engine's row for row")
    notes += list((report.get("peers_skipped") or {}).values())
    if report["summary"].get("shards"):
        notes.append("shards: create_snapshot of the measured slice alone (no other dates) in a single-server "
                     "database and in a coordinator of that many shard databases on the same server, the same "
                     "generated facts in both (loaded through the coordinator), interleaved; CPU = utime+stime of "
                     "the coordinator's backend and of the backends connected to the shards")
        for r in report["summary"]["shards"]:
            notes.append(f"{r['facts_per_scenario']:,} on {r['shards']} shards: whole server CPU single "
                         f"{_s(r['single_server_cpu_s'])} (its backend {_s(r['single_backend_cpu_s'])}), distributed "
                         f"{_s(r['distributed_server_cpu_s'])}; load single {_s(r['load_single_s'])}, through the "
                         f"coordinator {_s(r['load_distributed_s'])}; facts per shard "
                         f"{', '.join(f'{n:,}' for n in r['shard_facts'])}; {r['rows']:,} result rows compared")
    notes += shard_mismatches(report)
    trees = report.get("hierarchies")
    if trees:
        wide, chain = trees["wide"], trees["chain"]
        notes += [f"hierarchies loaded fresh by the hierarchy loader, {trees['facts_per_scenario']:,} facts/scenario "
                  "each:",
                  f"  a {wide['nodes']:,}-node tree, {wide['depth']} deep: load {_s(wide['load_s'])}"
                  f"{' (analysed)' if wide['analyzed'] else ''}, first snapshot {_s(wide['first_snapshot_s'])}, "
                  f"the next {_s(wide['snapshot_again_s'])}",
                  f"  a {chain['depth']:,}-deep chain ({chain['nodes']:,} nodes): load {_s(chain['load_s'])}, "
                  f"first snapshot {_s(chain['first_snapshot_s'])}"]
    lines += [""] + notes
    lines += ["", "correctness: root ties out to the in-scope facts at every size"
              + ("; engine equals the Python reference row for row where it ran"
                 if any(s["reference"].get("matches_engine") for s in report["sizes"]) else "")
              + ("; the distributed run equals the single server's row for row at every size it ran"
                 if report["summary"].get("shards") and all(r["rows_equal"] for r in report["summary"]["shards"])
                 else ""), "", "targets:"]
    for t in report["summary"]["targets"]:
        mark = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        lines.append(f"  [{mark}] {t['target']}: {t['measured']}")
    return "\n".join(lines)
