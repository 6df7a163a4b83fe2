import Foundation
import Hummingbird
import HummingbirdTesting
import LarkServer
import Logging
import SpeechService
import Testing
import VoiceCatalog

/// `GET /api/v1/voices?available=1` and `POST /api/v1/voices/{name}/download` through the
/// application's router, with the catalog on a loopback `VoiceFileServer`.
@Suite(.serialized) struct VoiceCatalogAPITests {
    static func withApp<T: Sendable>(
        catalogURL: String, base: String, directory: String, allowDownloads: Bool,
        _ body: @Sendable (any TestClientProtocol) async throws -> T
    ) async throws -> T {
        let library = VoiceLibrary(configuration: Checkout.engineConfiguration(dataDirectories: [directory]))
        // AsyncHTTPClient retries a refused connection until the connect timeout: keep it short.
        // Its read timeout runs while this process's busy task pool is slow to take the bytes.
        let http = CatalogHTTPClient(connectTimeout: .seconds(2), readTimeout: .seconds(120))
        let installer = VoiceInstaller(
            settings: CatalogSettings(downloadDirectory: directory, catalogURL: catalogURL, voicesBaseURL: base),
            dataDirectories: [directory], http: http)
        let metrics = ServerMetrics()
        let app = buildApplication(
            configuration: ServerConfiguration(defaultVoice: "en_US-joe-medium", allowDownloads: allowDownloads),
            library: library, metrics: metrics, scheduler: metrics.makeScheduler(workers: 1, maxQueue: 1), jobs: nil,
            logger: Logger(label: "test"), installer: installer)
        let result: Result<T, any Error>
        do {
            result = .success(try await app.test(.router, body))
        } catch {
            result = .failure(error)
        }
        // One place closes both, however the test ended.
        try? await library.shutdown()
        try await http.shutdown()
        return try result.get()
    }

    struct Answer: Sendable {
        var status: Int
        var body: Data
        var json: Any? { try? JSONSerialization.jsonObject(with: body) }
        var errorCode: String? { ((json as? [String: Any])?["error"] as? [String: Any])?["code"] as? String }
        var list: [[String: Any]] { json as? [[String: Any]] ?? [] }
    }

