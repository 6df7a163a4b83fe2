"""Starting and stopping the real servers the client tests talk to: `lark serve` and moto_server."""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request


def wait_for(url, process, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not answer {url} within {seconds} s")


class Server:
    """A process started with a log file, stopped (and its log shown on failure) on exit."""

    def __init__(self, argv, health_url, what, env=None, seconds=60):
        self.what = what
        self.log = tempfile.NamedTemporaryFile(prefix="lark-client-test-", suffix=".log", delete=False)
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        try:
            wait_for(health_url, self.process, seconds, what)
        except BaseException:
            self.stop(show_log=True)
            raise

    def stop(self, show_log=False):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        if show_log:
            with open(self.log.name, errors="replace") as log:
                sys.stderr.write(f"--- {self.what} log ---\n" + log.read()[-6000:])
        os.unlink(self.log.name)


def lark(binary, port, arguments, env=None):
    return Server([binary, "serve", "--port", str(port)] + arguments, f"http://127.0.0.1:{port}/healthz", "lark serve", env=env)


def moto(executable, port):
    return Server([executable, "-H", "127.0.0.1", "-p", str(port)], f"http://127.0.0.1:{port}/moto-api/data.json", "moto_server")


def ffprobe(path, raw=None):
    """The first audio stream's codec, rate and duration, as ffprobe reads the file (`raw`: a
    headerless format's ffmpeg options, e.g. ["-f", "s16le", "-ar", "24000", "-ac", "1"])."""
    command = ["ffprobe", "-v", "error"] + (raw or []) + ["-show_entries", "stream=codec_name,sample_rate:format=duration",
                                                          "-of", "json", path]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"ffprobe could not read {path}: {result.stderr}")
    info = json.loads(result.stdout)
    stream = info["streams"][0]
    duration = float(info.get("format", {}).get("duration") or 0)
    if duration == 0:
        # A stream written without sizes (streamed WAV): decode it to count.
        decoded = subprocess.run(["ffmpeg", "-v", "error"] + (raw or []) + ["-i", path, "-f", "s16le", "-ac", "1", "-"],
                                 capture_output=True)
        duration = len(decoded.stdout) / 2 / int(stream["sample_rate"])
    return stream["codec_name"], int(stream["sample_rate"]), duration


class Checks:
    """Counts checks; each failure is printed and the script exits 1 at the end."""

    def __init__(self, name):
        self.name = name
        self.failures = []
        self.count = 0

    def check(self, condition, message):
        self.count += 1
        if not condition:
            self.failures.append(message)
            print(f"FAIL: {message}", flush=True)

    def finish(self):
        if self.failures:
            print(f"[{self.name}] {len(self.failures)} of {self.count} checks failed", flush=True)
            sys.exit(1)
        print(f"[{self.name}] all {self.count} checks passed", flush=True)
