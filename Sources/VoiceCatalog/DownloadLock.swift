import Foundation

/// An exclusive `flock` on a lock file beside the voice, held while its files are downloaded
/// and renamed into place. `flock` locks belong to an open file description, so two tasks in one
/// process exclude each other just as two processes do. The lock file stays behind: deleting it
/// while another process waits on it would let a third lock a new file while the second still
/// holds the old one. Waiting polls with `Task.sleep`, so no thread is ever blocked.
final class DownloadLock {
    private var descriptor: Int32

    private init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// Waits (cancellably) until the lock at `path` is ours.
    static func acquire(_ path: String) async throws(CatalogError) -> DownloadLock {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CatalogError.notWritable(path: path, reason: String(cString: strerror(errno)))
        }
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                throw CatalogError.notWritable(path: path, reason: reason)
            }
            do {
                try await Task.sleep(for: .milliseconds(100))
            } catch {
                close(descriptor)
                throw CatalogError.downloadFailed(url: path, reason: "cancelled while another download of this voice held the lock")
            }
        }
        return DownloadLock(descriptor: descriptor)
    }

    /// Closing the descriptor releases the lock.
    func release() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
    }

    deinit {
        release()
    }
}
