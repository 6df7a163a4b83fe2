"""Piper 1.8.0's own answers for a list of texts: the reference Lark's parity tests compare with.

Reads a JSON array of texts on stdin and writes a JSON array with, for each text, the phoneme ids
of each sentence and (unless --ids-only) the 16-bit samples Piper synthesizes at zero noise,
base64-encoded little-endian. Runs in the virtual environment `make setup` creates
(.deps/piper-venv), with one ONNX Runtime thread so results are reproducible.
"""

import argparse
import base64
import json
import sys

import numpy as np
import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig


def load_voice(model: str, threads: int) -> PiperVoice:
    with open(model + ".json", encoding="utf-8") as config_file:
        config = PiperConfig.from_dict(json.load(config_file))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    return PiperVoice(session=session, config=config)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--ids-only", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    voice = load_voice(args.model, args.threads)
    texts = json.load(sys.stdin)
    silent = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    results = []
    for text in texts:
        sentences = [voice.phonemes_to_ids(p) for p in voice.phonemize(text) if p]
        entry = {"ids": sentences}
        if not args.ids_only:
            chunks = [chunk.audio_int16_array for chunk in voice.synthesize(text, syn_config=silent)]
            samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
            entry["samples"] = base64.b64encode(samples.astype("<i2").tobytes()).decode("ascii")
        results.append(entry)
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
