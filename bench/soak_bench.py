"""Long load at twice the server's capacity, then hostile input, against one `lark serve`.

Phases, each bounded in time or count, all on loopback:
  1. warm-up: the mixed load below for WARMUP seconds; the resident memory and open file
     descriptors right after it (load drained) are the warm levels, compared with the drained
     levels after the soak;
  2. soak: 2 x capacity clients for MINUTES minutes (capacity: the live requests the admission
     point takes at once, workers plus queue, read from `/metrics`), resident memory and open
     descriptors sampled every SAMPLE seconds from /proc;
  3. fuzz: FUZZ requests with random methods, paths, parameters and bodies (one client);
     every 5xx is counted and printed;
  4. idle for IDLE seconds, then resident memory against the warm level.
The mixed load picks a route, a format and a text (one word to several paragraphs) per request:
`GET /`, `POST /` (Piper's), `GET /read` in pcm, wav, mp3, ogg_vorbis, ogg_opus and flac, OpenAI's
`POST /v1/audio/speech`, Polly's `POST /v1/speech` (SynthesizeSpeech), a job submitted then
fetched (status, and its audio once it succeeded), `GET /voices`, and a reader that reads slowly.
It checks, and exits non-zero when one fails: every answer is 200 (202 for a job submitted), 429
or 503 (others are counted and listed); resident memory under load stays within 10% of its first
sample after the warm-up, and the drained level after the soak within 10% of the warm level; open file descriptors come back to the warm count once the load drains (and the samples
under load show no trend); 503 answers come in 50 ms at the 99th percentile.
"""
import argparse
import http.client
import json
import os
import random
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

WORD = "Hello."
SHORT = "The quick brown fox jumps over the lazy dog."
THREE = ("Lark turns text into speech on your own machine. It streams the first sentence while the "
         "rest is still being made. Every voice runs with ONNX Runtime.")
PARAGRAPHS = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "text-300.txt")).read().strip()
# A word, a sentence, three sentences, and (less often: each takes seconds of every core) the
# 20-sentence text of bench/text-300.txt.
TEXTS = [WORD, SHORT, THREE, WORD, SHORT, THREE, PARAGRAPHS]
READ_FORMATS = ["pcm", "wav", "mp3", "ogg_vorbis", "ogg_opus", "flac"]
OPENAI_FORMATS = ["mp3", "opus", "aac", "flac", "wav", "pcm"]
POLLY_FORMATS = ["mp3", "ogg_vorbis", "pcm"]
JOB_FORMATS = ["wav", "mp3", "flac", "ogg_opus"]
ALLOWED = {200, 429, 503}
LATENCY_TARGET_S = 0.050


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


def open_descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Answer:
    """What one request got: its status (0 for no answer), seconds to the status line, body."""

    def __init__(self, status, seconds, body=b""):
        self.status, self.seconds, self.body = status, seconds, body


def request(port, method, path, body=None, headers=None, timeout=600, read_slowly=False):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.monotonic()
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        seconds = time.monotonic() - started
        if read_slowly and answer.status == 200:
            answer.read(4096)
            time.sleep(1.0)
        return Answer(answer.status, seconds, answer.read())
    except (OSError, http.client.HTTPException):
        return Answer(0, time.monotonic() - started)
    finally:
        connection.close()


def post_json(port, path, document, **options):
    return request(port, "POST", path, json.dumps(document), {"Content-Type": "application/json"}, **options)


class Tally:
    """Statuses by route, 503 latencies, and jobs submitted, shared by the client threads."""

    def __init__(self):
        self.lock = threading.RLock()
        self.statuses = {}
        self.unexpected = {}
        self.rejected_seconds = []
        self.jobs = []
        self.last_job = 0.0

    def count(self, route, answer, expected=ALLOWED):
        with self.lock:
            by_status = self.statuses.setdefault(route, {})
            by_status[answer.status] = by_status.get(answer.status, 0) + 1
            if answer.status not in expected:
                key = (route, answer.status)
                self.unexpected[key] = self.unexpected.get(key, 0) + 1
            if answer.status == 503:
                self.rejected_seconds.append(answer.seconds)
        return answer.status

    def total(self):
        with self.lock:
            return sum(sum(by_status.values()) for by_status in self.statuses.values())

    def clear(self):
        with self.lock:
            self.statuses.clear()
            self.unexpected.clear()
            self.rejected_seconds.clear()


