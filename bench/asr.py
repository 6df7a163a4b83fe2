"""An offline speech recognizer for Lark's quality and timing checks (tests and benches only).

faster-whisper with the Whisper base model that `scripts/setup.sh --test` assembles in
.deps/whisper-base. Run it with .deps/asr-venv/bin/python:

    python bench/asr.py FILE.wav [FILE.wav ...]

prints one JSON object per file: {"file", "text", "words": [{"word", "start", "end", "probability"}]}
with times in seconds. As a module: `transcribe(path)` answers the same dictionary.
"""
import json
import os
import sys

from faster_whisper import WhisperModel

MODEL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".deps", "whisper-base")
_model = None


def model():
    global _model
    if _model is None:
        # int8 on the CPU: the fastest faster-whisper mode here, and deterministic with beam search.
        _model = WhisperModel(MODEL_DIR, device="cpu", compute_type="int8", cpu_threads=2)
    return _model


def transcribe(path, language="en"):
    segments, _ = model().transcribe(
        path, language=language, beam_size=5, word_timestamps=True, vad_filter=False, condition_on_previous_text=False)
    words = []
    text = []
    for segment in segments:
        text.append(segment.text.strip())
        for word in segment.words or []:
            words.append({"word": word.word.strip(), "start": round(word.start, 3), "end": round(word.end, 3),
                          "probability": round(word.probability, 3)})
    return {"file": path, "text": " ".join(text), "words": words}


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(json.dumps(transcribe(path)))
