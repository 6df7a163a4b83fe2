import ArgumentParser
import AudioEncoding
import Foundation
import SpeechCore
import SpeechService

struct Say: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Speak text into a WAV file (or raw PCM on stdout).",
        discussion: """
            Examples:
              lark say "Hello world. This is Lark." --voice en_US-joe-medium -o hello.wav
              echo "Bonjour tout le monde." | lark say --voice espeak-ng:fr -o bonjour.wav
              lark say "Raw samples" --output - | aplay -r 22050 -f S16_LE -c 1
              lark say --ssml '<speak>Wait <break time="1s"/> now.</speak>' -o wait.wav
            """
    )

    @Argument(help: "The text to speak (default: read from standard input).")
    var text: String?

    @Option(name: [.short, .long], help: "Voice id: a Piper voice name, a path to its .onnx, or espeak-ng:<language>. Env: LARK_VOICE.")
    var voice: String?

    @Option(name: [.short, .customLong("model")], help: "Alias of --voice, as Piper spells it.")
    var model: String?

    @Option(name: [.short, .long], help: "Path to the voice's .onnx.json (default: the model path + .json).")
    var config: String?

    @Option(name: [.short, .long], help: "Speaker id or name, for multi-speaker voices.")
    var speaker: String?

    @Option(name: [.customLong("length-scale"), .customLong("length_scale")], help: "Phoneme length: above 1 is slower.")
    var lengthScale: Float?

    @Option(name: [.customLong("noise-scale"), .customLong("noise_scale")], help: "Generator noise.")
    var noiseScale: Float?

    @Option(name: [.customLong("noise-w"), .customLong("noise_w"), .customLong("noise-w-scale")], help: "Phoneme width noise.")
    var noiseW: Float?

    @Option(name: [.customLong("sentence-silence"), .customLong("sentence_silence")], help: "Seconds of silence between sentences.")
    var sentenceSilence: Double?

    @Option(help: "espeak-ng voices: speaking rate in words per minute (80-450).")
    var rate: Int?

    @Option(help: "espeak-ng voices: base pitch (0-100).")
    var pitch: Int?

    @Option(name: [.short, .customLong("output"), .customLong("output-file"), .customLong("output_file")],
            help: "WAV file to write, or - for raw 16-bit PCM on stdout (default: WAV on stdout when it is not a terminal).")
    var output: String?

    @Option(help: "Audio format: \(AudioFormat.allCases.map(\.rawValue).joined(separator: ", ")) (default: from the output file's extension, else wav; raw pcm for --output -).")
    var format: String?

    @Option(name: [.customLong("sample-rate"), .customLong("sample_rate")], help: "Output sample rate: 8000, 16000, 22050, 24000, 44100 or 48000 (default: the voice's).")
    var sampleRate: Int?

    @Option(help: "Bits per second for mp3, ogg_vorbis, ogg_opus and aac.")
    var bitrate: Int?

    @Flag(help: "The text is an SSML document (<speak>…</speak>); see README's SSML section.")
    var ssml = false

    @OptionGroup var engine: EngineOptions
    @OptionGroup var normalization: NormalizationOptions

    func run() async throws {
        do {
            // One text at a time: every core on each sentence, as Piper's ONNX Runtime does by default.
            let configuration = engine.engineConfiguration(
                defaultThreads: ProcessInfo.processInfo.activeProcessorCount, allowVoicePaths: true)
            try await withVoiceLibrary(configuration) { try await speak(library: $0) }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw fail(describe(error))
        }
    }

    private func speak(library: VoiceLibrary) async throws {
        let destination = output ?? (isatty(STDOUT_FILENO) == 0 ? "wav-stdout" : nil)
        guard let destination else {
            throw fail("give --output FILE.wav (or --output - for raw PCM); refusing to write audio to a terminal")
        }
        let input = try readText()
        guard !input.trimmingWhitespace().isEmpty else { throw SpeechError.emptyText }
        let options = SynthesisOptions(
            speaker: speaker.map(SpeakerSelector.init), lengthScale: lengthScale, noiseScale: noiseScale, noiseW: noiseW,
            sentenceSilence: sentenceSilence, rate: rate, pitch: pitch)

        let name = voice ?? model ?? ProcessInfo.processInfo.environment["LARK_VOICE"] ?? "en_US-joe-medium"
        let selected: any SpeechVoice
        if let config {
            selected = try await library.voice(modelPath: name, configPath: config)
        } else {
            selected = try await library.voice(name)
        }

        let audioOutput = try outputFormat(destination: destination, voiceRate: selected.info.sampleRate)
        let streaming = destination == "-"
        let encoder = try makeAudioEncoder(output: audioOutput, inputRate: selected.info.sampleRate, streaming: streaming)
        let prepared = try await library.prepare(SpeechInput(input, markup: ssml ? .ssml : .text, normalize: normalization.normalize), voice: selected, options: options)
        if streaming {
            // Sentence by sentence, each as soon as it is ready.
            try await withOneSynthesis { ticket in
                for try await chunk in prepared.start(on: ticket) {
                    FileHandle.standardOutput.write(Data(try encoder.encode(chunk.samples)))
                }
            }
            FileHandle.standardOutput.write(Data(try encoder.finish()))
            return
        }
        var bytes: [UInt8] = []
        try await withOneSynthesis { ticket in
            for try await chunk in prepared.start(on: ticket) {
                bytes += try encoder.encode(chunk.samples)
            }
        }
        bytes += try encoder.finish()
        if destination == "wav-stdout" {
            FileHandle.standardOutput.write(Data(bytes))
        } else {
            do {
                try Data(bytes).write(to: URL(fileURLWithPath: destination))
            } catch {
                throw fail("cannot write \(destination): \((error as NSError).localizedDescription)")
            }
        }
    }

    /// `--format`, else the output file's extension, else WAV (raw PCM for `-`).
    private func outputFormat(destination: String, voiceRate: Int) throws -> AudioOutput {
        let chosen: AudioFormat
        if let format {
            guard let parsed = AudioFormat(name: format) else { throw fail(AudioOutputError.unknownFormat(format).message) }
            chosen = parsed
        } else if destination == "-" {
            chosen = .pcm
        } else {
            let fileExtension = URL(fileURLWithPath: destination).pathExtension.lowercased()
            // `.wav` comes before the G.711-in-WAV formats, so a .wav file stays 16-bit PCM.
            chosen = AudioFormat.allCases.first { $0.fileExtension == fileExtension } ?? AudioFormat(name: fileExtension) ?? .wav
        }
        do {
            return try AudioOutput(format: chosen, sampleRate: sampleRate, bitrate: bitrate, voiceRate: voiceRate)
        } catch {
            throw fail(error.message)
        }
    }

    /// The text argument, or standard input, which must be valid UTF-8.
    private func readText() throws -> String {
        if let text { return text }
        let data = FileHandle.standardInput.readDataToEndOfFile()
        guard let decoded = String(validating: data, as: UTF8.self) else {
            throw SpeechError.invalidText("standard input is not valid UTF-8")
        }
        return decoded
    }
}
