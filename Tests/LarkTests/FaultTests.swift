import Foundation
@testable import OnnxGraph
import Testing

/// Faults of the parts around a running server, each made real: its PostgreSQL restarted, its
/// S3 endpoint gone for a while, its local disk full, a voice's model file deleted or replaced
/// under it. Real `lark serve` processes over loopback, a PostgreSQL of the test's own, a real
/// `moto_server`, a real tmpfs.
@Suite(.serialized) struct FaultTests {
    typealias ServerProcess = ServerLifecycleTests.ServerProcess

    /// Offsets 220-229 of `ServerLifecycleTests.port`.
    static func port(_ offset: Int) -> Int { ServerLifecycleTests.port(220 + offset) }

    // MARK: - PostgreSQL restarted

    @Test func postgresStoppedAndStartedMidRunLosesNoJobAndRendersNoneTwice() throws {
        let postgres = try PrivatePostgres(port: Self.port(0))
        defer { postgres.remove() }
        let dir = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // One worker: jobs wait in the queue while one renders.
        let server = try ServerProcess(
            JobAPITests.arguments(jobsDir: dir, ["--queue", postgres.url, "--job-workers", "1", "--job-lease", "5s"]), port: Self.port(1))
        // The first job long enough to be still rendering when the database goes away, even where
        // a loaded machine makes the polling below slow; the others short.
        let long = String(repeating: try ServerTests.longText(characters: 2000) + " ", count: 3), text = try ServerTests.longText(characters: 900)
        var ids: [String] = []
        for index in 0..<4 {
            let job = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": "Job \(index). " + (index == 0 ? long : text)])
            ids.append(try #require(job.json?["id"] as? String, "\(String(decoding: job.body, as: UTF8.self))"))
        }
        // Wait until the first is rendering and the others are queued.
        var rendering = false
        for _ in 0..<600 where !rendering {
            let first = try server.curl("/api/v1/jobs/\(ids[0])").json ?? [:]
            rendering = first["status"] as? String == "running"
            if !rendering { usleep(20_000) }
        }
        #expect(rendering, "the first job never started rendering: \(server.log_)")
        let queued = try server.curl("/api/v1/jobs?status=queued").json?["jobs"] as? [Any] ?? []
        #expect(queued.count == 3)

        // The database goes away for a few seconds: the API says so, and comes back with it.
        try postgres.stop()
        let stopped = Date()
        let during = try server.curl("/api/v1/jobs/\(ids[1])")
        #expect(during.status == 503 && during.errorCode == "queue_unavailable", "\(String(decoding: during.body, as: UTF8.self))")
        #expect(try server.curl("/?text=Still%20speaking.").status == 200)
        // It stays away until the worker has met it: a call for the job it holds (a heartbeat,
        // or the last one after the rendering) got no answer in time and is being retried.
        var met = false
        for _ in 0..<600 where !met {
            met = server.log_.contains("job database unreachable; retrying")
            if !met { usleep(100_000) }
        }
        #expect(met, "\(server.log_)")
        try postgres.start()

        var statuses: [String: Int] = [:]
        var jobs: [[String: Any]] = []
        let deadline = Date().addingTimeInterval(180)
        while Date() < deadline {
            jobs = (try? server.curl("/api/v1/jobs?limit=10").json?["jobs"] as? [[String: Any]]) ?? []
            statuses = Dictionary(grouping: jobs, by: { $0["status"] as? String ?? "?" }).mapValues(\.count)
            if statuses["succeeded"] == ids.count { break }
            usleep(200_000)
        }
        let log = server.log_
        #expect(statuses == ["succeeded": ids.count], "\(statuses)\n\(log)")
        // No job lost, none run twice: each took one attempt, was started once, and its audio
        // was written once.
        #expect(jobs.allSatisfy { $0["attempts"] as? Int == 1 }, "\(jobs.map { $0["attempts"] ?? "?" })")
        #expect(log.components(separatedBy: "job started").count - 1 == ids.count, "\(log)")
        let writes = JobAPITests.storedKeys([log])
        #expect(writes.count == ids.count && writes.values.allSatisfy { $0 == 1 }, "\(writes)")
        for id in ids {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/audio/jobs/\(id).wav"))
        }
        // The job that was rendering when the database went away was recorded as done only
        // after it came back: its worker held it through the outage.
        let first = try #require(jobs.first { $0["id"] as? String == ids[0] })
        let isoDate = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        let finished = try #require((first["finished_at"] as? String).flatMap { try? isoDate.parse($0) }, "\(first)")
        #expect(finished > stopped, "\(first)")
    }

    // MARK: - S3 endpoint down for a while

    @Test func s3EndpointDownForAWhileJobsAreRetriedAndFinish() async throws {
        let port = Self.port(3)
        var moto = try await MotoServer.start(port: port)
        defer { moto.stop() }
        try Self.createBucket(moto)
        let dir = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try ServerProcess(
            JobAPITests.arguments(jobsDir: dir, [
                "--storage", "s3://speech/faults", "--s3-endpoint", moto.endpoint, "--job-attempts", "10", "--job-retry-delay", "250ms",
            ]),
            port: Self.port(2), environment: JobS3Tests.credentials)

        // The endpoint goes away before the jobs come, and stays away while they are tried.
        moto.stop()
        var ids: [String] = []
        for index in 0..<3 {
            let job = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": "Stored later, number \(index). When the bucket is back."])
            ids.append(try #require(job.json?["id"] as? String, "\(String(decoding: job.body, as: UTF8.self))"))
        }
        // A failed attempt is seen: the job is queued again, with the reason.
        var retried: [String: Any] = [:]
        for _ in 0..<300 {
            retried = try server.curl("/api/v1/jobs/\(ids[0])").json ?? [:]
            if (retried["attempts"] as? Int ?? 0) >= 1, retried["error"] is String { break }
            usleep(50_000)
        }
        #expect((retried["error"] as? String)?.contains("unreachable") == true, "\(retried)")
        #expect(try server.curl("/?text=Still%20serving.").status == 200)
        // Back on the same port (moto takes seconds to start: the outage lasts that long more). moto keeps its buckets in memory, so a restarted moto has
        // none: the test makes the bucket again, as a real outage would not have lost it.
        moto = try await MotoServer.start(port: port)
        try Self.createBucket(moto)

        for id in ids {
            let end = try JobAPITests.waitForEnd(server, id: id, seconds: 120)
            #expect(end["status"] as? String == "succeeded", "\(end)\n\(server.log_)")
            // Its audio is in the bucket and fetchable by the URL the job gives.
            let url = try #require(end["audio_url"] as? String, "\(end)")
            let fetched = try ServerTests.curl([url])
            #expect(fetched.status == 200 && fetched.body.prefix(4) == Data("RIFF".utf8))
            let object = try moto.boto3Read(bucket: "speech", key: "faults/jobs/\(id).wav")
            #expect(object.body == fetched.body)
        }
        let first = try server.curl("/api/v1/jobs/\(ids[0])").json ?? [:]
        #expect((first["attempts"] as? Int ?? 0) >= 2, "the first job was not retried: \(first)")
        #expect(server.log_.contains("job attempt failed; retrying"))
    }

    static func createBucket(_ moto: MotoServer) throws {
        _ = try moto.python(
            """
            import sys, json, boto3
            boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="a",
                         aws_secret_access_key="b").create_bucket(Bucket="speech")
            print(json.dumps({}))
            """)
    }

    // MARK: - Local storage full

    /// Whether this process may mount a tmpfs (root, or CAP_SYS_ADMIN): tried once.
    static let canMountTmpfs: Bool = {
        guard let mount = try? SmallFileSystem(bytes: 64 * 1024) else { return false }
        mount.remove()
        return true
    }()

    @Test(.enabled(if: canMountTmpfs, "mounting a tmpfs needs root (CAP_SYS_ADMIN); run the tests as root to check a full disk"))
    func fullLocalStorageFailsTheJobClearlyAndTheServerKeepsServing() throws {
        // The jobs' scratch files and audio on a 1 MiB file system, the queue elsewhere.
        let disk = try SmallFileSystem(bytes: 1 << 20)
        defer { disk.remove() }
        let queueDir = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: queueDir) }
        let server = try ServerProcess(
            JobAPITests.arguments(jobsDir: disk.path, [
                "--queue", "sqlite://\(queueDir)/jobs.sqlite", "--job-attempts", "2", "--job-retry-delay", "200ms",
            ]),
            port: Self.port(4))
        // Something else already takes most of the disk.
        let filler = disk.path + "/filler"
        #expect(FileManager.default.createFile(atPath: filler, contents: Data(count: 700 * 1024)))

        // About 30 s of 16-bit audio at 22050 Hz: 1.3 MB, more than the disk holds.
        let job = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": try ServerTests.longText(characters: 500)])
        let id = try #require(job.json?["id"] as? String, "\(String(decoding: job.body, as: UTF8.self))")
        let end = try JobAPITests.waitForEnd(server, id: id, seconds: 90)
        let error = end["error"] as? String ?? ""
        #expect(end["status"] as? String == "failed" && error.hasPrefix("storage_full: "), "\(end)\n\(server.log_)")
        #expect(!error.contains(disk.path) && !error.contains("/"), "the reason names a path: \(error)")
        // Nothing of it was left behind: the filler is the only file.
        #expect(disk.files() == [filler], "\(disk.files())")
        // The server still speaks.
        #expect(try server.curl("/?text=Still%20serving.").status == 200)
        #expect(try server.curl("/healthz").status == 200)

        // Space freed: a small job goes through, and its audio can be fetched.
        try FileManager.default.removeItem(atPath: filler)
        let small = try JobAPITests.post(server, "/api/v1/jobs", json: ["text": "A short one."])
        let smallID = try #require(small.json?["id"] as? String)
        let done = try JobAPITests.waitForEnd(server, id: smallID, seconds: 60)
        #expect(done["status"] as? String == "succeeded", "\(done)\n\(server.log_)")
        let audio = try server.curl("/api/v1/jobs/\(smallID)/audio")
        #expect(audio.status == 200 && audio.body.prefix(4) == Data("RIFF".utf8))
    }

