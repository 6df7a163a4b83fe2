import AudioEncoding
import Foundation
import SpeechCore
import Testing

/// Every output format, read back by real ffprobe and decoded by real ffmpeg.
@Suite struct AudioFormatTests {
    /// Six sentences (about 15 s) of the joe voice at zero noise, as the engine hands them out
    /// (synthesized once, by the first test that asks). Long enough that a codec's fixed delay
    /// and padding (a quarter second for AAC or MP3 at 8 kHz) stay under the 2% tolerance.
    static let synthesis = Task<[[Int16]], any Error> {
        let voice = try await Checkout.library.voice(Checkout.joeModel)
        var chunks: [[Int16]] = []
        let options = SynthesisOptions(noiseScale: 0, noiseW: 0)
        for try await chunk in voice.synthesize(Self.text, options: options, admission: Checkout.admission()) {
            chunks.append(chunk.samples)
        }
        return chunks
    }
    static let voiceRate = 22050
    static let text = """
        The first sentence is here, and it is not very long. A second one follows it, a little slower. \
        And then a third arrives, with a comma or two, for rhythm. The fourth sentence asks a question, doesn't it? \
        The fifth is an exclamation! And the last one closes the paragraph quietly.
        """

    /// What ffprobe should name, per format: codec, container.
    static let expected: [AudioFormat: (codec: String, container: String)] = [
        .wav: ("pcm_s16le", "wav"), .mp3: ("mp3", "mp3"), .oggVorbis: ("vorbis", "ogg"), .oggOpus: ("opus", "ogg"),
        .flac: ("flac", "flac"), .aac: ("aac", "aac"), .mulaw: ("pcm_mulaw", "wav"), .alaw: ("pcm_alaw", "wav"),
        .mulawRaw: ("pcm_mulaw", "mulaw"), .alawRaw: ("pcm_alaw", "alaw"), .pcm: ("pcm_s16le", "s16le"),
    ]

    /// Each format at its default rate and at one other, whole files and streams.
    static let cases: [(AudioFormat, Int?, Bool)] = AudioFormat.allCases.flatMap { format -> [(AudioFormat, Int?, Bool)] in
        let other = format.allowedSampleRates.first { $0 != format.defaultSampleRate(voiceRate: voiceRate) }
        return [(format, nil, false), (format, nil, true)] + (other.map { [(format, $0, true)] } ?? [])
    }

    @Test(arguments: cases)
    func formatDecodesWithTheRightCodecRateAndLength(format: AudioFormat, rate: Int?, streaming: Bool) async throws {
        let sentences = try await Self.synthesis.value
        let output = try AudioOutput(format: format, sampleRate: rate, bitrate: nil, voiceRate: Self.voiceRate)
        let encoder = try makeAudioEncoder(output: output, inputRate: Self.voiceRate, streaming: streaming)
        var bytes: [UInt8] = []
        for sentence in sentences { bytes += try encoder.encode(sentence) }
        bytes += try encoder.finish()
        let file = try Self.write(bytes, format: format)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let streamedWAV = streaming && [.wav, .mulaw, .alaw].contains(format)
        try Self.expectDecodes(file: file, output: output, sentences: sentences, unknownLength: streamedWAV)
    }

    /// Each format written straight into a file (as job files are), at its default rate and at
    /// one other: the same codec, rate and length as a whole file made in memory.
    @Test(arguments: AudioFormat.allCases.flatMap { format -> [(AudioFormat, Int?)] in
        let other = format.allowedSampleRates.first { $0 != format.defaultSampleRate(voiceRate: voiceRate) }
        return [(format, nil)] + (other.map { [(format, $0)] } ?? [])
    })
    func fileOutputDecodesWithTheRightCodecRateAndLength(format: AudioFormat, rate: Int?) async throws {
        let sentences = try await Self.synthesis.value
        let output = try AudioOutput(format: format, sampleRate: rate, bitrate: nil, voiceRate: Self.voiceRate)
        let file = NSTemporaryDirectory() + "lark-file-\(UUID().uuidString).\(format.fileExtension)"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let writer = try AudioFileWriter(output: output, inputRate: Self.voiceRate, path: file)
        for sentence in sentences { try writer.write(sentence) }
        let size = try writer.finish()
        #expect(size == (try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int))
        try Self.expectDecodes(file: file, output: output, sentences: sentences, unknownLength: false)
        if format == .wav {
            // The header's lengths are exact.
            let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
            #expect(bytes.count == size && WAV.header(sampleRate: output.sampleRate, sampleCount: (size - 44) / 2) == Array(bytes.prefix(44)))
        }
    }

