"""Long load and hostile input against one `lark serve`, watching its resident memory.

Phases, each bounded in time or count, all on loopback:
  1. warm-up: the mixed load below for WARMUP seconds; the resident memory at its end is the
     warm level;
  2. soak: 16 clients for MINUTES minutes, resident memory printed every minute (and its
     spread against the warm level);
  3. fuzz: FUZZ requests with random methods, paths, parameters and bodies (one client);
     every 5xx is counted and printed;
  4. idle for IDLE seconds, then resident memory against the warm level.
The mixed load: short and 3-sentence `GET /`, `POST /synthesize` (JSON), `/read` streams in
pcm, mp3 and ogg_opus, `POST /api/v1/speech` with `stream: true`, and a reader that reads
slowly (4 KiB then stops for a moment).
"""
import argparse
import http.client
import json
import os
import random
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

SHORT = "The quick brown fox jumps over the lazy dog."
THREE = ("Lark turns text into speech on your own machine. It streams the first sentence while the "
         "rest is still being made. Every voice runs with ONNX Runtime.")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def resident_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def request(port, method, path, body=None, headers=None, timeout=60, read_slowly=False):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        if read_slowly:
            answer.read(4096)
            time.sleep(1.0)
        answer.read()
        return answer.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        connection.close()


def mixed_request(port, rng):
    choice = rng.randrange(8)
    quoted = urllib.parse.quote
    if choice == 0:
        return request(port, "GET", "/?text=" + quoted(SHORT))
    if choice == 1:
        return request(port, "GET", "/?text=" + quoted(THREE))
    if choice == 2:
        return request(port, "POST", "/synthesize", json.dumps({"text": THREE}), {"Content-Type": "application/json"})
    if choice in (3, 4, 5):
        fmt = ("pcm", "mp3", "ogg_opus")[choice - 3]
        return request(port, "GET", f"/read?outputFormat={fmt}&text=" + quoted(THREE))
    if choice == 6:
        body = json.dumps({"text": THREE, "stream": True, "format": "mp3"})
        return request(port, "POST", "/api/v1/speech", body, {"Content-Type": "application/json"})
    return request(port, "GET", "/read?outputFormat=wav&text=" + quoted(THREE), read_slowly=True)


def run_load(port, seconds, clients, counts, lock):
    deadline = time.monotonic() + seconds

    def client(seed):
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            status = mixed_request(port, rng)
            with lock:
                counts[status] = counts.get(status, 0) + 1

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(clients)]
    for thread in threads:
        thread.start()
    return threads


PATHS = ["/", "/synthesize", "/voices", "/read", "/api/v1/speech", "/api/v1/voices", "/api/v1/jobs",
         "/api/v1/jobs/1", "/api/texts", "/files/x", "/healthz", "/readyz", "/metrics", "/static/app.js",
         "/api/v1/voices/en_US-joe-medium/download", "/nope", "/%00", "/" + "a" * 3000]
PARAMETERS = ["text", "voice", "voiceId", "speaker", "length_scale", "noise_scale", "noise_w", "sentence_silence",
              "format", "outputFormat", "sample_rate", "bitrate", "available", "language"]


def random_value(rng):
    kind = rng.randrange(7)
    if kind == 0:
        return str(rng.choice([-1, 0, 1, 2, 5, 60, 1e9, -1e9, float("nan"), 3.5]))
    if kind == 1:
        return "".join(rng.choice(string.printable) for _ in range(rng.randrange(1, 40)))
    if kind == 2:
        return "a" + "\u0301" * rng.randrange(1, 2000)
    if kind == 3:
        return "\U0001F600" * rng.randrange(1, 300)
    if kind == 4:
        return rng.choice(["en_US-joe-medium", "espeak-ng:en-us", "espeak-ng:fr", "../etc/passwd", "mp3", "wav", "ogg_opus"])
    if kind == 5:
        return "Hi. " * rng.randrange(1, 30)
    return ""


