import Foundation
import Testing

/// `lark serve` (and `lark worker`) processes over loopback, against the inputs a hostile or
/// careless client sends: callbacks into the server's own network, JSON routes given other
/// content types, texts whose length hides in combining marks, settings that make hours of
/// audio, hidden files, and voices that are listed but cannot speak.
@Suite(.serialized) struct HostileInputTests {
    typealias ServerProcess = ServerLifecycleTests.ServerProcess

    static func port(_ offset: Int) -> Int { ServerLifecycleTests.port(90 + offset) }

    /// A server whose default voice is espeak-ng's (no model to load: it starts at once).
    static func server(_ offset: Int, jobsDir: String, _ extra: [String] = []) throws -> ServerProcess {
        try ServerProcess(
            ["-m", "espeak-ng:en-us", "--data-dir", ServerLifecycleTests.voices, "--jobs-dir", jobsDir] + ServerLifecycleTests.common + extra,
            port: port(offset))
    }

    static func text(_ result: ServerTests.CurlResult) -> String { String(decoding: result.body, as: UTF8.self) }

    // MARK: - Callbacks

    @Test func callbacksIntoTheServersOwnNetworkAreRefusedAtSubmission() throws {
        let dir = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // No workers: the accepted jobs are never sent anywhere.
        let server = try Self.server(0, jobsDir: dir, ["--job-workers", "0", "--callback-allow", "192.168.7.0/24"])
        let refused = [
            "http://127.0.0.1:9/", "http://[::1]:9/", "http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/",
            "http://10.0.0.1/", "http://172.16.0.1/", "http://192.168.1.1/", "http://[fc00::1]/", "http://224.0.0.1/",
            "http://[ff02::1]/", "http://0.0.0.0/", "http://[::]/", "http://[::ffff:127.0.0.1]:9/", "http://[::ffff:10.0.0.1]/",
            // A name that resolves to loopback.
            "http://localhost:9/",
        ]
        for url in refused {
            let answer = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": "Hi.", "callback_url": url])
            #expect(answer.status == 400 && answer.errorCode == "callback_url_not_allowed", "\(url): \(answer.status) \(Self.text(answer))")
        }
        let wrongScheme = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": "Hi.", "callback_url": "gopher://example.com/"])
        #expect(wrongScheme.status == 400 && wrongScheme.errorCode == "invalid_callback_url")
        // The block the operator allowed is accepted; the job shows its callback pending.
        let allowed = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": "Hi.", "callback_url": "http://192.168.7.9:9/hook"])
        #expect(allowed.status == 202, "\(Self.text(allowed))")
        let callback = allowed.json?["callback"] as? [String: Any]
        #expect(callback?["status"] as? String == "pending" && callback?["attempts"] as? Int == 0, "\(Self.text(allowed))")
        // A job without a callback shows none.
        let plain = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": "Hi."])
        #expect(plain.status == 202 && plain.json?["callback"] == nil)
    }

    /// The API allows loopback callbacks; the worker, started without that allowance, checks
    /// again before sending and refuses: the job shows the refusal.
    @Test func aCallbackRefusedWhenItIsSentShowsOnTheJob() throws {
        let dir = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let api = try Self.server(1, jobsDir: dir, ["--job-workers", "0", "--callback-allow", "127.0.0.1"])
        let submitted = try JobAPITests.post(api, "/api/v1/jobs", json: ["text": "Call me.", "callback_url": "http://127.0.0.1:9/hook"])
        #expect(submitted.status == 202, "\(Self.text(submitted))")
        let id = try #require(submitted.json?["id"] as? String)
        let worker = try ServerProcess(
            ["--data-dir", ServerLifecycleTests.voices, "--jobs-dir", dir, "--job-workers", "1"] + ServerLifecycleTests.common,
            port: 0, waitUntilHealthy: false, command: "worker")
        var callback: [String: Any] = [:]
        for _ in 0..<300 where callback["status"] as? String != "failed" {
            callback = try api.curl("/api/v1/jobs/\(id)").json?["callback"] as? [String: Any] ?? [:]
            if callback["status"] as? String != "failed" { usleep(100_000) }
        }
        #expect(callback["status"] as? String == "failed" && callback["attempts"] as? Int == 1, "\(callback)\n\(worker.log_)")
        #expect((callback["last_error"] as? String)?.hasPrefix("callback_url_not_allowed") == true, "\(callback)")
        #expect(worker.log_.contains("callback refused by the callback policy"))
    }

