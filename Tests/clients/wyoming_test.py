"""Lark's Wyoming server through the `wyoming` package's own client (AsyncTcpClient).

Run by Tests/LarkTests/WyomingTests.swift against a real `lark serve --wyoming-port`:
    python wyoming_test.py --port WYOMING_PORT --http-port HTTP_PORT --max-text-chars N SCENARIO
Exits non-zero with a message on the first failed check; prints `[wyoming] …` figures.
"""

import argparse
import asyncio
import json
import sys
import time
import urllib.request

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

JOE = "en_US-joe-medium"
READ_TIMEOUT = 60


def check(condition, message):
    if not condition:
        raise AssertionError(message)


async def connect(port):
    """A connected client; retries while the server is still starting."""
    deadline = time.monotonic() + 30
    while True:
        client = AsyncTcpClient("127.0.0.1", port, read_timeout=READ_TIMEOUT)
        try:
            await client.connect()
            return client
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def read_audio(client):
    """Events up to audio-stop: (audio-start, [audio-chunk], audio-stop)."""
    event = await client.read_event()
    check(event is not None, "connection closed before audio-start")
    if Error.is_type(event.type):
        raise AssertionError(f"error instead of audio: {event.data}")
    check(AudioStart.is_type(event.type), f"expected audio-start, got {event.type}")
    start = AudioStart.from_event(event)
    chunks = []
    while True:
        event = await client.read_event()
        check(event is not None, "connection closed inside the audio")
        if AudioStop.is_type(event.type):
            return start, chunks, AudioStop.from_event(event)
        check(AudioChunk.is_type(event.type), f"expected audio-chunk, got {event.type}")
        chunks.append(AudioChunk.from_event(event))


def check_audio(start, chunks, rate, min_seconds):
    check((start.rate, start.width, start.channels) == (rate, 2, 1), f"audio-start {start}")
    expected_ms = 0
    samples = 0
    for chunk in chunks:
        check((chunk.rate, chunk.width, chunk.channels) == (rate, 2, 1), f"chunk format {chunk.rate}/{chunk.width}")
        check(0 < len(chunk.audio) <= 2048, f"chunk of {len(chunk.audio)} bytes (bounded at 1024 samples)")
        check(chunk.timestamp == expected_ms, f"chunk timestamp {chunk.timestamp}, expected {expected_ms}")
        samples += len(chunk.audio) // 2
        expected_ms = samples * 1000 // rate
    seconds = samples / rate
    check(seconds >= min_seconds, f"{seconds:.2f} s of audio, expected at least {min_seconds}")
    loud = max(abs(int.from_bytes(c.audio[i:i + 2], "little", signed=True)) for c in chunks for i in range(0, len(c.audio), 2))
    check(loud > 1000, "the audio is silent")
    return seconds


async def read_error(client):
    event = await client.read_event()
    check(event is not None, "connection closed instead of an error event")
    check(Error.is_type(event.type), f"expected error, got {event.type} {event.data}")
    return Error.from_event(event)


async def still_usable(client):
    await client.write_event(Ping(text="still there?").event())
    event = await client.read_event()
    check(event is not None and Pong.is_type(event.type), f"no pong after an error: {event}")
    check(Pong.from_event(event).text == "still there?", "pong text")


def metric(http_port, name, voice):
    body = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10).read().decode()
    for line in body.splitlines():
        if line.startswith(f'{name}{{voice="{voice}"}}'):
            return float(line.split()[-1])
    return 0.0


# -----------------------------------------------------------------------------


async def describe(args):
    client = await connect(args.port)
    await client.write_event(Describe().event())
    event = await client.read_event()
    check(Info.is_type(event.type), f"expected info, got {event.type}")
    info = Info.from_event(event)
    check(len(info.tts) == 1, "one TTS program")
    program = info.tts[0]
    check(program.name == "lark" and program.installed and program.supports_synthesize_streaming, f"program {program}")
    check(program.description and program.version, "program description and version")
    voices = {voice.name: voice for voice in program.voices}
    joe = voices.get(JOE)
    check(joe is not None and joe.languages == ["en_US"] and joe.installed, f"joe: {joe}")
    check(joe.attribution.name and joe.description, "joe's attribution and description")
    german = voices.get("espeak-ng:de")
    check(german is not None and german.languages == ["de"], f"espeak-ng:de: {german}")
    espeak = [v for v in program.voices if v.name.startswith("espeak-ng:")]
    check(len(espeak) > 50, f"{len(espeak)} espeak-ng voices")
    check(all(v.languages and v.languages[0] for v in program.voices), "every voice has its language")
    print(f"[wyoming] info lists {len(program.voices)} voices")
    await client.disconnect()


