#!/usr/bin/env python3
"""imkit against the IM-System seed's own Go server, with the same Go load generator.

    bench/compare.py [--rounds 3] [--quick] [--only CASE ...] [--servers NAME ...] [--out DIR]

Builds the tools in ../shared/perf (Go: `apt-get install -y golang-go jq`), then runs
every case against `imkit serve` (with its default SQLite store, a fresh file each run),
`imkit serve --db none`, two `imkit serve --cluster` nodes on a fresh `redis-server`
(bench/cluster.py; the broadcast and private cases only) and the seed's server in turn,
a fresh server for every run, and prints one table of medians with the ratios
imkit/seed, store on/off (what keeping history costs) and 2 nodes / 1 node, and whether
each target of the performance issue is met. The long connect cases (5,000 and 10,000
clients) run in the first round only. Every run's JSON is appended to
DIR/results-DATE.jsonl (../shared/perf/summarize.py reads it too). Standard library
only; run it from the project's virtual environment, so that `imkit` is the one under
test.

imkit runs with its default limits, except that the load generator's address is
exempt from the rate limit (--rate-exempt 127.0.0.1): the closed-loop senders send
thousands of lines a second, far past the default 20/s meant for people.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERF = Path(os.environ.get("IMKIT_PERF_TOOLS", ROOT.parent / "shared" / "perf"))
RUN_ANCHOR = PERF / "run-anchor.sh"
# Runs during which another process used more than this share of a core are noise.
NOISE_PCT = 25.0


# imkit runs three times per round: with its default store (a fresh SQLite file each
# run), with --db none (history in memory), so the table shows what the store costs, and
# as two cluster nodes on one Redis (bench/cluster.py).
SERVERS = ("imkit", "imkit-nodb", "imkit-cluster2", "seed")
CLUSTER = "imkit-cluster2"


def imkit_command(db: str) -> str:
    imkit = shutil.which("imkit") or str(Path(sys.executable).parent / "imkit")
    return (
        f"exec {imkit} serve --port {{PORT}} --rate-exempt 127.0.0.1 --log-level warning --db {db}"
    )


@dataclass
class Case:
    name: str
    args: list[str]
    kind: str  # broadcast | private | connect
    quick: bool = True  # part of --quick
    # -concurrency: the seed crashes on overlapping connects (its bug 1), so it is set
    # up one connection at a time; imkit takes 50 at once. Only setup differs.
    seed_extra: list[str] = field(default_factory=lambda: ["-concurrency", "1"])
    imkit_extra: list[str] = field(default_factory=lambda: ["-concurrency", "50"])
    once: bool = False  # minutes long: the first round only

    @property
    def clustered(self) -> bool:
        """Whether the cluster runs it (a cluster's connects are bench/cluster.py's)."""
        return self.kind != "connect"


# Held connections send a keepalive so the 60 s idle timeout (the seed's, and imkit's
# default) does not end a long setup; both servers answer it with one line.
LONG = ["-keepalive", "20s", "-duration", "900s", "-quiet-max", "120s"]

CASES = [
    Case(
        "bcast-100x1x2000",
        ["-scenario", "broadcast", "-n", "100", "-s", "1", "-m", "2000"],
        "broadcast",
    ),
    Case(
        "bcast-1000x4x500",
        ["-scenario", "broadcast", "-n", "1000", "-s", "4", "-m", "500"],
        "broadcast",
    ),
    Case("private-50x500", ["-scenario", "private", "-p", "50", "-m", "500"], "private"),
    Case("connect-1000", ["-scenario", "connect", "-n", "1000", *LONG], "connect"),
    Case(
        "connect-5000",
        ["-scenario", "connect", "-n", "5000", *LONG],
        "connect",
        quick=False,
        once=True,
    ),
    Case(
        "connect-10000",
        ["-scenario", "connect", "-n", "10000", *LONG],
        "connect",
        quick=False,
        once=True,
    ),
    # N connections opened at 1000/s with no limit on how many set up at once. 10,000
    # joins are 50 M presence lines (each join goes to everyone online), so the 10,000
    # case takes minutes, not 10 s: it is judged by every client renamed, none dropped.
    Case(
        "connect-1000-ramp",
        ["-scenario", "connect", "-n", "1000", "-rate", "1000", "-duration", "60s"],
        "connect",
        seed_extra=["-concurrency", "0"],
        imkit_extra=["-concurrency", "0"],
    ),
    Case(
        "connect-10000-ramp",
        # 5 minutes at most: the seed, when it does not crash, stalls (perf README)
        ["-scenario", "connect", "-n", "10000", "-rate", "1000", *LONG, "-duration", "300s"],
        "connect",
        quick=False,
        once=True,
        seed_extra=["-concurrency", "0"],
        imkit_extra=["-concurrency", "0"],
    ),
]


def get(record: dict, path: str):  # type: ignore[no-untyped-def]
    for key in path.split("."):
        if not isinstance(record, dict) or key not in record:
            return None
        record = record[key]
    return record


def run_one(case: Case, server: str) -> dict:
    if server == CLUSTER:
        from cluster import run_cluster  # bench/cluster.py imports this module

        return run_cluster(case, 2, server)
    with tempfile.TemporaryDirectory(prefix="imkit-bench-") as folder:
        if server == "seed":
            target, extra = "seed", case.seed_extra
        elif server == "imkit-nodb":
            target, extra = imkit_command("none"), case.imkit_extra
        else:
            target, extra = imkit_command(f"{folder}/imkit.db"), case.imkit_extra
        proc = subprocess.run(
            ["bash", str(RUN_ANCHOR), "run", target, *case.args, *extra],
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"case": case.name, "server_name": server, "failed": proc.stderr.strip()[-500:]}
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    record["case"] = case.name
    record["server_name"] = server  # run-anchor names imkit by its whole command
    return record


def noisy(record: dict) -> bool:
    if "cluster" in record:  # the other nodes and Redis are not "other" there
        other = get(record, "cluster.cpu.other_cpu_pct")
        return other is not None and other > NOISE_PCT
    for section in ("broadcast", "private"):
        if section in record:
            other = get(record, f"{section}.cpu.other_cpu_pct")
            return other is not None and other > NOISE_PCT
    other = get(record, "connect.cpu_setup.other_cpu_pct")
    return other is not None and other > NOISE_PCT


def median(records: list[dict], path: str) -> float | None:
    values = [get(r, path) for r in records]
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return statistics.median(numbers) if numbers else None


def crashed(record: dict) -> bool:
    return bool(record.get("failed") or record.get("server_panic")) or not record.get(
        "server_alive_after_run", True
    )


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def verdict(ratio: float | None, target: float | None, higher: bool) -> str:
    if ratio is None or target is None:
        return "-"
    if higher:
        return "met" if ratio >= target else f"missed by {1 - ratio / target:.0%}"
    return "met" if ratio <= target else f"missed by {ratio / target - 1:.0%}"


# The targets of the performance issue: (case, metric) -> (ratio, higher is better,
# judged by "seed" (imkit/seed) or "store" (store on/off)).
TARGETS: dict[tuple[str, str], tuple[float, bool, str]] = {
    ("bcast-100x1x2000", "deliveries/s"): (1.0, True, "seed"),
    ("bcast-100x1x2000", "p99 latency ms"): (1.0, False, "seed"),
    ("bcast-1000x4x500", "deliveries/s"): (1.5, True, "seed"),
    ("bcast-1000x4x500", "p99 latency ms"): (1.0, False, "seed"),
    ("bcast-1000x4x500", "deliveries/s, store on/off"): (0.9, True, "store"),
    ("private-50x500", "messages/s"): (1.0, True, "seed"),
    ("connect-10000", "KiB per connection"): (0.75, False, "seed"),
}


def summarize(case: Case, runs: dict[str, list[dict]]) -> list[str]:
    """Table rows for one case: metric, the variants, the ratios, target, verdict."""
    clean = {s: [r for r in rs if not noisy(r)] or rs for s, rs in runs.items()}
    rows = []

    def row(metric: str, path: str, digits: int, scale: float = 1.0) -> None:
        im, nodb, two, sd = (
            median(clean.get(server, []), path)
            for server in ("imkit", "imkit-nodb", CLUSTER, "seed")
        )
        ratio = im / sd if im is not None and sd else None
        store = im / nodb if im is not None and nodb else None
        nodes = two / im if two is not None and im else None
        target, higher, judged = TARGETS.get((case.name, metric), (None, True, "seed"))
        shown = "" if target is None else f"{'≥' if higher else '≤'} {target}×"
        judge = verdict(store if judged == "store" else ratio, target, higher)
        values = " | ".join(
            fmt(None if v is None else v * scale, digits) for v in (im, nodb, two, sd)
        )
        rows.append(
            f"| {case.name} | {metric} | {values} | {fmt(ratio, 2)}× | {fmt(store, 2)}× "
            f"| {fmt(nodes, 2)}× | {shown} | {judge} |"
        )

    if case.kind == "broadcast":
        row("deliveries/s", "broadcast.deliveries_per_s", 0)
        row("p99 latency ms", "broadcast.latency.p99_us", 2, scale=1e-3)
        if (case.name, "deliveries/s, store on/off") in TARGETS:
            row("deliveries/s, store on/off", "broadcast.deliveries_per_s", 0)
    elif case.kind == "private":
        row("messages/s", "private.msgs_per_s", 0)
        row("p99 latency ms", "private.latency.p99_us", 2, scale=1e-3)
    elif "ramp" in case.name:
        for server, records in runs.items():
            if not records:
                continue
            failures = [r for r in records if crashed(r) or not get(r, "connect.all_ok")]
            panic = next((r.get("server_panic") for r in failures if r.get("server_panic")), "")
            renamed = median(records, "connect.renamed")
            outcome = (
                f"{len(failures)}/{len(records)} runs failed, {fmt(renamed)} renamed {panic}"
                if failures
                else f"all {len(records)} runs: {fmt(renamed)} renamed, none dropped"
            )
            judge = ("met" if not failures else "MISSED") if server == "imkit" else ""
            rows.append(
                f"| {case.name} | {server} | {outcome} | | | | | | | no failure | {judge} |"
            )
    else:
        row("KiB per connection", "server.rss_kb_per_conn", 1)
    return rows


Runs = dict[str, dict[str, list[dict]]]  # case -> server (or variant) -> its records


def run_rounds(
    cases: list[Case],
    servers: list[str],
    rounds: int,
    run: Callable[[Case, str], dict],
    out: Path,
    prefix: str,
    pause: float = 0.0,
) -> tuple[Path, Runs]:
    """Every case on every server (or variant), in turn, ``rounds`` times: each run is
    written to OUT/PREFIX-DATE.jsonl as soon as it ends (a crash keeps what was done)."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    raw_path = out / f"{prefix}-{stamp}.jsonl"
    runs: Runs = {c.name: {s: [] for s in servers} for c in cases}
    with raw_path.open("w") as raw:
        for round_ in range(1, rounds + 1):
            for case in cases:
                for server in servers:
                    if (round_ > 1 and case.once) or (server == CLUSTER and not case.clustered):
                        continue
                    print(f"round {round_}/{rounds}: {case.name} on {server}", file=sys.stderr)
                    record = run(case, server)
                    record["round"] = round_
                    if problem := record.get("failed") or record.get("server_panic"):
                        print(f"  failed: {problem}", file=sys.stderr)
                    raw.write(json.dumps(record) + "\n")
                    raw.flush()
                    runs[case.name][server].append(record)
                    time.sleep(pause)
    return raw_path, runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every server (3)")
    parser.add_argument("--quick", action="store_true", help="skip the 5000 and 10000 connects")
    parser.add_argument("--only", nargs="*", default=None, metavar="CASE", help="run these cases")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--servers",
        nargs="*",
        default=list(SERVERS),
        choices=SERVERS,
        help="run only these (imkit with its store, imkit --db none, two cluster nodes, the seed)",
    )
    options = parser.parse_args()

    for tool in ("go", "jq"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is missing: apt-get install -y golang-go jq", file=sys.stderr)
            return 2
    if not RUN_ANCHOR.exists():
        print(f"bench: {RUN_ANCHOR} not found (set IMKIT_PERF_TOOLS)", file=sys.stderr)
        return 2
    subprocess.run(["bash", str(RUN_ANCHOR), "build"], check=True)

    cases = [c for c in CASES if (options.only is None or c.name in options.only)]
    if options.quick:
        cases = [c for c in cases if c.quick]
    servers = [s for s in SERVERS if s in options.servers]
    raw_path, runs = run_rounds(cases, servers, options.rounds, run_one, options.out, "results")

    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    print(
        f"\n{datetime.date.today()}, {cpu} cores, medians of {options.rounds} rounds "
        f"(runs where another process took > {NOISE_PCT:.0f} % of a core left out); "
        f"raw runs: {raw_path.relative_to(ROOT) if raw_path.is_relative_to(ROOT) else raw_path}\n"
    )
    print(
        "| case | metric | imkit | imkit --db none | imkit, 2 nodes | seed | imkit/seed "
        "| store on/off | 2 nodes / 1 node | target | |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for case in cases:
        for line in summarize(case, runs[case.name]):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
