import Foundation
import Logging

/// Where finished audio lives until a client fetches it: a local directory or an S3-compatible bucket.
///
/// Keys are relative paths (`jobs/ID.mp3`, `wav_files/member/uuid_2024-01-01_voice.wav`); every
/// implementation rejects the same keys (see ``ObjectKey``) with ``StorageError/invalidKey(_:)``.
public protocol ObjectStore: Sendable {
    /// Stores the file's bytes under `key`, whole or not at all: readers never see a partial object.
    func put(key: String, file: URL, contentType: String) async throws
    /// Whether an object exists under `key` (used to avoid writing the same job's audio twice).
    func exists(key: String) async throws -> Bool
    /// Removes the object; no error when there is none.
    func delete(key: String) async throws
    /// Where a client fetches the object: a path under the server's `/files/` for the local store,
    /// or a presigned GET URL valid for `expiresIn` for S3.
    func location(of key: String, expiresIn: Duration) async throws -> ObjectLocation
    /// The file the server itself sends for `/files/KEY`: a regular file inside the store, or nil
    /// when the key is invalid, nothing is there, or the store serves no files (S3).
    func file(forKey key: String) -> URL?
    /// Releases connections; the store must not be used afterwards.
    func shutdown() async throws
    /// Another bucket of the same service, with the same endpoint and credentials and no key
    /// prefix (a Polly synthesis task names its own bucket). It shares this store's connections:
    /// shut this one down, not it. Throws ``StorageError/invalidConfiguration(_:)`` for a store
    /// that has no buckets (a local directory) or a name that is not a bucket's.
    func bucket(_ name: String) throws(StorageError) -> any ObjectStore
}

/// Where a stored object can be fetched.
public enum ObjectLocation: Sendable, Equatable {
    /// An absolute path of a file the server streams itself, served at `/files/KEY`.
    case localFile(path: String)
    /// A URL the client fetches directly (a presigned S3 GET).
    case url(URL)
}

/// Builds the store a configuration describes. Throws ``StorageError/invalidConfiguration(_:)``
/// when it cannot be built; nothing is contacted until the first request.
public func makeObjectStore(_ configuration: StorageConfiguration, logger: Logger) throws -> any ObjectStore {
    switch configuration.backend {
    case .localDirectory(let root):
        return LocalDirectoryStore(root: root)
    case .s3(let s3):
        return S3ObjectStore(configuration: s3, logger: logger)
    }
}