async def synthesize(args):
    client = await connect(args.port)
    began = time.monotonic()
    await client.write_event(Synthesize(
        text="Hello there. This is Lark, speaking Wyoming.", voice=SynthesizeVoice(name=JOE)).event())
    start, chunks, _ = await read_audio(client)
    seconds = check_audio(start, chunks, 22050, 1.5)
    print(f"[wyoming] joe: {seconds:.2f} s of audio in {len(chunks)} chunks, {time.monotonic() - began:.2f} s")
    # espeak-ng, by name and by language alone; a speaker of a single-speaker voice by number.
    await client.write_event(Synthesize(text="Guten Tag. Wie geht es dir?", voice=SynthesizeVoice(name="espeak-ng:de")).event())
    start, chunks, _ = await read_audio(client)
    check_audio(start, chunks, start.rate, 1.0)
    await client.write_event(Synthesize(text="Guten Tag.", voice=SynthesizeVoice(language="de")).event())
    start, chunks, _ = await read_audio(client)
    check_audio(start, chunks, start.rate, 0.3)
    # The default voice when none is named.
    await client.write_event(Synthesize(text="Default voice.").event())
    start, chunks, _ = await read_audio(client)
    check_audio(start, chunks, 22050, 0.5)
    await client.disconnect()


async def streaming(args):
    client = await connect(args.port)
    sentences = ["The first sentence is spoken at once.", "The second one follows it.", "And this is the end of the stream."]
    words = " ".join(sentences).split(" ")
    received = []
    first_audio = None

    async def reader():
        nonlocal first_audio
        while True:
            event = await client.read_event()
            check(event is not None, "connection closed during the stream")
            if AudioStart.is_type(event.type) and first_audio is None:
                first_audio = time.monotonic()
            received.append(event)
            if SynthesizeStopped.is_type(event.type) or Error.is_type(event.type):
                return

    task = asyncio.create_task(reader())
    await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name=JOE)).event())
    last_sent = None
    for index, word in enumerate(words):
        await client.write_event(SynthesizeChunk(text=word if index == 0 else " " + word).event())
        last_sent = time.monotonic()
        # Like a language model: a word at a time, until the first audio has come (then faster).
        await asyncio.sleep(0.25 if first_audio is None else 0.05)
    # Home Assistant's copy of the whole text, for older servers: ignored inside a stream.
    await client.write_event(Synthesize(text=" ".join(sentences), voice=SynthesizeVoice(name=JOE)).event())
    await client.write_event(SynthesizeStop().event())
    await asyncio.wait_for(task, READ_TIMEOUT)
    errors = [e.data for e in received if Error.is_type(e.type)]
    check(not errors, f"errors: {errors}")
    check(first_audio is not None and first_audio < last_sent,
          "the first audio did not arrive before the last text chunk was sent")
    starts = sum(AudioStart.is_type(e.type) for e in received)
    stops = sum(AudioStop.is_type(e.type) for e in received)
    check(starts == len(sentences) and stops == len(sentences), f"{starts} audio-starts, {stops} audio-stops for 3 sentences")
    check(SynthesizeStopped.is_type(received[-1].type), "synthesize-stopped comes last")
    print(f"[wyoming] stream: first audio {last_sent - first_audio:.2f} s before the last text chunk was sent")
    await client.disconnect()


async def concurrent(args):
    texts = [f"Client number {n} asks for a sentence. And then for another one." for n in range(4)]

    async def one(text):
        client = await connect(args.port)
        began = time.monotonic()
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=JOE)).event())
        start, chunks, _ = await read_audio(client)
        seconds = check_audio(start, chunks, 22050, 2.0)
        await client.disconnect()
        return seconds, time.monotonic() - began

    results = await asyncio.gather(*(one(t) for t in texts))
    print(f"[wyoming] 4 clients: {', '.join(f'{s:.1f} s audio in {t:.2f} s' for s, t in results)}")


