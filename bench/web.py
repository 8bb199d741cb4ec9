#!/usr/bin/env python3
"""A broadcast to WebSocket receivers next to the same broadcast to TCP receivers.

    bench/web.py [--clients 1000] [--senders 4] [--duration 10] [--rounds 3]
                 [--transports text ws json] [--out DIR]

For every round and every transport in turn (text, ws, json, text, ws, ...) it starts
a fresh `imkit serve --port 0 --web 127.0.0.1:0 --db none --idle-timeout 0
--rate-exempt 127.0.0.1`, runs `imkit bench --scenario broadcast --clients N --senders S
--json` against it — the same client for every transport, only its transport switch
differs: the text protocol on the chat port (`text`), JSON over WebSocket on the web
port (`ws`, `--web`), JSON Lines on the chat port (`json`, `--json-lines`: JSON without
WebSocket framing, to tell the two costs apart) — then stops the server.

It prints one table of medians: deliveries/s, p50 and p99 latency (from `imkit bench`),
and the CPU the server and the bench client each spent per delivery, read from /proc
over the measured window (from the bench's first progress line to its last, so the
1,000 connects and joins are left out), with the CPU other processes used meanwhile.
Every run's figures go to DIR/web-DATE.jsonl.

`imkit bench` is Python: with 1,000 receivers the client, not the server, is the limit,
and on a WebSocket it also decodes every frame (wsproto). The CPU columns say which side
paid for what. Standard library only; run it from the project's virtual environment, so
that `imkit` is this checkout's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")
PROGRESS = re.compile(r"^\s*([\d.]+) s\s+([\d,]+) deliveries")
NAMES = {"text": "TCP, text", "ws": "WebSocket", "json": "TCP, JSON Lines"}


def imkit() -> list[str]:
    found = shutil.which("imkit", path=str(Path(sys.executable).parent)) or shutil.which("imkit")
    return [found] if found else [sys.executable, "-m", "imkit"]


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy() -> float:
    """CPU seconds every process on the machine has used (all cores)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK


class Server:
    def __init__(self) -> None:
        args = [*imkit(), "serve", "--port", "0", "--web", "127.0.0.1:0", "--db", "none"]
        args += ["--idle-timeout", "0", "--rate-exempt", "127.0.0.1"]
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        self.web = self.chat = ""
        for line in self.proc.stderr:
            if found := re.search(r"web on http://(\S+?)/", line):
                self.web = found.group(1)
            if found := re.search(r"listening on (\S+?)[,\s]", line):
                self.chat = found.group(1)
                break
        if not (self.web and self.chat):
            self.proc.kill()
            raise SystemExit("imkit serve did not start")
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # drain

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_one(transport: str, clients: int, senders: int, duration: float) -> dict:
    server = Server()
    try:
        port = server.chat.rsplit(":", 1)[1]
        how = {"text": [], "ws": ["--web", f"ws://{server.web}/ws"], "json": ["--json-lines"]}
        args = [*imkit(), "bench", "--port", port, *how[transport], "--scenario", "broadcast"]
        args += ["--clients", str(clients), "--senders", str(senders)]
        args += ["--duration", str(duration), "--json"]
        bench = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert bench.stderr is not None and bench.stdout is not None
        samples = []  # (elapsed by the bench, deliveries, server cpu, bench cpu, machine)
        errors = []
        for line in bench.stderr:
            if found := PROGRESS.match(line):
                elapsed, count = float(found.group(1)), int(found.group(2).replace(",", ""))
                with_cpu = (process_cpu(server.proc.pid), process_cpu(bench.pid), machine_busy())
                samples.append((elapsed, count, *with_cpu))
            else:
                errors.append(line)
        summary = json.loads(bench.stdout.read() or "null")
        if bench.wait() != 0 or summary is None:
            raise SystemExit(f"imkit bench failed: {''.join(errors)}")
    finally:
        server.stop()
    record = {"transport": transport, **summary}
    if len(samples) >= 2:
        (t0, n0, s0, b0, m0), (t1, n1, s1, b1, m1) = samples[0], samples[-1]
        window, delivered = t1 - t0, n1 - n0
        record["window"] = {
            "seconds": round(window, 2),
            "deliveries": delivered,
            "server_us_per_delivery": round((s1 - s0) / delivered * 1e6, 2),
            "bench_us_per_delivery": round((b1 - b0) / delivered * 1e6, 2),
            "server_cpu_pct": round((s1 - s0) / window * 100),
            "bench_cpu_pct": round((b1 - b0) / window * 100),
            "other_cpu_pct": round(((m1 - m0) - (s1 - s0) - (b1 - b0)) / window * 100),
        }
    return record


def median(records: list[dict], *path: str) -> float:
    values = []
    for record in records:
        value: object = record
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return statistics.median(values) if values else float("nan")


def table(runs: dict[str, list[dict]], clients: int, senders: int) -> str:
    rows = [
        f"broadcast to {clients:,} receivers, {senders} senders (medians of "
        f"{max(len(r) for r in runs.values())} runs)",
        "",
        "| transport | deliveries/s | p50 ms | p99 ms | server µs/delivery "
        "| bench µs/delivery | other CPU % |",
        "|---|---|---|---|---|---|---|",
    ]
    for transport, records in runs.items():
        rows.append(
            f"| {NAMES[transport]} | {median(records, 'deliveries_per_s'):,.0f} "
            f"| {median(records, 'latency_ms', 'p50'):.2f} "
            f"| {median(records, 'latency_ms', 'p99'):.2f} "
            f"| {median(records, 'window', 'server_us_per_delivery'):.2f} "
            f"| {median(records, 'window', 'bench_us_per_delivery'):.2f} "
            f"| {median(records, 'window', 'other_cpu_pct'):.0f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--transports", nargs="+", choices=list(NAMES), default=list(NAMES))
    parser.add_argument("--out", type=Path, default=HERE / "results")
    options = parser.parse_args()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    options.out.mkdir(parents=True, exist_ok=True)
    out = options.out / f"web-{stamp}.jsonl"
    runs: dict[str, list[dict]] = {t: [] for t in options.transports}
    for round_ in range(1, options.rounds + 1):
        for transport in options.transports:
            print(f"round {round_}/{options.rounds}: {NAMES[transport]}", file=sys.stderr)
            started = time.monotonic()
            record = run_one(transport, options.clients, options.senders, options.duration)
            record["round"] = round_
            runs[transport].append(record)
            with out.open("a") as file:
                file.write(json.dumps(record) + "\n")
            print(
                f"  {record['deliveries_per_s']:,.0f} deliveries/s, p99 "
                f"{record['latency_ms']['p99']} ms, lost {record['lost']} "
                f"({time.monotonic() - started:.0f} s)",
                file=sys.stderr,
            )
    print(table(runs, options.clients, options.senders))
    print(f"\nruns: {out}")


if __name__ == "__main__":
    main()