    static func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ uri: String) async throws -> Answer {
        try await client.execute(uri: uri, method: method) { Answer(status: Int($0.status.code), body: Data($0.body.readableBytesView)) }
    }

    @Test func availableVoicesAndDownloadsThatNeedPermission() async throws {
        let directory = try scratchDirectory("api")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let voice = TestVoice.small("xx_XX-api-low", size: 200_000, aliases: ["xx-api"])
        let server = VoiceFileServer(files: TestVoice.repository([voice]))
        try await server.run { base in
            try await Self.withApp(catalogURL: base + "voices.json", base: base, directory: directory, allowDownloads: false) { client in
                let available = try await Self.call(client, .get, "/api/v1/voices?available=1")
                #expect(available.status == 200)
                let entry = try #require(available.list.first)
                #expect(entry["key"] as? String == "xx_XX-api-low" && entry["installed"] as? Bool == false)
                #expect(entry["aliases"] as? [String] == ["xx-api"] && entry["size_bytes"] as? Int == 200_000 + voice.files[voice.configPath]!.count)
                #expect(try await Self.call(client, .get, "/api/v1/voices?available=1&language=en").list.isEmpty)
                let refused = try await Self.call(client, .post, "/api/v1/voices/xx-api/download")
                #expect(refused.status == 403 && refused.errorCode == "downloads_disabled")
                #expect(!VoiceDirectories([directory]).scan().contains { $0.name == "xx_XX-api-low" })
            }
            try await Self.withApp(catalogURL: base + "voices.json", base: base, directory: directory, allowDownloads: true) { client in
                let unknown = try await Self.call(client, .post, "/api/v1/voices/xx_XX-nobody-low/download")
                #expect(unknown.status == 404 && unknown.errorCode == "unknown_voice")
                let created = try await Self.call(client, .post, "/api/v1/voices/xx-api/download")
                #expect(created.status == 201, "\(String(decoding: created.body, as: UTF8.self))")
                #expect((created.json as? [String: Any])?["id"] as? String == "xx_XX-api-low")
                let again = try await Self.call(client, .post, "/api/v1/voices/xx_XX-api-low/download")
                #expect(again.status == 200)
                let available = try await Self.call(client, .get, "/api/v1/voices?available=1")
                #expect(available.list.first?["installed"] as? Bool == true)
                let installed = try await Self.call(client, .get, "/api/v1/voices")
                #expect(installed.list.contains { $0["id"] as? String == "xx_XX-api-low" })
            }
        }
        // The file server is gone: a server without a cached catalog cannot list or download.
        let empty = try scratchDirectory("api-offline")
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let nowhere = "http://127.0.0.1:1/"
        try await Self.withApp(catalogURL: nowhere + "voices.json", base: nowhere, directory: empty, allowDownloads: true) { client in
            let listing = try await Self.call(client, .get, "/api/v1/voices?available=1")
            #expect(listing.status == 502 && listing.errorCode == "catalog_unreachable")
            let download = try await Self.call(client, .post, "/api/v1/voices/xx-api/download")
            #expect(download.status == 502 && download.errorCode == "catalog_unreachable")
            let message = ((download.json as? [String: Any])?["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(message.contains("cannot fetch the voice catalog http://127.0.0.1:1/voices.json"), "\(message)")
        }
    }
}

/// Errors about files on the server reach clients without the files' paths (the log keeps them):
/// a voice whose model will not load, and a download directory that cannot be written.
@Suite(.serialized) struct PathFreeErrorTests {
    @Test func voiceAndDownloadErrorsNameNoServerPath() async throws {
        let root = try scratchDirectory("paths")
        defer { try? FileManager.default.removeItem(atPath: root) }
        // A voice whose model is not a model, beside a good config.
        let voices = root + "/voices"
        try FileManager.default.createDirectory(atPath: voices, withIntermediateDirectories: true)
        try Data("not a model".utf8).write(to: URL(fileURLWithPath: voices + "/xx_XX-broken-low.onnx"))
        try FileManager.default.copyItem(atPath: Checkout.joeModel + ".json", toPath: voices + "/xx_XX-broken-low.onnx.json")
        // A download directory under a regular file: nothing can be written there, even as root.
        let blocker = root + "/not-a-directory"
        #expect(FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8)))
        let downloads = blocker + "/voices"
        let voice = TestVoice.small("xx_XX-fresh-low", size: 10_000)
        let server = VoiceFileServer(files: TestVoice.repository([voice]))
        try await server.run { base in
            var engine = Checkout.engineConfiguration(dataDirectories: [voices, downloads])
            engine.allowVoicePaths = false
            let library = VoiceLibrary(configuration: engine)
            let http = CatalogHTTPClient(connectTimeout: .seconds(2), readTimeout: .seconds(60))
            let installer = VoiceInstaller(
                settings: CatalogSettings(downloadDirectory: downloads, catalogURL: base + "voices.json", voicesBaseURL: base),
                dataDirectories: [voices, downloads], http: http)
            let metrics = ServerMetrics()
            let app = buildApplication(
                configuration: ServerConfiguration(defaultVoice: "espeak-ng:en-us", allowDownloads: true), library: library,
                metrics: metrics, scheduler: metrics.makeScheduler(workers: 1, maxQueue: 1), jobs: nil, logger: Logger(label: "test"),
                installer: installer)
            let result: Result<Void, any Error>
            do {
                result = .success(try await app.test(.router) { client in
                    let broken = try await client.execute(
                        uri: "/synthesize", method: .post, headers: [.contentType: "application/json"],
                        body: ByteBuffer(string: #"{"text": "Hi.", "voice": "xx_XX-broken-low"}"#)
                    ) { VoiceCatalogAPITests.Answer(status: Int($0.status.code), body: Data($0.body.readableBytesView)) }
                    #expect(broken.status == 503 && broken.errorCode == "invalid_model", "\(String(decoding: broken.body, as: UTF8.self))")
                    let download = try await VoiceCatalogAPITests.call(client, .post, "/api/v1/voices/xx_XX-fresh-low/download")
                    #expect(download.status == 507 && download.errorCode == "download_dir_not_writable", "\(String(decoding: download.body, as: UTF8.self))")
                    for answer in [broken, download] {
                        let text = String(decoding: answer.body, as: UTF8.self)
                        #expect(!text.contains(root) && !text.contains("/tmp"), "\(text)")
                    }
                })
            } catch {
                result = .failure(error)
            }
            try? await library.shutdown()
            try await http.shutdown()
            try result.get()
        }
    }
}
