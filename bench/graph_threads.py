"""Times ONNX graphs of one voice against each other in ONNX Runtime, interleaved in one run, at
1 and 2 intra-op threads: Piper's model as it is, and Lark's rewritten graphs (an entry of the
optimized-voice cache, `~/.cache/lark/<voice>.<key>.onnx`, loads with basic optimizations only,
as Lark loads it). With --profile it also lists, from ONNX Runtime's per-node profile, the nodes
that gain least from the second thread, and counts the elementwise kernels per text.

Usage (Piper's venv has ONNX Runtime and the phonemizer):
  .deps/piper-venv/bin/python bench/graph_threads.py \
      --graph piper=.deps/voices/en_US-joe-medium.onnx --graph lark=~/.cache/lark/en_US-joe-medium.<key>.onnx:basic
On a loaded machine the second thread's figures mean nothing unless the run has the cores to
itself (for a short run: `chrt -f 10` before the command)."""

import argparse
import collections
import json
import os
import statistics
import time

import numpy as np
import onnxruntime
from piper import PiperVoice

ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "LeakyRelu", "Relu", "Tanh", "Sigmoid", "Pow", "Sqrt", "Exp", "Neg", "Softplus", "Gelu"}


def session(path, basic, threads, profile_prefix=None):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = (onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC if basic
                                        else onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL)
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def feeds(ids):
    # Noise on, as Piper synthesizes (timing does not depend on it).
    return {"input": np.array([ids], dtype=np.int64), "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array([0.667, 1.0, 0.8], dtype=np.float32)}


def kernel_times(profile_path):
    """Per node: total kernel microseconds and op type; per op type: kernel count."""
    with open(profile_path) as handle:
        events = json.load(handle)
    times, ops, counts = collections.Counter(), {}, collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            node = event["name"][: -len("_kernel_time")]
            times[node] += event["dur"]
            ops[node] = event["args"]["op_name"]
            # Elementwise work on float tensors (not the int64 shape arithmetic of a few values).
            if ops[node] in ELEMENTWISE and any("float" in shape for shape in event["args"].get("input_type_shape", [])):
                counts[ops[node]] += 1
    return times, ops, counts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--graph", action="append", required=True, help="name=path, with :basic for a Lark cache entry")
    parser.add_argument("--voice", default=".deps/voices/en_US-joe-medium.onnx", help="the Piper voice (for its phonemes)")
    parser.add_argument("--text-file", default="bench/text-300.txt")
    parser.add_argument("--sentences", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    voice = PiperVoice.load(args.voice)
    with open(args.text_file, encoding="utf-8") as handle:
        sentences = [voice.phonemes_to_ids(phonemes) for phonemes in voice.phonemize(handle.read())]
    graphs = []
    for entry in args.graph:
        name, path = entry.split("=", 1)
        basic = path.endswith(":basic")
        graphs.append((name, os.path.expanduser(path[: -len(":basic")] if basic else path), basic))

    if args.profile:
        for name, path, basic in graphs:
            times = {}
            for threads in (1, 2):
                run = session(path, basic, threads, profile_prefix=f"/tmp/graph-threads-{name}-{threads}")
                for ids in sentences:
                    run.run(None, feeds(ids))
                times[threads], ops, counts = kernel_times(run.end_profiling())
            one, two = sum(times[1].values()), sum(times[2].values())
            print(f"== {name}: {len(sentences)} sentences, kernel time {one / 1e6:.3f} s (1 thread), {two / 1e6:.3f} s (2), "
                  f"x{one / two:.2f}; float elementwise kernels per text {sum(counts.values())} {dict(counts.most_common())}")
            lost = sorted(times[1], key=lambda node: times[1][node] / 2 - times[2][node])
            for node in lost[:15]:
                print(f"  {ops[node]:14s} {node[:80]:80s} {times[1][node] / 1e3:8.1f} ms -> {times[2][node] / 1e3:8.1f} ms")
        return

    chosen = sentences[: args.sentences]
    sessions = {(name, threads): session(path, basic, threads) for name, path, basic in graphs for threads in (1, 2)}
    for run in sessions.values():
        run.run(None, feeds(chosen[0]))
    rtf = collections.defaultdict(list)
    for _ in range(args.rounds):
        for threads in (1, 2):
            for name, _, _ in graphs:
                run, samples, started = sessions[(name, threads)], 0, time.perf_counter()
                for ids in chosen:
                    samples += run.run(None, feeds(ids))[0].size
                rtf[(name, threads)].append((time.perf_counter() - started) / (samples / voice.config.sample_rate))
    for name, _, _ in graphs:
        one, two = statistics.median(rtf[(name, 1)]), statistics.median(rtf[(name, 2)])
        print(f"{name:10s} RTF median 1 thread {one:.4f}, 2 threads {two:.4f}, x{one / two:.2f}  "
              f"(min {min(rtf[(name, 1)]):.4f} / {min(rtf[(name, 2)]):.4f}; {args.rounds} interleaved rounds, {len(chosen)} sentences)")


if __name__ == "__main__":
    main()
