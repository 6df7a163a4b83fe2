import Foundation
import Testing

/// `lark say`, `lark voices` and `lark phonemes` as a user runs them: real processes, real files,
/// ffprobe reading what they wrote. Bad input must give one line naming the problem and exit ≠ 0.
@Suite struct CommandLineTests {
    /// A scratch directory with broken and multi-speaker voices made from the bundled one.
    static let fixtures: String = {
        let directory = NSTemporaryDirectory() + "lark-cli-\(getpid())"
        let fileManager = FileManager.default
        try? fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let config = try! JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel + ".json"))) as! [String: Any]
        func write(_ object: [String: Any], _ name: String) {
            try! JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: directory + "/" + name))
        }
        // Three speakers on the joe model (its graph has no speaker input, so only selection is tested).
        var multi = config
        multi["num_speakers"] = 3
        multi["speaker_id_map"] = ["alice": 0, "bob": 1, "carol": 2]
        try? fileManager.createSymbolicLink(atPath: directory + "/multi.onnx", withDestinationPath: Checkout.joeModel)
        write(multi, "multi.onnx.json")
        var noMap = config
        noMap.removeValue(forKey: "phoneme_id_map")
        try? fileManager.createSymbolicLink(atPath: directory + "/nomap.onnx", withDestinationPath: Checkout.joeModel)
        write(noMap, "nomap.onnx.json")
        try! Data("this is not an onnx model".utf8).write(to: URL(fileURLWithPath: directory + "/corrupt.onnx"))
        write(config, "corrupt.onnx.json")
        try? fileManager.createSymbolicLink(atPath: directory + "/noconfig.onnx", withDestinationPath: Checkout.joeModel)
        return directory
    }()

    func lark(_ arguments: [String], input: String = "") throws -> ProcessResult {
        try runProcess(Checkout.larkBinary, arguments, input: Data(input.utf8))
    }

    func output(_ name: String) -> String { Self.fixtures + "/" + name }

    @Test func saysEnglishWithThePiperVoice() throws {
        let wav = output("hello.wav")
        let result = try lark(["say", "Hello world. This is Lark.", "--voice", "en_US-joe-medium", "-o", wav])
        #expect(result.status == 0, "\(result.stderr)")
        let probe = try Probe(file: wav)
        #expect(probe.codec == "pcm_s16le")
        #expect(probe.sampleRate == 22050)
        #expect(probe.channels == 1)
        // Two short sentences: well over a second, well under five.
        #expect(probe.duration > 1.0 && probe.duration < 5.0, "duration \(probe.duration)")
    }

    /// FFmpeg's libraries are loaded at the first compressed encoding, not at start-up
    /// (lark_ffmpeg.h): saying something into a WAV never loads them, into an MP3 it does. The dynamic loader's own log
    /// (`LD_DEBUG=files`) lists every library a process opens, `dlopen`ed ones included.
    @Test func loadsFFmpegOnlyForCompressedFormats() throws {
        let wav = output("plain.wav"), mp3 = output("compressed.mp3")
        let plain = try runProcess(Checkout.larkBinary, ["say", "Hello.", "-o", wav], environment: ["LD_DEBUG": "files"])
        #expect(plain.status == 0)
        #expect(plain.stderr.contains("libonnxruntime"), "the loader's log is missing: \(plain.stderr.prefix(500))")
        #expect(!plain.stderr.contains("libavcodec"), "a WAV loaded FFmpeg")
        #expect(try Probe(file: wav).codec == "pcm_s16le")
        let compressed = try runProcess(Checkout.larkBinary, ["say", "Hello.", "-o", mp3], environment: ["LD_DEBUG": "files"])
        #expect(compressed.status == 0)
        #expect(compressed.stderr.contains("libavcodec.so"), "an MP3 did not load FFmpeg")
        #expect(try FormatProbe(file: mp3, rawFormat: nil, rate: 0).codec == "mp3")
    }

    @Test(arguments: [
        (["--format", "ogg_opus", "--sample-rate", "16000"], "speech.opus", "opus"),
        ([], "speech.mp3", "mp3"),
        (["--format", "aac", "--bitrate", "96000"], "speech.aac", "aac"),
        (["--format", "flac", "--sample-rate", "48000"], "speech.flac", "flac"),
    ])
    func writesOtherFormatsChosenByFlagOrExtension(flags: [String], file: String, codec: String) throws {
        let path = output(file)
        let result = try lark(["say", "Formats are chosen by flag or by the file name."] + flags + ["-o", path])
        #expect(result.status == 0, "\(result.stderr)")
        let probe = try FormatProbe(file: path, rawFormat: nil, rate: 0)
        #expect(probe.codec == codec)
        #expect(probe.sampleRate == (codec == "opus" ? 48000 : flags.contains("48000") ? 48000 : 22050))
    }

    @Test func speaksFrenchWithEspeak() throws {
        let wav = output("bonjour.wav")
        let result = try lark(["say", "--voice", "espeak-ng:fr", "-o", wav], input: "Bonjour tout le monde. Comment allez-vous?")
        #expect(result.status == 0, "\(result.stderr)")
        let probe = try Probe(file: wav)
        #expect(probe.sampleRate == 22050)
        #expect(probe.duration > 1.0 && probe.duration < 6.0, "duration \(probe.duration)")
    }

    @Test func rawPCMOnStandardOutputMatchesTheWAV() throws {
        let raw = try lark(["say", "Just one sentence.", "--noise-scale", "0", "--noise-w", "0", "--output", "-"])
        let wav = try lark(["say", "Just one sentence.", "--noise-scale", "0", "--noise-w", "0"])
        #expect(raw.status == 0 && wav.status == 0)
        #expect(raw.stdout.count > 22050)
        #expect(wav.stdout.count == raw.stdout.count + 44)
        #expect(wav.stdout.suffix(raw.stdout.count) == raw.stdout)
    }

    /// `--no-spin-wait` (and LARK_SPIN_WAIT=0): two threads that sleep between a run's parallel
    /// parts give the samples spinning ones give.
    @Test func sleepingThreadsGiveTheSameSamples() throws {
        let arguments = ["say", "Just one sentence.", "--threads", "2", "--noise-scale", "0", "--noise-w", "0", "--output", "-"]
        let spinning = try lark(arguments)
        let sleeping = try lark(arguments + ["--no-spin-wait"])
        let fromEnvironment = try runProcess(
            Checkout.larkBinary, arguments, input: Data(), environment: ["LARK_SPIN_WAIT": "0"])
        #expect(spinning.status == 0 && sleeping.status == 0 && fromEnvironment.status == 0, "\(sleeping.stderr)\(fromEnvironment.stderr)")
        #expect(spinning.stdout.count > 22050)
        #expect(sleeping.stdout == spinning.stdout)
        #expect(fromEnvironment.stdout == spinning.stdout)
    }

    @Test func sentenceSilenceLengthensTheAudio() throws {
        let text = "First sentence. Second sentence."
        let plain = try lark(["say", text, "--noise-scale", "0", "--noise-w", "0", "--output", "-"])
        let spaced = try lark(["say", text, "--noise-scale", "0", "--noise-w", "0", "--sentence-silence", "0.5", "--output", "-"])
        #expect(spaced.stdout.count - plain.stdout.count == 11025 * 2)
    }

    @Test func speakerByNameAndNumber() throws {
        for speaker in ["bob", "2"] {
            let result = try lark(["say", "Hi.", "--voice", output("multi.onnx"), "--speaker", speaker, "--output", "-"])
            #expect(result.status == 0, "\(speaker): \(result.stderr)")
        }
    }

    @Test(arguments: [
        (["say", "Hi.", "--voice", "/nonexistent/voice.onnx", "-o", "/dev/null"], "voice file not found"),
        (["say", "Hi.", "--voice", "no_such_voice", "-o", "/dev/null"], "unknown voice 'no_such_voice'; available: en_US-joe-medium"),
        (["say", "Hi.", "--voice", "PLACEHOLDER/noconfig.onnx", "-o", "/dev/null"], "noconfig.onnx.json"),
        (["say", "Hi.", "--voice", "PLACEHOLDER/corrupt.onnx", "-o", "/dev/null"], "cannot load voice model"),
        (["say", "Hi.", "--voice", "PLACEHOLDER/nomap.onnx", "-o", "/dev/null"], "missing phoneme_id_map"),
        (["say", "Hi.", "--voice", "PLACEHOLDER/multi.onnx", "--speaker", "7", "-o", "/dev/null"], "speakers 0 to 2"),
        (["say", "Hi.", "--voice", "PLACEHOLDER/multi.onnx", "--speaker", "dave", "-o", "/dev/null"], "alice, bob, carol"),
        (["say", "Hi.", "--speaker", "3", "-o", "/dev/null"], "single speaker"),
        (["say", "   ", "-o", "/dev/null"], "the text is empty"),
        (["say", "Hi.", "--length-scale=-1", "-o", "/dev/null"], "length_scale must be between"),
        (["say", "Hi.", "--voice", "espeak-ng:klingon", "-o", "/dev/null"], "espeak-ng:de"),
        (["say", "Hi.", "--cuda", "-o", "/dev/null"], "CUDA"),
        (["say", "Hi.", "--format", "wma", "-o", "/dev/null"], "available: wav, pcm, mp3, ogg_vorbis, ogg_opus"),
        (["say", "Hi.", "--format", "mp3", "--sample-rate", "12345", "-o", "/dev/null"], "8000, 16000, 22050, 24000, 44100, 48000"),
        (["say", "Hi.", "--format", "mulaw", "--sample-rate", "16000", "-o", "/dev/null"], "choose one of 8000"),
        (["say", "Hi.", "--format", "flac", "--bitrate", "64000", "-o", "/dev/null"], "flac has no bitrate"),
        (["say", "Hi.", "--precision", "half", "-o", "/dev/null"], "--precision must be fp32 or bf16, not 'half'"),
        // Refused either way: for the rewrite it needs, or (a CPU without AVX512-BF16) for the CPU.
        (["say", "Hi.", "--precision", "bf16", "--no-rewrite-convolutions", "-o", "/dev/null"], "--precision bf16"),
        // A bad default stops the server or worker before it starts, not every request after.
        (["serve", "--port", "1", "--noise-w", "4"], "noise_w must be between 0.0 and 2.0, got 4.0"),
        (["worker", "--length-scale", "20"], "length_scale must be between 0.05 and 5.0, got 20.0"),
    ])
    func badInputIsOneLineNamingTheProblem(arguments: [String], message: String) throws {
        let result = try lark(arguments.map { $0.replacingOccurrences(of: "PLACEHOLDER", with: Self.fixtures) })
        #expect(result.status != 0)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.hasPrefix("error: "))
        #expect(result.stderr.contains(message), "stderr: \(result.stderr)")
    }

    @Test func invalidUTF8OnStandardInputIsRejected() throws {
        let result = try runProcess(Checkout.larkBinary, ["say", "-o", "/dev/null"], input: Data([0x48, 0x69, 0xFF, 0xFE, 0x2E]))
        #expect(result.status != 0)
        #expect(result.stderr == "error: the text cannot be read: standard input is not valid UTF-8\n")
    }

    @Test func voicesListsPiperAndEspeakVoices() throws {
        let table = try lark(["voices"])
        #expect(table.status == 0)
        let text = String(decoding: table.stdout, as: UTF8.self)
        #expect(text.contains("en_US-joe-medium"))
        #expect(text.contains("espeak-ng:de"))
        let json = try lark(["voices", "--json", "--engine-kind", "piper"])
        let voices = try JSONSerialization.jsonObject(with: json.stdout) as? [[String: Any]]
        let joe = try #require(voices?.first { $0["id"] as? String == "en_US-joe-medium" })
        #expect(joe["sampleRate"] as? Int == 22050)
        #expect(joe["quality"] as? String == "medium")
        #expect(joe["languageCode"] as? String == "en_US")
    }

    @Test func phonemesShowsIPAAndIDs() throws {
        let result = try lark(["phonemes", "The other one."])
        let entry = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        #expect(entry?["phonemes"] as? [String] == ["ðɪʲ ˈʌðɚ wˌʌn."])
        let ids = entry?["ids"] as? [[Int]]
        #expect(ids?.first?.first == 1)  // BOS
        #expect(ids?.first?.last == 2)  // EOS
    }
}
