import Foundation
import Testing

/// The job API end to end: real `lark serve` and `lark worker` processes over loopback, with
/// their queue in SQLite or in the PostgreSQL that `make test` starts, the audio checked by
/// ffprobe, and processes killed with SIGKILL mid-job.
@Suite(.serialized) struct JobAPITests {
    typealias ServerProcess = ServerLifecycleTests.ServerProcess

    static func port(_ offset: Int) -> Int { ServerLifecycleTests.port(60 + offset) }
    static let voice = "en_US-joe-medium"

    /// A fresh jobs directory, and the serve arguments that use it.
    static func arguments(jobsDir: String, _ extra: [String] = []) -> [String] {
        ["--data-dir", ServerLifecycleTests.voices, "--jobs-dir", jobsDir] + ServerLifecycleTests.common + extra
    }

    static func temporaryDirectory() -> String {
        let path = NSTemporaryDirectory() + "lark-jobs-test-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func post(_ server: ServerProcess, _ path: String, json: [String: Any]) throws -> ServerTests.CurlResult {
        let body = try JSONSerialization.data(withJSONObject: json)
        return try server.curl(path, ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@-"], input: body)
    }

    /// Polls the job until it ends (or `seconds` pass) and returns its last JSON.
    static func waitForEnd(_ server: ServerProcess, id: String, seconds: Double = 60) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        var last: [String: Any] = [:]
        while Date() < deadline {
            last = try server.curl("/api/v1/jobs/\(id)").json ?? [:]
            if let status = last["status"] as? String, ["succeeded", "failed", "cancelled"].contains(status) { return last }
            usleep(100_000)
        }
        return last
    }

    /// How many times each object key was written, read from the servers' logs.
    static func storedKeys(_ logs: [String]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for log in logs {
            for line in log.split(separator: "\n") where line.contains("job audio stored") {
                guard let range = line.range(of: "key=") else { continue }
                let key = line[range.upperBound...].split(separator: " ").first.map(String.init) ?? ""
                counts[key, default: 0] += 1
            }
        }
        return counts
    }

    @Test func submitPollAndFetchTheAudio() throws {
        let dir = Self.temporaryDirectory()
        let server = try ServerProcess(Self.arguments(jobsDir: dir), port: Self.port(0))
        let submitted = try Self.post(server, "/api/v1/jobs", json: [
            "text": "The first sentence. The second one. And a third.", "voice": Self.voice, "format": "mp3",
            "sample_rate": 24000, "length_scale": 1.1,
        ])
        #expect(submitted.status == 202, "\(String(decoding: submitted.body, as: UTF8.self))")
        let id = try #require(submitted.json?["id"] as? String)
        #expect(submitted.headers["location"] == "/api/v1/jobs/\(id)")
        #expect(["queued", "running"].contains(submitted.json?["status"] as? String ?? ""))

        let done = try Self.waitForEnd(server, id: id)
        #expect(done["status"] as? String == "succeeded", "\(done)")
        let progress = try #require(done["progress"] as? [String: Any])
        #expect(progress["sentences_done"] as? Int == 3 && progress["sentences_total"] as? Int == 3)
        #expect(done["attempts"] as? Int == 1 && done["finished_at"] != nil && done["expires_at"] != nil)
        let url = try #require(done["audio_url"] as? String)
        #expect(url == "\(server.base)/files/jobs/\(id).mp3")

        // The URL and the job's audio route give the same MP3, which ffprobe reads.
        let file = NSTemporaryDirectory() + "lark-job-\(id).mp3"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let fetched = try ServerTests.curl([url])
        #expect(fetched.status == 200 && fetched.contentType == "audio/mpeg")
        try fetched.body.write(to: URL(fileURLWithPath: file))
        let probe = try Probe(file: file)
        #expect(probe.codec == "mp3" && probe.sampleRate == 24000 && probe.duration > 2)
        let viaJob = try server.curl("/api/v1/jobs/\(id)/audio")
        #expect(viaJob.status == 200 && viaJob.body == fetched.body)

        // Listing: the job is there, filtered by status.
        let listed = try server.curl("/api/v1/jobs?status=succeeded&limit=5").json
        #expect((listed?["jobs"] as? [[String: Any]])?.contains { $0["id"] as? String == id } == true)
        #expect((try server.curl("/api/v1/jobs?status=queued").json?["jobs"] as? [Any])?.isEmpty == true)

        // Submitting the same idempotency key again gives the same job, not a new one.
        let key = ["text": "Once only.", "voice": Self.voice, "idempotency_key": "abc-1"]
        let first = try Self.post(server, "/api/v1/jobs", json: key)
        let second = try Self.post(server, "/api/v1/jobs", json: key)
        #expect(first.status == 202 && second.status == 200 && second.headers["idempotent-replayed"] == "true")
        #expect(first.json?["id"] as? String == second.json?["id"] as? String)
    }