    // MARK: - Voice file deleted or replaced while loaded

    @Test func voiceFileDeletedReplacedOrCorruptedWhileLoaded() throws {
        let voices = JobAPITests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: voices) }
        let cache = voices + "-cache"
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let model = voices + "/en_US-joe-medium.onnx"
        let original = try Data(contentsOf: URL(fileURLWithPath: Checkout.joeModel))
        try original.write(to: URL(fileURLWithPath: model))
        try FileManager.default.copyItem(atPath: Checkout.joeModel + ".json", toPath: model + ".json")
        let server = try ServerProcess(
            ["--data-dir", voices, "--cache-dir", cache] + ServerLifecycleTests.common, port: Self.port(5))
        let speak = "/?voice=en_US-joe-medium&noise_scale=0&noise_w=0&text=The%20same%20words%20each%20time."
        func samples(_ path: String, _ line: Int = #line) throws -> [Int16] {
            let result = try server.curl(path)
            #expect(result.status == 200, "line \(line): \(result.status) \(String(decoding: result.body, as: UTF8.self))")
            return Self.wavSamples(result.body)
        }
        func cacheEntries() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: cache)) ?? []).filter { $0.hasPrefix("en_US-joe-medium.") }.count
        }
        let before = try samples(speak)
        #expect(before.count > 22050 && cacheEntries() == 1)

        // Deleted: the loaded voice keeps speaking (its model is in memory).
        try FileManager.default.removeItem(atPath: model)
        #expect(try samples(speak) == before)

        // Replaced (renamed over, as a deployment does) by another valid model: the same one with
        // its last convolution's weights negated, so its audio is the old audio negated. The next
        // request loads it, and the optimized-voice cache gets an entry for it.
        try Self.replace(model, with: try Self.negatedOutput(original))
        let negated = try samples(speak)
        #expect(negated.count == before.count && Self.correlation(before, negated) < -0.99, "\(Self.correlation(before, negated))")
        #expect(cacheEntries() == 2)

        // Overwritten with garbage: a clear 503, no path in it; other voices go on; and the
        // bad file is not loaded again on every request.
        try Data(repeating: 0x5A, count: 4096).write(to: URL(fileURLWithPath: model))
        for _ in 0..<2 {
            let broken = try server.curl(speak)
            #expect(broken.status == 503 && broken.errorCode == "invalid_model", "\(broken.status) \(String(decoding: broken.body, as: UTF8.self))")
            let message = (broken.json?["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(!message.isEmpty && !message.contains(voices), "\(message)")
        }
        #expect(try server.curl("/?voice=espeak-ng:en-us&text=Another%20voice.").status == 200)
        #expect(try server.curl("/healthz").status == 200)

        // The good file back: the voice recovers, as it was.
        try Self.replace(model, with: original)
        #expect(Self.correlation(before, try samples(speak)) > 0.99)
        #expect(server.log_.contains("invalid_model") || server.log_.contains("cannot load voice model"), "\(server.log_)")
    }

    /// Writes `data` beside `path` and renames it over `path` (a new file, not the old one rewritten).
    static func replace(_ path: String, with data: Data) throws {
        let temporary = path + ".new"
        try data.write(to: URL(fileURLWithPath: temporary))
        #expect(rename(temporary, path) == 0)
    }

    /// `model` with the sign of every weight of the decoder's last convolution (`dec.conv_post`,
    /// no bias, followed by tanh) flipped: a valid model whose audio is the original's negated.
    static func negatedOutput(_ model: Data) throws -> Data {
        var bytes = [UInt8](model)
        func fields(_ range: Range<Int>) throws -> [ProtoField] {
            var reader = ProtoReader(bytes, range: range)
            return try reader.all()
        }
        let graph = try #require(try fields(0..<bytes.count).first { $0.number == 7 })
        for initializer in try fields(graph.payload) where initializer.number == 5 {
            let tensor = try fields(initializer.payload)
            guard let name = tensor.first(where: { $0.number == 8 }), name.string(in: bytes) == "dec.conv_post.weight",
                  let raw = tensor.first(where: { $0.number == 9 })
            else { continue }
            // Little-endian float32: the sign is the top bit of each fourth byte.
            for index in stride(from: raw.payload.lowerBound + 3, to: raw.payload.upperBound, by: 4) { bytes[index] ^= 0x80 }
            return Data(bytes)
        }
        throw ProbeError(message: "dec.conv_post.weight is not in the model")
    }

    /// The 16-bit samples of a WAV body (after its `data` chunk header).
    static func wavSamples(_ wav: Data) -> [Int16] {
        let bytes = [UInt8](wav)
        guard let data = (12..<max(12, bytes.count - 8)).first(where: { bytes[$0..<$0 + 4].elementsEqual("data".utf8) }) else { return [] }
        let start = data + 8
        return stride(from: start, to: bytes.count - 1, by: 2).map { Int16(bitPattern: UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8) }
    }

    static func correlation(_ a: [Int16], _ b: [Int16]) -> Double {
        guard a.count == b.count, !a.isEmpty else { return 0 }
        var ab = 0.0, aa = 0.0, bb = 0.0
        for (x, y) in zip(a, b) {
            ab += Double(x) * Double(y)
            aa += Double(x) * Double(x)
            bb += Double(y) * Double(y)
        }
        return aa > 0 && bb > 0 ? ab / (aa * bb).squareRoot() : 0
    }
}

