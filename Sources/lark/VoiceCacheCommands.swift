import ArgumentParser
import Foundation
import OnnxRuntime
import PiperEngine
import SpeechCore
import SpeechService

extension Voices {
    struct Optimize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Optimize Piper voices for this machine ahead of their first use (kept in the cache directory).")

        @Argument(help: "Voice names (default: every Piper voice in the data directories).")
        var names: [String] = []

        @OptionGroup var engine: EngineOptions
        @OptionGroup var catalog: CatalogOptions

        func run() async throws {
            var configuration = engine.engineConfiguration(allowVoicePaths: true)
            configuration.dataDirectories = catalog.searchDirectories(configuration.dataDirectories)
            guard configuration.voiceCache != nil else { throw fail("--no-voice-cache leaves nothing to optimize into") }
            configuration.voiceCache = engine.voiceCache(progress: true)  // this command's whole point: say what it does
            guard configuration.rewriteConvolutions, !configuration.useCUDA else {
                throw fail("voices are only optimized for the CPU with the convolution rewrite on")
            }
            do {
                try await optimizeVoices(names, configuration: configuration)
            } catch {
                throw fail(describe(error))
            }
        }
    }

    struct Cache: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the optimized-voice cache (or --prune or --clear it).")

        @Flag(help: "Delete every cached optimized voice (they are built again on their next load).")
        var clear = false

        @Flag(help: """
            Delete the cached voices this Lark would not use: built by another version of it or \
            another ONNX Runtime, or damaged (entries for other CPUs stay: a cache directory may \
            be shared by machines).
            """)
        var prune = false

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        @OptionGroup var engine: EngineOptions

        func run() async throws {
            let cache = engine.voiceCache
            if clear && prune { throw fail("--clear deletes every entry, --prune the stale ones: choose one") }
            if clear {
                do {
                    let removed = try cache.clear()
                    print("removed \(removed) file\(removed == 1 ? "" : "s") from \(cache.directory)")
                } catch {
                    throw fail("could not clear \(cache.directory): \(error.localizedDescription)")
                }
                return
            }
            let version: String
            switch OnnxRuntime.shared {
            case .success(let runtime): version = runtime.version
            case .failure(let error): throw fail("ONNX Runtime could not start: \(error.message)")
            }
            if prune {
                do {
                    let removed = try cache.prune(onnxRuntime: version)
                    print("removed \(removed.files) file\(removed.files == 1 ? "" : "s") (\(String(format: "%.0f MB", Double(removed.bytes) / 1_000_000))) from \(cache.directory)")
                } catch {
                    throw fail("could not prune \(cache.directory): \(error.localizedDescription)")
                }
                return
            }
            let entries = cache.listing(onnxRuntime: version)
            if json {
                try printJSON(entries)
                return
            }
            print("cache directory: \(cache.directory)")
            guard !entries.isEmpty else {
                print("no optimized voices yet (`lark voices optimize` builds them)")
                return
            }
            let rows = entries.map { entry in
                [entry.voice ?? "?", String(format: "%.0f MB", Double(entry.bytes) / 1_000_000),
                 entry.created.map { $0.formatted(.iso8601) } ?? "-", entry.problem.map { "stale: \($0)" } ?? "valid",
                 (entry.file as NSString).lastPathComponent]
            }
            print(Table.render(header: ["VOICE", "SIZE", "CREATED", "STATE", "FILE"], rows: rows))
        }
    }
}

/// Loads each named Piper voice (every installed one when `names` is empty) once, which builds
/// its cache entry if it has none, and says which were built and which were already there.
func optimizeVoices(_ names: [String], configuration: EngineConfiguration) async throws {
    var configuration = configuration
    configuration.workers = 1
    let library = VoiceLibrary(configuration: configuration)
    var failure: (any Error)?
    do {
        var targets = names
        if targets.isEmpty {
            targets = try await library.voices().filter { $0.engine == .piper }.map(\.id)
        }
        for name in targets {
            let started = Date()
            let voice = try await library.voice(name)
            guard voice.info.engine == .piper else {
                print("\(name): espeak-ng voices need no optimizing")
                continue
            }
            print("\(voice.info.id): ready (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
        }
    } catch {
        failure = error
    }
    try? await library.shutdown()
    if let failure { throw failure }
}
