import ArgumentParser
import Foundation
import SpeechCore
import SpeechService

struct Voices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the voices Lark can speak with.")

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: "Only voices whose language code starts with this (en, en_US, de).")
    var language: String?

    @Option(help: "Only voices of this engine (piper, espeak-ng).")
    var engineKind: EngineKind?

    @OptionGroup var engine: EngineOptions

    func run() async throws {
        let library = VoiceLibrary(configuration: engine.engineConfiguration(allowVoicePaths: false))
        defer { Task { try? await library.shutdown() } }
        var voices: [VoiceInfo]
        do {
            voices = try await library.voices()
        } catch {
            throw fail(describe(error))
        }
        if let language {
            let wanted = language.lowercased().replacingOccurrences(of: "-", with: "_")
            voices = voices.filter { $0.languageCode.lowercased().replacingOccurrences(of: "-", with: "_").hasPrefix(wanted) }
        }
        if let engineKind { voices = voices.filter { $0.engine == engineKind } }

        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(voices)
            FileHandle.standardOutput.write(data + Data("\n".utf8))
            return
        }
        let rows = voices.map { voice in
            [voice.id, voice.engine.rawValue, voice.languageCode, voice.quality ?? "-", String(voice.speakerCount), String(voice.sampleRate)]
        }
        print(Table.render(header: ["ID", "ENGINE", "LANGUAGE", "QUALITY", "SPEAKERS", "SAMPLE RATE"], rows: rows))
    }
}

extension EngineKind: ExpressibleByArgument {}

/// A plain text table with columns padded to their widest cell.
enum Table {
    static func render(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
