import Foundation
import Testing

/// `lark serve` over real loopback HTTP, driven with curl: every route and every error.
@Suite(.serialized) struct ServerTests {
    static let port = 20_000 + Int(getpid() % 6_000)  // below the ephemeral range (32768 and up)
    static let base = "http://127.0.0.1:\(port)"

    /// One server for the suite, started on first use and stopped when the test process exits.
    static let server: Process? = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Checkout.larkBinary)
        process.arguments = [
            "serve", "--port", String(port), "--data-dir", Checkout.deps + "/voices", "--espeak-data", Checkout.deps,
            "--workers", "1", "--max-queue", "1", "--max-text-chars", "2000",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try? process.run()
        atexit { ServerTests.server?.terminate() }
        // The default voice loads before the server listens: on a machine whose optimized-voice
        // cache is cold, with other suites loading the CPU, its build can take minutes.
        _ = waitUntilHealthy(base, process, seconds: 240)
        return process
    }()

    /// Whether the server at `base` answered /healthz 200 within `seconds`, while `process` ran.
    static func waitUntilHealthy(_ base: String, _ process: Process, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline, process.isRunning {
            if (try? curl(["\(base)/healthz"]))?.status == 200 { return true }
            usleep(100_000)
        }
        return false
    }

    struct CurlResult {
        var status: Int
        var body: Data
        var contentType: String
        var firstByte: Double
        var total: Double
        /// Response headers, names lowercased (the last response's, if curl followed several).
        var headers: [String: String] = [:]
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
        var errorCode: String? { (json?["error"] as? [String: Any])?["code"] as? String }
    }

    static func curl(_ arguments: [String], input: Data = Data()) throws -> CurlResult {
        let bodyFile = NSTemporaryDirectory() + "lark-curl-\(UUID().uuidString)"
        let headerFile = bodyFile + ".headers"
        defer {
            try? FileManager.default.removeItem(atPath: bodyFile)
            try? FileManager.default.removeItem(atPath: headerFile)
        }
        let result = try runProcess(
            "/usr/bin/curl",
            ["-s", "-N", "-o", bodyFile, "-D", headerFile, "-w", "%{http_code} %{time_starttransfer} %{time_total} %{content_type}"] + arguments,
            input: input)
        let fields = String(decoding: result.stdout, as: UTF8.self).split(separator: " ", maxSplits: 3).map(String.init)
        var headers: [String: String] = [:]
        let headerText = (try? String(contentsOfFile: headerFile, encoding: .utf8)) ?? ""
        for line in headerText.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return CurlResult(
            status: Int(fields.first ?? "") ?? 0, body: (try? Data(contentsOf: URL(fileURLWithPath: bodyFile))) ?? Data(),
            contentType: fields.count > 3 ? fields[3] : "", firstByte: Double(fields[safe: 1] ?? "") ?? 0,
            total: Double(fields[safe: 2] ?? "") ?? 0, headers: headers)
    }

    func request(_ path: String, _ extra: [String] = [], input: Data = Data()) throws -> CurlResult {
        _ = Self.server
        return try Self.curl(extra + ["\(Self.base)\(path)"], input: input)
    }

    @Test func getWithTextAnswersAWAV() throws {
        let result = try request("/?text=Hello%20there.%20This%20is%20Lark.")
        #expect(result.status == 200)
        #expect(result.contentType == "audio/wav")
        #expect(result.body.prefix(4) == Data("RIFF".utf8))
        #expect(result.body.count > 44 + 22050)
    }

    @Test func postRawTextAndPiperJSON() throws {
        let raw = try request("/", ["-X", "POST", "--data-binary", "@-"], input: Data("Posted text.".utf8))
        #expect(raw.status == 200 && raw.contentType == "audio/wav")
        let json = try request("/synthesize", ["-X", "POST", "-H", "content-type: application/json", "--data-binary", "@-"],
                               input: Data(#"{"text": "From JSON.", "length_scale": 1.2}"#.utf8))
        #expect(json.status == 200 && json.contentType == "audio/wav")
        let native = try request(
            "/api/v1/speech", ["-X", "POST", "-H", "Content-Type: application/json; charset=utf-8", "--data-binary", "@-"],
            input: Data(#"{"text": "Native.", "format": "wav"}"#.utf8))
        #expect(native.status == 200)
    }

    @Test func requestSettingsChangeTheAudio() throws {
        let normal = try request("/?text=Slow%20down.&noise_scale=0&noise_w=0")
        let slow = try request("/?text=Slow%20down.&noise_scale=0&noise_w=0&length_scale=2")
        #expect(slow.body.count > normal.body.count * 3 / 2)
    }

    @Test func plusInAQueryIsASpaceAsInHTMLForms() throws {
        let plus = try request("/?text=Two+sentences+here.+And+one+more.&noise_scale=0&noise_w=0")
        let escaped = try request("/?text=Two%20sentences%20here.%20And%20one%20more.&noise_scale=0&noise_w=0")
        #expect(plus.status == 200 && plus.body == escaped.body)
        let literal = try request("/?text=One%2Btwo.&noise_scale=0&noise_w=0")
        let spaced = try request("/?text=One%20two.&noise_scale=0&noise_w=0")
        #expect(literal.body != spaced.body, "%2B stays a plus sign")
    }

    @Test func voicesListsPollyKeys() throws {
        let result = try request("/voices")
        let voices = try #require(try JSONSerialization.jsonObject(with: result.body) as? [[String: Any]])
        let joe = try #require(voices.first { $0["Id"] as? String == "en_US-joe-medium" })
        #expect(joe["LanguageCode"] as? String == "en-US")
        #expect(joe["SampleRate"] as? Int == 22050)
        #expect(joe["SupportedEngines"] as? [String] == ["standard"])
        #expect(voices.contains { $0["Id"] as? String == "espeak-ng:de" })
        let native = try request("/api/v1/voices")
        #expect(native.status == 200)
    }

    @Test func readStreamsTheFirstSentenceBeforeTheEnd() throws {
        let text = Array(repeating: "This sentence is one of several in a longer paragraph.", count: 6).joined(separator: " ")
        let encoded = text.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed)!
        let result = try request("/read?voiceId=en_US-joe-medium&outputFormat=pcm&text=\(encoded)")
        #expect(result.status == 200)
        #expect(result.contentType == "audio/wave; codecs=1")
        #expect(result.body.count > 22050 * 2 * 10)
        // The first bytes come after one sentence of six: well before the whole response.
        #expect(result.firstByte < result.total * 0.5, "first byte \(result.firstByte) s, total \(result.total) s")
        let wav = try request("/read?outputFormat=wav&text=Streamed%20WAV.")
        #expect(wav.status == 200 && wav.body.prefix(4) == Data("RIFF".utf8))
    }

    @Test(arguments: ["ogg_opus", "mp3"])
    func compressedStreamsStartEarlyAndTheirFirstChunkDecodes(format: String) throws {
        _ = Self.server
        let text = Array(repeating: "Each of these ten sentences adds a few seconds of speech.", count: 10).joined(separator: " ")
        let encoded = text.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let response = try ChunkedResponse(port: Self.port, path: "/read?outputFormat=\(format)&text=\(encoded)")
        #expect(response.status == 200)
        #expect(response.chunks.count > 3, "one chunk per sentence or so, got \(response.chunks.count)")
        #expect(response.firstChunkAt < response.total * 0.3, "first chunk at \(response.firstChunkAt) s of \(response.total) s")
        // Cut after the first chunk: what a client holds then must play on its own.
        let file = NSTemporaryDirectory() + "lark-prefix-\(UUID().uuidString).\(format == "mp3" ? "mp3" : "opus")"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try response.chunks[0].write(to: URL(fileURLWithPath: file))
        let decoded = try AudioFormatTests.decodedSeconds(file: file, rawFormat: nil, rate: 24000)
        #expect(decoded > 1.5, "\(decoded) s decoded from the first chunk")
        let whole = NSTemporaryDirectory() + "lark-whole-\(UUID().uuidString).\(format == "mp3" ? "mp3" : "opus")"
        defer { try? FileManager.default.removeItem(atPath: whole) }
        try response.chunks.reduce(Data(), +).write(to: URL(fileURLWithPath: whole))
        #expect(try AudioFormatTests.decodedSeconds(file: whole, rawFormat: nil, rate: 24000) > 25)
    }

    @Test(arguments: [
        ("/?text=%20", "empty_text", 400),
        ("/?text=Hi&voice=nope", "unknown_voice", 404),
        ("/?text=Hi&voice=..%2F..%2Fetc%2Fpasswd", "unknown_voice", 404),
        ("/?text=Hi&speaker=3", "speaker_out_of_range", 422),
        ("/?text=Hi&length_scale=fast", "invalid_option", 400),
        ("/?text=Hi&noise_scale=99", "invalid_option", 400),
        ("/?text=Hi&noise_w=4", "invalid_option", 400),
        ("/?text=Hi&length_scale=20", "invalid_option", 400),
        // 125 sentences each followed by 10 s of silence: past the 20 minutes a request may make.
        ("/?voice=espeak-ng:en-us&text=" + Array(repeating: "Go.", count: 125).joined(separator: "+") + "&sentence_silence=10",
         "audio_too_long", 413),
        ("/?text=Hi&sentence_silence=11", "invalid_option", 400),
        ("/read?text=Hi&outputFormat=xyz", "unsupported_format", 400),
        ("/?text=Hi&format=mp3&sample_rate=12345", "unsupported_sample_rate", 422),
        ("/?text=Hi&format=ogg_opus&sample_rate=22050", "unsupported_sample_rate", 422),
        ("/?text=Hi&format=mulaw&sample_rate=16000", "unsupported_sample_rate", 422),
        ("/?text=Hi&format=mp3&sample_rate=fast", "invalid_option", 400),
        ("/?text=Hi&format=wav&bitrate=64000", "invalid_bitrate", 422),
        ("/?text=Hi&format=mp3&bitrate=1000", "invalid_bitrate", 422),
        ("/no/such/route", "not_found", 404),
    ])
    func errorsAreJSONWithAStableCode(path: String, code: String, status: Int) throws {
        let result = try request(path)
        #expect(result.status == status)
        #expect(result.errorCode == code, "\(String(decoding: result.body, as: UTF8.self))")
        #expect(result.contentType.hasPrefix("application/json"))
    }

    @Test func badBodiesAndMethods() throws {
        let invalid = try request("/", ["-X", "POST", "--data-binary", "@-"], input: Data([0x48, 0x69, 0xFF, 0xFE]))
        #expect(invalid.status == 400 && invalid.errorCode == "invalid_text")
        let tooLong = try request("/", ["-X", "POST", "--data-binary", "@-"], input: Data(String(repeating: "word ", count: 2000).utf8))
        #expect(tooLong.status == 413 && tooLong.errorCode == "text_too_long")
        let wrongMethod = try request("/voices", ["-X", "DELETE"])
        #expect(wrongMethod.status == 405 && wrongMethod.errorCode == "method_not_allowed")
        let badJSON = try request(
            "/synthesize", ["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", "@-"], input: Data("{not json".utf8))
        #expect(badJSON.status == 400 && badJSON.errorCode == "invalid_json")
    }

    @Test func browsersGetTheWebPage() throws {
        let page = try request("/", ["-H", "Accept: text/html,application/xhtml+xml"])
        #expect(page.status == 200)
        #expect(page.contentType.hasPrefix("text/html"))
        #expect(String(decoding: page.body, as: UTF8.self).contains(#"<textarea id="text""#))
        // Without a browser's Accept header, no text is a client error, as in Piper.
        let bare = try request("/")
        #expect(bare.status == 400 && bare.errorCode == "empty_text")
    }

    @Test func everyResponseCarriesARequestID() throws {
        let ok = try request("/healthz")
        let error = try request("/no/such/route")
        let okID = try #require(ok.headers["x-request-id"])
        let errorID = try #require(error.headers["x-request-id"])
        #expect(okID.count >= 16 && okID != errorID)
    }

    @Test func metricsCountRequestsAudioAndQueue() throws {
        _ = try request("/?text=Counting%20this%20one.")
        _ = try request("/no/such/route")
        let result = try request("/metrics")
        #expect(result.status == 200)
        #expect(result.contentType.hasPrefix("text/plain"))
        let metrics = PrometheusText(result.body)
        #expect((metrics[#"lark_http_requests_total{route="/",method="GET",status="200"}"#] ?? 0) >= 1)
        #expect((metrics[#"lark_http_requests_total{route="NotFound",method="GET",status="404"}"#] ?? 0) >= 1)
        #expect((metrics[#"lark_audio_produced_seconds_total{voice="en_US-joe-medium"}"#] ?? 0) > 0.5)
        #expect((metrics[#"lark_time_to_first_audio_seconds_count{route="/"}"#] ?? 0) >= 1)
        #expect(metrics.names.contains("lark_http_request_duration_seconds_bucket"))
        // The gauges come back to zero once nothing synthesizes. An earlier test's synthesis (a
        // client that left mid-stream stops only after the sentence in progress) can still hold
        // its place for a moment after that test returned: ask again, for up to 5 s.
        var load = (metrics["lark_synthesis_in_flight"], metrics["lark_synthesis_queue_depth"])
        for _ in 0..<50 where load != (0, 0) {
            Thread.sleep(forTimeInterval: 0.1)
            let again = PrometheusText(try request("/metrics").body)
            load = (again["lark_synthesis_in_flight"], again["lark_synthesis_queue_depth"])
        }
        #expect(load.0 == 0)
        #expect(load.1 == 0)
    }

    /// Streamed (`/read`: the failed write shows it) and whole-file (`GET /`: the closed
    /// connection cancels the handler).
    @Test(arguments: ["/read?outputFormat=pcm&text=", "/?text="])
    func clientThatDisconnectsStopsItsSynthesis(route: String) throws {
        // About two minutes of speech: a dozen seconds of work for the one worker.
        let text = try Self.longText(characters: 1900)
        let encoded = text.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let pid = try #require(Self.server?.processIdentifier)
        // curl gives up after 1.5 s, closing the connection mid-stream.
        let partial = try request(route + encoded, ["-m", "1.5"])
        if route.hasPrefix("/read") {
            #expect(partial.body.count > 0, "the first sentence arrived before the client left")
        }
        // The sentence in progress may finish; after that the server must be idle. Continuing
        // would cost about a core for the dozen seconds the rest of the text needs (less when
        // other suites share the machine, but still seconds).
        // (A failed write is what reveals the client left, so a sentence or two may still run.)
        let start = try cpuSeconds(of: pid)
        usleep(5_000_000)
        let middle = try cpuSeconds(of: pid)
        usleep(3_000_000)
        let end = try cpuSeconds(of: pid)
        #expect(end - start < 4, "the server used \(end - start) s of CPU in the 8 s after the client left")
        #expect(end - middle < 0.3, "the server used \(end - middle) s of CPU 5 to 8 s after the client left")
        let metrics = PrometheusText(try request("/metrics").body)
        #expect(metrics["lark_synthesis_in_flight"] == 0)
    }

    /// The first `characters` of the bench text, cut at a sentence end.
    static func longText(characters: Int) throws -> String {
        let text = try String(contentsOfFile: Checkout.root + "/bench/text-300.txt", encoding: .utf8)
        let prefix = String(text.prefix(characters))
        guard let end = prefix.lastIndex(of: ".") else { return prefix }
        return String(prefix[...end])
    }

    @Test func fullPoolAnswers503WithRetryAfter() throws {
        // One worker and a queue of one: of several long requests at once, some must be refused.
        // Long enough that the five overlap even when the clients start slowly on a loaded machine.
        let text = Array(repeating: "A long sentence keeps the single worker busy for a while.", count: 12).joined(separator: " ")
        let encoded = text.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed)!
        let group = DispatchGroup()
        let statuses = StatusBox()
        for _ in 0..<5 {
            group.enter()
            DispatchQueue.global().async {
                let result = try? self.request("/?text=\(encoded)")
                // A 503 must say when to come back; record it as -1 when it does not.
                let status = result?.status ?? 0
                statuses.append(status == 503 && result?.headers["retry-after"] != "1" ? -1 : status)
                group.leave()
            }
        }
        group.wait()
        #expect(statuses.values.allSatisfy { $0 == 200 || $0 == 503 })
        #expect(statuses.values.contains(503))
        #expect(statuses.values.contains(200))
        let health = try request("/healthz")
        #expect(health.status == 200)
    }
}

final class StatusBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [Int] = []
    func append(_ value: Int) { lock.lock(); stored.append(value); lock.unlock() }
    var values: [Int] { lock.lock(); defer { lock.unlock() }; return stored }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}

