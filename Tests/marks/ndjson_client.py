"""Reads Lark's NDJSON speech stream the way a player does: each line's audio is decoded as
soon as the line arrives (raw 16-bit PCM here), and its marks are checked against the audio
received so far. Prints one JSON summary; exits non-zero on a failed check.

usage: ndjson_client.py URL TEXT
"""
import base64
import json
import sys
import time
import urllib.request

url, text = sys.argv[1], sys.argv[2]
body = json.dumps({
    "text": text, "format": "pcm", "stream": True, "marks": ["word", "sentence"],
    "noise_scale": 0, "noise_w": 0, "sentence_silence": 0.3,
}).encode()
request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
failures = []
lines = []
samples_so_far = 0
rate = 22050
started = time.monotonic()
with urllib.request.urlopen(request) as response:
    content_type = response.headers.get("Content-Type")
    for raw in response:  # one line as soon as it has arrived
        arrived = time.monotonic() - started
        line = json.loads(raw)
        audio = base64.b64decode(line["audio"])
        if len(audio) % 2:
            failures.append("a line's PCM has an odd number of bytes")
        count = len(audio) // 2
        start_ms = samples_so_far * 1000 / rate
        end_ms = (samples_so_far + count) * 1000 / rate
        for mark in line["marks"]:
            if not (start_ms - 1 <= mark["time"] <= mark["end_time"] <= end_ms + 1):
                failures.append(f"{mark} outside this line's audio {start_ms:.0f}-{end_ms:.0f} ms")
            spoken = text.encode()[mark["start"]:mark["end"]].decode()
            if spoken != mark["value"]:
                failures.append(f"bytes {mark['start']}-{mark['end']} are {spoken!r}, not {mark['value']!r}")
            if text[mark["start_char"]:mark["end_char"]] != mark["value"]:
                failures.append(f"characters of {mark} do not slice the text")
        sentences = [m for m in line["marks"] if m["type"] == "sentence"]
        lines.append({"arrived": round(arrived, 3), "samples": count, "sentences": len(sentences),
                      "words": [m["value"] for m in line["marks"] if m["type"] == "word"],
                      "sentence_time": sentences[0]["time"] if sentences else None})
        samples_so_far += count

if content_type != "application/x-ndjson":
    failures.append(f"content type {content_type}")
print(json.dumps({"lines": lines, "failures": failures, "total_ms": samples_so_far * 1000 / rate}))
sys.exit(1 if failures else 0)
