"""Which threads make a streamed paragraph: the CPU seconds of each `lark serve` thread during one
GET /read of bench/server's paragraph, servers alternated round by round. A run that is `alone`
uses the voice's wide session, whose second ONNX Runtime intra-op thread then works beside the
inference thread (`TP-#n`); narrow runs use the inference threads only.

Usage: python3 bench/paragraph_threads.py ROUNDS NAME=BINARY[:EXTRA SERVE ARGS] ...
  e.g. python3 bench/paragraph_threads.py 3 jobs=.build/release/lark "nojobs=.build/release/lark:--job-workers 0"
"""
import os, subprocess, sys, time, urllib.parse
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_bench import PARAGRAPH, request, synthesize
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
tick = os.sysconf("SC_CLK_TCK")
def threads(pid):
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{t}/stat").read()
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            f = stat[stat.rindex(")") + 2:].split()
            out[t] = (name, (int(f[11]) + int(f[12])) / tick)
        except OSError: pass
    return out
specs = [(a.split("=", 1)[0], a.split("=", 1)[1].split(":")[0], a.split(":", 1)[1].split() if ":" in a else []) for a in sys.argv[2:]]
rounds = int(sys.argv[1])
servers = []
for i, (name, binary, extra) in enumerate(specs):
    port = 12000 + os.getpid() % 6000 + i
    p = subprocess.Popen([binary, "serve", "--port", str(port), "-m", "en_US-joe-medium", "--data-dir", ".deps/voices",
                          "--jobs-dir", f"/tmp/lark-paragraph-threads-jobs-{name}"] + extra, stdout=open(f"/tmp/lark-paragraph-threads-{name}.log", "w"), stderr=subprocess.STDOUT)
    servers.append((name, p, port))
for name, p, port in servers:
    for _ in range(600):
        try:
            if request(port, "GET", "/readyz")[0] == 200: break
        except OSError: pass
        time.sleep(0.2)
    synthesize(port, PARAGRAPH)
try:
    for r in range(rounds):
        for name, p, port in servers:
            before = threads(p.pid)
            q = urllib.parse.urlencode({"text": PARAGRAPH, "outputFormat": "pcm"})
            s, d, first, total = request(port, "GET", "/read?" + q)
            after = threads(p.pid)
            deltas = sorted(((after[t][1] - before.get(t, (None, 0))[1], after[t][0]) for t in after), reverse=True)[:3]
            print(f"{name:8s} total {total:6.2f}s  busiest threads (cpu s): " + ", ".join(f"{n}={d:.2f}" for d, n in deltas), flush=True)
finally:
    for _, p, _ in servers: p.terminate()
