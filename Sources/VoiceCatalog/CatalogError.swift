/// What can go wrong with the catalog and downloads. Each case has a stable `code` and a
/// one-line `message`; `LarkServer` maps them to HTTP statuses, the CLI prints the message.
public enum CatalogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No voice by this name (or alias) in the catalog.
    case unknownVoice(String)
    /// The catalog could not be fetched (connection refused, HTTP error, timeout).
    case catalogUnreachable(url: String, reason: String)
    /// The catalog was fetched but is not a Piper `voices.json`.
    case invalidCatalog(String)
    /// A voice file could not be downloaded completely.
    case downloadFailed(url: String, reason: String)
    /// A downloaded file is not what the catalog promised; it was deleted.
    case checksumMismatch(file: String, expected: String, actual: String)
    case sizeMismatch(file: String, expected: Int64, actual: Int64)
    /// The download directory cannot be created or written.
    case notWritable(path: String, reason: String)
    /// `remove` only deletes voices it downloaded; this one is elsewhere or not installed.
    case notInDownloadDirectory(name: String, directory: String)
    /// A name that could become a path (`/`, `..`) where only voice names are allowed.
    case invalidName(String)

    public var code: String {
        switch self {
        case .unknownVoice: return "unknown_voice"
        case .catalogUnreachable: return "catalog_unreachable"
        case .invalidCatalog: return "invalid_catalog"
        case .downloadFailed: return "download_failed"
        case .checksumMismatch: return "checksum_mismatch"
        case .sizeMismatch: return "size_mismatch"
        case .notWritable: return "download_dir_not_writable"
        case .notInDownloadDirectory: return "not_in_download_dir"
        case .invalidName: return "invalid_voice_name"
        }
    }

    public var message: String {
        switch self {
        case .unknownVoice(let name):
            return "no voice '\(name)' in the voice catalog (see `lark voices list --available`)"
        case .catalogUnreachable(let url, let reason):
            return "cannot fetch the voice catalog \(url): \(reason)"
        case .invalidCatalog(let why):
            return "invalid voice catalog: \(why)"
        case .downloadFailed(let url, let reason):
            return "download of \(url) failed: \(reason)"
        case .checksumMismatch(let file, let expected, let actual):
            return "\(file) is corrupt: MD5 \(actual), the catalog says \(expected); the file was deleted"
        case .sizeMismatch(let file, let expected, let actual):
            return "\(file) has \(actual) bytes, the catalog says \(expected); the file was deleted"
        case .notWritable(let path, let reason):
            return "cannot write voices to \(path): \(reason)"
        case .notInDownloadDirectory(let name, let directory):
            return "voice '\(name)' is not in the download directory \(directory); only downloaded voices can be removed"
        case .invalidName(let name):
            return "'\(name)' is not a voice name"
        }
    }

    public var description: String { message }

    /// What a client may be told: `message` without local paths (the server's log keeps them).
    public var clientMessage: String {
        switch self {
        case .notWritable:
            return "the server cannot write voices to its download directory; the server's log says why"
        case .notInDownloadDirectory(let name, _):
            return "voice '\(name)' is not in the download directory; only downloaded voices can be removed"
        default:
            return message
        }
    }

    /// Whether `message` names local paths, so that only `clientMessage` may leave the server.
    public var namesLocalFiles: Bool {
        switch self {
        case .notWritable, .notInDownloadDirectory: return true
        default: return false
        }
    }
}
