import ArgumentParser
import AudioEncoding
import Foundation
import SpeechCore
import SpeechService

/// In-process timing of the engine, for `bench/engine`: the voice is loaded and warmed up first,
/// then each round synthesizes the whole text. Prints one JSON object.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time synthesis of a text (used by bench/engine; prints JSON).")

    @Option(name: [.short, .long], help: "Voice id.")
    var voice = "en_US-joe-medium"

    @Option(help: "File with the text to speak.")
    var textFile: String

    @Option(help: "Timed rounds.")
    var rounds = 3

    @Option(help: "Noise scale (the voice's default when absent).")
    var noiseScale: Float?

    @Option(help: "Noise width (the voice's default when absent).")
    var noiseW: Float?

    @Flag(help: "Also time encoding the last round's audio into every format (streamed, sentence by sentence).")
    var formats = false

    @OptionGroup var engine: EngineOptions

    /// What `bench/engine` reads (its keys are the script's).
    private struct Report: Encodable {
        struct Round: Encodable {
            var first_sentence_s: Double
            var total_s: Double
            var audio_s: Double
            var rtf: Double
        }

        var implementation = "lark"
        var voice: String
        var load_s: Double
        var rounds: [Round]
        var encode_s: [String: Double]?
    }

    func run() async throws {
        let text: String
        do {
            text = try String(contentsOfFile: textFile, encoding: .utf8)
        } catch {
            throw fail("cannot read \(textFile): \((error as NSError).localizedDescription)")
        }
        do {
            let report = try await withVoiceLibrary(engine.engineConfiguration(allowVoicePaths: true)) { library in
                try await measure(text, library: library)
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            FileHandle.standardOutput.write(try encoder.encode(report) + Data("\n".utf8))
        } catch {
            throw fail(describe(error))
        }
    }

    private func measure(_ text: String, library: VoiceLibrary) async throws -> Report {
        let options = SynthesisOptions(noiseScale: noiseScale, noiseW: noiseW)
        let loadStart = ContinuousClock.now
        let selected = try await library.voice(voice)
        let loadSeconds = (ContinuousClock.now - loadStart).seconds
        var results: [Report.Round] = []
        var lastRound: [[Int16]] = []
        try await withOneSynthesis { ticket in
        _ = try await selected.synthesizeAll("Warming up.", options: options, admission: ticket)
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            var first: Double?
            var samples = 0
            lastRound = []
            for try await chunk in selected.synthesize(text, options: options, admission: ticket) {
                if first == nil { first = (ContinuousClock.now - start).seconds }
                samples += chunk.samples.count
                lastRound.append(chunk.samples)
            }
            let total = (ContinuousClock.now - start).seconds
            let audio = Double(samples) / Double(selected.info.sampleRate)
            results.append(Report.Round(first_sentence_s: first ?? total, total_s: total, audio_s: audio, rtf: total / audio))
        }
        }
        return Report(
            voice: voice, load_s: loadSeconds, rounds: results,
            encode_s: formats ? try encodingTimes(lastRound, voiceRate: selected.info.sampleRate) : nil)
    }
}

/// Seconds to encode `sentences` into each format at its default rate, as a stream (the
/// server's `/read` path), best of three.
private func encodingTimes(_ sentences: [[Int16]], voiceRate: Int) throws -> [String: Double] {
    var times: [String: Double] = [:]
    for format in AudioFormat.allCases {
        let output = try AudioOutput(format: format, sampleRate: nil, bitrate: nil, voiceRate: voiceRate)
        var best = Double.infinity
        for _ in 0..<3 {
            let start = ContinuousClock.now
            let encoder = try makeAudioEncoder(output: output, inputRate: voiceRate, streaming: true)
            for sentence in sentences { _ = try encoder.encode(sentence) }
            _ = try encoder.finish()
            best = min(best, (ContinuousClock.now - start).seconds)
        }
        times[format.rawValue] = best
    }
    return times
}

extension Duration {
    var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
