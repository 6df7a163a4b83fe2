import Foundation

// TEMPORARY stand-in with the agreed API; replaced by the object-storage branch on merge.
public protocol ObjectStore: Sendable {
    func put(key: String, file: URL, contentType: String) async throws
    func exists(key: String) async throws -> Bool
    func delete(key: String) async throws
    func location(of key: String, expiresIn: Duration) async throws -> ObjectLocation
    func shutdown() async throws
}

public enum ObjectLocation: Sendable, Equatable {
    case localFile(path: String)
    case url(URL)
}

public final class LocalDirectoryStore: ObjectStore {
    public let root: URL
    public init(root: URL) { self.root = root }
    public func put(key: String, file: URL, contentType: String) async throws {
        let target = root.appendingPathComponent(key)
        try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = target.deletingLastPathComponent().appendingPathComponent(".\(UUID().uuidString).part")
        try FileManager.default.copyItem(at: file, to: temporary)
        _ = rename(temporary.path, target.path)
    }
    public func exists(key: String) async throws -> Bool { FileManager.default.fileExists(atPath: root.appendingPathComponent(key).path) }
    public func delete(key: String) async throws { try? FileManager.default.removeItem(at: root.appendingPathComponent(key)) }
    public func location(of key: String, expiresIn: Duration) async throws -> ObjectLocation { .localFile(path: root.appendingPathComponent(key).path) }
    public func shutdown() async throws {}
    public func file(forKey key: String) -> URL? {
        guard !key.contains(".."), !key.hasPrefix("/") else { return nil }
        let url = root.appendingPathComponent(key)
        return FileManager.default.fileExists(atPath: url.path) ? url : nil
    }
}

public enum S3Addressing: String, Sendable { case path, virtualHost = "virtual" }
public struct S3Credentials: Sendable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String?) {
        self.accessKeyID = accessKeyID; self.secretAccessKey = secretAccessKey; self.sessionToken = sessionToken
    }
}
public struct StorageConfiguration: Sendable {
    var root: String
    public static func parse(_ spec: String, s3Endpoint: String?, s3Region: String?, addressing: S3Addressing?, credentials: S3Credentials?) throws -> StorageConfiguration {
        StorageConfiguration(root: spec.hasPrefix("file://") ? String(spec.dropFirst(7)) : spec)
    }
}
import Logging
public func makeObjectStore(_ configuration: StorageConfiguration, logger: Logger) throws -> any ObjectStore {
    LocalDirectoryStore(root: URL(fileURLWithPath: configuration.root))
}