    /// Through libavformat's file I/O (FLAC) and the system's calls (WAV: `PlainFileOutput`).
    @Test(arguments: [AudioFormat.flac, .wav])
    func fileOutputThatCannotBeWrittenIsAFileError(format: AudioFormat) throws {
        let output = try AudioOutput(format: format, sampleRate: nil, bitrate: nil, voiceRate: Self.voiceRate)
        let path = "/nonexistent-\(UUID().uuidString)/speech.\(format.fileExtension)"
        #expect(throws: AudioFileError.self) { _ = try AudioFileWriter(output: output, inputRate: Self.voiceRate, path: path) }
    }

    /// ffprobe's codec, container, rate and channels for `file`, and its decoded length against
    /// the PCM it came from.
    static func expectDecodes(file: String, output: AudioOutput, sentences: [[Int16]], unknownLength: Bool) throws {
        let format = output.format
        let (codec, container) = Self.expected[format]!
        let probe = try FormatProbe(file: file, rawFormat: Self.rawDemuxer(format), rate: output.sampleRate)
        #expect(probe.codec == codec)
        #expect(probe.container.split(separator: ",").contains(Substring(container)), "container \(probe.container)")
        if format == .oggOpus {
            // Opus always decodes at 48 kHz; the rate it was made from is in its header.
            #expect(probe.sampleRate == 48000)
            #expect(Self.opusInputRate(Array(try Data(contentsOf: URL(fileURLWithPath: file)))) == output.sampleRate)
        } else {
            #expect(probe.sampleRate == output.sampleRate)
        }
        #expect(probe.channels == 1)

        // Decoded length against the PCM it came from.
        let decoded = try Self.decodedSeconds(
            file: file, rawFormat: Self.rawDemuxer(format), rate: output.sampleRate, unknownLength: unknownLength)
        let source = Double(sentences.map(\.count).reduce(0, +)) / Double(Self.voiceRate)
        let tolerance = [.pcm, .wav, .mulaw, .alaw, .mulawRaw, .alawRaw].contains(format) ? 0.002 : 0.02
        #expect(abs(decoded - source) <= source * tolerance, "\(format.rawValue) at \(output.sampleRate): \(decoded) s decoded, \(source) s in")
    }

    @Test(arguments: [AudioFormat.oggOpus, .mp3, .oggVorbis, .aac, .flac])
    func theFirstSentenceOfAStreamDecodesOnItsOwn(format: AudioFormat) async throws {
        let sentences = try await Self.synthesis.value
        let output = try AudioOutput(format: format, sampleRate: nil, bitrate: nil, voiceRate: Self.voiceRate)
        let encoder = try makeAudioEncoder(output: output, inputRate: Self.voiceRate, streaming: true)
        // What a client holds after the first chunk: the header and the first sentence's audio
        // (less what the codec keeps back for its next frame).
        let prefix = try encoder.encode(sentences[0])
        #expect(!prefix.isEmpty)
        let file = try Self.write(prefix, format: format)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let decoded = try Self.decodedSeconds(file: file, rawFormat: nil, rate: output.sampleRate)
        let firstSentence = Double(sentences[0].count) / Double(Self.voiceRate)
        #expect(decoded >= firstSentence * 0.85, "\(format.rawValue): \(decoded) s of \(firstSentence) s decoded from the first chunk")
    }