def fuzz_request(port, rng):
    method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
    path = rng.choice(PATHS)
    query = urllib.parse.urlencode({rng.choice(PARAMETERS): random_value(rng) for _ in range(rng.randrange(0, 5))})
    target = path + ("?" + query if query else "")
    body = None
    headers = {}
    kind = rng.randrange(6)
    if kind == 1:
        fields = {rng.choice(PARAMETERS + ["stream", "callback_url", "marks"]): random_value(rng) for _ in range(rng.randrange(0, 6))}
        if rng.random() < 0.7:
            fields["text"] = random_value(rng)
        body = json.dumps(fields)
        headers["Content-Type"] = "application/json"
    elif kind == 2:
        body = "{" + random_value(rng)
        headers["Content-Type"] = rng.choice(["application/json", "text/plain", "application/x-www-form-urlencoded"])
    elif kind == 3:
        body = os.urandom(rng.randrange(1, 200_000))
        headers["Content-Type"] = "application/octet-stream"
    elif kind == 4:
        body = random_value(rng).encode("utf-8", "surrogatepass")
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    return request(port, method, target, body, headers, timeout=120)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lark", default=".build/release/lark")
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--warmup", type=float, default=60)
    parser.add_argument("--fuzz", type=int, default=2000)
    parser.add_argument("--idle", type=float, default=30)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()

    port = free_port()
    jobs = tempfile.mkdtemp(prefix="lark-soak-")
    log = open(os.path.join(jobs, "server.log"), "w")
    server = subprocess.Popen(
        [args.lark, "serve", "--port", str(port), "--jobs-dir", jobs, "--max-queue", "32"], stdout=log, stderr=log)
    try:
        for _ in range(600):
            if request(port, "GET", "/readyz", timeout=2) == 200:
                break
            time.sleep(0.1)
        else:
            sys.exit("lark serve did not become ready")
        lock = threading.Lock()
        counts = {}
        started = time.monotonic()
        print(f"idle after start: {resident_mib(server.pid):.0f} MiB", flush=True)
        for thread in run_load(port, args.warmup, args.clients, counts, lock):
            thread.join()
        warm = resident_mib(server.pid)
        print(f"warm level after {args.warmup:.0f} s of load: {warm:.0f} MiB ({sum(counts.values())} requests)", flush=True)

        counts.clear()
        threads = run_load(port, args.minutes * 60, args.clients, counts, lock) if args.minutes > 0 else []
        samples = []
        for minute in range(1, int(args.minutes) + 1):
            time.sleep(60)
            rss = resident_mib(server.pid)
            samples.append(rss)
            with lock:
                done = dict(counts)
            print(f"soak minute {minute}: {rss:.0f} MiB ({rss / warm:.2f}x warm), statuses so far {done}", flush=True)
        for thread in threads:
            thread.join()
        if samples:
            print(f"soak: resident {min(samples):.0f}-{max(samples):.0f} MiB, spread {100 * (max(samples) - min(samples)) / warm:.1f}% "
                  f"of warm; every status {dict(counts)}", flush=True)

        rng = random.Random(2048)
        statuses = {}
        server_errors = []
        for index in range(args.fuzz):
            status = fuzz_request(port, rng)
            statuses[status] = statuses.get(status, 0) + 1
            if status >= 500 or status == 0:
                server_errors.append((index, status))
        after_fuzz = resident_mib(server.pid)
        print(f"fuzz: {args.fuzz} requests, statuses {dict(sorted(statuses.items()))}, 5xx or no answer: {len(server_errors)} "
              f"{server_errors[:10]}; resident {after_fuzz:.0f} MiB", flush=True)
        time.sleep(args.idle)
        idle = resident_mib(server.pid)
        print(f"after {args.idle:.0f} s idle: {idle:.0f} MiB = {idle / warm:.2f}x the warm level "
              f"(total {time.monotonic() - started:.0f} s)", flush=True)
        print(f"server still serving: {request(port, 'GET', '/?text=Still%20here.') == 200}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
