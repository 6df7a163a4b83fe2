import ArgumentParser
import Foundation
import SpeechCore
import SpeechService
import VoiceCatalog

/// `lark voices`: list (the default, so `lark voices` alone still lists), download, remove, update.
struct Voices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, download and remove voices.",
        subcommands: [List.self, Download.self, Remove.self, Update.self, Optimize.self, Cache.self],
        defaultSubcommand: List.self)
}

extension Voices {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the voices Lark can speak with, or with --available those in the catalog.")

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        @Flag(help: "List the catalog's voices (fetching the catalog if it is not cached yet), marking those installed.")
        var available = false

        @Option(help: "Only voices whose language code starts with this (en, en_US, de).")
        var language: String?

        @Option(help: "Only voices of this engine (piper, espeak-ng).")
        var engineKind: EngineKind?

        @OptionGroup var engine: EngineOptions
        @OptionGroup var catalog: CatalogOptions

        func run() async throws {
            if available {
                try await listAvailable()
            } else {
                try await listInstalled()
            }
        }

        private func listAvailable() async throws {
            let directories = catalog.searchDirectories(engine.engineConfiguration(allowVoicePaths: false).dataDirectories)
            let voices: [AvailableVoice]
            do {
                voices = try await withVoiceInstaller(catalog.settings(dataDirectories: directories), dataDirectories: directories) {
                    try await $0.available(language: language)
                }
            } catch {
                throw fail(describe(error))
            }
            if json {
                try printJSON(voices)
                return
            }
            let rows = voices.map { entry in
                [entry.voice.key, entry.voice.language.code, entry.voice.quality, String(entry.voice.numSpeakers),
                 String(format: "%.0f MB", Double(entry.voice.downloadSize) / 1_000_000), entry.installed ? "yes" : "-",
                 entry.voice.aliases.joined(separator: ",")]
            }
            print(Table.render(header: ["KEY", "LANGUAGE", "QUALITY", "SPEAKERS", "SIZE", "INSTALLED", "ALIASES"], rows: rows))
        }

        private func listInstalled() async throws {
            var configuration = engine.engineConfiguration(allowVoicePaths: false)
            configuration.dataDirectories = catalog.searchDirectories(configuration.dataDirectories)
            var voices: [VoiceInfo]
            do {
                voices = try await withVoiceLibrary(configuration) { try await $0.voices() }
            } catch {
                throw fail(describe(error))
            }
            if let language {
                let wanted = language.lowercased().replacingOccurrences(of: "-", with: "_")
                voices = voices.filter { $0.languageCode.lowercased().replacingOccurrences(of: "-", with: "_").hasPrefix(wanted) }
            }
            if let engineKind { voices = voices.filter { $0.engine == engineKind } }

            if json {
                try printJSON(voices)
                return
            }
            let rows = voices.map { voice in
                [voice.id, voice.engine.rawValue, voice.languageCode, voice.quality ?? "-", String(voice.speakerCount), String(voice.sampleRate)]
            }
            print(Table.render(header: ["ID", "ENGINE", "LANGUAGE", "QUALITY", "SPEAKERS", "SAMPLE RATE"], rows: rows))
        }
    }
}

func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    FileHandle.standardOutput.write(try encoder.encode(value) + Data("\n".utf8))
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
