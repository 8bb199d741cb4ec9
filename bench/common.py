"""What bench/compare.py and bench/cluster.py share: the cases, running one server
through ../shared/perf's run-anchor.sh, the rounds, and reading the records.

Neither script imports the other; both import this (cluster.py's nodes on Redis are
run_cluster, which compare.py imports from it). Standard library only.
"""

from __future__ import annotations

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


# The cluster variant bench/compare.py runs (two nodes on one Redis, bench/cluster.py);
# run_rounds gives it no connect case.
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
    """One run of one imkit node (its SQLite store, or ``imkit-nodb``: --db none) or of
    the seed's server, through run-anchor.sh."""
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