    @Test func badInputIsRefusedClearly() throws {
        let dir = Self.temporaryDirectory()
        let server = try ServerProcess(Self.arguments(jobsDir: dir, ["--member", "7=\(Self.voice)"]), port: Self.port(1))
        func expectError(_ result: ServerTests.CurlResult, _ status: Int, _ code: String, _ line: Int = #line) {
            #expect(result.status == status && result.errorCode == code, "line \(line): \(result.status) \(String(decoding: result.body, as: UTF8.self))")
        }
        expectError(try Self.post(server, "/api/v1/jobs", json: ["text": "Hi.", "voice": "xx_NOPE"]), 404, "unknown_voice")
        expectError(try Self.post(server, "/api/v1/jobs", json: ["text": "   "]), 400, "empty_text")
        expectError(try Self.post(server, "/api/v1/jobs", json: ["text": String(repeating: "a", count: 200_001)]), 413, "text_too_long")
        expectError(try Self.post(server, "/api/v1/jobs", json: ["text": "Hi.", "callback_url": "ftp://x/y"]), 400, "invalid_callback_url")
        expectError(try Self.post(server, "/api/v1/jobs", json: ["text": "Hi.", "callback_url": "not a url"]), 400, "invalid_callback_url")
        expectError(try Self.post(server, "/api/v1/jobs", json: ["text": "Hi.", "format": "wma"]), 400, "unsupported_format")
        expectError(try Self.post(server, "/api/v1/jobs", json: ["text": "Hi.", "speaker": 5]), 422, "speaker_out_of_range")
        expectError(try Self.post(server, "/api/v1/jobs", json: ["voice": Self.voice]), 400, "invalid_json")
        expectError(try server.curl("/api/v1/jobs/nope"), 404, "unknown_job")
        expectError(try server.curl("/api/v1/jobs/nope", ["-X", "DELETE"]), 404, "unknown_job")
        expectError(try server.curl("/api/v1/jobs/nope/audio"), 404, "unknown_job")
        expectError(try server.curl("/api/v1/jobs?status=done"), 400, "invalid_status")
        expectError(try server.curl("/api/v1/jobs?limit=0"), 400, "invalid_limit")
        expectError(try server.curl("/api/v1/jobs?cursor=zzz"), 400, "invalid_cursor")
        expectError(try server.curl("/api/v1/jobs/abc", ["-X", "PUT"]), 405, "method_not_allowed")
        expectError(try Self.post(server, "/api/texts", json: ["uuid": "u1", "member_id": "99", "text": "Hi.", "created_at": "2024"]), 404, "unknown_member")
        expectError(try Self.post(server, "/api/texts", json: ["uuid": "../../etc", "member_id": "7", "text": "Hi.", "created_at": "2024"]), 400, "invalid_uuid")
        expectError(try Self.post(server, "/api/texts", json: ["uuid": "u2", "member_id": "7", "text": "", "created_at": "2024"]), 400, "empty_text")
        expectError(try server.curl("/files/../jobs.sqlite"), 404, "not_found")
        expectError(try server.curl("/files/%2e%2e/jobs.sqlite"), 404, "not_found")

        // A job not finished yet: no audio, and it can be cancelled; a finished one cannot.
        let long = try ServerTests.longText(characters: 3000)
        let job = try Self.post(server, "/api/v1/jobs", json: ["text": long, "voice": Self.voice])
        let id = try #require(job.json?["id"] as? String)
        expectError(try server.curl("/api/v1/jobs/\(id)/audio"), 409, "audio_not_ready")
        let cancelled = try server.curl("/api/v1/jobs/\(id)", ["-X", "DELETE"])
        #expect(cancelled.status == 200)
        let end = try Self.waitForEnd(server, id: id, seconds: 30)
        #expect(end["status"] as? String == "cancelled", "\(end)")
        expectError(try server.curl("/api/v1/jobs/\(id)", ["-X", "DELETE"]), 409, "job_finished")
        // And the server still serves.
        #expect(try server.curl("/?text=Still%20here.").status == 200)
    }