    /// A callback to a host name goes to the address that name was checked at (the notifier
    /// does not resolve it a second time), and no redirect is followed.
    @Test func aCallbackToANameIsDeliveredToTheCheckedAddressAndRedirectsAreNotFollowed() throws {
        let dir = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hookPort = Self.port(6)
        // A receiver on both loopback addresses (`localhost` may resolve to either first): it
        // records each POST's path, and answers /moved with a redirect to /elsewhere.
        let receiver = Process()
        receiver.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        receiver.arguments = ["python3", "-c", """
            import http.server, socket, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    self.rfile.read(int(self.headers['Content-Length']))
                    open(sys.argv[2], 'a').write(self.path + '\\n')
                    if self.path == '/moved':
                        self.send_response(307); self.send_header('Location', '/elsewhere'); self.end_headers()
                    else:
                        self.send_response(204); self.end_headers()
                def log_message(self, *a): pass
            class S(http.server.HTTPServer):
                address_family = socket.AF_INET6
                def server_bind(self):
                    self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                    super().server_bind()
            S(('::', int(sys.argv[1])), H).serve_forever()
            """, String(hookPort), dir + "/paths.txt"]
        receiver.standardOutput = FileHandle.nullDevice
        receiver.standardError = FileHandle.nullDevice
        try receiver.run()
        defer { kill(receiver.processIdentifier, SIGKILL) }
        let server = try Self.server(7, jobsDir: dir, ["--callback-allow", "127.0.0.1", "--callback-allow", "::1"])
        func callback(_ path: String) throws -> [String: Any] {
            let job = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": "Hi.", "callback_url": "http://localhost:\(hookPort)\(path)"])
            let id = try #require(job.json?["id"] as? String, "\(Self.text(job))")
            var state: [String: Any] = [:]
            for _ in 0..<300 {
                state = try server.curl("/api/v1/jobs/\(id)").json?["callback"] as? [String: Any] ?? [:]
                if let status = state["status"] as? String, status != "pending" { break }
                usleep(100_000)
            }
            return state
        }
        let delivered = try callback("/hook")
        #expect(delivered["status"] as? String == "delivered", "\(delivered)\n\(server.log_)")
        // 4 attempts with 1 s, 2 s and 4 s between them: a redirect is an answer that is not 2xx.
        let moved = try callback("/moved")
        #expect(moved["status"] as? String == "failed" && (moved["last_error"] as? String)?.contains("307") == true, "\(moved)")
        let paths = (try? String(contentsOfFile: dir + "/paths.txt", encoding: .utf8)) ?? ""
        #expect(paths.contains("/hook") && paths.contains("/moved") && !paths.contains("/elsewhere"), "\(paths)")
    }

    // MARK: - Content types

