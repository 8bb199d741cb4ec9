#!/usr/bin/env python3
"""What `imkit serve --metrics` costs: server CPU time per delivery, with and without it.

    bench/metrics_cost.py [--rounds 4] [--only CASE ...] [--out DIR]

Runs the broadcast cases of bench/compare.py against imkit without and with
`--metrics 127.0.0.1:0`, alternating (off, on, off, on, ...), a fresh server each run,
while a scraper thread fetches /metrics every second (as Prometheus would, only more
often). Prints, per case, the median server CPU microseconds per delivery (the load
generator reads the server's CPU from /proc) and deliveries/s, and the ratio on/off.
The target (issue 15): CPU per delivery within 5 %. Every run's JSON is appended to
DIR/metrics-cost-DATE.jsonl. Run it from the project's virtual environment.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    CASES,
    NOISE_PCT,
    ROOT,
    RUN_ANCHOR,
    Case,
    get,
    noisy,
    run_rounds,
)

VARIANTS = ("off", "on")


def command(metrics: bool, db: str, port_file: str) -> str:
    imkit = shutil.which("imkit") or str(Path(sys.executable).parent / "imkit")
    line = f"{imkit} serve --port {{PORT}} --rate-exempt 127.0.0.1 --log-level info --db {db}"
    if metrics:
        line += " --metrics 127.0.0.1:0"
    # The log says where metrics are served; the scraper reads it from this file.
    return f"exec {line} 2>{port_file}"


def scrape_until(stop: threading.Event, log: Path, counts: list[int]) -> None:
    url = None
    while not stop.is_set():
        if url is None and log.exists():
            found = re.search(r"(http://\S+/metrics)", log.read_text(errors="replace"))
            url = found.group(1) if found else None
        if url is not None:
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    reply.read()
                counts[0] += 1
            except OSError:
                pass
        stop.wait(1.0 if url else 0.05)


def run_one(case: Case, variant: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="imkit-bench-") as folder:
        log = Path(folder) / "server.log"
        target = command(variant == "on", f"{folder}/imkit.db", str(log))
        stop, scrapes = threading.Event(), [0]
        scraper = threading.Thread(target=scrape_until, args=(stop, log, scrapes))
        scraper.start()
        try:
            proc = subprocess.run(
                ["bash", str(RUN_ANCHOR), "run", target, *case.args, *case.imkit_extra],
                capture_output=True,
                text=True,
            )
        finally:
            stop.set()
            scraper.join()
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"case": case.name, "variant": variant, "failed": proc.stderr.strip()[-500:]}
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    record.update(case=case.name, variant=variant, scrapes=scrapes[0])
    return record


def cpu_us_per_delivery(record: dict) -> float | None:
    cpu, deliveries = get(record, "broadcast.cpu.server_cpu_s"), get(record, "broadcast.deliveries")
    if not isinstance(cpu, int | float) or not deliveries:
        return None
    return float(cpu) / deliveries * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="rounds of off, on (4)")
    broadcast = [c.name for c in CASES if c.kind == "broadcast"]
    parser.add_argument("--only", nargs="*", default=broadcast, metavar="CASE")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    options = parser.parse_args()
    subprocess.run(["bash", str(RUN_ANCHOR), "build"], check=True)
    cases = [c for c in CASES if c.name in options.only and c.kind == "broadcast"]
    raw_path, runs = run_rounds(
        cases, list(VARIANTS), options.rounds, run_one, options.out, "metrics-cost", pause=0.5
    )
    print(
        f"\n{datetime.date.today()}, medians of {options.rounds} rounds (runs where another "
        f"process took > {NOISE_PCT:.0f} % of a core left out); raw runs: {raw_path.name}\n"
    )
    print("| case | metric | --metrics off | --metrics on | on/off | scrapes per run |")
    print("|---|---|---|---|---|---|")
    for case in cases:
        clean = {v: [r for r in rs if not noisy(r)] or rs for v, rs in runs[case.name].items()}
        cpu = {
            v: [x for r in rs if (x := cpu_us_per_delivery(r)) is not None]
            for v, rs in clean.items()
        }
        rate = {
            v: [get(r, "broadcast.deliveries_per_s") or 0 for r in rs] for v, rs in clean.items()
        }
        scrapes = statistics.median([r.get("scrapes", 0) for r in clean["on"]] or [0])
        if cpu["off"] and cpu["on"]:
            off, on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
            print(
                f"| {case.name} | server CPU µs per delivery | {off:.2f} | {on:.2f} "
                f"| {on / off:.3f}× | {scrapes:.0f} |"
            )
        if rate["off"] and rate["on"]:
            off, on = statistics.median(rate["off"]), statistics.median(rate["on"])
            print(f"| {case.name} | deliveries/s | {off:,.0f} | {on:,.0f} | {on / off:.2f}× | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