async def bad_input(args):
    client = await connect(args.port)
    # Unknown voice, speaker and language.
    await client.write_event(Synthesize(text="Hello.", voice=SynthesizeVoice(name="no-such-voice")).event())
    error = await read_error(client)
    check(error.code == "unknown_voice" and "no-such-voice" in error.text, f"unknown voice: {error}")
    await still_usable(client)
    await client.write_event(Synthesize(text="Hello.", voice=SynthesizeVoice(name=JOE, speaker="7")).event())
    error = await read_error(client)
    check(error.code == "speaker_out_of_range", f"speaker: {error}")
    await client.write_event(Synthesize(text="Hello.", voice=SynthesizeVoice(language="xx-nowhere")).event())
    error = await read_error(client)
    check(error.code == "unknown_language", f"language: {error}")
    # Unknown event, empty text, text over the limit.
    await client.write_event(Event(type="transcribe", data={"language": "en"}))
    error = await read_error(client)
    check(error.code == "unknown_event" and "transcribe" in error.text, f"unknown event: {error}")
    await client.write_event(Synthesize(text="   ").event())
    check((await read_error(client)).code == "empty_text", "empty text")
    await client.write_event(Synthesize(text="word " * (args.max_text_chars // 5 + 1)).event())
    error = await read_error(client)
    check(error.code == "text_too_long", f"long text: {error}")
    await client.write_event(Event(type="synthesize", data={"voice": {"name": JOE}}))
    check((await read_error(client)).code == "malformed_event", "synthesize without text")
    # A stream over the limit: one error, the rest of its text dropped, still stopped.
    await client.write_event(SynthesizeStart().event())
    for _ in range(3):
        await client.write_event(SynthesizeChunk(text="word " * (args.max_text_chars // 10)).event())
    await client.write_event(SynthesizeStop().event())
    error = await read_error(client)
    check(error.code == "text_too_long", f"long stream: {error}")
    event = await client.read_event()
    check(SynthesizeStopped.is_type(event.type), f"after a refused stream: {event.type}")
    # Stream events out of order.
    await client.write_event(SynthesizeChunk(text="Hello.").event())
    check((await read_error(client)).code == "no_stream", "chunk without start")
    await still_usable(client)

    # Frames the decoder refuses; the connection goes on after each.
    writer = client._writer
    writer.write(b"{this is not json\n")
    check((await read_error(client)).code == "malformed_header", "malformed header")
    writer.write(b'{"data": {}}\n')
    check((await read_error(client)).code == "malformed_header", "header without type")
    await still_usable(client)
    big = 12 * args.max_text_chars + 16 * 1024 + 1
    writer.write(json.dumps({"type": "synthesize", "data_length": big}).encode() + b"\n" + b"x" * big)
    error = await read_error(client)
    check(error.code == "data_too_large", f"big data: {error}")
    await still_usable(client)
    payload = (1 << 20) + 1
    writer.write(json.dumps({"type": "audio-chunk", "payload_length": payload}).encode() + b"\n" + b"\0" * payload)
    check((await read_error(client)).code == "payload_too_large", "big payload")
    await still_usable(client)
    writer.write(b'{"type": "synthesize", "data_length": 5}\n[1,2]')
    check((await read_error(client)).code == "malformed_data", "data not an object")
    writer.write(b'{"type": "ping", "pad": "' + b"y" * (big + 10) + b'"}\n')
    check((await read_error(client)).code == "header_too_long", "long header")
    await still_usable(client)
    # After all that, it still speaks.
    await client.write_event(Synthesize(text="Still speaking.", voice=SynthesizeVoice(name=JOE)).event())
    start, chunks, _ = await read_audio(client)
    check_audio(start, chunks, 22050, 0.5)
    await client.disconnect()


async def disconnect(args):
    """A client that leaves mid-synthesis stops it: the sentence count stops short of the text."""
    text = " ".join(f"This is sentence number {n} of a text that nobody will hear." for n in range(40))
    before = metric(args.http_port, "lark_sentences_synthesized_total", JOE)
    client = await connect(args.port)
    await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=JOE)).event())
    event = await client.read_event()
    check(AudioStart.is_type(event.type), f"expected audio-start, got {event.type}")
    await client.disconnect()
    # Give a synthesis that was not stopped time to go on; then the count must have stopped.
    await asyncio.sleep(3)
    settled = metric(args.http_port, "lark_sentences_synthesized_total", JOE)
    await asyncio.sleep(2)
    after = metric(args.http_port, "lark_sentences_synthesized_total", JOE)
    check(after == settled, f"synthesis went on after the client left ({settled} → {after} sentences)")
    check(after - before < 40, f"all {after - before} sentences were synthesized for a client that left")
    print(f"[wyoming] disconnect: {after - before:.0f} of 40 sentences made")


SCENARIOS = {f.__name__: f for f in [describe, synthesize, streaming, concurrent, bad_input, disconnect]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--max-text-chars", type=int, required=True)
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    args = parser.parse_args()
    try:
        asyncio.run(SCENARIOS[args.scenario](args))
    except AssertionError as failure:
        print(f"{args.scenario}: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
