import Foundation
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Objects as files under one directory: `root/KEY`. A put writes a temporary file in the
/// destination directory, flushes it to disk and renames it over the key (atomic on POSIX file
/// systems), so a reader sees the old object or the whole new one, never part of one.
/// File work runs on NIO's blocking-I/O thread pool, never on the caller's executor.
public struct LocalDirectoryStore: ObjectStore {
    /// A directory has no buckets: audio can only go where the server keeps it.
    public func bucket(_ name: String) throws(StorageError) -> any ObjectStore {
        throw .invalidConfiguration(
            "this server keeps audio in a local directory, not in S3 buckets; start it with --storage s3://BUCKET to write to bucket '\(name)'")
    }

    /// Absolute, standardized; created on the first put.
    public let root: URL

    public init(root: URL) {
        self.root = root.standardizedFileURL
    }

    /// The file a valid key names (it may not exist).
    public func fileURL(forKey key: String) throws(StorageError) -> URL {
        try ObjectKey.validate(key)
        return root.appending(path: key, directoryHint: .notDirectory)
    }

    /// For the server's `/files/KEY` route: the regular file stored under `key`, or nil when the
    /// key is invalid, nothing is there, or the file (through symbolic links) lies outside the root.
    public func file(forKey key: String) -> URL? {
        guard let url = try? fileURL(forKey: key) else { return nil }
        guard let resolved = Self.realPath(url.path), let resolvedRoot = Self.realPath(root.path),
            resolved.hasPrefix(resolvedRoot.hasSuffix("/") ? resolvedRoot : resolvedRoot + "/")
        else { return nil }
        var info = stat()
        guard stat(resolved, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return url
    }

    public func put(key: String, file source: URL, contentType: String) async throws {
        let destination = try fileURL(forKey: key)
        try await Self.blocking { try Self.atomicCopy(from: source, to: destination) }
    }

    public func exists(key: String) async throws -> Bool {
        let url = try fileURL(forKey: key)
        return try await Self.blocking {
            var info = stat()
            return stat(url.path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        }
    }

    public func delete(key: String) async throws {
        let url = try fileURL(forKey: key)
        try await Self.blocking {
            if unlink(url.path) != 0 && errno != ENOENT {
                throw StorageError.fileSystem(path: url.path, reason: Self.errnoText())
            }
        }
    }

    /// `.localFile` with the absolute path of the file, whether or not it exists yet; `expiresIn`
    /// does not apply (the server decides who may fetch `/files/KEY`).
    public func location(of key: String, expiresIn: Duration) async throws -> ObjectLocation {
        .localFile(path: try fileURL(forKey: key).path)
    }

    public func shutdown() async throws {}

    // MARK: File work

    private static func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(work)
    }

    static func atomicCopy(from source: URL, to destination: URL) throws {
        let directory = destination.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw StorageError.fileSystem(path: directory.path, reason: "cannot create the directory: \(error.localizedDescription)")
        }
        let input = open(source.path, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw StorageError.fileSystem(path: source.path, reason: errnoText()) }
        defer { close(input) }

        let temporary = directory.appending(
            path: ".\(destination.lastPathComponent).\(UUID().uuidString).partial", directoryHint: .notDirectory)
        let output = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw writeFailure(temporary.path) }
        var renamed = false
        defer {
            if !renamed { unlink(temporary.path) }
        }
        do {
            defer { close(output) }
            let size = 1 << 20
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let count = read(input, buffer, size)
                if count == 0 { break }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw StorageError.fileSystem(path: source.path, reason: errnoText())
                }
                var written = 0
                while written < count {
                    let result = write(output, buffer + written, count - written)
                    if result < 0 {
                        if errno == EINTR { continue }
                        throw writeFailure(temporary.path)
                    }
                    written += result
                }
            }
            guard fsync(output) == 0 else { throw writeFailure(temporary.path) }
        }
        guard rename(temporary.path, destination.path) == 0 else {
            throw StorageError.fileSystem(path: destination.path, reason: errnoText())
        }
        renamed = true
        // Make the rename itself durable.
        let directoryHandle = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryHandle >= 0 {
            _ = fsync(directoryHandle)
            close(directoryHandle)
        }
    }

    /// The error of a write that failed with `errno`: a full disk told apart from other faults.
    private static func writeFailure(_ path: String) -> StorageError {
        errno == ENOSPC || errno == EDQUOT ? .noSpace(path: path) : .fileSystem(path: path, reason: errnoText())
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}
