import Foundation
import Testing

/// `lark serve` processes of their own, for what the shared server cannot show: start-up options,
/// graceful shutdown on SIGTERM, and a flood of connections against a small pool.
@Suite(.serialized) struct ServerLifecycleTests {
    /// A `lark serve` child process with its log in a file. `@unchecked Sendable`: its state is
    /// set in `init`; `Process` itself may be asked from any thread.
    final class ServerProcess: @unchecked Sendable {
        let process = Process()
        let port: Int
        let logPath: String
        var base: String { "http://127.0.0.1:\(port)" }
        var pid: Int32 { process.processIdentifier }

        /// Starts the server; `waitUntilHealthy` false lets the caller watch a start-up that fails
        /// (or run a `command` that serves no HTTP, such as `worker`). `healthySeconds`: how long
        /// start-up may take (a cold optimized-voice build, with other suites loading the CPU, takes
        /// minutes on a slow machine).
        init(
            _ arguments: [String], port: Int, environment: [String: String] = [:], waitUntilHealthy: Bool = true,
            healthySeconds: Int = 240, command: String = "serve"
        ) throws {
            self.port = port
            logPath = NSTemporaryDirectory() + "lark-serve-\(port)-\(UUID().uuidString).log"
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: Checkout.larkBinary)
            // The port comes from the environment when a test says so, else from the arguments.
            let portArguments = command == "serve" && environment["LARK_PORT"] == nil ? ["--port", String(port)] : []
            process.arguments = [command] + portArguments + arguments
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let log = FileHandle(forWritingAtPath: logPath)
            process.standardOutput = log
            process.standardError = log
            try process.run()
            guard waitUntilHealthy else { return }
            if ServerTests.waitUntilHealthy(base, process, seconds: Double(healthySeconds)) { return }
            throw ProbeError(message: "lark serve did not become healthy: \(log_)")
        }

        var log_: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

        func curl(_ path: String, _ extra: [String] = [], input: Data = Data()) throws -> ServerTests.CurlResult {
            try ServerTests.curl(extra + ["\(base)\(path)"], input: input)
        }

        /// The exit status, or nil if still running after `seconds`.
        func waitForExit(seconds: Double) -> Int32? {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning, Date() < deadline { usleep(50_000) }
            return process.isRunning ? nil : process.terminationStatus
        }