    @Test func badChoicesNameTheValidOnes() {
        #expect(AudioFormat(name: "opus") == .oggOpus)
        #expect(AudioFormat(name: "OGG_VORBIS") == .oggVorbis)
        #expect(AudioFormat(name: "wma") == nil)
        #expect(AudioOutputError.unknownFormat("wma").message.contains("ogg_opus"))
        #expect(throws: AudioOutputError.unsupportedSampleRate(12345, format: .mp3)) {
            try AudioOutput(format: .mp3, sampleRate: 12345, bitrate: nil, voiceRate: 22050)
        }
        #expect(AudioOutputError.unsupportedSampleRate(22050, format: .oggOpus).message.contains("8000, 16000, 24000, 48000"))
        #expect(throws: AudioOutputError.bitrateOutOfRange(1000, format: .aac, range: 32_000...256_000)) {
            try AudioOutput(format: .aac, sampleRate: nil, bitrate: 1000, voiceRate: 22050)
        }
        #expect(throws: AudioOutputError.bitrateNotApplicable(.flac)) {
            try AudioOutput(format: .flac, sampleRate: nil, bitrate: 64000, voiceRate: 22050)
        }
    }

    // MARK: - Helpers

    /// Raw formats carry no header: ffmpeg must be told what they are.
    static func rawDemuxer(_ format: AudioFormat) -> String? {
        switch format {
        case .pcm: return "s16le"
        case .mulawRaw: return "mulaw"
        case .alawRaw: return "alaw"
        default: return nil
        }
    }

    static func write(_ bytes: [UInt8], format: AudioFormat) throws -> String {
        let file = NSTemporaryDirectory() + "lark-format-\(UUID().uuidString).\(format.fileExtension)"
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }

    static func inputArguments(file: String, rawFormat: String?, rate: Int) -> [String] {
        guard let rawFormat else { return ["-i", file] }
        return ["-f", rawFormat, "-ar", String(rate), "-ac", "1", "-i", file]
    }

    /// Decodes with ffmpeg (failing on any decoding error) and counts the samples.
    /// `unknownLength`: a streamed WAV, whose header cannot give the data size; FFmpeg's WAV
    /// reader flags the last, short read of such a file as a "corrupt input packet" (it does the
    /// same with WAVs FFmpeg itself writes to a pipe), so that one message is allowed and
    /// `-xerror` is left off.
    static func decodedSeconds(file: String, rawFormat: String?, rate: Int, unknownLength: Bool = false) throws -> Double {
        let result = try runProcess("/usr/bin/ffmpeg", ["-v", "error"] + (unknownLength ? [] : ["-xerror"])
            + inputArguments(file: file, rawFormat: rawFormat, rate: rate) + ["-f", "s16le", "-ac", "1", "-ar", String(rate), "-"])
        let problems = result.stderr.split(separator: "\n").filter { !(unknownLength && $0.hasSuffix("corrupt input packet in stream 0")) }
        guard result.status == 0, problems.isEmpty else { throw ProbeError(message: "ffmpeg: \(result.stderr)") }
        return Double(result.stdout.count / 2) / Double(rate)
    }

    /// The input sample rate an Ogg Opus stream declares in its `OpusHead` packet.
    static func opusInputRate(_ bytes: [UInt8]) -> Int? {
        let magic = Array("OpusHead".utf8)
        guard let start = (0...(bytes.count - 16)).first(where: { Array(bytes[$0..<($0 + 8)]) == magic }) else { return nil }
        let field = bytes[(start + 12)..<(start + 16)]
        return field.reversed().reduce(0) { $0 << 8 | Int($1) }
    }
}

/// ffprobe's view of a file: codec, container, rate, channels.
struct FormatProbe {
    var codec = "", container = "", sampleRate = 0, channels = 0

    init(file: String, rawFormat: String?, rate: Int) throws {
        let result = try runProcess("/usr/bin/ffprobe", ["-v", "error", "-show_entries",
            "stream=codec_name,sample_rate,channels:format=format_name", "-of", "json"]
            + (rawFormat.map { ["-f", $0, "-ar", String(rate), "-ac", "1"] } ?? []) + [file])
        guard result.status == 0,
              let json = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any],
              let stream = (json["streams"] as? [[String: Any]])?.first
        else { throw ProbeError(message: result.stderr) }
        codec = stream["codec_name"] as? String ?? ""
        sampleRate = Int(stream["sample_rate"] as? String ?? "") ?? 0
        channels = stream["channels"] as? Int ?? 0
        container = (json["format"] as? [String: Any])?["format_name"] as? String ?? ""
    }
}
