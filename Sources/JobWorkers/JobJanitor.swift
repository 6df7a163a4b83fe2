import AudioStorage
import Logging
import ServiceLifecycle
import SpeechJobs

/// Deletes finished jobs, and their audio, once they are older than the retention time. Runs as
/// a service of its own (in every process with workers), checking often enough that nothing
/// outlives its retention by more than a quarter of it.
public struct JobJanitor: Service {
    private let store: any JobStore
    private let objects: any ObjectStore
    private let retention: Duration
    private let logger: Logger

    public init(store: any JobStore, objects: any ObjectStore, retention: Duration, logger: Logger) {
        self.store = store
        self.objects = objects
        self.retention = retention
        self.logger = logger
    }

    public func run() async {
        let interval = max(.seconds(1), min(.seconds(600), retention / 4))
        // Graceful shutdown cancels the wait between rounds (and a round in progress).
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await purgeExpired()
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Deletes finished jobs older than the retention, and their audio.
    public func purgeExpired() async {
        let cutoff = Timestamp.now - retention.milliseconds
        do {
            while true {
                let purged = try await store.purge(finishedBefore: cutoff, limit: 100)
                for job in purged {
                    // Audio in a bucket the job named is the client's, not the server's to delete.
                    if let key = job.objectKey, job.spec.bucket == nil { try? await objects.delete(key: key) }
                }
                if !purged.isEmpty { logger.info("expired jobs deleted", metadata: ["count": "\(purged.count)"]) }
                if purged.count < 100 { break }
            }
        } catch {
            logger.warning("could not delete expired jobs", metadata: ["error": "\(error)"])
        }
    }
}
