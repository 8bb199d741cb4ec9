#!/usr/bin/env python3
"""imkit as a cluster (nodes on one Redis) against one imkit node, with the same Go load generator.

    bench/cluster.py [--rounds 3] [--quick] [--only CASE ...] [--servers NAME ...] [--out DIR]

For every run of a cluster variant (`imkit-clusterN`, N nodes; `imkit-cluster2` by
default) it starts a fresh `redis-server` on a free port without persistence
(`--save '' --appendonly no`), N `imkit serve --cluster redis://127.0.0.1:PORT
--cluster-name bench-RANDOM` nodes on free ports with the flags bench/compare.py gives
the single node (`--rate-exempt 127.0.0.1 --log-level warning`), runs the load
generator with `-addr 127.0.0.1:P1,127.0.0.1:P2` (client i dials node i mod N, so
receivers and senders are spread over the nodes and every private pair crosses nodes),
then stops the nodes and Redis. The single node (`imkit`, with its default SQLite
store; `imkit-nodb`, `--db none`) runs exactly as in bench/compare.py, in the same
rounds, alternating with the cluster: imkit, cluster, imkit, cluster, ...

Prints one table of medians: deliveries or messages per second, p99 latency, and the CPU
all the server processes (every node and Redis) spent per delivery, with the ratio
cluster / one node and the targets of issue 12 (two nodes deliver at least 0.8× what one
node delivers in bcast-1000x4x500; cross-node private p99 under 5 ms); then where the
CPU went. Every run's JSON (the load generator's, plus a `cluster` section: the nodes'
and Redis' CPU over the measured window) is written to DIR/cluster-DATE.jsonl, in the
format of bench/compare.py.

The load generator reads the CPU of one process only (`-pid`, here the first node), so
its `other_cpu_pct` counts the other nodes and Redis as "other": for cluster runs this
script samples every node and Redis from /proc itself (every 50 ms) and judges noise by
`cluster.cpu.other_cpu_pct`, which leaves them out.

Needs `redis-server` (Debian's package), Go and jq (`apt-get install -y redis-server
golang-go jq`). Standard library only; run it from the project's virtual environment,
so that `imkit` is the one under test.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    CASES,
    NOISE_PCT,
    PERF,
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

BIN = Path(os.environ.get("IMKIT_PERF_DIR", "/tmp/imkit-perf")) / "bin"
SINGLE = ("imkit", "imkit-nodb")  # run as in bench/compare.py
CLUSTER = re.compile(r"imkit-cluster([1-8])$")
DEFAULT_SERVERS = ["imkit", "imkit-cluster2"]
# The scenarios of issue 12; the single sender to 100 receivers (latency-bound, so it
# shows the Redis round trip best) is left out of --quick.
CASE_NAMES = ("bcast-100x1x2000", "bcast-1000x4x500", "private-50x500")
QUICK = ("bcast-1000x4x500", "private-50x500")
SAMPLE_S = 0.05
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Targets of issue 12 (point 11): (case, metric key) -> (kind, value).
TARGETS = {
    ("bcast-1000x4x500", "rate"): ("ratio ≥", 0.8),
    ("private-50x500", "p99"): ("absolute <", 5.0),
}


def imkit_binary() -> str:
    return shutil.which("imkit") or str(Path(sys.executable).parent / "imkit")


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now; all held open together so they differ."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port (or any address), from /proc/net/tcp:
    probing with a connection would make a user, and presence lines, on an imkit node."""
    wanted = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in lines.readlines()[1:]:
                fields = line.split()
                if fields[1].endswith(wanted) and fields[3] == "0A":  # LISTEN
                    return True
    return False


def redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of a process, in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[11]) + int(fields[12])


