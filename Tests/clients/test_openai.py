"""The official `openai` package, unmodified, against a real `lark serve`: every response_format
decoded by ffprobe, audio streamed sentence by sentence, server-sent events, models, voices,
errors raised as the SDK's exception classes, and (on a second server) API keys on both doors."""
import argparse
import base64
import json
import os
import subprocess
import tempfile
import time
import urllib.request

import openai

from larkproc import Checks, ffprobe, lark

parser = argparse.ArgumentParser()
parser.add_argument("--lark", required=True)
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--data-dir", required=True)
parser.add_argument("--espeak-data", required=True)
args = parser.parse_args()

server = lark(args.lark, args.port, [
    "--data-dir", args.data_dir, "--espeak-data", args.espeak_data, "--workers", "1", "--disable-jobs",
    "-m", "en_US-joe-medium", "--openai-voice", "nova=espeak-ng:en-us", "--openai-max-input", "300",
    "--max-queue", "0"])
checks = Checks("openai")
base = f"http://127.0.0.1:{args.port}"
client = openai.OpenAI(base_url=base + "/v1", api_key="not-checked", max_retries=0, timeout=120)
scratch = tempfile.mkdtemp(prefix="lark-openai-")
try:
    # Every response_format, with the format's own Content-Type, decoded by ffprobe.
    expected = {
        "mp3": ("mp3", "audio/mpeg"), "opus": ("opus", "audio/ogg; codecs=opus"), "aac": ("aac", "audio/aac"),
        "flac": ("flac", "audio/flac"), "wav": ("pcm_s16le", "audio/wav"), "pcm": ("pcm_s16le", "audio/pcm"),
    }
    for response_format, (codec, content_type) in expected.items():
        raw = client.audio.speech.with_raw_response.create(
            model="tts-1", voice="nova", input="Hello there. This is Lark speaking.", response_format=response_format)
        checks.check(raw.headers.get("content-type") == content_type,
                     f"{response_format}: Content-Type {raw.headers.get('content-type')}, expected {content_type}")
        path = os.path.join(scratch, "speech." + response_format)
        with open(path, "wb") as file:
            file.write(raw.parse().content)
        found, rate, duration = ffprobe(path, ["-f", "s16le", "-ar", "24000", "-ac", "1"] if response_format == "pcm" else None)
        checks.check(found == codec, f"{response_format}: ffprobe found {found}, expected {codec}")
        checks.check(1.0 < duration < 10, f"{response_format}: {duration:.2f} s of audio")
        if response_format in ("pcm", "opus"):
            checks.check(rate == (24000 if response_format == "pcm" else 48000) or rate == 24000,
                         f"{response_format}: {rate} Hz")
        if response_format == "wav":
            # Streamed: the header cannot know the length.
            with open(path, "rb") as file:
                header = file.read(44)
            checks.check(header[4:8] == b"\xff\xff\xff\xff" and header[40:44] == b"\xff\xff\xff\xff",
                         "streamed WAV without the unknown-length header")

    # Sentence by sentence: the first bytes come long before the last (the default voice, joe).
    # (Short sentences: this server's --openai-max-input is 300, for the limit's check below.)
    paragraph = " ".join(f"Sentence {n} is spoken now." for n in range(1, 11))
    start = time.monotonic()
    first = None
    total_bytes = 0
    with client.audio.speech.with_streaming_response.create(
            model="tts-1-hd", voice="alloy", input=paragraph, response_format="pcm") as response:
        for chunk in response.iter_bytes():
            if chunk and first is None:
                first = time.monotonic() - start
            total_bytes += len(chunk)
    total = time.monotonic() - start
    seconds = total_bytes / 2 / 24000
    checks.check(first is not None and first < 0.3 * total,
                 f"first bytes after {first} s of {total:.2f} s (should be under 30%)")
    checks.check(seconds > 8, f"the 10 sentences made only {seconds:.1f} s of audio")
    print(f"[openai] streamed pcm, 10 sentences: first bytes {first:.3f} s, total {total:.3f} s, {seconds:.1f} s of audio", flush=True)

    # Server-sent events: deltas of base64 audio, then done with the usage.
    events = []
    with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice={"id": "nova"}, input="One. Two. Three.", response_format="mp3",
            stream_format="sse", instructions="Speak cheerfully.") as response:
        checks.check(response.headers.get("content-type", "").startswith("text/event-stream"),
                     f"sse Content-Type {response.headers.get('content-type')}")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    deltas = [event for event in events if event.get("type") == "speech.audio.delta"]
    checks.check(len(deltas) >= 1 and events and events[-1].get("type") == "speech.audio.done",
                 f"sse events: {[event.get('type') for event in events]}")
    usage = events[-1].get("usage", {}) if events else {}
    checks.check(usage.get("input_tokens") == len("One. Two. Three.") and "total_tokens" in usage, f"usage {usage}")
    path = os.path.join(scratch, "sse.mp3")
    with open(path, "wb") as file:
        for delta in deltas:
            file.write(base64.b64decode(delta["audio"]))
    codec, _, duration = ffprobe(path)
    checks.check(codec == "mp3" and duration > 0.5, f"sse audio: {codec}, {duration:.2f} s")

    # Models and voices.
    models = [model.id for model in client.models.list()]
    checks.check({"tts-1", "tts-1-hd", "gpt-4o-mini-tts"} <= set(models), f"models {models}")
    checks.check(client.models.retrieve("tts-1").id == "tts-1", "models.retrieve(tts-1)")
    with urllib.request.urlopen(base + "/v1/audio/voices") as answer:
        voices = json.load(answer)["voices"]
    ids = [voice["id"] for voice in voices]
    checks.check("alloy" in ids and "en_US-joe-medium" in ids and all("name" in voice for voice in voices), f"voices {ids[:20]}")

    # Bad input: the SDK's exception classes, OpenAI's error shape.
    def expect_error(kind, status, param, **request):
        try:
            client.audio.speech.create(**{"model": "tts-1", "voice": "nova", "input": "Hello.", **request})
        except kind as error:
            body = error.body if isinstance(error.body, dict) else {}
            checks.check(error.status_code == status, f"{request}: status {error.status_code}, expected {status}")
            checks.check(set(body) >= {"message", "type", "param", "code"} and body.get("param") == param,
                         f"{request}: error body {body}")
            return
        except openai.APIStatusError as error:
            checks.check(False, f"{request}: {type(error).__name__} {error.status_code}, expected {kind.__name__}")
            return
        checks.check(False, f"{request}: no error")

    expect_error(openai.BadRequestError, 400, "input", input="")
    expect_error(openai.BadRequestError, 400, "input", input="x" * 301)
    expect_error(openai.BadRequestError, 400, "speed", speed=10)
    expect_error(openai.BadRequestError, 400, "response_format", response_format="ogg")
    expect_error(openai.BadRequestError, 400, "stream_format", stream_format="video")
    expect_error(openai.NotFoundError, 404, "voice", voice="no-such-voice")
    try:
        client.models.retrieve("no-such-model")
        checks.check(False, "models.retrieve(no-such-model): no error")
    except openai.NotFoundError as error:
        checks.check(error.body.get("code") == "model_not_found", f"unknown model: {error.body}")

    # Busy (one worker, no queue, a paragraph still being synthesized): 503 with Retry-After.
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=paragraph, response_format="pcm") as held:
        next(held.iter_bytes())
        try:
            client.audio.speech.create(model="tts-1", voice="nova", input="Hello.")
            checks.check(False, "no 503 while the only worker is busy")
        except openai.InternalServerError as error:
            checks.check(error.status_code == 503 and error.response.headers.get("retry-after") == "1"
                         and error.body.get("code") == "busy" and error.body.get("type") == "server_error",
                         f"busy: {error.status_code} {error.response.headers} {error.body}")

    # speed: 2.0 speaks the same text in about half the time.
    # (The held stream's synthesis stops at its next write: the SDK retries the 503s until then.)
    patient = client.with_options(max_retries=8)
    normal = patient.audio.speech.create(model="tts-1", voice="nova", input="A short sentence to time.", response_format="pcm")
    fast = patient.audio.speech.create(model="tts-1", voice="nova", input="A short sentence to time.", response_format="pcm", speed=2.0)
    ratio = len(fast.content) / max(1, len(normal.content))
    checks.check(0.3 < ratio < 0.75, f"speed 2.0 made {ratio:.2f} of the audio of speed 1")
    # A server with keys: no key is the SDK's AuthenticationError (OpenAI's shape), a key speaks;
    # on Polly's paths the same refusal is an AWS error botocore parses.
    server.stop()
    keys = os.path.join(scratch, "keys.json")
    key = subprocess.run([args.lark, "keys", "add", "tester", "--scopes", "speak", "--keys-file", keys],
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[0]
    server = lark(args.lark, args.port, [
        "--data-dir", args.data_dir, "--espeak-data", args.espeak_data, "--workers", "1", "--disable-jobs",
        "-m", "espeak-ng:en-us", "--keys-file", keys])
    try:
        openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0).models.list()
        checks.check(False, "a wrong key was let in")
    except openai.AuthenticationError as error:
        checks.check(error.status_code == 401 and error.body.get("code") == "invalid_api_key"
                     and error.body.get("type") == "authentication_error", f"wrong key: {error.body}")
    keyed = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
    audio = keyed.audio.speech.create(model="tts-1", voice="alloy", input="With a key.", response_format="wav").content
    checks.check(audio[:4] == b"RIFF", "a keyed request did not speak")
    import boto3
    import botocore.exceptions
    try:
        boto3.client("polly", endpoint_url=base, region_name="us-east-1", aws_access_key_id="tester",
                     aws_secret_access_key="x").describe_voices()
        checks.check(False, "Polly without a bearer key was let in")
    except botocore.exceptions.ClientError as error:
        checks.check(error.response["Error"]["Code"] == "UnrecognizedClientException"
                     and error.response["ResponseMetadata"]["HTTPStatusCode"] == 403, f"Polly without a key: {error.response}")
    # SigV4 with a key's name and its SigV4 secret (what `lark keys add --json` prints) is let in;
    # the right name with a wrong secret is refused as an unknown key is (nothing says which names exist).
    signer = json.loads(subprocess.run(
        [args.lark, "keys", "add", "signer", "--scopes", "speak", "--json", "--keys-file", keys],
        capture_output=True, text=True, check=True).stdout)
    time.sleep(1.2)  # the server re-reads the keys file at most once a second
    signed = boto3.client("polly", endpoint_url=base, region_name="eu-west-1", aws_access_key_id=signer["aws_access_key_id"],
                          aws_secret_access_key=signer["aws_secret_access_key"])
    checks.check(len(signed.describe_voices()["Voices"]) > 0, "a SigV4-signed DescribeVoices listed no voice")
    spoken = signed.synthesize_speech(Text="Signed.", VoiceId="espeak-ng:en-us", OutputFormat="pcm")["AudioStream"].read()
    checks.check(len(spoken) > 1000, "a SigV4-signed SynthesizeSpeech (a signed JSON body) made no audio")
    try:
        boto3.client("polly", endpoint_url=base, region_name="eu-west-1", aws_access_key_id=signer["aws_access_key_id"],
                     aws_secret_access_key="not-the-secret").describe_voices()
        checks.check(False, "a wrong SigV4 secret was let in")
    except botocore.exceptions.ClientError as error:
        checks.check(error.response["Error"]["Code"] == "UnrecognizedClientException"
                     and error.response["ResponseMetadata"]["HTTPStatusCode"] == 403, f"wrong secret: {error.response}")
except BaseException:
    server.stop(show_log=True)
    raise
server.stop(show_log=bool(checks.failures))
checks.finish()
