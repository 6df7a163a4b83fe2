"""Word start times from Lark's marks against an offline recognizer's word timestamps.

Each sentence of sentences.txt is synthesized by a running `lark serve` (POST /api/v1/speech
with "marks": ["word"], WAV, noise off), the WAV is transcribed by faster-whisper with Whisper
base (bench/asr.py), the recognized words are matched to the marked words in order (same
spelling once lowercased and stripped of punctuation), and the absolute differences of their
start times are summarized. Run with .deps/asr-venv/bin/python:

    python bench/timings/accuracy.py http://127.0.0.1:PORT VOICE [VOICE ...]
"""
import base64
import difflib
import json
import os
import re
import statistics
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import asr  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def normalized(word):
    return re.sub(r"[^\w']", "", word.lower())


def speak(base, voice, text):
    body = json.dumps({"text": text, "voice": voice, "format": "wav", "marks": ["word"],
                       "noise_scale": 0, "noise_w": 0}).encode()
    request = urllib.request.Request(base + "/api/v1/speech", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def measure(base, voice, sentences):
    differences = []
    unmatched = 0
    for text in sentences:
        answer = speak(base, voice, text)
        with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
            wav.write(base64.b64decode(answer["audio"]))
            wav.flush()
            heard = asr.transcribe(wav.name)["words"]
        marked = [m for m in answer["marks"] if m["type"] == "word"]
        a = [normalized(m["value"]) for m in marked]
        b = [normalized(w["word"]) for w in heard]
        matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
        matched = 0
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                mark, word = marked[block.a + k], heard[block.b + k]
                differences.append(mark["time"] / 1000 - word["start"])
                matched += 1
        unmatched += len(marked) - matched
    absolute = sorted(abs(d) for d in differences)
    return {
        "voice": voice, "words_compared": len(differences), "words_unmatched": unmatched,
        "median_abs_ms": round(statistics.median(absolute) * 1000, 1),
        "p90_abs_ms": round(absolute[int(0.9 * (len(absolute) - 1))] * 1000, 1),
        "mean_signed_ms": round(statistics.mean(differences) * 1000, 1),
    }


if __name__ == "__main__":
    base, voices = sys.argv[1], sys.argv[2:]
    with open(os.path.join(HERE, "sentences.txt"), encoding="utf-8") as file:
        sentences = [line.strip() for line in file if line.strip()]
    for voice in voices:
        print(json.dumps(measure(base, voice, sentences)), flush=True)
