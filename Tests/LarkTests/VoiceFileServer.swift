import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A stand-in for Piper's voice repository on loopback: serves a `voices.json` and voice files,
/// honours `Range: bytes=N-`, and misbehaves on request (cut the connection, corrupt a byte,
/// 404, ignore ranges). Plain SwiftNIO, so it runs on event-loop threads: the whole suite keeps
/// Swift's cooperative threads busy (synchronous tests, parity runs), and a server on them
/// stalled for tens of seconds. `@unchecked Sendable`: every mutable field is used under `lock`.
final class VoiceFileServer: @unchecked Sendable {
    enum Fault: Sendable {
        /// Close the connection after this many body bytes, the first time only.
        case cutOnce(after: Int)
        /// Close the connection after this many body bytes, every time.
        case cutAlways(after: Int)
        /// Send the right size with one byte changed.
        case corrupt
        /// Answer 404.
        case missing
        /// Answer 200 with the whole file even when asked for a range.
        case ignoreRange
        /// Send slowly (a 64 KiB chunk every 20 ms), so overlapping downloads really overlap.
        case slow
    }

    struct Logged: Sendable {
        var path: String
        var range: String?
    }

    /// What to send for one request.
    struct Plan {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: Data
        /// Close the connection after this many body bytes.
        var cutAfter: Int?
        var slow: Bool
    }

    private let lock = NSLock()
    private var files: [String: Data]
    private var faults: [String: [Fault]] = [:]
    private var cutsDone: Set<String> = []
    private var log: [Logged] = []
    private var connections: [any Channel] = []

    init(files: [String: Data]) {
        self.files = files
    }

    func set(_ path: String, _ data: Data) { lock.withLock { files[path] = data } }
    func fault(_ path: String, _ faults: Fault...) { lock.withLock { self.faults[path] = faults } }
    func clearFaults() { lock.withLock { faults = [:]; cutsDone = [] } }
    var requests: [Logged] { lock.withLock { log } }
    func requests(to path: String) -> [Logged] { requests.filter { $0.path == path } }

    /// Runs `body` with the server's base URL (`http://127.0.0.1:PORT/`); the server and every
    /// connection it accepted are closed after.
    func run<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .childChannelInitializer { [self] channel in
                lock.withLock { connections.append(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(FileHandler(server: self))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = listener.localAddress?.port ?? 0
        let result: Result<T, any Error>
        do {
            result = .success(try await body("http://127.0.0.1:\(port)/"))
        } catch {
            result = .failure(error)
        }
        try? await listener.close()
        for connection in lock.withLock({ connections }) { try? await connection.close() }
        return try result.get()
    }

    /// The answer to `GET /path` with an optional `Range` header, faults applied.
    func plan(path: String, range: String?) -> Plan {
        let (stored, active, cutNow): (Data?, [Fault], Bool) = lock.withLock {
            log.append(Logged(path: path, range: range))
            let active = faults[path] ?? []
            let cutOnce = active.contains { if case .cutOnce = $0 { return true } else { return false } }
            let cutNow = cutOnce && !cutsDone.contains(path)
            if cutNow { cutsDone.insert(path) }
            return (files[path], active, cutNow)
        }
        func has(_ test: (Fault) -> Bool) -> Bool { active.contains(where: test) }
        guard var data = stored, !has({ if case .missing = $0 { return true } else { return false } }) else {
            return Plan(status: .notFound, headers: ["Content-Length": "9"], body: Data("not found".utf8), slow: false)
        }
        if has({ if case .corrupt = $0 { return true } else { return false } }), !data.isEmpty {
            data[data.startIndex + data.count / 2] ^= 0xFF
        }
        var status = HTTPResponseStatus.ok
        var headers: HTTPHeaders = ["Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"]
        var start = 0
        let ignoreRange = has { if case .ignoreRange = $0 { return true } else { return false } }
        if let range, !ignoreRange, range.hasPrefix("bytes="), range.hasSuffix("-"),
           let from = Int(range.dropFirst(6).dropLast()) {
            guard from < data.count else {
                return Plan(status: .rangeNotSatisfiable, headers: ["Content-Range": "bytes */\(data.count)", "Content-Length": "0"],
                            body: Data(), slow: false)
            }
            start = from
            status = .partialContent
            headers.add(name: "Content-Range", value: "bytes \(from)-\(data.count - 1)/\(data.count)")
        }
        var cutAfter: Int?
        for fault in active {
            switch fault {
            case .cutOnce(let after) where cutNow: cutAfter = after
            case .cutAlways(let after): cutAfter = after
            default: break
            }
        }
        let body = Data(data[(data.startIndex + start)...])
        headers.add(name: "Content-Length", value: String(body.count))
        return Plan(status: status, headers: headers, body: body, cutAfter: cutAfter,
                    slow: has { if case .slow = $0 { return true } else { return false } })
    }
}

/// Answers each request on one connection with `VoiceFileServer.plan`.
private final class FileHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let server: VoiceFileServer
    private var head: HTTPRequestHead?

    init(server: VoiceFileServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            let path = String((head.uri.split(separator: "?").first ?? "").dropFirst())
            respond(context: context, plan: server.plan(path: path, range: head.headers.first(name: "Range")))
        }
    }

