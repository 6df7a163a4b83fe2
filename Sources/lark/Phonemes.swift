import ArgumentParser
import Foundation
import PiperEngine
import SpeechService

/// Shows what a Piper voice will feed its model: phonemes and ids per sentence (per piece of a
/// sentence too long to run whole), one JSON line per input line. For checking pronunciation.
struct Phonemes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the phonemes and phoneme ids of each sentence (one JSON line per input line).")

    @Argument(help: "Text (default: each line of standard input).")
    var text: String?

    @Option(name: [.short, .long], help: "Piper voice id or model path.")
    var voice = "en_US-joe-medium"

    @OptionGroup var engine: EngineOptions

    func run() async throws {
        do {
            try await withVoiceLibrary(engine.engineConfiguration(allowVoicePaths: true)) { try await printPhonemes($0) }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw fail(describe(error))
        }
    }

    /// One output line.
    private struct Line: Encodable {
        var text: String
        var phonemes: [String]
        var ids: [[Int64]]
    }

    private func printPhonemes(_ library: VoiceLibrary) async throws {
        guard let piper = try await library.voice(voice) as? PiperVoice else {
            throw fail("\(voice) is not a Piper voice; only Piper voices have phoneme ids")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let lines = text.map { [$0] } ?? Array(AnyIterator { readLine(strippingNewline: true) })
        for line in lines {
            let runs = try await piper.modelRuns(for: line)
            let entry = Line(text: line, phonemes: runs.map { $0.phonemes.joined() }, ids: runs.map(piper.phonemeIDs(for:)))
            FileHandle.standardOutput.write(try encoder.encode(entry) + Data("\n".utf8))
        }
    }
}
