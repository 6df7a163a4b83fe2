import Foundation
import Testing
import VoiceCatalog

/// The voice catalog and downloads against a real HTTP server on loopback (`VoiceFileServer`):
/// aliases, caching and `update`, resumed and failed transfers. After every failure, nothing
/// the engine would load is left behind (`VoiceDirectories.scan()` does not see the voice).
/// Serialized: the transfers share two cores with the rest of the suite.
@Suite(.serialized) struct VoiceCatalogTests {
    /// An installer for `base` writing into `directory`; its HTTP client is shut down after `body`.
    @discardableResult
    static func withInstaller<T>(
        base: String, directory: String, catalogPath: String = "voices.json", readTimeout: Int64 = 120,
        _ body: (VoiceInstaller) async throws -> T
    ) async throws -> T {
        // AsyncHTTPClient retries a refused connection until the connect timeout: keep it short.
        // Its read timeout runs while this process's busy task pool is slow to take the bytes.
        let http = CatalogHTTPClient(connectTimeout: .seconds(2), readTimeout: .seconds(readTimeout))
        let settings = CatalogSettings(downloadDirectory: directory, catalogURL: base + catalogPath, voicesBaseURL: base)
        let installer = VoiceInstaller(settings: settings, dataDirectories: [directory], http: http)
        do {
            let result = try await body(installer)
            try await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    /// Whether the engine would find the voice in `directory`.
    static func visible(_ key: String, in directory: String) -> Bool {
        VoiceDirectories([directory]).scan().contains { $0.name == key }
    }

    static func files(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    @Test func catalogDecodesPiperFormatAndResolvesAliases() throws {
        let small = TestVoice.small("xx_XX-small-low", size: 1000, aliases: ["xx-old"])
        let catalog = try Catalog(data: TestVoice.catalog([TestVoice.joe, small]))
        #expect(catalog.voices.count == 2)
        let joe = try #require(catalog.voice(named: "en-us-joe-medium"))
        #expect(joe.key == "en_US-joe-medium" && joe.language.code == "en_US" && joe.language.countryEnglish == "Testland")
        let joeFiles = TestVoice.joe.files
        #expect(joe.files.count == 3)
        #expect(joe.downloadSize == Int64(joeFiles[TestVoice.joe.modelPath]!.count + joeFiles[TestVoice.joe.configPath]!.count))
        #expect(catalog.voice(named: "en_US-joe-medium.onnx")?.key == "en_US-joe-medium")
        #expect(catalog.voice(named: "nobody") == nil)
        #expect(catalog.aliases == ["en-us-joe-medium": "en_US-joe-medium", "xx-old": "xx_XX-small-low"])
        #expect(catalog.list(language: "en-us").map(\.key) == ["en_US-joe-medium"])
        #expect(catalog.list().map(\.key) == ["en_US-joe-medium", "xx_XX-small-low"])
        #expect(throws: CatalogError.self) { try Catalog(data: Data(#"{"a": {"key": "a"}}"#.utf8)) }
    }

    @Test func downloadsTheBundledVoiceByAliasOnceAndRemovesIt() async throws {
        let directory = try scratchDirectory("download")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let joe = TestVoice.joe
        let server = VoiceFileServer(files: TestVoice.repository([joe]))
        try await server.run { base in
            try await Self.withInstaller(base: base, directory: directory) { installer in
                let start = ContinuousClock.now
                let first = try await installer.install("en-us-joe-medium")
                let elapsed = start.duration(to: .now)
                #expect(first.downloaded && first.voice.key == "en_US-joe-medium")
                #expect(first.files.modelPath == directory + "/en_US-joe-medium.onnx")
                #expect(md5(try Data(contentsOf: URL(fileURLWithPath: first.files.modelPath))) == md5(joe.files[joe.modelPath]!))
                #expect(Self.visible("en_US-joe-medium", in: directory))
                // The catalog is cached; no part or probe file is left; the model card was not fetched.
                #expect(Self.files(in: directory) == [".en_US-joe-medium.lock", "en_US-joe-medium.onnx", "en_US-joe-medium.onnx.json", "voices.json"])
                print("downloaded \(joe.files[joe.modelPath]!.count) bytes over loopback in \(elapsed)")

                // Installed: the second time nothing is fetched, not even the catalog.
                let requestsBefore = server.requests.count
                let second = try await installer.install("en_US-joe-medium")
                #expect(!second.downloaded && server.requests.count == requestsBefore)

                // Removal by alias, only inside the download directory.
                let removed = try installer.remove("en-us-joe-medium")
                #expect(removed.name == "en_US-joe-medium" && !Self.visible("en_US-joe-medium", in: directory))
                #expect(throws: CatalogError.notInDownloadDirectory(name: "en_US-joe-medium", directory: directory)) {
                    try installer.remove("en_US-joe-medium")
                }
                #expect(throws: CatalogError.invalidName("../voices")) { try installer.remove("../voices") }
            }
        }
        // The bundled voice the files were served from is untouched.
        #expect(FileManager.default.fileExists(atPath: Checkout.joeModel))
    }

    @Test func updateReplacesTheCachedCatalog() async throws {
        let directory = try scratchDirectory("update")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let old = TestVoice.small("xx_XX-old-low", size: 1000)
        let new = TestVoice.small("xx_XX-new-low", size: 1000, aliases: ["xx_XX-newest-low"])
        let server = VoiceFileServer(files: TestVoice.repository([old]))
        try await server.run { base in
            try await Self.withInstaller(base: base, directory: directory) { installer in
                #expect(try await installer.catalog().voices.keys.sorted() == ["xx_XX-old-low"])
                server.set("voices.json", TestVoice.catalog([old, new]))
                for (path, data) in new.files { server.set(path, data) }
                // Cached: the new catalog is not fetched until asked.
                #expect(try await installer.catalog().voices.count == 1)
                #expect(server.requests(to: "voices.json").count == 1)
                await #expect(throws: CatalogError.unknownVoice("xx_XX-newest-low")) { try await installer.install("xx_XX-newest-low") }
                let updated = try await installer.update()
                #expect(updated.voices.keys.sorted() == ["xx_XX-new-low", "xx_XX-old-low"])
                #expect(installer.cachedCatalog() == updated)
                let installed = try await installer.install("xx_XX-newest-low")
                #expect(installed.downloaded && installed.voice.key == "xx_XX-new-low")
                // A broken catalog leaves the cached one alone.
                server.set("voices.json", Data("<html>oops</html>".utf8))
                await #expect(throws: CatalogError.self) { try await installer.update() }
                #expect(installer.cachedCatalog() == updated)
            }
        }
    }

    @Test func anInterruptedDownloadResumesWithRange() async throws {
        let directory = try scratchDirectory("resume")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let voice = TestVoice.small("xx_XX-resume-low", size: 3_000_000)
        let server = VoiceFileServer(files: TestVoice.repository([voice]))
        server.fault(voice.modelPath, .cutOnce(after: 1_200_000))
        let part = directory + "/.xx_XX-resume-low.onnx.part"
        try await server.run { base in
            try await Self.withInstaller(base: base, directory: directory) { installer in
                do {
                    _ = try await installer.install(voice.key)
                    Issue.record("the cut transfer succeeded")
                } catch let CatalogError.downloadFailed(_, reason) {
                    #expect(reason.contains("resume"), "\(reason)")
                }
                #expect(!Self.visible(voice.key, in: directory))
                let kept = try #require(try FileManager.default.attributesOfItem(atPath: part)[.size] as? Int)
                #expect(kept > 0 && kept <= 1_200_000)

                let result = try await installer.install(voice.key)
                #expect(result.downloaded && Self.visible(voice.key, in: directory))
                let requests = server.requests(to: voice.modelPath)
                #expect(requests.map(\.range) == [nil, "bytes=\(kept)-"])
                #expect(md5(try Data(contentsOf: URL(fileURLWithPath: result.files.modelPath))) == md5(voice.files[voice.modelPath]!))
                #expect(!FileManager.default.fileExists(atPath: part))

                // A server that ignores the range answers 200: the download starts over, still correct.
                try installer.remove(voice.key)
                server.clearFaults()
                server.fault(voice.modelPath, .cutOnce(after: 1_000_000), .ignoreRange)
                await #expect(throws: CatalogError.self) { try await installer.install(voice.key) }
                #expect(!Self.visible(voice.key, in: directory))
                let again = try await installer.install(voice.key)
                #expect(server.requests(to: voice.modelPath).last?.range?.hasPrefix("bytes=") == true)
                #expect(md5(try Data(contentsOf: URL(fileURLWithPath: again.files.modelPath))) == md5(voice.files[voice.modelPath]!))
            }
        }
    }

    @Test func aCorruptFileIsDeletedWithAClearError() async throws {
        let directory = try scratchDirectory("corrupt")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let voice = TestVoice.small("xx_XX-corrupt-low", size: 500_000)
        let server = VoiceFileServer(files: TestVoice.repository([voice]))
        server.fault(voice.modelPath, .corrupt)
        try await server.run { base in
            try await Self.withInstaller(base: base, directory: directory) { installer in
                do {
                    _ = try await installer.install(voice.key)
                    Issue.record("a corrupt file was accepted")
                } catch let error as CatalogError {
                    guard case .checksumMismatch(let file, let expected, _) = error else {
                        Issue.record("wrong error: \(error)")
                        return
                    }
                    #expect(file == voice.key + ".onnx" && expected == md5(voice.files[voice.modelPath]!))
                    #expect(error.message.contains("corrupt") && error.message.contains("deleted"))
                }
                #expect(!Self.visible(voice.key, in: directory))
                #expect(!Self.files(in: directory).contains { $0.hasSuffix(".part") || $0.hasSuffix(".onnx") })
            }
        }
    }

    @Test func missingFilesUnknownVoicesAndAMissingCatalog() async throws {
        let directory = try scratchDirectory("missing")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let voice = TestVoice.small("xx_XX-missing-low", size: 1000)
        let server = VoiceFileServer(files: TestVoice.repository([voice]))
        server.fault(voice.configPath, .missing)
        try await server.run { base in
            try await Self.withInstaller(base: base, directory: directory) { installer in
                do {
                    _ = try await installer.install(voice.key)
                    Issue.record("a 404 was accepted")
                } catch let error as CatalogError {
                    #expect(error.code == "download_failed" && error.message.contains("404"), "\(error)")
                }
                // The model arrived and was verified, but without its config it is not a voice.
                #expect(!Self.visible(voice.key, in: directory))
                await #expect(throws: CatalogError.unknownVoice("xx_XX-nobody-low")) { try await installer.install("xx_XX-nobody-low") }
                await #expect(throws: CatalogError.invalidName("../etc")) { try await installer.install("../etc") }
            }
            let empty = try scratchDirectory("no-catalog")
            defer { try? FileManager.default.removeItem(atPath: empty) }
            try await Self.withInstaller(base: base, directory: empty, catalogPath: "nothing.json") { installer in
                do {
                    _ = try await installer.install(voice.key)
                    Issue.record("a missing catalog was accepted")
                } catch let error as CatalogError {
                    #expect(error.code == "catalog_unreachable" && error.message.contains("404"), "\(error)")
                }
                #expect(Self.files(in: empty).isEmpty)
            }
        }
    }

    @Test func theServerGoingAwayMidDownloadLeavesNoVoice() async throws {
        let directory = try scratchDirectory("gone")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let voice = TestVoice.small("xx_XX-gone-low", size: 2_000_000)
        let server = VoiceFileServer(files: TestVoice.repository([voice]))
        server.fault(voice.modelPath, .cutAlways(after: 300_000))
        let base = try await server.run { base in
            try await Self.withInstaller(base: base, directory: directory) { installer in
                await #expect(throws: CatalogError.self) { try await installer.install(voice.key) }
            }
            return base
        }
        #expect(!Self.visible(voice.key, in: directory))
        // Now nothing listens there at all.
        try await Self.withInstaller(base: base, directory: directory) { installer in
            do {
                _ = try await installer.install(voice.key)
                Issue.record("a download from a stopped server succeeded")
            } catch let error as CatalogError {
                #expect(error.code == "download_failed", "\(error)")
            }
        }
        #expect(!Self.visible(voice.key, in: directory))
        #expect(!Self.files(in: directory).contains { $0.hasSuffix(".onnx") || $0.hasSuffix(".onnx.json") })
    }

    /// Tests run as root, which `chmod` does not stop; a download directory whose parent is a
    /// regular file cannot be created by anyone.
    @Test func anUnwritableDownloadDirectoryIsAClearError() async throws {
        let scratch = try scratchDirectory("unwritable")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let blocker = scratch + "/a-file"
        #expect(FileManager.default.createFile(atPath: blocker, contents: Data("not a directory".utf8)))
        let voice = TestVoice.small("xx_XX-unwritable-low", size: 1000)
        let server = VoiceFileServer(files: TestVoice.repository([voice]))
        try await server.run { base in
            try await Self.withInstaller(base: base, directory: blocker + "/voices") { installer in
                do {
                    _ = try await installer.install(voice.key)
                    Issue.record("wrote below a regular file")
                } catch let error as CatalogError {
                    #expect(error.code == "download_dir_not_writable" && error.message.contains(blocker + "/voices"), "\(error)")
                }
            }
        }
        #expect(Self.files(in: scratch) == ["a-file"])
    }

    @Test func concurrentInstallsOfOneVoiceDownloadItOnce() async throws {
        let directory = try scratchDirectory("concurrent")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let voice = TestVoice.small("xx_XX-together-low", size: 1_500_000)
        let server = VoiceFileServer(files: TestVoice.repository([voice]))
        server.fault(voice.modelPath, .slow)
        try await server.run { base in
            // Two installers with clients of their own, as two processes would have.
            let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        try await Self.withInstaller(base: base, directory: directory) { try await $0.install(voice.key).downloaded }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 1, "\(results)")
            #expect(server.requests(to: voice.modelPath).count == 1)
        }
        let model = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + voice.key + ".onnx"))
        #expect(md5(model) == md5(voice.files[voice.modelPath]!))
    }
}
