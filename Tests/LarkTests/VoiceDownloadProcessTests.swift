import Foundation
import Testing

/// Downloads as a user starts them: `lark serve -m` for a voice no data directory has, and the
/// `lark voices` commands, as real processes against a loopback `VoiceFileServer`. Ports use
/// `ServerLifecycleTests.port` offsets 50–59.
@Suite(.serialized) struct VoiceDownloadProcessTests {
    @Test func serveDownloadsTheDefaultVoiceByAliasThenServesIt() async throws {
        let empty = try scratchDirectory("serve-empty")
        let downloads = try scratchDirectory("serve-downloads")
        defer {
            try? FileManager.default.removeItem(atPath: empty)
            try? FileManager.default.removeItem(atPath: downloads)
        }
        let server = VoiceFileServer(files: TestVoice.repository([TestVoice.joe]))
        try await server.run { base in
            let (status, head, log) = try await onThread {
                let lark = try ServerLifecycleTests.ServerProcess(
                    ["-m", "en-us-joe-medium", "--data-dir", empty, "--download-dir", downloads, "--catalog-url", base + "voices.json"]
                        + ServerLifecycleTests.common,
                    port: ServerLifecycleTests.port(50))
                let wav = try lark.curl("/?text=Hello.")
                return (wav.status, Data(wav.body.prefix(4)), lark.log_)
            }
            #expect(status == 200 && head == Data("RIFF".utf8), "\(log)")
            // Not a terminal: plain progress lines.
            #expect(log.contains("downloading en_US-joe-medium.onnx") && log.contains("en_US-joe-medium.onnx: done, size and MD5 verified"), "\(log)")
        }
        #expect(FileManager.default.fileExists(atPath: downloads + "/en_US-joe-medium.onnx.json"))
        // With the file server gone, the installed voice (named by its alias, through the cached
        // catalog) starts without any network.
        let (again, log) = try await onThread {
            let lark = try ServerLifecycleTests.ServerProcess(
                ["-m", "en-us-joe-medium", "--data-dir", empty, "--download-dir", downloads,
                 "--catalog-url", "http://127.0.0.1:1/voices.json"] + ServerLifecycleTests.common,
                port: ServerLifecycleTests.port(51))
            return (try lark.curl("/?text=Hello%20again.&voice=en-us-joe-medium").status, lark.log_)
        }
        #expect(again == 200 && !log.contains("downloading"), "\(log)")
    }

    @Test func voicesCommandsDownloadConcurrentlyListUpdateAndRemove() async throws {
        let directory = try scratchDirectory("cli-downloads")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let voice = TestVoice.small("xx_XX-cli-low", size: 1_000_000, aliases: ["xx-cli"])
        let server = VoiceFileServer(files: TestVoice.repository([voice]))
        server.fault(voice.modelPath, .slow)
        let expected = md5(voice.files[voice.modelPath]!)
        try await server.run { base in
            let options = ["--download-dir", directory, "--data-dir", directory, "--catalog-url", base + "voices.json",
                           "--espeak-data", Checkout.deps]
            @Sendable func lark(_ arguments: [String]) async throws -> ProcessResult {
                try await onThread { try runProcess(Checkout.larkBinary, arguments + options) }
            }
            // Two processes download the same voice at once; the lock makes one wait.
            async let first = lark(["voices", "download", "xx-cli"])
            async let second = lark(["voices", "download", "xx_XX-cli-low"])
            let both = try await [first, second]
            #expect(both.allSatisfy { $0.status == 0 }, "\(both.map(\.stderr))")
            let outputs = both.map { String(decoding: $0.stdout, as: UTF8.self) }
            #expect(outputs.filter { $0.contains("installed xx_XX-cli-low") }.count == 1, "\(outputs)")
            #expect(outputs.filter { $0.contains("already installed") }.count == 1, "\(outputs)")
            #expect(both.map(\.stderr).joined().contains("downloading xx_XX-cli-low.onnx (1.0 MB)"))
            let model = try Data(contentsOf: URL(fileURLWithPath: directory + "/xx_XX-cli-low.onnx"))
            #expect(md5(model) == expected)

            let available = try await lark(["voices", "list", "--available"])
            let table = String(decoding: available.stdout, as: UTF8.self)
            #expect(available.status == 0 && table.contains("INSTALLED"), "\(available.stderr)")
            #expect(table.split(separator: "\n").contains { $0.contains("xx_XX-cli-low") && $0.contains("yes") && $0.contains("xx-cli") }, "\(table)")
            // `lark voices` alone still lists installed voices.
            let installed = try await lark(["voices", "--engine-kind", "piper"])
            #expect(String(decoding: installed.stdout, as: UTF8.self).contains("xx_XX-cli-low"))

            let update = try await lark(["voices", "update"])
            #expect(update.status == 0 && String(decoding: update.stdout, as: UTF8.self).contains("catalog updated: 1 voices"))

            let outside = try await lark(["voices", "remove", "en_US-joe-medium"])
            #expect(outside.status == 1 && outside.stderr.contains("not in the download directory"), "\(outside.stderr)")
            #expect(FileManager.default.fileExists(atPath: Checkout.joeModel))
            let removed = try await lark(["voices", "remove", "xx-cli"])
            #expect(removed.status == 0, "\(removed.stderr)")
            #expect(!FileManager.default.fileExists(atPath: directory + "/xx_XX-cli-low.onnx"))
        }
        #expect(server.requests(to: voice.modelPath).count == 1)
    }
}
