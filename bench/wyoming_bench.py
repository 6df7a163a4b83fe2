"""Lark's Wyoming server (`lark wyoming`) against wyoming-piper on the same voice and text.

Both servers run on loopback, one after the other in the same run, each warmed up first, and
are measured with the `wyoming` package's own client:
  - one client: time from sending `synthesize` to the first `audio-chunk` of the paragraph;
  - 4 clients at once: the p90 of their times to first audio chunk, and audio seconds per
    second (all four texts' audio over the wall time until the last audio-stop).
Rounds alternate the servers; medians are reported with Lark/wyoming-piper ratios.

Each measurement starts after a pause (`--settle`, 0.5 s): on this 2-core machine a server's
first sentence runs 20-30 ms slower right after the other server has worked (measured for both
servers alike), which says more about sharing two cores than about either server. `--settle 0`
measures back to back.
"""

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_bench import PARAGRAPH  # noqa: E402  (the same paragraph as bench/server)

from wyoming.audio import AudioChunk, AudioStop  # noqa: E402
from wyoming.client import AsyncTcpClient  # noqa: E402
from wyoming.error import Error  # noqa: E402
from wyoming.tts import Synthesize  # noqa: E402

VOICE = "en_US-joe-medium"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPS = os.path.join(ROOT, ".deps")


class Server:
    def __init__(self, name, command, port):
        self.name, self.port = name, port
        self.log = open(f"/tmp/lark-bench-wyoming-{name}.log", "w")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)

    async def wait(self):
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"{self.name} exited early; see /tmp/lark-bench-wyoming-{self.name}.log")
            try:
                await speak(self.port, "Warm up.")
                return
            except OSError:
                await asyncio.sleep(0.3)
        sys.exit(f"{self.name} did not start; see /tmp/lark-bench-wyoming-{self.name}.log")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


async def speak(port, text):
    """(seconds to the first audio chunk, seconds in all, seconds of audio)."""
    client = AsyncTcpClient("127.0.0.1", port, read_timeout=600)
    await client.connect()
    start = time.perf_counter()
    await client.write_event(Synthesize(text=text).event())
    first = None
    samples = 0
    while True:
        event = await client.read_event()
        if event is None:
            raise OSError("connection closed")
        if Error.is_type(event.type):
            sys.exit(f"error from the server on {port}: {event.data}")
        if AudioChunk.is_type(event.type):
            if first is None:
                first = time.perf_counter() - start
            chunk = AudioChunk.from_event(event)
            samples += len(chunk.audio) // 2
            rate = chunk.rate
        elif AudioStop.is_type(event.type):
            break
    total = time.perf_counter() - start
    await client.disconnect()
    return first, total, samples / rate


async def one_client(port):
    first, total, _ = await speak(port, PARAGRAPH)
    return first, total


async def four_clients(port):
    start = time.perf_counter()
    results = await asyncio.gather(*(speak(port, PARAGRAPH) for _ in range(4)))
    wall = time.perf_counter() - start
    return [r[0] for r in results], sum(r[2] for r in results) / wall


def p90(values):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lark", default=os.path.join(ROOT, ".build/release/lark"), help="the lark binary to measure")
    parser.add_argument("--lark-port", type=int, default=10301)
    parser.add_argument("--piper-port", type=int, default=10302)
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument("--settle", type=float, default=0.5, help="seconds of quiet before each measurement")
    args = parser.parse_args()

    load_before = os.getloadavg()
    lark = Server("lark", [
        args.lark, "wyoming", "--port", str(args.lark_port), "-m", VOICE,
        "--data-dir", os.path.join(DEPS, "voices"), "--espeak-data", DEPS,
    ], args.lark_port)
    piper = Server("wyoming-piper", [
        os.path.join(DEPS, "clients-venv/bin/python"), "-m", "wyoming_piper", "--voice", VOICE,
        "--data-dir", os.path.join(DEPS, "voices"), "--uri", f"tcp://127.0.0.1:{args.piper_port}",
    ], args.piper_port)
    servers = {"lark": lark, "piper": piper}
    figures = {name: {"first": [], "total": [], "p90_first_4": [], "audio_per_s_4": []} for name in servers}
    try:
        for server in servers.values():
            await server.wait()
            await speak(server.port, PARAGRAPH)  # the first long run of a session is slower
        for _ in range(args.rounds):
            for name, server in servers.items():
                await asyncio.sleep(args.settle)
                first, total = await one_client(server.port)
                figures[name]["first"].append(first)
                figures[name]["total"].append(total)
            for name, server in servers.items():
                await asyncio.sleep(args.settle)
                firsts, rate = await four_clients(server.port)
                figures[name]["p90_first_4"].append(p90(firsts))
                figures[name]["audio_per_s_4"].append(rate)
    finally:
        for server in servers.values():
            server.stop()
    load_after = os.getloadavg()

    medians = {name: {key: statistics.median(values) for key, values in f.items()} for name, f in figures.items()}
    rows = [
        ("1 client: first audio chunk (s)", "first", "≤ 0.8"),
        ("1 client: whole paragraph (s)", "total", ""),
        ("4 clients: p90 first audio chunk (s)", "p90_first_4", "≤ 0.3"),
        ("4 clients: audio seconds per second", "audio_per_s_4", "≥ 1.2"),
    ]
    print(f"rounds: {args.rounds} (medians), {args.settle:g} s of quiet before each measurement; load average before {load_before[0]:.1f}, after {load_after[0]:.1f}; "
          f"{os.cpu_count()} cores")
    print(f"| measure | Lark | wyoming-piper | Lark/wyoming-piper | target |")
    print(f"| --- | --- | --- | --- | --- |")
    for label, key, target in rows:
        lark_value, piper_value = medians["lark"][key], medians["piper"][key]
        print(f"| {label} | {lark_value:.3f} | {piper_value:.3f} | {lark_value / piper_value:.2f}× | {target} |")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"figures": figures, "medians": medians, "load": [load_before, load_after]}, out, indent=2)


if __name__ == "__main__":
    asyncio.run(main())