/// A PostgreSQL server of one test's own (Debian's binaries; a cluster in a temporary directory,
/// trust authentication, on loopback), which the test may stop and start again on the same data.
/// As root, the cluster belongs to the `postgres` user (PostgreSQL refuses to run as root).
///
/// The server runs in the foreground as this process's child, not through `pg_ctl start`:
/// Foundation's `Process` learns that a child ended when a socket the child inherited closes,
/// and a server that `pg_ctl` leaves running keeps that socket open for as long as it runs.
final class PrivatePostgres: @unchecked Sendable {
    let port: Int
    let directory: String
    private let bin: String
    private let asUser: [String]
    private var server: Process?

    var url: String { "postgres://lark@127.0.0.1:\(port)/postgres" }
    private var data: String { directory + "/data" }

    init(port: Int) throws {
        self.port = port
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = versions.sorted(by: { $0.compare($1, options: .numeric) == .orderedAscending }).last else {
            throw ProbeError(message: "PostgreSQL is not installed (make setup installs Debian's postgresql)")
        }
        bin = "/usr/lib/postgresql/\(version)/bin"
        directory = NSTemporaryDirectory() + "lark-faults-pg-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        asUser = getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : []
        if getuid() == 0 {
            let owned = try runProcess("/bin/chown", ["postgres:", directory])
            guard owned.status == 0 else { throw ProbeError(message: "chown: \(owned.stderr)") }
        }
        let created = try command(bin + "/initdb", ["-D", data, "-U", "lark", "--auth=trust", "-E", "UTF8"])
        guard created.status == 0 else { throw ProbeError(message: "initdb failed: \(created.stderr)") }
        try start()
    }