    private func respond(context: ChannelHandlerContext, plan: VoiceFileServer.Plan) {
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: plan.status, headers: plan.headers))), promise: nil)
        let end = min(plan.body.count, plan.cutAfter ?? .max)
        let chunk = plan.slow ? 64 << 10 : 1 << 20
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        @Sendable func send(from offset: Int) {
            let (handler, context) = bound.value
            var offset = offset
            while offset < end {
                let count = min(chunk, end - offset)
                let slice = plan.body[(plan.body.startIndex + offset)..<(plan.body.startIndex + offset + count)]
                context.writeAndFlush(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: slice)))), promise: nil)
                offset += count
                if plan.slow, offset < end {
                    let next = offset
                    context.eventLoop.scheduleTask(in: .milliseconds(20)) { send(from: next) }
                    return
                }
            }
            if end < plan.body.count {
                // The fault: the connection ends mid-body.
                context.flush()
                context.close(promise: nil)
            } else {
                context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
        send(from: 0)
    }
}

/// A voice to put in a test catalog: its files by catalog path.
struct TestVoice {
    var key: String
    var language: String
    var aliases: [String] = []
    /// Catalog path → contents; the model's and the config's paths end in KEY.onnx and KEY.onnx.json.
    var files: [String: Data]

    var modelPath: String { files.keys.first { $0.hasSuffix(".onnx") }! }
    var configPath: String { files.keys.first { $0.hasSuffix(".onnx.json") }! }

    /// The bundled joe voice, as Piper's repository lays it out, with an old name.
    static let joe: TestVoice = {
        let model = FileManager.default.contents(atPath: Checkout.joeModel)!
        let config = FileManager.default.contents(atPath: Checkout.joeModel + ".json")!
        return TestVoice(
            key: "en_US-joe-medium", language: "en_US", aliases: ["en-us-joe-medium"],
            files: [
                "en/en_US/joe/medium/en_US-joe-medium.onnx": model,
                "en/en_US/joe/medium/en_US-joe-medium.onnx.json": config,
                "en/en_US/joe/medium/MODEL_CARD": Data("# Model card for joe\n".utf8),
            ])
    }()

    /// A small voice (`size` bytes of model that no engine could run, joe's real config) for
    /// the failure cases, which need not move 63 MB each time.
    static func small(_ key: String, size: Int = 2_000_000, language: String = "xx_XX", aliases: [String] = []) -> TestVoice {
        var generator = TestRandom(seed: UInt64(key.utf8.reduce(7) { $0 &* 31 &+ UInt64($1) }))
        let model = Data((0..<size).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
        let config = FileManager.default.contents(atPath: Checkout.joeModel + ".json")!
        let directory = "xx/\(language)/\(key)/low/"
        return TestVoice(
            key: key, language: language, aliases: aliases,
            files: [directory + key + ".onnx": model, directory + key + ".onnx.json": config])
    }

    /// This voice's entry in a Piper `voices.json`, with real sizes and MD5s.
    var catalogEntry: [String: Any] {
        let parts = language.split(separator: "_")
        return [
            "key": key, "name": key.split(separator: "-").dropFirst().first.map(String.init) ?? key,
            "language": [
                "code": language, "family": String(parts.first ?? ""), "region": String(parts.last ?? ""),
                "name_native": "Test", "name_english": "Test \(language)", "country_english": "Testland",
            ],
            "quality": "medium", "num_speakers": 1, "speaker_id_map": [String: Int](),
            "files": files.mapValues { ["size_bytes": $0.count, "md5_digest": md5($0)] },
            "aliases": aliases,
        ]
    }

    /// Every file of the voices plus `voices.json`, as the server serves them.
    static func repository(_ voices: [TestVoice]) -> [String: Data] {
        var files: [String: Data] = ["voices.json": catalog(voices)]
        for voice in voices { files.merge(voice.files) { $1 } }
        return files
    }

    static func catalog(_ voices: [TestVoice]) -> Data {
        let object = Dictionary(uniqueKeysWithValues: voices.map { ($0.key, $0.catalogEntry) })
        return try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    }
}

func md5(_ data: Data) -> String {
    Insecure.MD5.hash(data: data).map { String(format: "%02x", $0) }.joined()
}


/// A fresh scratch directory, removed by the caller.
func scratchDirectory(_ label: String) throws -> String {
    let path = NSTemporaryDirectory() + "lark-\(label)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Runs blocking work (polling a child process, `usleep`) on a thread of its own, so it never
/// holds one of Swift's cooperative threads.
func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}