/// The samples of a Prometheus text exposition, by series (`name{labels}`).
struct PrometheusText {
    var samples: [String: Double] = [:]

    init(_ data: Data) {
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
    }

    subscript(series: String) -> Double? { samples[series] }

    /// Metric names, without labels.
    var names: Set<String> { Set(samples.keys.map { String($0.prefix { $0 != "{" }) }) }
}

/// User plus system CPU time a process has used, from /proc.
func cpuSeconds(of pid: Int32) throws -> Double {
    let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
    let ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
    return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// Resident memory of a process in KiB, from /proc.
func residentKiB(of pid: Int32) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
}

/// A chunked HTTP/1.1 response read from a raw socket, chunk by chunk, with the time each
/// arrived: what curl cannot tell (where the first chunk ends).
struct ChunkedResponse {
    var status = 0
    var chunks: [Data] = []
    var firstChunkAt = 0.0
    var total = 0.0

    init(port: Int, path: String) throws {
        let start = Date()
        let socket = try connectLoopback(port: port)
        defer { close(socket) }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        _ = request.withCString { send(socket, $0, strlen($0), 0) }

        var buffer = Data()
        func fill() -> Bool {
            var bytes = [UInt8](repeating: 0, count: 65536)
            let count = recv(socket, &bytes, bytes.count, 0)
            guard count > 0 else { return false }
            buffer.append(contentsOf: bytes[0..<count])
            return true
        }
        func line() -> String? {
            while true {
                if let end = buffer.firstRange(of: Data("\r\n".utf8)) {
                    let text = String(decoding: buffer[buffer.startIndex..<end.lowerBound], as: UTF8.self)
                    buffer.removeSubrange(buffer.startIndex..<end.upperBound)
                    return text
                }
                guard fill() else { return nil }
            }
        }
        status = Int(line()?.split(separator: " ").dropFirst().first ?? "") ?? 0
        while let header = line(), !header.isEmpty {}
        while let sizeLine = line(), let size = Int(sizeLine.split(separator: ";")[0], radix: 16), size > 0 {
            while buffer.count < size + 2 { guard fill() else { break } }
            chunks.append(Data(buffer.prefix(size)))
            buffer.removeFirst(min(buffer.count, size + 2))
            if chunks.count == 1 { firstChunkAt = Date().timeIntervalSince(start) }
        }
        total = Date().timeIntervalSince(start)
    }
}

/// A TCP socket connected to 127.0.0.1:`port`, with a small receive buffer when asked (set
/// before connecting, so the window the server sees is small from the start).
func connectLoopback(port: Int, receiveBuffer: Int32? = nil) throws -> Int32 {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { throw ProbeError(message: "socket failed") }
    if var size = receiveBuffer {
        setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(socket)
        throw ProbeError(message: "connect failed")
    }
    return socket
}
