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
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import run_cluster  # noqa: E402
from common import (  # noqa: E402
    CASES,
    CLUSTER,
    NOISE_PCT,
    ROOT,
    RUN_ANCHOR,
    Case,
    crashed,
    fmt,
    get,
    median,
    noisy,
    run_one,
    run_rounds,
)

# imkit runs three times per round: with its default store (a fresh SQLite file each
# run), with --db none (history in memory), so the table shows what the store costs, and
# as two cluster nodes on one Redis (bench/cluster.py).
SERVERS = ("imkit", "imkit-nodb", "imkit-cluster2", "seed")


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


def run(case: Case, server: str) -> dict:
    if server == CLUSTER:
        return run_cluster(case, 2, server)
    return run_one(case, server)


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
    raw_path, runs = run_rounds(cases, servers, options.rounds, run, options.out, "results")

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
