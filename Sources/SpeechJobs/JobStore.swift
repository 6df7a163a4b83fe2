/// The durable job queue. Two backends implement it with the same SQL (`SQLJobStore` over SQLite
/// or PostgreSQL) and pass one conformance suite. Every method takes `now` (milliseconds since
/// 1970) from the caller, so leases and back-offs are testable without waiting; workers on
/// several machines therefore need synchronized clocks (NTP), as any lease-based queue does.
public protocol JobStore: Sendable {
    /// Creates the tables, or brings them up to date (run at start-up, safe to run concurrently).
    func migrate() async throws

    /// Adds a job, or, when `idempotencyKey` is already known, returns that job unchanged
    /// (`created` false) instead of queueing the same work twice.
    func enqueue(_ spec: JobSpec, idempotencyKey: String?, maxAttempts: Int, now: Int64) async throws -> (job: Job, created: Bool)

    func job(id: String) async throws -> Job?

    /// Jobs newest first, optionally of one status and of one owner (`JobSpec.owner`); `after`
    /// is the `nextCursor` of the previous page.
    func list(status: JobStatus?, owner: String?, limit: Int, after cursor: String?) async throws -> JobPage

    /// Takes the oldest job that is due (queued and past its back-off, or running with an expired
    /// lease) for `worker`, starting an attempt with a lease until `now + lease`. Jobs whose
    /// lease expired with no attempt left are failed on the way. Nil when nothing is due.
    func claim(worker: String, lease: Duration, now: Int64) async throws -> Job?

    /// Extends the lease and records progress. Tells the worker whether to go on.
    func heartbeat(id: String, worker: String, lease: Duration, sentencesDone: Int, sentencesTotal: Int?, now: Int64) async throws -> HeartbeatReply

    /// Ends an attempt well. False when the worker no longer holds the job (lease lost).
    @discardableResult
    func succeed(id: String, worker: String, objectKey: String, now: Int64) async throws -> Bool

    /// Ends an attempt badly: back to `queued` until `retryAt`, or `failed` when `retryAt` is nil.
    @discardableResult
    func fail(id: String, worker: String, error: String, retryAt: Int64?, now: Int64) async throws -> Bool

    /// Gives a job back untouched (its worker is shutting down): queued again at once, and the
    /// attempt it started does not count.
    @discardableResult
    func release(id: String, worker: String, now: Int64) async throws -> Bool

    /// A queued job is cancelled at once; a running one is asked to stop (its worker sees it at
    /// the next heartbeat and calls `finishCancelled`). Nil for an unknown id.
    func cancel(id: String, now: Int64) async throws -> Job?

    /// The worker stopped a job that was asked to stop.
    @discardableResult
    func finishCancelled(id: String, worker: String, now: Int64) async throws -> Bool

    /// Records how the job's callback went (after each attempt).
    func recordCallback(id: String, state: CallbackState, now: Int64) async throws

    /// Deletes finished jobs that ended before `before`, and returns them (their audio goes too).
    func purge(finishedBefore before: Int64, limit: Int) async throws -> [Job]

    func close() async throws
}

public enum HeartbeatReply: Sendable, Equatable {
    case proceed
    /// A client cancelled the job: stop, and call `finishCancelled`.
    case cancelRequested
    /// Another worker holds the job now (this worker's lease expired): stop, write nothing.
    case lost
}

public struct JobPage: Sendable {
    public var jobs: [Job]
    public var nextCursor: String?

    public init(jobs: [Job], nextCursor: String?) {
        self.jobs = jobs
        self.nextCursor = nextCursor
    }
}

public enum JobStoreError: Error, Sendable, CustomStringConvertible {
    /// The database cannot be reached or opened.
    case unavailable(String)
    /// A `--queue` value that names no database Lark knows.
    case invalidLocation(String)
    case invalidCursor(String)
    /// A stored row that does not read back as a job (a schema from a newer Lark, say).
    case corruptRow(String)

    public var description: String {
        switch self {
        case .unavailable(let detail): "the job database is not reachable: \(detail)"
        case .invalidLocation(let detail): detail
        case .invalidCursor(let cursor): "'\(cursor)' is not a cursor this server gave out"
        case .corruptRow(let detail): "a stored job could not be read: \(detail)"
        }
    }
}

extension JobStore {
    /// Every owner's jobs.
    public func list(status: JobStatus?, limit: Int, after cursor: String?) async throws -> JobPage {
        try await list(status: status, owner: nil, limit: limit, after: cursor)
    }
}