def mixed_request(port, rng, tally):
    """One request of the mix, counted under its route; returns its status."""
    quoted = urllib.parse.quote
    text = rng.choice(TEXTS)
    choice = rng.randrange(11)
    if choice == 0:
        return tally.count("GET /", request(port, "GET", "/?text=" + quoted(text)))
    elif choice == 1:
        return tally.count("POST /", request(port, "POST", "/", text.encode(), {"Content-Type": "text/plain"}))
    elif choice in (2, 3, 4):
        fmt = rng.choice(READ_FORMATS)
        return tally.count(f"GET /read {fmt}", request(port, "GET", f"/read?outputFormat={fmt}&text=" + quoted(text)))
    elif choice == 5:
        fmt = rng.choice(OPENAI_FORMATS)
        body = {"model": "tts-1", "voice": "alloy", "input": text, "response_format": fmt}
        return tally.count(f"POST /v1/audio/speech {fmt}", post_json(port, "/v1/audio/speech", body))
    elif choice == 6:
        fmt = rng.choice(POLLY_FORMATS)
        body = {"Text": text, "VoiceId": "en_US-joe-medium", "OutputFormat": fmt}
        return tally.count(f"POST /v1/speech {fmt}", post_json(port, "/v1/speech", body))
    elif choice == 7:
        return job(port, rng, tally)
    elif choice == 8:
        return tally.count("GET /voices", request(port, "GET", "/voices"))
    elif choice == 9:
        body = {"text": text, "stream": True, "format": rng.choice(["mp3", "ogg_opus"])}
        return tally.count("POST /api/v1/speech", post_json(port, "/api/v1/speech", body))
    else:
        return tally.count("GET /read wav, slow reader",
                           request(port, "GET", "/read?outputFormat=wav&text=" + quoted(text), read_slowly=True))


JOB_INTERVAL_S = 5.0


def job(port, rng, tally):
    """Submits a short job (one every JOB_INTERVAL_S across all clients: jobs wait while live
    requests keep the server full, and all run once the load stops), then reads back one
    earlier job: its status, and its audio once it succeeded."""
    with tally.lock:
        submit = time.monotonic() - tally.last_job >= JOB_INTERVAL_S
        if submit:
            tally.last_job = time.monotonic()
    if submit:
        body = {"text": rng.choice([WORD, SHORT, THREE]), "format": rng.choice(JOB_FORMATS)}
        answer = post_json(port, "/api/v1/jobs", body)
        tally.count("POST /api/v1/jobs", answer, ALLOWED | {202})
        if answer.status == 202:
            with tally.lock:
                tally.jobs.append(json.loads(answer.body)["id"])
    with tally.lock:
        earlier = rng.choice(tally.jobs) if tally.jobs else None
    if earlier is None:
        return 200
    answer = request(port, "GET", f"/api/v1/jobs/{earlier}")
    tally.count("GET /api/v1/jobs/:id", answer)
    if answer.status == 200 and json.loads(answer.body)["status"] == "succeeded":
        return tally.count("GET /api/v1/jobs/:id/audio", request(port, "GET", f"/api/v1/jobs/{earlier}/audio"))
    return answer.status


def run_load(port, seconds, clients, tally):
    deadline = time.monotonic() + seconds

    def client(seed):
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            if mixed_request(port, rng, tally) == 503:
                # As a client honouring Retry-After would, though sooner: the server stays full.
                time.sleep(0.5)

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(clients)]
    for thread in threads:
        thread.start()
    return threads


def capacity(port):
    """Live requests the server admits at once (workers plus queue), from its metrics."""
    text = request(port, "GET", "/metrics").body.decode()
    for line in text.splitlines():
        if line.startswith("lark_synthesis_capacity"):
            return int(float(line.split()[-1]))
    sys.exit("the server's /metrics has no lark_synthesis_capacity")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def drained(port, pid, tally, label):
    """Resident memory and open descriptors once nothing is in flight: the jobs submitted under
    the load (which wait while live requests fill the server) ended, and a moment to settle."""
    with tally.lock:
        submitted, tally.jobs = list(tally.jobs), []
    ended = wait_for_jobs(port, submitted, 600)
    print(f"jobs submitted during the {label}: {len(submitted)}, ended {ended}", flush=True)
    time.sleep(3)
    return resident_mib(pid), open_descriptors(pid), ended


