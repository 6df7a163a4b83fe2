import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An S3-compatible bucket (AWS S3, Google Cloud Storage's XML API with HMAC keys, MinIO, moto, …)
/// through async-http-client, every request signed with ``SignatureV4``.
///
/// - put: one `PUT Object` with the file streamed as the body, its SHA-256 signed
///   (`x-amz-content-sha256`), so the service refuses a body that does not match; S3 stores an
///   object whole or not at all.
/// - exists: `HEAD Object` (404 → false). delete: `DELETE Object` (a missing object is fine).
/// - location: a presigned GET URL; nothing is sent.
///
/// Every request has a deadline (``S3Configuration/requestTimeout``, plus a second per MB of a
/// put's body); redirects are not followed (a signed request cannot be replayed to another host).
/// Call ``shutdown()`` before dropping the store: it closes the connections.
public final class S3ObjectStore: ObjectStore {
    public let configuration: S3Configuration
    private let signer: SignatureV4
    private let client: HTTPClient
    private let ownsClient: Bool
    private let logger: Logger
    /// Tests only: `host:port` to connect to instead of the endpoint's host, while the signed Host
    /// header stays the endpoint's (lets virtual-host requests reach a server on loopback
    /// without DNS for `bucket.localhost`). Plain http only.
    private let connectAddress: String?

    /// - Parameter httpClient: a client to share; when nil the store makes its own and shuts it
    ///   down in ``shutdown()``. A shared client should not follow redirects.
    public convenience init(configuration: S3Configuration, logger: Logger, httpClient: HTTPClient? = nil) {
        self.init(configuration: configuration, logger: logger, httpClient: httpClient, connectAddress: nil)
    }

    init(configuration: S3Configuration, logger: Logger, httpClient: HTTPClient?, connectAddress: String?) {
        self.configuration = configuration
        self.signer = SignatureV4(credentials: configuration.credentials, region: configuration.region)
        if let httpClient {
            self.client = httpClient
            self.ownsClient = false
        } else {
            let clientConfiguration = HTTPClient.Configuration(
                redirectConfiguration: .disallow,
                timeout: .init(
                    connect: S3ObjectStore.timeAmount(configuration.connectTimeout),
                    read: S3ObjectStore.timeAmount(configuration.requestTimeout)))
            self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
            self.ownsClient = true
        }
        var logger = logger
        logger[metadataKey: "storage"] = "s3://\(configuration.bucket)"
        self.logger = logger
        self.connectAddress = connectAddress
    }

    public func bucket(_ name: String) throws(StorageError) -> any ObjectStore {
        if let problem = StorageConfiguration.bucketProblem(name) {
            throw .invalidConfiguration("bucket \(String(reflecting: name)) \(problem)")
        }
        if configuration.addressing == .virtualHost, name.contains("_") || name.contains(".") {
            throw .invalidConfiguration("bucket \(String(reflecting: name)) cannot be part of a host name (this server uses virtual-host addressing)")
        }
        var other = configuration
        other.bucket = name
        other.prefix = ""
        return S3ObjectStore(configuration: other, logger: logger, httpClient: client, connectAddress: connectAddress)
    }

    // MARK: Addresses

    /// `host[:port]` as sent in the Host header and signed.
    var host: String {
        let endpointHost = configuration.endpoint.host() ?? ""
        var host = configuration.addressing == .virtualHost ? "\(configuration.bucket).\(endpointHost)" : endpointHost
        if let port = configuration.endpoint.port, port != Self.defaultPort(scheme) { host += ":\(port)" }
        return host
    }

    private var scheme: String { configuration.endpoint.scheme ?? "https" }

    /// The full key in the bucket: the prefix, `/`, the key.
    func objectKey(_ key: String) throws(StorageError) -> String {
        try ObjectKey.validate(key)
        let full = configuration.prefix.isEmpty ? key : configuration.prefix + "/" + key
        guard full.utf8.count <= ObjectKey.maximumLength else { throw .invalidKey(key) }
        return full
    }

    /// The canonical URI, which is also the path sent: each segment URI-encoded once, `/` kept.
    func path(forKey key: String) throws(StorageError) -> String {
        let full = try objectKey(key)
        let encodedKey = SignatureV4.uriEncode(full, encodeSlash: false)
        switch configuration.addressing {
        case .path: return "/" + SignatureV4.uriEncode(configuration.bucket) + "/" + encodedKey
        case .virtualHost: return "/" + encodedKey
        }
    }

    /// What a person is told when the store cannot be reached.
    private var endpointDescription: String {
        "\(scheme)://\(host)" + (connectAddress.map { " (via \($0))" } ?? "")
    }

    // MARK: ObjectStore

    public func put(key: String, file: URL, contentType: String) async throws {
        let objectPath = try path(forKey: key)
        let (hash, size) = try await Self.hashFile(file)
        let timeout = configuration.requestTimeout + .seconds(size / 1_000_000)
        let response = try await send(
            method: .PUT, path: objectPath, key: key,
            headers: [("Content-Type", contentType)],
            payloadHash: hash, body: .stream(FileChunks(path: file.path), length: .known(size)), timeout: timeout,
            bodyFile: file.path)
        guard (200..<300).contains(response.status) else { throw rejection(response) }
    }

    public func exists(key: String) async throws -> Bool {
        let response = try await send(
            method: .HEAD, path: try path(forKey: key), key: key, headers: [], payloadHash: SignatureV4.emptyPayloadHash,
            body: nil, timeout: configuration.requestTimeout, bodyFile: nil)
        switch response.status {
        case 200..<300: return true
        case 404: return false
        default: throw rejection(response)
        }
    }

    public func delete(key: String) async throws {
        let response = try await send(
            method: .DELETE, path: try path(forKey: key), key: key, headers: [],
            payloadHash: SignatureV4.emptyPayloadHash, body: nil, timeout: configuration.requestTimeout, bodyFile: nil)
        if (200..<300).contains(response.status) { return }
        if response.status == 404 {
            let error = S3ErrorDocument(response.body)
            if error.code == nil || error.code == "NoSuchKey" { return }
        }
        throw rejection(response)
    }

    public func location(of key: String, expiresIn: Duration) async throws -> ObjectLocation {
        .url(try presignedURL(forKey: key, expiresIn: expiresIn, date: Date()))
    }

    /// A presigned GET URL for `key`, signed at `date`.
    public func presignedURL(forKey key: String, expiresIn: Duration, date: Date) throws(StorageError) -> URL {
        let seconds = expiresIn.components.seconds + (expiresIn.components.attoseconds > 0 ? 1 : 0)
        guard seconds >= 1, seconds <= 604_800 else { throw .invalidExpiry(expiresIn) }
        let objectPath = try path(forKey: key)
        let query = signer.presignedQuery(
            for: .init(method: "GET", host: host, path: objectPath), expires: Int(seconds), date: date)
        guard let url = URL(string: "\(scheme)://\(host)\(objectPath)?\(query)") else {
            throw .invalidKey(key)
        }
        return url
    }

    /// Nil: clients fetch S3 objects from S3 (`location`), never through the server.
    public func file(forKey key: String) -> URL? { nil }

    public func shutdown() async throws {
        if ownsClient { try await client.shutdown() }
    }

    // MARK: Requests

    struct Response: Sendable {
        var status: Int
        var reason: String
        var headers: HTTPHeaders
        var body: String
    }

    private func send(
        method: HTTPMethod, path: String, key: String, headers: [(name: String, value: String)], payloadHash: String,
        body: HTTPClientRequest.Body?, timeout: Duration, bodyFile: String?
    ) async throws -> Response {
        let host = self.host
        // Content-Length is sent but not signed: async-http-client writes it from the body's length.
        let signedHeaders = headers
        let added = signer.authorizationHeaders(
            for: .init(method: method.rawValue, host: host, path: path, headers: signedHeaders),
            payloadHash: payloadHash, date: Date())
        let target = connectAddress ?? host
        var request = HTTPClientRequest(url: "\(scheme)://\(target)\(path)")
        request.method = method
        request.headers.add(name: "Host", value: host)
        for (name, value) in signedHeaders + added { request.headers.add(name: name, value: value) }
        request.body = body

        let started = ContinuousClock.now
        let deadline = NIODeadline.now() + Self.timeAmount(timeout)
        do {
            let response = try await client.execute(request, deadline: deadline, logger: nil)
            var text = ""
            if method != .HEAD {
                let bytes = try await response.body.collect(upTo: 1 << 20)
                text = String(buffer: bytes)
            }
            logger.debug(
                "\(method.rawValue) \(key) → \(response.status.code)",
                metadata: ["duration": "\(ContinuousClock.now - started)"])
            return Response(status: Int(response.status.code), reason: response.status.reasonPhrase, headers: response.headers, body: text)
        } catch let error as StorageError {
            throw error
        } catch let error as HTTPClientError where error == .bodyLengthMismatch {
            throw StorageError.fileSystem(path: bodyFile ?? key, reason: "the file changed while it was being uploaded")
        } catch {
            if Task.isCancelled { throw CancellationError() }
            logger.debug("\(method.rawValue) \(key) failed: \(error)")
            let reason = (error as? HTTPClientError) == HTTPClientError.deadlineExceeded
                ? "no answer within \(timeout) (\(error))" : String(describing: error)
            throw StorageError.unreachable(endpoint: endpointDescription, reason: reason)
        }
    }

    private func rejection(_ response: Response) -> StorageError {
        let document = S3ErrorDocument(response.body)
        var message = document.message ?? (response.reason.isEmpty ? "HTTP \(response.status)" : response.reason)
        if response.body.isEmpty, response.status == 403 {
            message += " (no details in the answer: check the credentials, the region and the bucket's permissions)"
        }
        if let region = response.headers.first(name: "x-amz-bucket-region"), region != configuration.region {
            message += " (the bucket is in region \(region), not \(configuration.region))"
        }
        if let endpoint = document.endpoint { message += " (endpoint: \(endpoint))" }
        return .rejected(status: response.status, code: document.code, message: message)
    }

    // MARK: Helpers

    private static func defaultPort(_ scheme: String) -> Int { scheme == "http" ? 80 : 443 }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// SHA-256 (hex) and size of a file, read on NIO's blocking-I/O thread pool.
    static func hashFile(_ file: URL) async throws -> (hash: String, size: Int64) {
        try await NIOThreadPool.singleton.runIfActive {
            let fd = open(file.path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw StorageError.fileSystem(path: file.path, reason: LocalDirectoryStore.errnoText()) }
            defer { close(fd) }
            var hasher = SHA256()
            var size: Int64 = 0
            let capacity = 1 << 20
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let count = read(fd, buffer.baseAddress, capacity)
                if count == 0 { break }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw StorageError.fileSystem(path: file.path, reason: LocalDirectoryStore.errnoText())
                }
                hasher.update(bufferPointer: UnsafeRawBufferPointer(start: buffer.baseAddress, count: count))
                size += Int64(count)
            }
            return (SignatureV4.hex(hasher.finalize()), size)
        }
    }
}

