"""Times Piper 1.8.0's Python package the way `lark bench` times Lark: load, one warm-up sentence,
then each round synthesizes the whole text. Prints one JSON object."""

import argparse
import json
import time

import onnxruntime
from piper import PiperVoice
from piper.config import PiperConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--text-file", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    with open(args.model + ".json", encoding="utf-8") as config_file:
        config = PiperConfig.from_dict(json.load(config_file))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(args.model, sess_options=options, providers=["CPUExecutionProvider"])
    voice = PiperVoice(session=session, config=config)
    load_seconds = time.perf_counter() - started

    with open(args.text_file, encoding="utf-8") as text_file:
        text = text_file.read()
    for _ in voice.synthesize("Warming up."):
        pass

    rounds = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        cpu_start = time.process_time()
        first = None
        samples = 0
        for chunk in voice.synthesize(text):
            # Piper's own CLI turns each chunk into 16-bit bytes before writing it.
            data = chunk.audio_int16_bytes
            if first is None:
                first = time.perf_counter() - start
            samples += len(data) // 2
        total = time.perf_counter() - start
        audio = samples / config.sample_rate
        rounds.append({"first_sentence_s": first, "total_s": total, "audio_s": audio, "rtf": total / audio,
                       "cpu_s": time.process_time() - cpu_start})
    print(json.dumps({"implementation": "piper", "load_s": load_seconds, "rounds": rounds}))


if __name__ == "__main__":
    main()
