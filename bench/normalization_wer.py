"""Scores bench/normalization-wer's audio: transcribes every WAV with bench/asr.py and prints
each system's word error rate against the intended readings (see bench/normalization-wer for
how both sides are put into one spoken form). Run with .deps/asr-venv/bin/python:

    python bench/normalization_wer.py LARK_BINARY WORK_DIR

WORK_DIR holds lark/, lark-off/ and piper/, each with 1.wav … N.wav in the order of
bench/normalization-sentences.tsv. Also prints the sentences each system got most wrong.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import asr  # noqa: E402

SYSTEMS = [("lark", "Lark, normalization on"), ("lark-off", "Lark, normalization off"), ("piper", "Piper 1.8 (Python)")]


def spoken_forms(lark, texts):
    """Every text through `lark normalize`, then lowercased, hyphens as spaces, no punctuation."""
    result = subprocess.run([lark, "normalize"], input="\n".join(t.replace("\n", " ") for t in texts) + "\n",
                            capture_output=True, text=True, check=True)
    lines = result.stdout.split("\n")[: len(texts)]
    forms = []
    for line in lines:
        line = line.lower().replace("-", " ").replace("–", " ")
        line = re.sub(r"[^\w\s']", " ", line)
        forms.append([word.strip("'") for word in line.split() if word.strip("'")])
    return forms


def edit_distance(reference, hypothesis):
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp_word in enumerate(hypothesis, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
        previous = current
    return previous[-1]


def main():
    lark, work = sys.argv[1], sys.argv[2]
    rows = [line.rstrip("\n").split("\t") for line in open("bench/normalization-sentences.tsv", encoding="utf-8") if line.strip()]
    references = spoken_forms(lark, [row[1] for row in rows])
    reference_words = sum(len(words) for words in references)
    print(f"{len(rows)} sentences, {reference_words} reference words")
    for system, title in SYSTEMS:
        transcripts = [asr.transcribe(os.path.join(work, system, f"{index}.wav"))["text"] for index in range(1, len(rows) + 1)]
        hypotheses = spoken_forms(lark, transcripts)
        errors = [edit_distance(ref, hyp) for ref, hyp in zip(references, hypotheses)]
        print(f"{title}: WER {sum(errors) / reference_words:.3f} ({sum(errors)} errors)")
        worst = sorted(range(len(rows)), key=lambda i: -errors[i])[:3]
        for i in worst:
            if errors[i]:
                print(f"    {errors[i]} errors: {rows[i][0]!r} heard as {transcripts[i]!r}")


if __name__ == "__main__":
    main()