    @Test func theSeedsTextsRequestWorksWithCurlAndOnlyOnce() throws {
        let dir = Self.temporaryDirectory()
        let server = try ServerProcess(Self.arguments(jobsDir: dir, ["--member", "42=\(Self.voice)"]), port: Self.port(2))
        // The seed's body, exactly as its client sends it.
        let body = #"{"uuid": "3f1c2b7e-1a2b-4c3d-9e8f-001122334455", "member_id": 42, "text": "Hello from the seed. This is its request.", "created_at": "2024-05-01T10:00:00"}"#
        let first = try server.curl("/api/texts", ["-X", "POST", "-H", "Content-Type: application/json", "-d", body])
        #expect(first.status == 200, "\(String(decoding: first.body, as: UTF8.self))")
        let json = try #require(first.json)
        #expect(json["uuid"] as? String == "3f1c2b7e-1a2b-4c3d-9e8f-001122334455" && json["member_id"] as? String == "42")
        #expect(json["created_at"] as? String == "2024-05-01T10:00:00" && json["status"] as? String == "succeeded")
        let key = "wav_files/42/3f1c2b7e-1a2b-4c3d-9e8f-001122334455_2024-05-01T10:00:00_voice.wav"
        #expect(json["audio_url"] as? String == "\(server.base)/files/\(key)")
        #expect(FileManager.default.fileExists(atPath: "\(dir)/audio/\(key)"))
        let audio = try ServerTests.curl([try #require(json["audio_url"] as? String)])
        #expect(audio.status == 200 && audio.body.count > 44 + 22050 && audio.body.prefix(4) == Data("RIFF".utf8))

        // Keys with spaces, `+` and `:` (a created_at as some clients write it) are served too.
        let spaced = #"{"uuid": "a b", "member_id": 42, "text": "Spaces in the key.", "created_at": "2024-05-01 10:00:00+01"}"#
        let spacedAnswer = try server.curl("/api/texts", ["-X", "POST", "-H", "Content-Type: application/json", "-d", spaced])
        let spacedURL = try #require(spacedAnswer.json?["audio_url"] as? String, "\(String(decoding: spacedAnswer.body, as: UTF8.self))")
        #expect(spacedURL.hasSuffix("/files/wav_files/42/a%20b_2024-05-01%2010:00:00%2B01_voice.wav"), "\(spacedURL)")
        #expect(try ServerTests.curl([spacedURL]).status == 200)
        #expect(FileManager.default.fileExists(atPath: "\(dir)/audio/wav_files/42/a b_2024-05-01 10:00:00+01_voice.wav"))

        let again = try server.curl("/api/texts", ["-X", "POST", "-H", "Content-Type: application/json", "-d", body])
        #expect(again.status == 200 && again.json?["job_id"] as? String == json["job_id"] as? String)
        #expect(Self.storedKeys([server.log_])[key] == 1, "\(Self.storedKeys([server.log_]))")
    }

    @Test func callbackReceivesTheFinishedJob() throws {
        let dir = Self.temporaryDirectory()
        let hookPort = Self.port(9)
        let received = dir + "/callback.json"
        // A real HTTP receiver: Python's http.server, writing the body it gets.
        let receiver = Process()
        receiver.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        receiver.arguments = ["python3", "-c", """
            import http.server, sys
            class H(http.server.BaseHTTPRequestHandler):
                def do_POST(self):
                    body = self.rfile.read(int(self.headers['Content-Length']))
                    open(sys.argv[2], 'wb').write(body)
                    self.send_response(204); self.end_headers()
                def log_message(self, *a): pass
            http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
            """, String(hookPort), received]
        // Not on our output: `swift test` waits for every holder of its pipe to close it.
        receiver.standardOutput = FileHandle.nullDevice
        receiver.standardError = FileHandle.nullDevice
        try receiver.run()
        // SIGKILL: a child started from a test thread inherits its blocked SIGTERM.
        defer { kill(receiver.processIdentifier, SIGKILL) }
        // Loopback is refused unless the operator allows it.
        let server = try ServerProcess(Self.arguments(jobsDir: dir, ["--callback-allow", "127.0.0.1"]), port: Self.port(3))
        let job = try Self.post(server, "/api/v1/jobs", json: ["text": "Call me back.", "callback_url": "http://127.0.0.1:\(hookPort)/done"])
        let id = try #require(job.json?["id"] as? String)
        var body: [String: Any]?
        for _ in 0..<200 where body == nil {
            usleep(100_000)
            if let data = FileManager.default.contents(atPath: received) { body = try? JSONSerialization.jsonObject(with: data) as? [String: Any] }
        }
        let callback = try #require(body, "no callback arrived: \(server.log_)")
        #expect(callback["id"] as? String == id && callback["status"] as? String == "succeeded" && callback["audio_url"] is String)
        // The job shows how its callback went.
        var state: [String: Any] = [:]
        for _ in 0..<50 where state["status"] as? String != "delivered" {
            state = try server.curl("/api/v1/jobs/\(id)").json?["callback"] as? [String: Any] ?? [:]
            if state["status"] as? String != "delivered" { usleep(100_000) }
        }
        #expect(state["status"] as? String == "delivered" && state["attempts"] as? Int == 1, "\(state)")
    }

    @Test func finishedJobsAndTheirAudioExpire() throws {
        let dir = Self.temporaryDirectory()
        let server = try ServerProcess(Self.arguments(jobsDir: dir, ["--job-ttl", "2s"]), port: Self.port(10))
        let job = try Self.post(server, "/api/v1/jobs", json: ["text": "Here today."])
        let id = try #require(job.json?["id"] as? String)
        #expect(try Self.waitForEnd(server, id: id)["status"] as? String == "succeeded")
        let file = "\(dir)/audio/jobs/\(id).wav"
        #expect(FileManager.default.fileExists(atPath: file))
        var status = 200
        for _ in 0..<100 where status == 200 {
            usleep(100_000)
            status = try server.curl("/api/v1/jobs/\(id)").status
        }
        #expect(status == 404, "the job was still there after 10 s with a 2 s retention")
        #expect(!FileManager.default.fileExists(atPath: file))
    }

    @Test func storageThatCannotBeWrittenRetriesThenFailsWithTheReason() throws {
        let dir = Self.temporaryDirectory()
        // A storage directory under a regular file: every write fails, even as root.
        let blocker = dir + "/not-a-directory"
        #expect(FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8)))
        let server = try ServerProcess(
            Self.arguments(jobsDir: dir, ["--storage", blocker + "/audio", "--job-attempts", "2", "--job-retry-delay", "200ms"]),
            port: Self.port(4))
        let job = try Self.post(server, "/api/v1/jobs", json: ["text": "Nowhere to go."])
        let id = try #require(job.json?["id"] as? String)
        let end = try Self.waitForEnd(server, id: id, seconds: 30)
        #expect(end["status"] as? String == "failed" && end["attempts"] as? Int == 2, "\(end)")
        #expect((end["error"] as? String)?.isEmpty == false)
        // The reason a client sees names no file system path (the server's log has it).
        #expect((end["error"] as? String)?.contains(dir) == false, "\(end)")
        #expect(server.log_.contains("retrying") && server.log_.contains(blocker))
        #expect(try server.curl("/?text=Still%20serving.").status == 200)
    }

    @Test func queueDatabaseUnreachableAtStartUpExitsWithAMessage() throws {
        let server = try ServerProcess(
            Self.arguments(jobsDir: Self.temporaryDirectory(), ["--queue", "postgres://lark@127.0.0.1:9/lark"]),
            port: Self.port(5), waitUntilHealthy: false)
        let status = server.waitForExit(seconds: 40)
        #expect(status != nil && status != 0)
        #expect(server.log_.contains("not reachable") && server.log_.contains("127.0.0.1:9"), "\(server.log_)")
    }

    @Test func fiftyJobsSurviveKillNine() throws {
        let dir = Self.temporaryDirectory()
        let arguments = Self.arguments(jobsDir: dir, ["--job-lease", "2s", "--job-workers", "2"])
        let first = try ServerProcess(arguments, port: Self.port(6))
        var ids: [String] = []
        for index in 0..<50 {
            let job = try Self.post(first, "/api/v1/jobs", json: ["text": "Job number \(index). It has two sentences.", "format": "wav"])
            ids.append(try #require(job.json?["id"] as? String, "\(job.status)"))
        }
        // Kill it once some, not all, are done.
        var succeeded = 0
        for _ in 0..<600 {
            succeeded = (try first.curl("/api/v1/jobs?status=succeeded&limit=500").json?["jobs"] as? [Any])?.count ?? 0
            if succeeded >= 5 { break }
            usleep(50_000)
        }
        kill(first.pid, SIGKILL)
        _ = first.waitForExit(seconds: 10)
        #expect(succeeded >= 5 && succeeded < 50, "succeeded before the kill: \(succeeded)")
        let firstLog = first.log_

        let second = try ServerProcess(arguments, port: Self.port(6))
        let deadline = Date().addingTimeInterval(120)
        var statuses: [String: Int] = [:]
        while Date() < deadline {
            let jobs = try second.curl("/api/v1/jobs?limit=500").json?["jobs"] as? [[String: Any]] ?? []
            statuses = Dictionary(grouping: jobs, by: { $0["status"] as? String ?? "?" }).mapValues(\.count)
            if statuses["succeeded"] == 50 { break }
            usleep(200_000)
        }
        #expect(statuses == ["succeeded": 50], "\(statuses)")
        // Every job's audio was written exactly once, across both lives of the server.
        let writes = Self.storedKeys([firstLog, second.log_])
        #expect(writes.count == 50 && writes.values.allSatisfy { $0 == 1 }, "\(writes.filter { $0.value != 1 })")
        for id in ids {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/audio/jobs/\(id).wav"))
        }
    }

    /// `lark worker` runs the same service group as `serve`, without the HTTP server and the
    /// catalog client: on SIGTERM its parts stop in the same order, and its job goes back.
    @Test func workerStopsItsPartsInOrderOnSigtermAndGivesItsJobBack() throws {
        let dir = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let api = try ServerProcess(Self.arguments(jobsDir: dir, ["--job-workers", "0"]), port: Self.port(13))
        let submitted = try Self.post(api, "/api/v1/jobs", json: ["text": try ServerTests.longText(characters: 2_000)])
        let id = try #require(submitted.json?["id"] as? String)
        let worker = try ServerProcess(
            ["--data-dir", ServerLifecycleTests.voices, "--jobs-dir", dir, "--job-workers", "1"] + ServerLifecycleTests.common,
            port: 0, waitUntilHealthy: false, command: "worker")
        var running = false
        for _ in 0..<1_200 where !running {
            running = try api.curl("/api/v1/jobs/\(id)").json?["status"] as? String == "running"
            if !running { usleep(25_000) }
        }
        #expect(running, "\(worker.log_)")
        kill(worker.pid, SIGTERM)
        let status = worker.waitForExit(seconds: 60)
        #expect(status == 0, "exit status \(String(describing: status))\n\(worker.log_)")
        // The worker has a synthesis scheduler of its own, stopped after everything that synthesizes.
        let expected = LarkServicesTests.serveOrder.filter { $0 != "http server" && $0 != "catalog client" }
        #expect(ServerLifecycleTests.stoppedParts(worker.log_) == expected, "\(worker.log_)")
        #expect(worker.log_.contains("job given back (shutting down)"))
        let after = try api.curl("/api/v1/jobs/\(id)").json
        #expect(after?["status"] as? String == "queued", "\(String(describing: after))")
    }

    @Test func twoWorkersOnPostgresSurviveKillingOne() throws {
        let admin = try TestPostgres.url()
        // A database of its own.
        let name = "lark_workers_\(getpid())_\(Int.random(in: 0..<1_000_000))"
        let created = try runProcess("/usr/bin/psql", [admin, "-q", "-c", "CREATE DATABASE \(name)"])
        #expect(created.status == 0, "\(created.stderr)")
        var components = URLComponents(string: admin)!
        components.path = "/" + name
        let queue = components.string!
        let dir = Self.temporaryDirectory()
        let shared = ["--queue", queue, "--storage", dir + "/audio", "--job-lease", "2s", "--jobs-dir", dir]
        // The API alone, and two workers of one job at a time each.
        let api = try ServerProcess(
            ["--data-dir", ServerLifecycleTests.voices, "--job-workers", "0"] + ServerLifecycleTests.common + shared, port: Self.port(7))
        let workerArguments = ["--data-dir", ServerLifecycleTests.voices, "--job-workers", "1"] + ServerLifecycleTests.common + shared
        let doomed = try ServerProcess(workerArguments, port: 0, waitUntilHealthy: false, command: "worker")
        let survivor = try ServerProcess(workerArguments, port: 0, waitUntilHealthy: false, command: "worker")
        var ids: [String] = []
        for index in 0..<10 {
            let job = try Self.post(api, "/api/v1/jobs", json: [
                "text": "Worker job \(index). It has a few sentences. So that it takes a moment. And then one more.",
            ])
            ids.append(try #require(job.json?["id"] as? String, "\(String(decoding: job.body, as: UTF8.self))"))
        }
        // Kill the first worker in the middle of a job.
        var killedMidJob = false
        for _ in 0..<400 {
            let log = doomed.log_
            // More jobs started than finished: one is in progress.
            if log.components(separatedBy: "job started").count > log.components(separatedBy: "job succeeded").count {
                kill(doomed.pid, SIGKILL)
                killedMidJob = true
                break
            }
            usleep(25_000)
        }
        #expect(killedMidJob, "the first worker never started a job: \(doomed.log_)")
        var statuses: [String: Int] = [:]
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let jobs = try api.curl("/api/v1/jobs?limit=100").json?["jobs"] as? [[String: Any]] ?? []
            statuses = Dictionary(grouping: jobs, by: { $0["status"] as? String ?? "?" }).mapValues(\.count)
            if statuses["succeeded"] == ids.count { break }
            usleep(200_000)
        }
        #expect(statuses == ["succeeded": ids.count], "\(statuses)\n\(survivor.log_)")
        #expect(survivor.log_.contains("job succeeded"))
        let writes = Self.storedKeys([doomed.log_, survivor.log_])
        #expect(writes.values.allSatisfy { $0 == 1 }, "\(writes)")
    }
}