        deinit {
            if process.isRunning { process.terminate() }
            try? FileManager.default.removeItem(atPath: logPath)
        }
    }

    /// Ports apart from the shared suite's, below Linux's ephemeral range (32768 and up), where
    /// a client connection could already hold one.
    /// Offsets in use: 0-13 here and in ServerTests, 40-51 (catalog, downloads), 60-79 (jobs),
    /// 89 (route walk), 90-99 (hostile input), 110-112 (hostile clients), 120-179 (this round's
    /// helpers: normalization, SSML, timings, OpenAI/Polly, Wyoming), 180-189 (access control),
    /// 190-199 (the API contract: schemathesis), 220-229 (faults: PostgreSQL, S3, disk, voice files).
    static func port(_ offset: Int) -> Int { 26_000 + Int(getpid() % 6_000) + offset }

    static let voices = Checkout.deps + "/voices"
    static let common = ["--espeak-data", Checkout.deps]

    @Test func sigtermFinishesInFlightRequestsThenExits() throws {
        let server = try ServerProcess(["--data-dir", Self.voices] + Self.common, port: Self.port(1))
        let text = try ServerTests.longText(characters: 700)
        let encoded = text.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        // A whole-WAV request (with Content-Length, so a cut response cannot pass for a whole one).
        let result = ResultBox()
        let client = Thread { result.value = try? server.curl("/?text=\(encoded)") }
        client.start()
        // Wait until it is synthesizing, then ask the server to stop.
        var inFlight = false
        for _ in 0..<200 where !inFlight {
            inFlight = PrometheusText((try server.curl("/metrics")).body)["lark_synthesis_in_flight"] == 1
            if !inFlight { usleep(20_000) }
        }
        #expect(inFlight)
        kill(server.pid, SIGTERM)
        usleep(300_000)
        // Draining: no new connections are taken.
        let late = try server.curl("/healthz")
        #expect(late.status == 0, "a request after SIGTERM got \(late.status)")
        let status = server.waitForExit(seconds: 60)
        #expect(status == 0, "exit status \(String(describing: status))\n\(server.log_)")
        while !client.isFinished { usleep(10_000) }
        let response = try #require(result.value)
        #expect(response.status == 200)
        let declared = Int(response.headers["content-length"] ?? "") ?? -1
        #expect(response.body.count == declared && declared > 44 + 22050 * 2 * 20, "\(response.body.count) of \(declared) bytes")
        // Its log line names the request id the client was given.
        let id = try #require(response.headers["x-request-id"])
        #expect(server.log_.contains("hb.request.id=\(id)") && server.log_.contains("GET / 200"))
    }

    /// The parts of a `lark serve` process, in the order their `stopped` lines appear in its log.
    static func stoppedParts(_ log: String) -> [String] {
        log.split(separator: "\n").filter { $0.hasSuffix("] stopped") }.compactMap { line in
            guard let start = line.range(of: "service="), let end = line.range(of: " [", range: start.upperBound..<line.endIndex)
            else { return nil }
            return String(line[start.upperBound..<end.lowerBound])
        }
    }

    @Test func sigtermStopsThePartsInReverseDependencyOrderAndTheJobGoesBack() throws {
        let dir = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try ServerProcess(JobAPITests.arguments(jobsDir: dir), port: Self.port(7))
        let submitted = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": try ServerTests.longText(characters: 2_000)])
        let id = try #require(submitted.json?["id"] as? String)
        var running = false
        for _ in 0..<400 where !running {
            running = try server.curl("/api/v1/jobs/\(id)").json?["status"] as? String == "running"
            if !running { usleep(25_000) }
        }
        #expect(running)
        kill(server.pid, SIGTERM)
        let status = server.waitForExit(seconds: 60)
        #expect(status == 0, "exit status \(String(describing: status))\n\(server.log_)")
        // One at a time, from the top: the server stops taking requests, the workers give their
        // job back, the rest stops, and the voices close last.
        let log = server.log_
        #expect(Self.stoppedParts(log) == LarkServicesTests.serveOrder, "\(log)")
        let lines = log.split(separator: "\n")
        let givenBack = try #require(lines.firstIndex { $0.contains("job given back (shutting down)") }, "\(log)")
        let databaseClosed = try #require(lines.firstIndex { $0.contains("service=job database") && $0.hasSuffix("] stopped") })
        #expect(givenBack < databaseClosed)
        // The next process finds the job queued again.
        let next = try ServerProcess(JobAPITests.arguments(jobsDir: dir, ["--job-workers", "0"]), port: Self.port(8))
        let after = try next.curl("/api/v1/jobs/\(id)").json
        #expect(after?["status"] as? String == "queued", "\(String(describing: after))")
    }

    @Test func twoHundredConnectionsGet200Or503AndMemoryComesBack() throws {
        let server = try ServerProcess(
            ["--data-dir", Self.voices, "--workers", "2", "--max-queue", "8"] + Self.common, port: Self.port(2))
        func flood() throws -> [Int] {
            var arguments = ["-s", "--parallel", "--parallel-immediate", "--parallel-max", "200", "-w", "%{http_code}\n"]
            for index in 0..<200 {
                arguments += ["-o", "/dev/null", "\(server.base)/?text=Request%20\(index)%20arrives.%20It%20has%20two%20sentences."]
            }
            let output = try runProcess("/usr/bin/curl", arguments)
            return String(decoding: output.stdout, as: UTF8.self).split(separator: "\n").compactMap { Int($0) }
        }
        // The first flood also brings ONNX Runtime's arenas to their working size (they keep
        // what they grow to, by design); "idle" is the warmed-up server at rest after it.
        var rejected = 0
        for round in 0..<3 {
            let statuses = try flood()
            #expect(statuses.count == 200)
            #expect(statuses.allSatisfy { $0 == 200 || $0 == 503 }, "\(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))")
            let served = statuses.filter { $0 == 200 }.count
            #expect(served >= 10, "round \(round): workers and queue take 10 at once; \(served) served")
            #expect(statuses.contains(503))
            rejected += 200 - served
        }
        usleep(500_000)
        let idle = try residentKiB(of: server.pid)
        for _ in 0..<2 { _ = try flood() }
        usleep(500_000)
        let after = try residentKiB(of: server.pid)
        #expect(after <= idle + 48 * 1024, "RSS at rest \(idle / 1024) MiB, after two more floods \(after / 1024) MiB")
        // Still serving, and every refusal was counted.
        #expect(try server.curl("/?text=Still%20here.").status == 200)
        let metrics = PrometheusText(try server.curl("/metrics").body)
        #expect((metrics["lark_synthesis_rejected_total"] ?? 0) >= Double(rejected))
        #expect(metrics["lark_synthesis_in_flight"] == 0 && metrics["lark_synthesis_queue_depth"] == 0)
        // What a load test reads to reach the 503s: two workers plus eight waiting.
        #expect(metrics["lark_synthesis_capacity"] == 10)
    }

    @Test func voiceByPathEnvironmentAndLimits() throws {
        let empty = NSTemporaryDirectory() + "lark-empty-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        // -m as a path with -c, nothing in the data directory; port and limit from the environment.
        let port = Self.port(3)
        let server = try ServerProcess(
            ["-m", Checkout.joeModel, "-c", Checkout.joeModel + ".json", "--data_dir", empty] + Self.common,
            port: port, environment: ["LARK_PORT": String(port), "LARK_MAX_TEXT_CHARS": "40"])
        #expect(try server.curl("/readyz").status == 200)
        let voices = try server.curl("/voices")
        #expect(String(decoding: voices.body, as: UTF8.self).contains(#""Id":"en_US-joe-medium""#))
        #expect(try server.curl("/?text=Loaded%20by%20path.").status == 200)
        let long = try server.curl("/?text=" + String(repeating: "word%20", count: 20))
        #expect(long.status == 413 && long.errorCode == "text_too_long")
        // Requests still cannot name a path.
        let path = Checkout.joeModel.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        #expect(try server.curl("/?text=Hi&voice=\(path)").status == 404)
    }

    @Test func downloadDirectoryIsSearchedAndTheCatalogIsNeededOnlyWhenAsked() throws {
        let empty = NSTemporaryDirectory() + "lark-empty-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        // Nothing listens on port 1: any attempt to reach the catalog fails at once.
        let offline = ["--catalog-url", "http://127.0.0.1:1/voices.json"]
        let server = try ServerProcess(
            ["-m", "en_US-joe-medium", "--data-dir", empty, "--download-dir", Self.voices] + offline + Self.common, port: Self.port(4))
        #expect(try server.curl("/readyz").status == 200)

        let update = try ServerProcess(
            ["--update-voices", "--data-dir", Self.voices, "--download-dir", empty] + offline + Self.common,
            port: Self.port(5), waitUntilHealthy: false)
        #expect(update.waitForExit(seconds: 30) == 1)
        #expect(update.log_.contains("cannot fetch the voice catalog http://127.0.0.1:1/voices.json"), "\(update.log_)")

        let missing = try ServerProcess(
            ["-m", "xx_XX-nobody-low", "--data-dir", empty] + offline + Self.common, port: Self.port(6), waitUntilHealthy: false)
        #expect(missing.waitForExit(seconds: 30) == 1)
        #expect(missing.log_.contains("error:") && missing.log_.contains("xx_XX-nobody-low") && missing.log_.contains("not downloaded"))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: empty))?.isEmpty == true)
    }
}

final class ResultBox: @unchecked Sendable {
    var value: ServerTests.CurlResult?
}
