"""boto3, unmodified, against a real `lark serve` as Amazon Polly: synthesize_speech in every
OutputFormat (decoded by ffprobe), the describe_voices paginator, synthesis tasks writing to a
moto_server S3 bucket, and the modelled exceptions."""
import argparse
import json
import os
import tempfile
import time

import boto3
from botocore.config import Config

from larkproc import Checks, ffprobe, lark, moto

parser = argparse.ArgumentParser()
parser.add_argument("--lark", required=True)
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--local-port", type=int, required=True)
parser.add_argument("--moto", required=True)
parser.add_argument("--moto-port", type=int, required=True)
parser.add_argument("--data-dir", required=True)
parser.add_argument("--espeak-data", required=True)
args = parser.parse_args()

credentials = {"AWS_ACCESS_KEY_ID": "lark-test", "AWS_SECRET_ACCESS_KEY": "lark-test-secret"}
s3_endpoint = f"http://127.0.0.1:{args.moto_port}"
scratch = tempfile.mkdtemp(prefix="lark-polly-")
servers = [moto(args.moto, args.moto_port)]
checks = Checks("polly")


def client(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="lark-test",
                        aws_secret_access_key="lark-test-secret",
                        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))


try:
    s3 = client("s3", s3_endpoint)
    for bucket in ("lark-store", "polly-out"):
        s3.create_bucket(Bucket=bucket)
    common = ["--data-dir", args.data_dir, "--espeak-data", args.espeak_data, "--workers", "1", "-m", "en_US-joe-medium",
              "--polly-voice", "Joanna=espeak-ng:en-us"]
    servers.append(lark(args.lark, args.port, common + [
        "--jobs-dir", os.path.join(scratch, "jobs"), "--storage", "s3://lark-store/jobs", "--s3-endpoint", s3_endpoint],
        env=credentials))
    polly = client("polly", f"http://127.0.0.1:{args.port}")

    # Every OutputFormat: the audio from AudioStream, decoded by ffprobe at Polly's default rate.
    formats = {
        "mp3": ("mp3", "audio/mpeg", 22050, None), "ogg_vorbis": ("vorbis", "audio/ogg", 22050, None),
        "ogg_opus": ("opus", "audio/ogg", 48000, None),
        "pcm": ("pcm_s16le", "audio/pcm", 16000, ["-f", "s16le", "-ar", "16000", "-ac", "1"]),
        "mulaw": ("pcm_mulaw", "audio/mulaw", 8000, ["-f", "mulaw", "-ar", "8000", "-ac", "1"]),
        "alaw": ("pcm_alaw", "audio/alaw", 8000, ["-f", "alaw", "-ar", "8000", "-ac", "1"]),
        "flac": ("flac", "audio/flac", None, None),
    }
    text = "Hello from Lark. This is the Polly interface."
    for output_format, (codec, content_type, rate, raw) in formats.items():
        answer = polly.synthesize_speech(Text=text, VoiceId="Joanna", OutputFormat=output_format, Engine="neural",
                                         LexiconNames=["ignored"], LanguageCode="en-US")
        checks.check(answer["ContentType"] == content_type, f"{output_format}: ContentType {answer['ContentType']}")
        checks.check(answer["RequestCharacters"] == len(text), f"{output_format}: RequestCharacters {answer['RequestCharacters']}")
        checks.check(len(answer["ResponseMetadata"]["RequestId"]) > 8, f"{output_format}: no x-amzn-RequestId")
        path = os.path.join(scratch, "speech." + output_format)
        with open(path, "wb") as file:
            file.write(answer["AudioStream"].read())
        found, found_rate, duration = ffprobe(path, raw)
        checks.check(found == codec, f"{output_format}: ffprobe found {found}, expected {codec}")
        checks.check(rate is None or raw is not None or found_rate == rate, f"{output_format}: {found_rate} Hz, expected {rate}")
        checks.check(1.0 < duration < 10, f"{output_format}: {duration:.2f} s of audio")
    answer = polly.synthesize_speech(Text=text, VoiceId="en_US-joe-medium", OutputFormat="pcm", SampleRate="8000")
    pcm = answer["AudioStream"].read()
    checks.check(1.0 < len(pcm) / 2 / 8000 < 10, f"pcm at 8000 Hz: {len(pcm)} bytes")

    # DescribeVoices, through the paginator (pages of 50).
    pages = list(polly.get_paginator("describe_voices").paginate())
    voices = [voice for page in pages for voice in page["Voices"]]
    ids = [voice["Id"] for voice in voices]
    checks.check(len(pages) >= 2 and len(ids) == len(set(ids)), f"{len(pages)} pages, {len(ids)} voices")
    joe = next((voice for voice in voices if voice["Id"] == "en_US-joe-medium"), {})
    checks.check(joe.get("LanguageCode") == "en-US" and "standard" in joe.get("SupportedEngines", [])
                 and joe.get("LanguageName") and joe.get("Name") and joe.get("AdditionalLanguageCodes") == [],
                 f"joe as Polly lists it: {joe}")
    english = polly.describe_voices(LanguageCode="en-US", Engine="neural")["Voices"]
    checks.check(english and all(voice["LanguageCode"] == "en-US" for voice in english), f"en-US voices {english[:3]}")

    # The modelled exceptions.
    def expect(exception, call, **request):
        try:
            call(**request)
        except exception as error:
            checks.check(bool(error.response["Error"]["Message"]), f"{exception.__name__} without a message")
            return error
        except Exception as error:
            checks.check(False, f"{request}: {type(error).__name__} {error}, expected {exception.__name__}")
            return None
        checks.check(False, f"{request}: no error, expected {exception.__name__}")

    speak = polly.synthesize_speech
    errors = polly.exceptions
    expect(errors.TextLengthExceededException, speak, Text="word " * 601, VoiceId="Joanna", OutputFormat="mp3")
    expect(errors.TextLengthExceededException, speak, Text="<speak>" + "a" * 3001 + "</speak>", TextType="ssml",
           VoiceId="Joanna", OutputFormat="mp3")
    expect(errors.InvalidSampleRateException, speak, Text="Hi.", VoiceId="Joanna", OutputFormat="mp3", SampleRate="44100")
    expect(errors.InvalidSampleRateException, speak, Text="Hi.", VoiceId="Joanna", OutputFormat="pcm", SampleRate="22050")
    expect(errors.MarksNotSupportedForFormatException, speak, Text="Hi.", VoiceId="Joanna", OutputFormat="mp3",
           SpeechMarkTypes=["word"])
    expect(errors.SsmlMarksNotSupportedForTextTypeException, speak, Text="Hi.", VoiceId="Joanna", OutputFormat="json",
           SpeechMarkTypes=["ssml"])
    expect(errors.LanguageNotSupportedException, speak, Text="Hi.", VoiceId="Joanna", OutputFormat="mp3", LanguageCode="de-DE")
    expect(errors.InvalidSsmlException, speak, Text="<speak>Hi.<break time='abc'/></speak>", TextType="ssml", VoiceId="Joanna",
           OutputFormat="mp3")
    expect(errors.InvalidSsmlException, speak, Text="<speak>Hi.</spek>", TextType="ssml", VoiceId="Joanna", OutputFormat="mp3")
    # Valid SSML is spoken: a one-second break makes the audio at least a second long.
    plain = speak(Text="Hi.", VoiceId="Joanna", OutputFormat="pcm")["AudioStream"].read()
    paused = speak(Text="<speak>Hi.<break time='1s'/>Hi.</speak>", TextType="ssml", VoiceId="Joanna",
                   OutputFormat="pcm")["AudioStream"].read()
    checks.check(len(paused) >= len(plain) * 2 + 16000 * 2 * 0.9,
                 f"SSML with a 1 s break: {len(paused)} bytes against {len(plain)} for one 'Hi.'")
    ssml = '<speak>Hello <break time="300ms"/> from <emphasis>Lark</emphasis>.</speak>'
    answer = polly.synthesize_speech(Text=ssml, TextType="ssml", VoiceId="Joanna", OutputFormat="mp3")
    checks.check(answer["RequestCharacters"] == len("Hello  from Lark."), f"SSML RequestCharacters {answer['RequestCharacters']}")
    path = os.path.join(scratch, "ssml.mp3")
    with open(path, "wb") as file:
        file.write(answer["AudioStream"].read())
    codec, _, duration = ffprobe(path)
    checks.check(codec == "mp3" and duration > 0.8, f"SSML audio: {codec}, {duration:.2f} s")
    # Speech marks (OutputFormat json): JSON lines, times in ms from the start, start/end UTF-8 byte offsets into Text.
    polly_visemes = {"p", "t", "S", "T", "f", "k", "i", "r", "s", "u", "@", "a", "e", "E", "o", "O", "sil"}
    marked_text = "Hello from Lark, café. This is the second sentence."
    for voice in ("Joanna", "en_US-joe-medium"):
        answer = polly.synthesize_speech(Text=marked_text, VoiceId=voice, OutputFormat="json",
                                         SpeechMarkTypes=["word", "sentence", "viseme"])
        checks.check(answer["ContentType"] == "application/x-json-stream", f"{voice} marks content type {answer['ContentType']}")
        checks.check(answer["RequestCharacters"] == len(marked_text), f"{voice} marks RequestCharacters {answer['RequestCharacters']}")
        lines = answer["AudioStream"].read().decode().splitlines()
        marks = [json.loads(line) for line in lines]
        by_type = {kind: [mark for mark in marks if mark["type"] == kind] for kind in ("word", "sentence", "viseme")}
        encoded = marked_text.encode()
        words = [mark["value"] for mark in by_type["word"]]
        checks.check(words == ["Hello", "from", "Lark", "café", "This", "is", "the", "second", "sentence"], f"{voice} words {words}")
        checks.check(all(encoded[mark["start"]:mark["end"]].decode() == mark["value"] for mark in by_type["word"]),
                     f"{voice} word offsets {by_type['word']}")
        checks.check([mark["value"] for mark in by_type["sentence"]] == ["Hello from Lark, café.", "This is the second sentence."],
                     f"{voice} sentences {by_type['sentence']}")
        checks.check(by_type["viseme"] and {mark["value"] for mark in by_type["viseme"]} <= polly_visemes,
                     f"{voice} visemes {by_type['viseme']}")
        times = [mark["time"] for mark in marks]
        checks.check(times == sorted(times) and times[-1] > times[0] and all(list(mark) in (
            ["time", "type", "start", "end", "value"], ["time", "type", "value"]) for mark in marks), f"{voice} marks {lines}")
        word_times = [mark["time"] for mark in by_type["word"]]
        checks.check(all(a < b for a, b in zip(word_times, word_times[1:])), f"{voice} word times {word_times}")
    ssml = '<speak>Before <mark name="x"/>after.</speak>'
    answer = polly.synthesize_speech(Text=ssml, TextType="ssml", VoiceId="Joanna", OutputFormat="json", SpeechMarkTypes=["ssml"])
    marks = [json.loads(line) for line in answer["AudioStream"].read().decode().splitlines()]
    checks.check([mark["value"] for mark in marks] == ["x"] and marks[0]["type"] == "ssml" and marks[0]["time"] > 0,
                 f"ssml marks {marks}")
    expect(errors.ValidationException, speak, Text="Hi.", VoiceId="Joanna", OutputFormat="json")
    expect(errors.MarksNotSupportedForFormatException, polly.start_speech_synthesis_task, Text="Hi.", VoiceId="Joanna",
           OutputFormat="json", SpeechMarkTypes=["word"], OutputS3BucketName="polly-out")
    expect(errors.EngineNotSupportedException, speak, Text="Hi.", VoiceId="Joanna", OutputFormat="mp3", Engine="turbo")
    expect(errors.ValidationException, speak, Text="Hi.", VoiceId="NoSuchVoice", OutputFormat="mp3")
    expect(errors.InvalidNextTokenException, polly.describe_voices, NextToken="bogus")
    expect(errors.SynthesisTaskNotFoundException, polly.get_speech_synthesis_task, TaskId="no-such-task")

    # A synthesis task: a Lark job whose audio goes to the named bucket as PREFIX + TaskId + .mp3.
    task = polly.start_speech_synthesis_task(
        Text="A task for the bucket. It has two sentences.", VoiceId="Joanna", OutputFormat="mp3",
        OutputS3BucketName="polly-out", OutputS3KeyPrefix="speech/")["SynthesisTask"]
    task_id = task["TaskId"]
    checks.check(task["TaskStatus"] in ("scheduled", "inProgress", "completed"), f"new task {task}")
    deadline = time.monotonic() + 90
    while task["TaskStatus"] not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
        task = polly.get_speech_synthesis_task(TaskId=task_id)["SynthesisTask"]
    checks.check(task["TaskStatus"] == "completed", f"task ended as {task}")
    checks.check(task.get("OutputUri", "").startswith(s3_endpoint + "/polly-out/speech/" + task_id + ".mp3"),
                 f"OutputUri {task.get('OutputUri')}")
    checks.check(task["RequestCharacters"] == 44 and task["OutputFormat"] == "mp3", f"task {task}")
    stored = s3.get_object(Bucket="polly-out", Key=f"speech/{task_id}.mp3")
    path = os.path.join(scratch, "task.mp3")
    with open(path, "wb") as file:
        file.write(stored["Body"].read())
    codec, _, duration = ffprobe(path)
    checks.check(codec == "mp3" and duration > 1, f"task audio: {codec}, {duration:.2f} s")
    second = polly.start_speech_synthesis_task(Text="Another one.", VoiceId="Joanna", OutputFormat="ogg_vorbis",
                                               OutputS3BucketName="polly-out")["SynthesisTask"]["TaskId"]
    listed = polly.list_speech_synthesis_tasks(MaxResults=1)
    checks.check(len(listed["SynthesisTasks"]) == 1 and listed.get("NextToken"), f"first page {listed}")
    pages = list(polly.get_paginator("list_speech_synthesis_tasks").paginate(PaginationConfig={"PageSize": 1}))
    all_ids = [task["TaskId"] for page in pages for task in page["SynthesisTasks"]]
    checks.check({task_id, second} <= set(all_ids), f"listed tasks {all_ids}")
    completed = polly.list_speech_synthesis_tasks(Status="completed")["SynthesisTasks"]
    checks.check(task_id in [task["TaskId"] for task in completed] and all(task["TaskStatus"] == "completed" for task in completed),
                 f"completed tasks {completed}")
    expect(errors.InvalidNextTokenException, polly.list_speech_synthesis_tasks, NextToken="bogus")
    expect(errors.InvalidS3BucketException, polly.start_speech_synthesis_task, Text="Hi.", VoiceId="Joanna",
           OutputFormat="mp3", OutputS3BucketName="Not_A/Bucket")
    expect(errors.TextLengthExceededException, polly.start_speech_synthesis_task, Text="a" * 200_001, VoiceId="Joanna",
           OutputFormat="mp3", OutputS3BucketName="polly-out")

    # A server that keeps audio in a local directory has no buckets to write to: a clear error.
    servers.append(lark(args.lark, args.local_port, [
        "--data-dir", args.data_dir, "--espeak-data", args.espeak_data, "--workers", "1", "-m", "espeak-ng:en-us",
        "--jobs-dir", os.path.join(scratch, "local-jobs")]))
    local = client("polly", f"http://127.0.0.1:{args.local_port}")
    error = expect(errors.InvalidS3BucketException, local.start_speech_synthesis_task, Text="Hi.", VoiceId="espeak-ng:en-us",
                   OutputFormat="mp3", OutputS3BucketName="polly-out")
    checks.check(error is not None and "local directory" in error.response["Error"]["Message"], "local storage: unclear error")
except BaseException:
    for server in reversed(servers):
        server.stop(show_log=True)
    raise
for server in reversed(servers):
    server.stop(show_log=bool(checks.failures))
checks.finish()
