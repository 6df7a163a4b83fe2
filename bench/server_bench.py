"""Lark's server against Piper 1.8's own `piper.http_server`, in the same run, same voice.

Measures, for each server:
  - a 10-sentence paragraph: time to the first audio byte and total (Lark streams it from
    /read; Piper's server answers /synthesize in one piece, so its first byte is its total);
  - POST /synthesize under load, a short sentence and a 3-sentence text, at concurrency 1, 4, 16:
    requests/s, audio seconds per second, p50 and p99 latency, errors;
  - resident memory after the load (VmRSS) and its peak (VmHWM).
Prints a table with Lark/Piper ratios; `--png FILE` also draws a chart (needs matplotlib).
Standard library only, so it runs in Piper's venv.
"""

import argparse
import concurrent.futures
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse

SHORT = "The quick brown fox jumps over the lazy dog."
THREE = ("Lark turns text into speech on your own machine. It streams the first sentence while the "
         "rest is still being made. Every voice runs with ONNX Runtime.")
PARAGRAPH = " ".join([
    "The morning train was late again, and the platform filled with people holding coffee.",
    "Nobody seemed surprised; the announcement had become part of the routine.",
    "A child pointed at the pigeons and laughed at the way they marched.",
    "Her father checked his watch, sighed, and read the timetable for the third time.",
    "Somewhere behind them a musician opened a guitar case and began to play.",
    "The song was old, something about rivers and the long way home.",
    "A few coins landed in the case, then a few more.",
    "When the train finally arrived, the doors opened with a tired hiss.",
    "Everyone stepped inside at once, and the music followed them in.",
    "For a moment the whole carriage was quiet, listening.",
])


class Server:
    def __init__(self, name, command, port, ready_path):
        self.name, self.port = name, port
        self.log = open(f"/tmp/lark-bench-{name}.log", "w")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"{name} exited early; see /tmp/lark-bench-{name}.log")
            try:
                status, _, _, _ = request(port, "GET", ready_path)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        sys.exit(f"{name} did not start; see /tmp/lark-bench-{name}.log")

    def memory_kib(self):
        fields = {}
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def request(port, method, path, body=None, headers=None):
    """Returns (status, body bytes, seconds to the first body byte, seconds in all)."""
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    first = response.read(1)
    first_at = time.perf_counter() - start
    rest = response.read()
    total = time.perf_counter() - start
    connection.close()
    return response.status, first + rest, first_at, total


def synthesize(port, text):
    body = json.dumps({"text": text}).encode()
    return request(port, "POST", "/synthesize", body, {"Content-Type": "application/json"})


def wav_seconds(data, sample_rate=22050):
    return max(0, len(data) - 44) / 2 / sample_rate


