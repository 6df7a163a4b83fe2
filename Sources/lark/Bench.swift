import ArgumentParser
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

    @OptionGroup var engine: EngineOptions

    func run() async throws {
        let library = VoiceLibrary(configuration: engine.engineConfiguration(allowVoicePaths: true))
        let text: String
        do {
            text = try String(contentsOfFile: textFile, encoding: .utf8)
        } catch {
            throw fail("cannot read \(textFile): \((error as NSError).localizedDescription)")
        }
        let options = SynthesisOptions(noiseScale: noiseScale, noiseW: noiseW)
        do {
            let loadStart = ContinuousClock.now
            let selected = try await library.voice(voice)
            let loadSeconds = (ContinuousClock.now - loadStart).seconds
            _ = try await selected.synthesizeAll("Warming up.", options: options)
            var results: [[String: Double]] = []
            for _ in 0..<rounds {
                let start = ContinuousClock.now
                var first: Double?
                var samples = 0
                for try await chunk in selected.synthesize(text, options: options) {
                    if first == nil { first = (ContinuousClock.now - start).seconds }
                    samples += chunk.samples.count
                }
                let total = (ContinuousClock.now - start).seconds
                let audio = Double(samples) / Double(selected.info.sampleRate)
                results.append(["first_sentence_s": first ?? total, "total_s": total, "audio_s": audio, "rtf": total / audio])
            }
            let report: [String: Any] = ["implementation": "lark", "voice": voice, "load_s": loadSeconds, "rounds": results]
            let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        } catch {
            try? await library.shutdown()
            throw fail(describe(error))
        }
        try? await library.shutdown()
    }
}

extension Duration {
    var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