/// The bytes of a file as a sequence of buffers, each read on NIO's blocking-I/O thread pool;
/// the file is opened when iteration starts and closed when the iterator goes away.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String
    var chunkSize = 256 * 1024

    func makeAsyncIterator() -> Iterator { Iterator(path: path, chunkSize: chunkSize) }

    struct Iterator: AsyncIteratorProtocol {
        private let file: OpenFile

        init(path: String, chunkSize: Int) {
            file = OpenFile(path: path, chunkSize: chunkSize)
        }

        mutating func next() async throws -> ByteBuffer? {
            try await file.next()
        }
    }

    /// Owns the descriptor. Sendable: its state is a descriptor number set once in `init`, and the
    /// reads it starts are awaited one at a time by the single iterator that owns it.
    final class OpenFile: Sendable {
        let path: String
        let chunkSize: Int
        let fd: Int32
        let openError: String?

        init(path: String, chunkSize: Int) {
            self.path = path
            self.chunkSize = chunkSize
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            self.fd = fd
            self.openError = fd < 0 ? LocalDirectoryStore.errnoText() : nil
        }

        func next() async throws -> ByteBuffer? {
            if let openError { throw StorageError.fileSystem(path: path, reason: openError) }
            let fd = self.fd
            let chunkSize = self.chunkSize
            let path = self.path
            let buffer = try await NIOThreadPool.singleton.runIfActive { () throws -> ByteBuffer in
                var buffer = ByteBufferAllocator().buffer(capacity: chunkSize)
                while true {
                    var result = 0
                    _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: chunkSize) { raw in
                        result = read(fd, raw.baseAddress, chunkSize)
                        return Swift.max(result, 0)
                    }
                    if result >= 0 { return buffer }
                    if errno != EINTR { throw StorageError.fileSystem(path: path, reason: LocalDirectoryStore.errnoText()) }
                }
            }
            return buffer.readableBytes == 0 ? nil : buffer
        }

        deinit {
            if fd >= 0 { close(fd) }
        }
    }
}

