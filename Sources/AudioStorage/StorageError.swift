import Foundation

/// Everything that can go wrong storing or locating audio.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The key is not a plain relative path (see ``ObjectKey/problem(with:)`` for the rules).
    case invalidKey(String)
    /// The object store could not be reached (refused, timed out, reset, DNS): `endpoint` is the
    /// URL that was tried, `reason` what the HTTP client said.
    case unreachable(endpoint: String, reason: String)
    /// The object store answered with an error: the HTTP status, S3's error `<Code>` when the body
    /// had one, and its `<Message>` (or a summary of the status).
    case rejected(status: Int, code: String?, message: String)
    /// The storage settings cannot work (an unknown scheme, no credentials for S3, a bad endpoint).
    case invalidConfiguration(String)
    /// A local file could not be read or written (the source of a `put`, or the local store).
    case fileSystem(path: String, reason: String)
    /// The local store's file system is full (or its quota spent): nothing was stored.
    case noSpace(path: String)
    /// A presigned URL was asked for with a lifetime S3 does not accept (1 second to 7 days).
    case invalidExpiry(Duration)

    /// The error in words a client may see (a job's `error`, an HTTP answer): the description,
    /// except that a local file problem names no path (the log has it, from `description`).
    public var message: String {
        if case .fileSystem = self { return "the audio store could not read or write one of its files" }
        if case .noSpace = self { return "the audio store's disk is full" }
        return description
    }

    public var description: String {
        switch self {
        case .invalidKey(let key):
            let reason = ObjectKey.problem(with: key) ?? "not accepted"
            return "invalid object key \(String(reflecting: key)): \(reason)"
        case .unreachable(let endpoint, let reason):
            return "object storage at \(endpoint) is unreachable: \(reason)"
        case .rejected(let status, let code, let message):
            if let code {
                return "object storage refused the request (HTTP \(status), \(code)): \(message)"
            }
            return "object storage refused the request (HTTP \(status)): \(message)"
        case .invalidConfiguration(let message):
            return "invalid storage configuration: \(message)"
        case .fileSystem(let path, let reason):
            return "cannot use \(path): \(reason)"
        case .noSpace(let path):
            return "cannot write \(path): no space left on the device"
        case .invalidExpiry(let duration):
            return "a presigned URL must expire within 1 second to 7 days, not \(duration)"
        }
    }
}