    /// Starts the server on its data and waits until it accepts connections.
    func start() throws {
        let log = directory + "/server.log"
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let output = FileHandle(forWritingAtPath: log)
        output?.seekToEndOfFile()
        let process = Process()
        let arguments = [bin + "/postgres", "-D", data, "-h", "127.0.0.1", "-p", String(port), "-k", directory, "-c", "fsync=off"]
        process.executableURL = URL(fileURLWithPath: asUser.first ?? arguments[0])
        process.arguments = asUser.isEmpty ? Array(arguments.dropFirst()) : Array(asUser.dropFirst()) + arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        try process.run()
        server = process
        for _ in 0..<600 {
            if try command(bin + "/pg_isready", ["-q", "-h", "127.0.0.1", "-p", String(port)]).status == 0 { return }
            guard process.isRunning else { break }
            usleep(100_000)
        }
        throw ProbeError(message: "PostgreSQL did not start: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    /// A fast shutdown (SIGINT to the postmaster): open connections are cut, transactions in
    /// progress rolled back. Returns once the server has exited.
    func stop() throws {
        try signal(SIGINT)
    }

    /// Stops it however it is (an immediate shutdown), and deletes its files.
    func remove() {
        try? signal(SIGQUIT)
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func signal(_ number: Int32) throws {
        guard let server, server.isRunning else { return }
        // The postmaster's pid is the first line of its pid file (`runuser` is its parent).
        let pidFile = (try? String(contentsOfFile: data + "/postmaster.pid", encoding: .utf8)) ?? ""
        guard let pid = pidFile.split(separator: "\n").first.flatMap({ Int32($0) }) else {
            throw ProbeError(message: "no postmaster.pid in \(data)")
        }
        kill(pid, number)
        for _ in 0..<600 where server.isRunning { usleep(100_000) }
        guard !server.isRunning else { throw ProbeError(message: "PostgreSQL did not stop within a minute") }
    }

    /// A PostgreSQL program run to its end, as the cluster's owner.
    private func command(_ program: String, _ arguments: [String]) throws -> ProcessResult {
        asUser.isEmpty ? try runProcess(program, arguments) : try runProcess(asUser[0], Array(asUser.dropFirst()) + [program] + arguments)
    }
}

/// A tmpfs of a given size mounted on a temporary directory (needs root), for a disk that fills up.
struct SmallFileSystem {
    let path: String

    init(bytes: Int) throws {
        path = NSTemporaryDirectory() + "lark-faults-disk-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let mounted = try runProcess("/bin/mount", ["-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", path])
        guard mounted.status == 0 else {
            try? FileManager.default.removeItem(atPath: path)
            throw ProbeError(message: "cannot mount a tmpfs: \(mounted.stderr)")
        }
    }

    /// Every regular file on it, by path, sorted.
    func files() -> [String] {
        var found: [String] = []
        let enumerator = FileManager.default.enumerator(atPath: path)
        while let relative = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue {
                found.append(path + "/" + relative)
            }
        }
        return found.sorted()
    }

    /// Unmounts (lazily, should a process still hold a file there) and removes the mount point.
    func remove() {
        _ = try? runProcess("/bin/umount", ["-l", path])
        try? FileManager.default.removeItem(atPath: path)
    }
}