/// The `<Error><Code>…</Code><Message>…</Message></Error>` document S3 answers errors with.
/// Read with plain string search: the document is small and flat, and only three elements matter.
struct S3ErrorDocument: Sendable, Equatable {
    var code: String?
    var message: String?
    /// Where S3 says the bucket must be addressed (301 PermanentRedirect).
    var endpoint: String?

    init(_ body: String) {
        code = Self.element("Code", in: body)
        message = Self.element("Message", in: body)
        endpoint = Self.element("Endpoint", in: body)
    }

    static func element(_ name: String, in body: String) -> String? {
        guard let open = body.range(of: "<\(name)>"),
            let close = body.range(of: "</\(name)>", range: open.upperBound..<body.endIndex)
        else { return nil }
        let text = unescape(String(body[open.upperBound..<close.lowerBound]))
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    static func unescape(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = ""
        var rest = Substring(text)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            rest = rest[amp...]
            guard let semicolon = rest.firstIndex(of: ";"), rest.distance(from: rest.startIndex, to: semicolon) <= 10 else {
                out += "&"
                rest = rest.dropFirst()
                continue
            }
            let entity = rest[rest.index(after: rest.startIndex)..<semicolon]
            var replacement: String?
            switch entity {
            case "lt": replacement = "<"
            case "gt": replacement = ">"
            case "amp": replacement = "&"
            case "quot": replacement = "\""
            case "apos": replacement = "'"
            default:
                if entity.hasPrefix("#x") || entity.hasPrefix("#X"), let value = UInt32(entity.dropFirst(2), radix: 16),
                    let scalar = Unicode.Scalar(value)
                {
                    replacement = String(Character(scalar))
                } else if entity.hasPrefix("#"), let value = UInt32(entity.dropFirst()), let scalar = Unicode.Scalar(value) {
                    replacement = String(Character(scalar))
                }
            }
            if let replacement {
                out += replacement
                rest = rest[rest.index(after: semicolon)...]
            } else {
                out += "&"
                rest = rest.dropFirst()
            }
        }
        return out + rest
    }
}