def paragraph(server, rounds):
    results = []
    for _ in range(rounds):
        if server.name == "lark":
            query = urllib.parse.urlencode({"text": PARAGRAPH, "outputFormat": "pcm"})
            status, data, first, total = request(server.port, "GET", "/read?" + query)
        else:
            status, data, first, total = synthesize(server.port, PARAGRAPH)
        if status != 200:
            sys.exit(f"{server.name}: paragraph answered {status}")
        results.append((first, total))
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def load(server, text, concurrency, count):
    latencies, audio, errors = [], 0.0, 0
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        for status, data, _, total in pool.map(lambda _: synthesize(server.port, text), range(count)):
            if status == 200:
                latencies.append(total)
                audio += wav_seconds(data)
            else:
                errors += 1
    elapsed = time.perf_counter() - start
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))] if latencies else float("nan")
    return {
        "rps": len(latencies) / elapsed, "audio_per_s": audio / elapsed,
        "p50": statistics.median(latencies) if latencies else float("nan"), "p99": p99, "errors": errors,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lark", default=".build/release/lark")
    parser.add_argument("--voice", default="en_US-joe-medium")
    parser.add_argument("--data-dir", default=".deps/voices")
    parser.add_argument("--rounds", type=int, default=3, help="paragraph rounds (median reported)")
    parser.add_argument("--requests-per-client", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure each load level this many times, alternating servers (medians reported)")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--png", help="also draw a chart here (needs matplotlib)")
    parser.add_argument("--lark-args", default="", help="extra `lark serve` arguments, e.g. \"--threads 2\"")
    parser.add_argument("--only", choices=["lark", "piper"], help="measure one server (no ratios)")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    base = 12000 + os.getpid() % 6000  # below the ephemeral port range (32768 and up)
    servers = {
        "lark": lambda: Server("lark", [args.lark, "serve", "--port", str(base), "-m", args.voice,
                                        "--data-dir", args.data_dir] + args.lark_args.split(), base, "/readyz"),
        "piper": lambda: Server("piper", [sys.executable, "-m", "piper.http_server", "--host", "127.0.0.1", "--port", str(base + 1),
                                          "-m", args.voice, "--data-dir", args.data_dir], base + 1, "/voices"),
    }
    names = [args.only] if args.only else list(servers)
    print("starting " + " and ".join(names), file=sys.stderr)
    running = {name: servers[name]() for name in names}
    results = {}
    try:
        # Both servers stay up (an idle one costs no CPU) and every measurement is taken on each
        # in turn, so a slow spell of this machine falls on both rather than on one.
        for name, server in running.items():
            synthesize(server.port, "Warming up.")
            results[name] = {"idle_rss_kib": server.memory_kib()[0], "load": {}}
        for name, server in running.items():
            first, total = paragraph(server, args.rounds)
            results[name].update(paragraph_first_s=first, paragraph_total_s=total)
        for label, text in (("short", SHORT), ("3-sentence", THREE)):
            for concurrency in levels:
                count = max(8, concurrency * args.requests_per_client)
                samples = {name: [] for name in running}
                for _ in range(args.repeat):
                    for name, server in running.items():
                        print(f"{name}: {label} c={concurrency}", file=sys.stderr)
                        samples[name].append(load(server, text, concurrency, count))
                for name in running:
                    results[name]["load"][f"{label}@{concurrency}"] = {
                        key: statistics.median(sample[key] for sample in samples[name]) for key in samples[name][0]
                    }
                    # Each repeat's own rate too: with both servers, the pairs measured back to back.
                    results[name]["load"][f"{label}@{concurrency}"]["audio_per_s_each"] = [s["audio_per_s"] for s in samples[name]]
        time.sleep(1)
        for name, server in running.items():
            results[name]["rss_kib"], results[name]["peak_rss_kib"] = server.memory_kib()
    finally:
        for server in running.values():
            server.stop()

    if args.only:
        print(json.dumps(results, indent=1))
        return
    lark, piper = results["lark"], results["piper"]
    print(f"{'measure':<34} | {'Lark':>10} | {'Piper':>10} | {'Lark/Piper':>10}")
    print("-" * 74)

    def row(label, a, b, fmt="{:.3f}"):
        ratio = a / b if b else float("nan")
        print(f"{label:<34} | {fmt.format(a):>10} | {fmt.format(b):>10} | {ratio:>10.3f}")

    row("paragraph: first audio byte (s)", lark["paragraph_first_s"], piper["paragraph_first_s"])
    row("paragraph: total (s)", lark["paragraph_total_s"], piper["paragraph_total_s"])
    row("paragraph: Lark first / Piper total", lark["paragraph_first_s"], piper["paragraph_total_s"])
    for key in lark["load"]:
        a, b = lark["load"][key], piper["load"][key]
        row(f"{key} requests/s", a["rps"], b["rps"], "{:.2f}")
        row(f"{key} audio s/s", a["audio_per_s"], b["audio_per_s"], "{:.1f}")
        row(f"{key} p50 (s)", a["p50"], b["p50"])
        row(f"{key} p99 (s)", a["p99"], b["p99"])
        if len(a["audio_per_s_each"]) > 1:
            pairs = ", ".join(f"{x / y:.2f}" for x, y in zip(a["audio_per_s_each"], b["audio_per_s_each"]) if y)
            print(f"{key + ' audio s/s, by repeat':<34} | Lark/Piper of each back-to-back pair: {pairs}")
        if a["errors"] or b["errors"]:
            print(f"{key}: errors: Lark {a['errors']}, Piper {b['errors']}")
    row("RSS idle (MiB)", lark["idle_rss_kib"] / 1024, piper["idle_rss_kib"] / 1024, "{:.0f}")
    row("RSS after load (MiB)", lark["rss_kib"] / 1024, piper["rss_kib"] / 1024, "{:.0f}")
    row("peak RSS (MiB)", lark["peak_rss_kib"] / 1024, piper["peak_rss_kib"] / 1024, "{:.0f}")
    print(f"load: POST /synthesize (whole WAV) on both; requests per level = max(8, {args.requests_per_client} x concurrency); "
          f"median of {args.repeat} alternating repeat(s)")

    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    if args.png:
        draw(results, levels, args.png)


def draw(results, levels, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("--png needs matplotlib in this Python (pip install matplotlib)")
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, label in zip(axes, ("short", "3-sentence")):
        for name in ("lark", "piper"):
            axis.plot(levels, [results[name]["load"][f"{label}@{c}"]["audio_per_s"] for c in levels], marker="o", label=name)
        axis.set_title(f"{label}: audio seconds per second")
        axis.set_xlabel("concurrent clients")
        axis.set_xscale("log", base=2)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path)


if __name__ == "__main__":
    main()
