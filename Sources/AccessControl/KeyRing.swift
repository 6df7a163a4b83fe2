import Foundation
import Synchronization

/// Who made a request: the key's name and what it may do.
public struct Identity: Sendable, Equatable {
    public var name: String
    public var scopes: [Scope]

    public init(name: String, scopes: [Scope]) {
        self.name = name
        self.scopes = scopes
    }

    public func allows(_ scope: Scope) -> Bool { scopes.contains(scope) }
}

/// The server's view of the keys file: the keys it holds, read again when the file changes
/// (checked at most once per `recheck`), so `lark keys add` and `revoke` take effect without a
/// restart. Deleting the file opens the server again. A file that cannot be read on a re-read keeps the keys read last (logged by the
/// caller through `lastError`), never an open server.
public final class KeyRing: Sendable {
    public let file: KeyFile
    private let recheck: Duration
    private let state: Mutex<State>

    private struct State {
        var keys: [StoredKey] = []
        /// Nil while there is no file.
        var stamp: FileStamp?
        var checkedAt: ContinuousClock.Instant?
        var lastError: KeyFileError?
    }

    /// What changes when the file is replaced or rewritten.
    struct FileStamp: Equatable {
        var inode: UInt64
        var size: Int64
        var modified: timespec

        static func == (lhs: FileStamp, rhs: FileStamp) -> Bool {
            lhs.inode == rhs.inode && lhs.size == rhs.size
                && lhs.modified.tv_sec == rhs.modified.tv_sec && lhs.modified.tv_nsec == rhs.modified.tv_nsec
        }

        init?(path: String) {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modified = info.st_mtim
        }
    }

    /// Reads the file now: a missing or broken file at start-up is the caller's error to report.
    public init(file: KeyFile, recheck: Duration = .seconds(1)) throws(KeyFileError) {
        self.file = file
        self.recheck = recheck
        let keys = try file.load()
        state = Mutex(State(keys: keys, stamp: FileStamp(path: file.path), checkedAt: .now))
    }

    /// The keys as of now (re-reading the file if it changed).
    public var keys: [StoredKey] {
        refreshIfChanged()
        return state.withLock { $0.keys }
    }

    /// Whether keys are required: while the keys file exists (even with no key in it, which
    /// lets nobody in). Without one the server is open, as before keys existed.
    public var enforcing: Bool {
        refreshIfChanged()
        return state.withLock { $0.stamp != nil }
    }

    /// The error of the last re-read that failed, if the newest re-read failed.
    public var lastError: KeyFileError? { state.withLock { $0.lastError } }

    /// The identity of a presented key, or nil for a key the file does not hold.
    public func identify(key: String) -> Identity? {
        let digest = APIKey.digest(key)
        // Every stored key is compared, whichever matches, so the time says nothing about which.
        var found: StoredKey?
        for stored in keys where APIKey.constantTimeEqual(stored.sha256, digest) { found = stored }
        return found.map { Identity(name: $0.name, scopes: $0.scopes) }
    }

    /// The key named `name` (a SigV4 access key id), for checking its signature.
    public func key(named name: String) -> StoredKey? {
        keys.first { $0.name == name }
    }

    private func refreshIfChanged() {
        let now = ContinuousClock.now
        let due = state.withLock { state -> Bool in
            guard let checked = state.checkedAt, now - checked < recheck else {
                state.checkedAt = now
                return true
            }
            return false
        }
        guard due else { return }
        let stamp = FileStamp(path: file.path)
        guard stamp != state.withLock({ $0.stamp }) else { return }
        do {
            let keys = try file.load()
            state.withLock {
                $0.keys = keys
                $0.stamp = stamp
                $0.lastError = nil
            }
        } catch {
            state.withLock { $0.lastError = error }
        }
    }
}