@dataclass
class Sampler:
    """CPU ticks of the given processes every SAMPLE_S seconds, on a thread."""

    pids: list[int]
    samples: list[tuple[float, list[int | None]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while True:
            self.samples.append((time.monotonic(), [cpu_ticks(p) for p in self.pids]))
            if self.stop.wait(SAMPLE_S):
                return

    def window(self, start: float, end: float) -> tuple[float, list[float | None]] | None:
        """Wall seconds and CPU seconds of each process between the samples nearest to
        start and end."""
        if len(self.samples) < 2:
            return None
        first = min(self.samples, key=lambda s: abs(s[0] - start))
        last = min(self.samples, key=lambda s: abs(s[0] - end))
        wall = last[0] - first[0]
        if wall <= 0:
            return None
        cpu = [
            None if a is None or b is None else (b - a) / CLK_TCK
            for a, b in zip(first[1], last[1], strict=True)
        ]
        return wall, cpu


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_until(
    check: Callable[[], bool], seconds: float, procs: list[subprocess.Popen[bytes]]
) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        if any(p.poll() is not None for p in procs):
            return False
        time.sleep(0.05)
    return bool(check())


def first_problem(logs: list[Path]) -> str:
    """The first line of a traceback or a failed start in the nodes' logs."""
    for log in logs:
        with contextlib.suppress(OSError):
            lines = log.read_text(errors="replace").splitlines()
            for i, line in enumerate(lines):
                if line.startswith("Traceback"):
                    tail = next((x for x in lines[i + 1 :] if x and not x[0].isspace()), "")
                    return f"{log.name}: {tail or line}"
    return ""


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_cluster(case: Case, nodes: int, server: str) -> dict:
    """One run of `case` against `nodes` fresh imkit nodes on a fresh Redis."""
    failure = {"case": case.name, "server_name": server}
    folder = Path(tempfile.mkdtemp(prefix="imkit-bench-cluster-"))
    redis_port, *ports = free_ports(1 + nodes)
    name = f"bench-{secrets.token_hex(4)}"
    url = f"redis://127.0.0.1:{redis_port}"
    env = dict(os.environ, XDG_STATE_HOME=str(folder / "state"))
    procs: list[subprocess.Popen[bytes]] = []
    redis: subprocess.Popen[bytes] | None = None
    logs = [folder / f"node{i + 1}.log" for i in range(nodes)]
    try:
        redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(folder),
                "--logfile",
                str(folder / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_until(lambda: redis_ping(redis_port), 10, [redis]):
            return failure | {"failed": f"redis-server did not start: {tail(folder / 'redis.log')}"}
        for port, log in zip(ports, logs, strict=True):
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [
                            imkit_binary(),
                            "serve",
                            "--port",
                            str(port),
                            "--rate-exempt",
                            "127.0.0.1",
                            "--log-level",
                            "warning",
                            "--cluster",
                            url,
                            "--cluster-name",
                            name,
                        ],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
                )
        if not wait_until(lambda: all(listening(p) for p in ports), 30, procs):
            return failure | {
                "failed": "a node did not listen: "
                + " | ".join(f"{log.name}: {tail(log, 5)}" for log in logs)
            }
        addrs = ",".join(f"127.0.0.1:{p}" for p in ports)
        sampler = Sampler([p.pid for p in procs] + [redis.pid])
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        loadgen = subprocess.run(
            [str(BIN / "loadgen"), "-addr", addrs, "-pid", str(procs[0].pid)]
            + case.args
            + case.imkit_extra,
            capture_output=True,
            text=True,
        )
        ended = time.monotonic()
        time.sleep(SAMPLE_S)  # one more sample after the load generator's last
        sampler.stop.set()
        thread.join()
        alive = [p.poll() is None for p in procs] + [redis.poll() is None]
    finally:
        for proc in procs:  # all at once: SIGTERM, then wait for each
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            stop_process(proc)
        if redis is not None:
            stop_process(redis)
    out = loadgen.stdout.strip()
    if loadgen.returncode != 0 or not out:
        shutil.rmtree(folder, ignore_errors=True)
        return failure | {"failed": loadgen.stderr.strip()[-500:]}
    record = json.loads(out.splitlines()[-1])
    problem = first_problem(logs)
    record |= {
        "case": case.name,
        "server_name": server,
        "server_log": str(logs[0]),
        "server_panic": problem,
        "server_note": "",
        "server_alive_after_run": all(alive),
    }
    record["cluster"] = cluster_section(record, sampler, ended, nodes, url, name, logs)
    if not problem and all(alive):
        shutil.rmtree(folder, ignore_errors=True)  # keep the logs of a run that went wrong
    return record


def cluster_section(
    record: dict, sampler: Sampler, ended: float, nodes: int, url: str, name: str, logs: list[Path]
) -> dict:
    """Nodes' and Redis' CPU over the load generator's measured window, which ends when
    it takes its last reading, a moment before it exits."""
    section = {"nodes": nodes, "redis": url, "cluster_name": name, "logs": [str(x) for x in logs]}
    kind = "broadcast" if "broadcast" in record else "private"
    cpu = get(record, f"{kind}.cpu") or {}
    wall = cpu.get("wall_s")
    measured = sampler.window(ended - wall, ended) if wall else None
    if measured is None:
        return section
    seconds, per_process = measured
    pct = [None if c is None else round(100 * c / seconds, 2) for c in per_process]
    node_pct, redis_pct = pct[:-1], pct[-1]
    servers_s = sum(c for c in per_process if c is not None)
    servers_pct = round(100 * servers_s / seconds, 2)
    result = {
        "wall_s": round(seconds, 2),
        "node_cpu_pct": node_pct,
        "redis_cpu_pct": redis_pct,
        "servers_cpu_s": round(servers_s, 3),
        "servers_cpu_pct": servers_pct,
        "loadgen_cpu_pct": cpu.get("loadgen_cpu_pct"),
        "system_busy_pct": cpu.get("system_busy_pct"),
    }
    if cpu.get("system_busy_pct") is not None and cpu.get("loadgen_cpu_pct") is not None:
        other = cpu["system_busy_pct"] - cpu["loadgen_cpu_pct"] - servers_pct
        result["other_cpu_pct"] = round(other, 2)
    section["cpu"] = result
    return section


def section_of(case: Case) -> str:
    return "broadcast" if case.kind == "broadcast" else "private"


def server_cpu_us_per_item(record: dict, case: Case) -> float | None:
    """CPU of every server process (each node and Redis) per delivery or message, µs."""
    section = section_of(case)
    count = get(record, "broadcast.deliveries" if section == "broadcast" else "private.received")
    if "cluster" in record:
        seconds = get(record, "cluster.cpu.servers_cpu_s")
    else:
        seconds = get(record, f"{section}.cpu.server_cpu_s")
    if not count or seconds is None:
        return None
    return 1e6 * seconds / count


def summarize(case: Case, runs: dict[str, list[dict]], servers: list[str]) -> list[str]:
    # Without clean runs (a busy machine), the noisy ones rather than nothing, as
    # bench/compare.py does; a run whose server failed never counts.
    ok = {s: [r for r in rs if not crashed(r)] for s, rs in runs.items()}
    clean = {s: [r for r in rs if not noisy(r)] or rs for s, rs in ok.items()}
    base = next((s for s in servers if not CLUSTER.match(s)), None)
    clusters = [s for s in servers if CLUSTER.match(s)]
    section = section_of(case)
    if section == "broadcast":
        rate, unit = ("deliveries/s", "broadcast.deliveries_per_s"), "delivery"
    else:
        rate, unit = ("messages/s", "private.msgs_per_s"), "message"
    metrics = [
        ("rate", rate[0], rate[1], 0),
        ("p99", "p99 latency ms", f"{section}.latency.p99_us", 2),
        ("cpu", f"server CPU µs per {unit}", "", 2),
    ]
    rows = []
    for key, label, path, digits in metrics:
        values: dict[str, float | None] = {}
        for s in servers:
            if key == "cpu":
                per = [server_cpu_us_per_item(r, case) for r in clean[s]]
                numbers = [v for v in per if v is not None]
                values[s] = statistics.median(numbers) if numbers else None
            else:
                values[s] = median(clean[s], path)
                if values[s] is not None and key == "p99":
                    values[s] = values[s] / 1000
        ratios, verdicts = [], []
        for c in clusters:
            a, b = values[c], values[base] if base else None
            ratio = a / b if a is not None and b else None
            ratios.append(f"{fmt(ratio, 2)}×")
            target = TARGETS.get((case.name, key))
            if target is None or a is None:
                continue
            kind, value = target
            if kind == "ratio ≥" and ratio is not None:
                verdicts.append("met" if ratio >= value else f"missed by {1 - ratio / value:.0%}")
            elif kind == "absolute <":
                verdicts.append("met" if a < value else f"missed by {a / value - 1:.0%}")
        target = TARGETS.get((case.name, key))
        shown = (
            ""
            if target is None
            else (f"≥ {target[1]}×" if target[0] == "ratio ≥" else f"< {target[1]:g} ms")
        )
        cells = " | ".join(fmt(values[s], digits) for s in servers)
        rows.append(
            f"| {case.name} | {label} | {cells} | {' | '.join(ratios)} | {shown} "
            f"| {'; '.join(verdicts) or '-'} |"
        )
    return rows


def cpu_rows(case: Case, runs: dict[str, list[dict]], servers: list[str]) -> list[str]:
    """Where the CPU went during the measured window, medians, % of one core."""
    section = section_of(case)
    rows = []
    for s in servers:
        records = [r for r in runs[s] if not crashed(r)]
        if not records:
            continue
        loadgen = median(records, f"{section}.cpu.loadgen_cpu_pct")
        busy = median(records, f"{section}.cpu.system_busy_pct")
        if CLUSTER.match(s):
            nodes = max(len(get(r, "cluster.cpu.node_cpu_pct") or []) for r in records)
            node = [
                fmt(
                    statistics.median(
                        [
                            v[i]
                            for r in records
                            if (v := get(r, "cluster.cpu.node_cpu_pct")) and v[i] is not None
                        ]
                        or [0]
                    )
                )
                for i in range(nodes)
            ]
            shown = " + ".join(node)
            redis = fmt(median(records, "cluster.cpu.redis_cpu_pct"))
            other = fmt(median(records, "cluster.cpu.other_cpu_pct"))
        else:
            shown = fmt(median(records, f"{section}.cpu.server_cpu_pct"))
            redis = "-"
            other = fmt(median(records, f"{section}.cpu.other_cpu_pct"))
        clean = sum(1 for r in records if not noisy(r))
        rows.append(
            f"| {case.name} | {s} | {clean}/{len(runs[s])} | {fmt(loadgen)} | {shown} | {redis} "
            f"| {other} | {fmt(busy)} |"
        )
    return rows


def run(case: Case, server: str) -> dict:
    found = CLUSTER.match(server)
    if found:
        return run_cluster(case, int(found.group(1)), server)
    return run_one(case, server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every server (3)")
    parser.add_argument(
        "--quick", action="store_true", help=f"only {' and '.join(QUICK)} (issue 12's figures)"
    )
    parser.add_argument(
        "--only", nargs="*", default=None, metavar="CASE", help=f"run these of {CASE_NAMES}"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--servers",
        nargs="*",
        default=DEFAULT_SERVERS,
        metavar="NAME",
        help="imkit (one node, SQLite store), imkit-nodb (--db none), imkit-clusterN "
        "(N nodes on one Redis, 1 to 8); default: imkit imkit-cluster2",
    )
    options = parser.parse_args()
    servers = [s for part in options.servers for s in part.split(",") if s]
    bad = [s for s in servers if s not in SINGLE and not CLUSTER.match(s)]
    if bad or not servers:
        parser.error(f"unknown server {', '.join(bad)}: imkit, imkit-nodb or imkit-cluster1..8")

    needed = ["go", "jq"] + (["redis-server"] if any(CLUSTER.match(s) for s in servers) else [])
    for tool in needed:
        if shutil.which(tool) is None:
            print(f"bench: {tool} is missing: apt-get install -y {tool}", file=sys.stderr)
            return 2
    if not RUN_ANCHOR.exists():
        print(f"bench: {RUN_ANCHOR} not found (set IMKIT_PERF_TOOLS; now {PERF})", file=sys.stderr)
        return 2
    subprocess.run(["bash", str(RUN_ANCHOR), "build"], check=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))

    names = options.only or (QUICK if options.quick else CASE_NAMES)
    unknown = [n for n in names if n not in CASE_NAMES]
    if unknown:
        parser.error(f"unknown case {', '.join(unknown)}: one of {', '.join(CASE_NAMES)}")
    cases = [c for c in CASES if c.name in names]
    raw_path, runs = run_rounds(cases, servers, options.rounds, run, options.out, "cluster")

    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    shown_path = raw_path.relative_to(ROOT) if raw_path.is_relative_to(ROOT) else raw_path
    print(
        f"\n{datetime.date.today()}, {cpu} cores, medians of {options.rounds} rounds "
        f"(runs where another process took > {NOISE_PCT:.0f} % of a core, or a server "
        f"failed, left out); raw runs: {shown_path}\n"
    )
    clusters = [s for s in servers if CLUSTER.match(s)]
    base = next((s for s in servers if not CLUSTER.match(s)), "-")
    heads = [label(s) for s in servers] + [f"{label(c)} / {label(base)}" for c in clusters]
    print(f"| case | metric | {' | '.join(heads)} | target | |")
    print("|---|---|" + "---|" * len(heads) + "---|---|")
    for case in cases:
        for line in summarize(case, runs[case.name], servers):
            print(line)
    print(
        "\nCPU during the measured window, % of one core (medians; the machine has "
        f"{cpu} cores = {100 * int(cpu or 1)} %):\n"
    )
    print("| case | server | clean runs | load generator | imkit node(s) | Redis | other | busy |")
    print("|---|---|---|---|---|---|---|---|")
    for case in cases:
        for line in cpu_rows(case, runs[case.name], servers):
            print(line)
    failed = sum(1 for c in runs.values() for rs in c.values() for r in rs if crashed(r))
    if failed:
        print(f"\n{failed} run(s) failed; see {shown_path}", file=sys.stderr)
    return 1 if failed else 0


def label(server: str) -> str:
    found = CLUSTER.match(server)
    if found:
        n = int(found.group(1))
        return f"{n} node{'s' if n > 1 else ''} + Redis"
    return {"imkit": "1 node", "imkit-nodb": "1 node --db none"}.get(server, server)


if __name__ == "__main__":
    sys.exit(main())