PATHS = ["/", "/synthesize", "/voices", "/read", "/api/v1/speech", "/api/v1/voices", "/api/v1/jobs",
         "/api/v1/jobs/1", "/api/texts", "/files/x", "/healthz", "/readyz", "/metrics", "/static/app.js",
         "/api/v1/voices/en_US-joe-medium/download", "/v1/audio/speech", "/v1/speech", "/nope", "/%00", "/" + "a" * 3000]
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
        fields = {rng.choice(PARAMETERS + ["stream", "callback_url", "marks", "input", "Text"]): random_value(rng)
                  for _ in range(rng.randrange(0, 6))}
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
    return request(port, method, target, body, headers, timeout=120).status


def wait_for_jobs(port, ids, seconds):
    """How the jobs submitted during the load ended, waiting up to `seconds` for them."""
    deadline = time.monotonic() + seconds
    pending = set(ids)
    ended = {}
    while pending and time.monotonic() < deadline:
        for identifier in list(pending):
            answer = request(port, "GET", f"/api/v1/jobs/{identifier}")
            status = json.loads(answer.body)["status"] if answer.status == 200 else f"HTTP {answer.status}"
            if status not in ("queued", "running"):
                ended[status] = ended.get(status, 0) + 1
                pending.discard(identifier)
        if pending:
            time.sleep(1)
    if pending:
        ended["still queued or running"] = len(pending)
    return ended


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lark", default=".build/release/lark")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=60)
    parser.add_argument("--sample", type=float, default=30, help="seconds between memory and descriptor samples")
    parser.add_argument("--fuzz", type=int, default=2000)
    parser.add_argument("--idle", type=float, default=30)
    parser.add_argument("--clients", type=int, help="clients (default: twice the server's capacity)")
    parser.add_argument("--serve-args", default="", help="extra `lark serve` arguments, e.g. \"--max-queue 8\"")
    args = parser.parse_args()
    # Stopped from outside: still stop the server (the `finally` below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    port = free_port()
    jobs = tempfile.mkdtemp(prefix="lark-soak-")
    log = open(os.path.join(jobs, "server.log"), "w")
    command = [args.lark, "serve", "--port", str(port), "--jobs-dir", jobs, "--data-dir", ".deps/voices",
               "--espeak-data", ".deps", "-m", "en_US-joe-medium"] + args.serve_args.split()
    server = subprocess.Popen(command, stdout=log, stderr=log)
    failures = []
    try:
        for _ in range(600):
            if request(port, "GET", "/readyz", timeout=2).status == 200:
                break
            time.sleep(0.1)
        else:
            sys.exit("lark serve did not become ready")
        admitted = capacity(port)
        clients = args.clients or 2 * admitted
        print(f"server: {' '.join(command[1:])}", flush=True)
        print(f"capacity {admitted} live requests (workers + queue); {clients} clients", flush=True)
        tally = Tally()
        started = time.monotonic()
        print(f"idle after start: {resident_mib(server.pid):.0f} MiB, {open_descriptors(server.pid)} descriptors", flush=True)
        for thread in run_load(port, args.warmup, clients, tally):
            thread.join()
        warm, warm_fds, _ = drained(port, server.pid, tally, "warm-up")
        print(f"warm level after {args.warmup:.0f} s of load: {warm:.0f} MiB, {warm_fds} descriptors "
              f"({tally.total()} requests)", flush=True)

        tally.clear()
        soak_started = time.monotonic()
        threads = run_load(port, args.minutes * 60, clients, tally) if args.minutes > 0 else []
        samples = []
        while True:
            left = soak_started + args.minutes * 60 - time.monotonic()
            if left < 1:
                break
            time.sleep(min(args.sample, left))
            rss, fds = resident_mib(server.pid), open_descriptors(server.pid)
            samples.append((time.monotonic() - soak_started, rss, fds))
            print(f"soak {samples[-1][0]:4.0f} s: {rss:.0f} MiB ({rss / warm:.3f}x warm), {fds} descriptors, "
                  f"{tally.total()} requests", flush=True)
        for thread in threads:
            thread.join()
        after, after_fds, ended = drained(port, server.pid, tally, "soak")
        if samples:
            # Like against like: the samples under load against the first one under load (the
            # arena then holds the runs in flight), and the drained level after the soak against
            # the drained level after the warm-up.
            sizes = [rss for _, rss, _ in samples]
            loaded = sizes[0]
            worst = max(abs(size - loaded) for size in sizes) / loaded
            drift = (after - warm) / warm
            print(f"soak: resident under load {min(sizes):.0f}-{max(sizes):.0f} MiB, furthest from the first sample "
                  f"{100 * worst:.1f}%; drained {warm:.0f} MiB before, {after:.0f} MiB after ({100 * drift:+.1f}%)", flush=True)
            if worst > 0.10:
                failures.append(f"resident memory under load moved {100 * worst:.1f}% from its first sample (limit 10%)")
            if abs(drift) > 0.10:
                failures.append(f"drained resident memory moved {100 * drift:+.1f}% over the soak (limit 10%)")
            counts = [fds for _, _, fds in samples]
            half = len(counts) // 2
            trend = (sum(counts[half:]) / max(1, len(counts) - half)) - (sum(counts[:half]) / max(1, half))
            print(f"descriptors: warm {warm_fds}, under load {min(counts)}-{max(counts)} (second half minus first "
                  f"half {trend:+.1f}), drained {after_fds}", flush=True)
            if after_fds > warm_fds + 2:
                failures.append(f"open descriptors grew from {warm_fds} to {after_fds} once drained")
        with tally.lock:
            print(f"requests: {tally.total()} in {args.minutes:g} min", flush=True)
            for route, by_status in sorted(tally.statuses.items()):
                print(f"  {route}: {dict(sorted(by_status.items()))}", flush=True)
            if tally.unexpected:
                failures.append(f"unexpected answers: {tally.unexpected}")
                print(f"unexpected answers (route, status): count: {tally.unexpected}", flush=True)
            rejected = list(tally.rejected_seconds)
        p50, p99 = percentile(rejected, 0.5), percentile(rejected, 0.99)
        print(f"503 answers: {len(rejected)}, time to status p50 {1000 * p50:.1f} ms, p99 {1000 * p99:.1f} ms, "
              f"max {1000 * max(rejected, default=float('nan')):.1f} ms (measured by the clients)", flush=True)
        if rejected and p99 > LATENCY_TARGET_S:
            failures.append(f"503 answers took {1000 * p99:.1f} ms at p99 (target {1000 * LATENCY_TARGET_S:.0f} ms)")
        if not rejected and args.minutes > 0:
            failures.append("no 503 at twice the capacity: the load did not reach the admission limit")
        if set(ended) - {"succeeded"}:
            failures.append(f"jobs did not all succeed: {ended}")

        rng = random.Random(2048)
        statuses = {}
        server_errors = []
        for index in range(args.fuzz):
            status = fuzz_request(port, rng)
            statuses[status] = statuses.get(status, 0) + 1
            if status >= 500 or status == 0:
                server_errors.append((index, status))
        if args.fuzz:
            after_fuzz = resident_mib(server.pid)
            print(f"fuzz: {args.fuzz} requests, statuses {dict(sorted(statuses.items()))}, 5xx or no answer: "
                  f"{len(server_errors)} {server_errors[:10]}; resident {after_fuzz:.0f} MiB", flush=True)
            if server_errors:
                failures.append(f"fuzz: {len(server_errors)} 5xx or unanswered")
        time.sleep(args.idle)
        idle = resident_mib(server.pid)
        print(f"after {args.idle:.0f} s idle: {idle:.0f} MiB = {idle / warm:.2f}x the warm level, "
              f"{open_descriptors(server.pid)} descriptors (total {time.monotonic() - started:.0f} s)", flush=True)
        serving = request(port, "GET", "/?text=Still%20here.").status == 200
        print(f"server still serving: {serving}")
        if not serving:
            failures.append("the server stopped serving")
    finally:
        server.terminate()
        server.wait()
    print("PASS" if not failures else "FAIL: " + "; ".join(failures), flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
