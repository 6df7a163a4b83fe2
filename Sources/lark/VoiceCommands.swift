import ArgumentParser
import Foundation
import VoiceCatalog

extension Voices {
    struct Download: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download voices from the catalog into the download directory (names or aliases).")

        @Argument(help: "Voice keys or aliases, e.g. en_US-lessac-medium.")
        var names: [String]

        @Flag(help: "Skip optimizing the downloaded voices for this machine (their first load then does it).")
        var noOptimize = false

        @OptionGroup var engine: EngineOptions
        @OptionGroup var catalog: CatalogOptions

        func run() async throws {
            guard !names.isEmpty else { throw fail("name at least one voice (see `lark voices list --available`)") }
            let directories = catalog.searchDirectories(engine.engineConfiguration(allowVoicePaths: false).dataDirectories)
            let progress = ProgressPrinter()
            var installed: [String] = []
            do {
                try await withVoiceInstaller(catalog.settings(dataDirectories: directories), dataDirectories: directories) { installer in
                    for name in names {
                        let result = try await installer.install(name, progress: progress.handler)
                        installed.append(result.voice.key)
                        let alias = result.voice.key == name ? "" : " (\(name) is an alias of it)"
                        print(result.downloaded
                              ? "installed \(result.voice.key)\(alias) in \(URL(fileURLWithPath: result.files.modelPath).deletingLastPathComponent().path)"
                              : "\(result.voice.key)\(alias) is already installed: \(result.files.modelPath)")
                    }
                }
            } catch {
                throw fail(describe(error))
            }
            // A voice optimized now loads in about a second on its first use too.
            var configuration = engine.engineConfiguration(allowVoicePaths: false)
            configuration.dataDirectories = directories
            if !noOptimize, configuration.voiceCache != nil, configuration.rewriteConvolutions, !configuration.useCUDA {
                do {
                    try await optimizeVoices(installed, configuration: configuration)
                } catch {
                    // The voices are installed; their first load will try again (and say why it fails).
                    FileHandle.standardError.write(Data("warning: not optimized for this machine: \(describe(error))\n".utf8))
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a downloaded voice (only from the download directory).")

        @Argument(help: "The voice key, or an alias from the cached catalog.")
        var name: String

        @OptionGroup var engine: EngineOptions
        @OptionGroup var catalog: CatalogOptions

        func run() async throws {
            let directories = catalog.searchDirectories(engine.engineConfiguration(allowVoicePaths: false).dataDirectories)
            do {
                let removed = try await withVoiceInstaller(catalog.settings(dataDirectories: directories), dataDirectories: directories) {
                    try $0.remove(name)
                }
                print("removed \(removed.name) (\(removed.modelPath))")
            } catch {
                throw fail(describe(error))
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch the voice catalog again and cache it in the download directory.")

        @OptionGroup var engine: EngineOptions
        @OptionGroup var catalog: CatalogOptions

        func run() async throws {
            let directories = catalog.searchDirectories(engine.engineConfiguration(allowVoicePaths: false).dataDirectories)
            let settings = catalog.settings(dataDirectories: directories)
            do {
                let fetched = try await withVoiceInstaller(settings, dataDirectories: directories) { try await $0.update() }
                print("catalog updated: \(fetched.voices.count) voices, cached in \(settings.cachedCatalogPath)")
            } catch {
                throw fail(describe(error))
            }
        }
    }
}