    @Test func jsonRoutesTakeOnlyJSON() throws {
        let dir = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try Self.server(2, jobsDir: dir, ["--job-workers", "0", "--member", "1=espeak-ng:en-us"])
        let bodies = [
            "/synthesize": #"{"text": "Hi."}"#, "/api/v1/speech": #"{"text": "Hi."}"#, "/api/v1/jobs": #"{"text": "Hi."}"#,
            "/api/texts": #"{"uuid": "u", "member_id": 1, "text": "Hi.", "created_at": "1"}"#,
        ]
        for (route, body) in bodies.sorted(by: { $0.key < $1.key }) {
            // `Content-Type:` with nothing after it makes curl send none.
            for header in ["Content-Type: text/plain", "Content-Type: application/x-www-form-urlencoded", "Content-Type:"] {
                let answer = try server.curl(route, ["-X", "POST", "-H", header, "--data-binary", body])
                #expect(answer.status == 415 && answer.errorCode == "unsupported_media_type", "\(route) \(header): \(answer.status) \(Self.text(answer))")
            }
            // A large body of another type is answered too (once it hung: nothing read it).
            let large = try server.curl(
                route, ["-X", "POST", "--max-time", "20", "-H", "Content-Type: application/octet-stream", "--data-binary", "@-"],
                input: Data(repeating: 0xE0, count: 90_000))
            #expect(large.status == 415, "\(route) with 90 kB of octets: \(large.status)")
        }
        // JSON with a charset is JSON.
        let charset = try server.curl("/synthesize", ["-X", "POST", "-H", "Content-Type: Application/JSON; charset=utf-8", "--data-binary", #"{"text": "Hi."}"#])
        #expect(charset.status == 200 && charset.contentType == "audio/wav")
        // Piper's POST / takes raw text, whatever its type.
        let raw = try server.curl("/", ["-X", "POST", "-H", "Content-Type: text/plain", "--data-binary", "Plain text."])
        #expect(raw.status == 200 && raw.contentType == "audio/wav")
    }

    // MARK: - Limits

    @Test func limitsCountCodePointsAndBoundTheAudio() throws {
        let dir = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try Self.server(3, jobsDir: dir, ["--max-job-audio", "3s", "--max-request-audio", "5s"])
        // One `a` with 14,000 combining accents: one character to Swift, 14,001 code points.
        let stacked = "a" + String(repeating: "\u{301}", count: 14_000)
        let viaJSON = try server.curl(
            "/api/v1/speech", ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@-"],
            input: try JSONSerialization.data(withJSONObject: ["text": stacked]))
        #expect(viaJSON.status == 413 && viaJSON.errorCode == "text_too_long", "\(viaJSON.status) \(Self.text(viaJSON).prefix(300))")
        let raw = try server.curl("/", ["-X", "POST", "--data-binary", "@-"], input: Data(stacked.utf8))
        #expect(raw.status == 413 && raw.errorCode == "text_too_long")
        let job = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": String(repeating: stacked, count: 15)])
        #expect(job.status == 413 && job.errorCode == "text_too_long")
        // 10,000 code points are still fine.
        let atLimit = "a" + String(repeating: "\u{301}", count: 9_999)
        let fine = try server.curl(
            "/api/v1/speech", ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@-"],
            input: try JSONSerialization.data(withJSONObject: ["text": atLimit]))
        #expect(fine.status == 200, "\(fine.status) \(Self.text(fine).prefix(300))")

        // Sentence silence has a maximum of 10 s.
        let silence = try server.curl("/?text=Hi.&sentence_silence=11")
        #expect(silence.status == 400 && silence.errorCode == "invalid_option")

        // Past --max-request-audio (5 s): a whole file is refused, a stream ends.
        let text = Array(repeating: "Go.", count: 8).joined(separator: "+")
        let whole = try server.curl("/?text=\(text)&sentence_silence=2")
        #expect(whole.status == 413 && whole.errorCode == "audio_too_long", "\(whole.status) \(Self.text(whole).prefix(300))")
        let stream = try server.curl("/read?outputFormat=pcm&text=\(text)&sentence_silence=2")
        #expect(stream.status == 200)
        let seconds = Double(stream.body.count) / 2 / 22050
        #expect(seconds > 5 && seconds < 8.5, "the stream held \(seconds) s of audio")

        // Past --max-job-audio (3 s), a job fails with audio_too_long, at once (no retry).
        let long = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": "Go. Go. Go. Go.", "sentence_silence": 2])
        let id = try #require(long.json?["id"] as? String, "\(Self.text(long))")
        let end = try JobAPITests.waitForEnd(server, id: id)
        #expect(end["status"] as? String == "failed" && end["attempts"] as? Int == 1, "\(end)")
        #expect((end["error"] as? String)?.hasPrefix("audio_too_long") == true, "\(end)")
    }

    // MARK: - No server internals

    @Test func filesServeOnlyFinishedJobFilesAndListingsShowNoPaths() throws {
        let dir = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try Self.server(4, jobsDir: dir)
        let job = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": "Kept."])
        let id = try #require(job.json?["id"] as? String)
        #expect(try JobAPITests.waitForEnd(server, id: id)["status"] as? String == "succeeded")
        #expect(try server.curl("/files/jobs/\(id).wav").status == 200)
        // What a store's upload in progress, or anything hidden, looks like: never served.
        let audio = dir + "/audio"
        try Data("RIFF".utf8).write(to: URL(fileURLWithPath: "\(audio)/jobs/.\(id).wav.1234.partial"))
        try FileManager.default.createDirectory(atPath: "\(audio)/.hidden", withIntermediateDirectories: true)
        try Data("secret".utf8).write(to: URL(fileURLWithPath: "\(audio)/.hidden/x.wav"))
        for path in ["/files/jobs/.\(id).wav.1234.partial", "/files/.hidden/x.wav", "/files/jobs/%2E\(id).wav.1234.partial",
                     "/files/%2Ehidden%2Fx.wav"] {
            let answer = try server.curl(path)
            #expect(answer.status == 404 && answer.errorCode == "not_found", "\(path): \(answer.status)")
        }
        // Voice listings name each Piper voice's data directory by its place, never its path.
        for route in ["/voices", "/api/v1/voices"] {
            let listing = try server.curl(route)
            #expect(listing.status == 200)
            let body = Self.text(listing)
            #expect(!body.contains(Checkout.root) && !body.contains(ServerLifecycleTests.voices), "\(route) shows a path")
        }
        let voices = try #require(try JSONSerialization.jsonObject(with: try server.curl("/api/v1/voices").body) as? [[String: Any]])
        let joe = try #require(voices.first { $0["id"] as? String == "en_US-joe-medium" })
        #expect(joe["source"] as? String == "data-dir:0")
    }

    // MARK: - Listed voices speak

    @Test func everyListedEspeakVoiceSpeaks() throws {
        let dir = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try Self.server(5, jobsDir: dir, ["--disable-jobs"])
        let listed = try #require(try JSONSerialization.jsonObject(with: try server.curl("/voices").body) as? [[String: Any]])
        let espeak = listed.filter { $0["Engine"] as? String == "espeak-ng" }.compactMap { $0["Id"] as? String }
        #expect(espeak.count > 50 && espeak.contains("espeak-ng:en-gb") && espeak.contains("espeak-ng:fr-fr"), "\(espeak)")
        var refused: [String] = []
        for id in espeak {
            let answer = try server.curl("/read?text=Hi.&outputFormat=pcm&voiceId=\(id.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
            if answer.status != 200 || answer.body.isEmpty { refused.append("\(id): \(answer.status) \(Self.text(answer))") }
        }
        #expect(refused.isEmpty, "\(refused.count) of \(espeak.count) listed voices did not speak: \(refused)")
        // The native listing lists the same voices.
        let native = try #require(try JSONSerialization.jsonObject(with: try server.curl("/api/v1/voices").body) as? [[String: Any]])
        #expect(Set(native.filter { $0["engine"] as? String == "espeak-ng" }.compactMap { $0["id"] as? String }) == Set(espeak))
    }
}
