"""Parses a caption file with webvtt-py (WebVTT, or SubRip with --srt) and prints its cues as
JSON: [{"start": seconds, "end": seconds, "text": ...}]. A file it cannot parse exits non-zero.

usage: check_captions.py FILE [--srt]
"""
import json
import sys

import webvtt

path = sys.argv[1]
captions = webvtt.from_srt(path) if "--srt" in sys.argv else webvtt.read(path)
print(json.dumps([{"start": c.start_in_seconds, "end": c.end_in_seconds, "text": c.text} for c in captions]))
