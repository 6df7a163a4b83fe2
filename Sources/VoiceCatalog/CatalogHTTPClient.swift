import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// The HTTP side of the catalog: fetches `voices.json` and streams voice files to disk, resuming
/// and verifying them. Owns one `HTTPClient`; call `shutdown()` when done (AsyncHTTPClient
/// requires it before the client is released).
public final class CatalogHTTPClient: Sendable {
    private let client: HTTPClient
    /// The longest a whole transfer may take; stalls are caught sooner by the read timeout.
    private let transferDeadline: TimeAmount

    /// `readTimeout`: how long the server may send nothing before the transfer is abandoned.
    public init(connectTimeout: TimeAmount = .seconds(10), readTimeout: TimeAmount = .seconds(30),
                transferDeadline: TimeAmount = .hours(2)) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: connectTimeout, read: readTimeout)
        // Hugging Face answers `resolve/main/...` with a redirect to its CDN.
        configuration.redirectConfiguration = .follow(max: 10, allowCycles: false)
        configuration.decompression = .disabled
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.transferDeadline = transferDeadline
    }

    public func shutdown() async throws {
        try await client.shutdown()
    }

    /// The body of a small document (the catalog), which must answer 200.
    func fetchDocument(_ url: String, limit: Int = 64 << 20) async throws(CatalogError) -> Data {
        do {
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(120))
            guard response.status == .ok else {
                throw CatalogError.catalogUnreachable(url: url, reason: "HTTP \(response.status.code) \(response.status.reasonPhrase)")
            }
            let body = try await response.body.collect(upTo: limit)
            return Data(body.readableBytesView)
        } catch let error as CatalogError {
            throw error
        } catch {
            throw CatalogError.catalogUnreachable(url: url, reason: Self.describe(error))
        }
    }

    /// Downloads `url` into `partPath` until it holds exactly the promised bytes, then checks
    /// its MD5. A `partPath` left by an interrupted transfer is continued with `Range: bytes=N-`
    /// when the server answers 206; a 200 starts over. On a broken connection the part file is
    /// kept for the next try; on a size or checksum mismatch it is deleted. Callers hold the
    /// voice's lock, so no other writer touches `partPath`.
    func download(
        _ url: String, to partPath: String, expected: CatalogVoice.FileInfo, label: String,
        progress: DownloadProgressHandler?
    ) async throws(CatalogError) {
        let fileManager = FileManager.default
        var existing = (try? fileManager.attributesOfItem(atPath: partPath)[.size] as? NSNumber)?.int64Value ?? 0
        if existing > expected.sizeBytes {
            try? fileManager.removeItem(atPath: partPath)
            existing = 0
        }
        if existing == expected.sizeBytes, expected.sizeBytes > 0 {
            // A complete part from an earlier run that stopped before renaming: verify it as it is.
            try verify(partPath, expected: expected, digest: try Self.md5(ofFile: partPath), label: label)
            progress?(DownloadProgress(file: label, received: existing, total: expected.sizeBytes, resumedFrom: existing, finished: true))
            return
        }
        var request = HTTPClientRequest(url: url)
        if existing > 0 { request.headers.add(name: "Range", value: "bytes=\(existing)-") }

        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: transferDeadline)
        } catch {
            throw CatalogError.downloadFailed(url: url, reason: Self.describe(error))
        }
        switch response.status.code {
        case 206 where existing > 0:
            let range = response.headers.first(name: "Content-Range") ?? ""
            guard range.hasPrefix("bytes \(existing)-") else {
                try? fileManager.removeItem(atPath: partPath)
                throw CatalogError.downloadFailed(url: url, reason: "the server sent range '\(range)' for bytes=\(existing)-; try again")
            }
        case 200:
            // The server ignored the range (or there was none): start over.
            existing = 0
        case 416 where existing > 0:
            // The part file no longer fits the remote file: drop it and start over.
            try? fileManager.removeItem(atPath: partPath)
            return try await download(url, to: partPath, expected: expected, label: label, progress: progress)
        default:
            throw CatalogError.downloadFailed(url: url, reason: "HTTP \(response.status.code) \(response.status.reasonPhrase)")
        }

        let handle = try openPart(partPath, keeping: existing)
        defer { try? handle.close() }
        var hasher = Insecure.MD5()
        if existing > 0 { try Self.hash(partPath, upTo: existing, into: &hasher) }
        var received = existing
        let resumedFrom = existing
        progress?(DownloadProgress(file: label, received: received, total: expected.sizeBytes, resumedFrom: resumedFrom))
        do {
            for try await buffer in response.body {
                received += Int64(buffer.readableBytes)
                if received > expected.sizeBytes { break }
                buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                do {
                    try handle.write(contentsOf: Data(buffer.readableBytesView))
                } catch {
                    throw CatalogError.notWritable(path: partPath, reason: error.localizedDescription)
                }
                progress?(DownloadProgress(file: label, received: received, total: expected.sizeBytes, resumedFrom: resumedFrom))
            }
        } catch let error as CatalogError {
            throw error
        } catch {
            // Keep what arrived: the next try resumes from it.
            throw CatalogError.downloadFailed(
                url: url, reason: "\(Self.describe(error)) after \(received) of \(expected.sizeBytes) bytes; run it again to resume")
        }
        if received < expected.sizeBytes {
            throw CatalogError.downloadFailed(
                url: url, reason: "the connection ended after \(received) of \(expected.sizeBytes) bytes; run it again to resume")
        }
        if received > expected.sizeBytes {
            try? fileManager.removeItem(atPath: partPath)
            throw CatalogError.sizeMismatch(file: label, expected: expected.sizeBytes, actual: received)
        }
        try verify(partPath, expected: expected, digest: Self.hex(hasher.finalize()), label: label)
        progress?(DownloadProgress(file: label, received: received, total: expected.sizeBytes, resumedFrom: resumedFrom, finished: true))
    }

    /// Deletes the part file and throws when its digest is not the catalog's.
    private func verify(_ partPath: String, expected: CatalogVoice.FileInfo, digest: String, label: String) throws(CatalogError) {
        guard digest == expected.md5Digest.lowercased() else {
            try? FileManager.default.removeItem(atPath: partPath)
            throw CatalogError.checksumMismatch(file: label, expected: expected.md5Digest, actual: digest)
        }
    }

    /// The part file opened for appending after its first `keeping` bytes (created if missing).
    private func openPart(_ path: String, keeping: Int64) throws(CatalogError) -> FileHandle {
        if keeping == 0 || !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw CatalogError.notWritable(path: path, reason: String(cString: strerror(errno)))
            }
        }
        do {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: UInt64(keeping))
            try handle.seekToEnd()
            return handle
        } catch {
            throw CatalogError.notWritable(path: path, reason: error.localizedDescription)
        }
    }

    private static func hash(_ path: String, upTo length: Int64, into hasher: inout Insecure.MD5) throws(CatalogError) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CatalogError.notWritable(path: path, reason: "cannot read the partial download")
        }
        defer { try? handle.close() }
        var remaining = length
        while remaining > 0 {
            let chunk = (try? handle.read(upToCount: Int(min(remaining, 1 << 20)))) ?? Data()
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
            remaining -= Int64(chunk.count)
        }
    }

    static func md5(ofFile path: String) throws(CatalogError) -> String {
        var hasher = Insecure.MD5()
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
        try hash(path, upTo: size, into: &hasher)
        return hex(hasher.finalize())
    }

    static func hex(_ digest: Insecure.MD5.Digest) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    /// A one-line reason for a transport error ("connection refused", "read timed out").
    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .remoteConnectionClosed: return "the server closed the connection"
            case .readTimeout: return "the server sent nothing for too long"
            case .connectTimeout: return "connecting timed out"
            case .deadlineExceeded: return "the transfer took too long"
            default: return String(describing: error)
            }
        }
        return String(describing: error)
    }
}
