import Foundation
import Logging
import SpeechJobs
import Testing

/// The job state machine alone, then one conformance suite that every `JobStore` backend passes:
/// SQLite (a file per test) and a real PostgreSQL (a database per test, on the server that
/// `scripts/with-postgres.sh` starts for `make test`).
struct JobLifecycleTests {
    @Test func allowedMovesAndNoOthers() {
        #expect(JobLifecycle.next(.queued, on: .claim) == .running)
        #expect(JobLifecycle.next(.queued, on: .cancel) == .cancelled)
        #expect(JobLifecycle.next(.running, on: .succeed) == .succeeded)
        #expect(JobLifecycle.next(.running, on: .fail(retry: true)) == .queued)
        #expect(JobLifecycle.next(.running, on: .fail(retry: false)) == .failed)
        #expect(JobLifecycle.next(.running, on: .leaseExpired(attemptsLeft: true)) == .running)
        #expect(JobLifecycle.next(.running, on: .leaseExpired(attemptsLeft: false)) == .failed)
        for final in [JobStatus.succeeded, .failed, .cancelled] {
            #expect(final.isFinal)
            for event in [JobLifecycle.Event.claim, .succeed, .fail(retry: true), .cancel, .leaseExpired(attemptsLeft: true)] {
                #expect(JobLifecycle.next(final, on: event) == nil, "\(final) must not move on \(event)")
            }
        }
        #expect(JobLifecycle.next(.queued, on: .succeed) == nil)
    }

    @Test func backOffDoublesUpToTheCapAndStopsAtTheLastAttempt() {
        let policy = RetryPolicy(maxAttempts: 4, base: .seconds(2), maximum: .seconds(5))
        #expect(policy.delay(afterAttempts: 1) == .seconds(2))
        #expect(policy.delay(afterAttempts: 2) == .seconds(4))
        #expect(policy.delay(afterAttempts: 3) == .seconds(5))
        #expect(policy.delay(afterAttempts: 4) == nil)
        #expect(policy.delay(afterAttempts: 1, maxAttempts: 1) == nil)
    }
}

enum JobBackend: String, CaseIterable, CustomStringConvertible {
    case sqlite, postgres
    var description: String { rawValue }

    /// Runs `body` with a store on an empty database of its own, and closes the store however
    /// `body` ends.
    func withFreshStore(_ body: (SQLJobStore) async throws -> Void) async throws {
        let store = try await freshStore()
        let result: Result<Void, any Error>
        do {
            try await body(store)
            result = .success(())
        } catch {
            result = .failure(error)
        }
        try? await store.close()
        try result.get()
    }

    /// A store on an empty database of its own.
    func freshStore() async throws -> SQLJobStore {
        let logger = Logger(label: "test.jobs")
        switch self {
        case .sqlite:
            let path = NSTemporaryDirectory() + "lark-jobs-\(UUID().uuidString)/jobs.sqlite"
            return try await JobQueueLocation.sqlite(path: path).open(logger: logger)
        case .postgres:
            let admin = try TestPostgres.url()
            let name = "lark_test_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased())"
            // Generous: the whole test suite shares two cores, and a busy moment is not a failure.
            // On a slower CPU (a Zen 3, 2026-12-02) the suite's blocking tests held both of Swift's
            // cooperative threads for over two minutes at a time, and 120 s ran out while the
            // database was idle: the deadline is what the stall needs, not what PostgreSQL does.
            let server = try await PostgresJobDatabase.connect(url: admin, logger: logger, timeout: .seconds(600))
            _ = try await server.query("CREATE DATABASE \(name)", [])
            try await server.close()
            var components = URLComponents(string: admin)!
            components.path = "/" + name
            return try await JobQueueLocation.postgres(url: components.string!).open(logger: logger, timeout: .seconds(600))
        }
    }
}

enum TestPostgres {
    /// The server `make test` started; a test needing it fails (never skips) without it.
    static func url() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["LARK_TEST_POSTGRES_URL"] else {
            throw ProbeError(message: "LARK_TEST_POSTGRES_URL is not set: run the tests with `make test` (scripts/with-postgres.sh starts PostgreSQL)")
        }
        return url
    }
}

@Suite struct JobStoreConformanceTests {
    static let spec = JobSpec(text: "Hello there.", voice: "en_US-joe-medium", format: "mp3", callbackURL: "http://127.0.0.1:9/hook")
    let t0: Int64 = 1_800_000_000_000

    @Test(arguments: JobBackend.allCases)
    func enqueueReadAndIdempotency(_ backend: JobBackend) async throws {
        try await backend.withFreshStore { store in
            let (job, created) = try await store.enqueue(Self.spec, idempotencyKey: nil, maxAttempts: 3, now: t0)
            #expect(created && job.status == .queued && job.attempts == 0 && job.maxAttempts == 3)
            #expect(job.spec == Self.spec && job.createdAt == t0 && job.availableAt == t0)
            #expect(try await store.job(id: job.id) == job)
            #expect(try await store.job(id: "no-such-job") == nil)

            let first = try await store.enqueue(Self.spec, idempotencyKey: "key-1", maxAttempts: 3, now: t0 + 1)
            let again = try await store.enqueue(JobSpec(text: "Other.", voice: "x"), idempotencyKey: "key-1", maxAttempts: 3, now: t0 + 2)
            #expect(first.created && !again.created && again.job.id == first.job.id && again.job.spec == Self.spec)
        }
    }

    @Test(arguments: JobBackend.allCases)
    func listsNewestFirstWithCursorAndStatus(_ backend: JobBackend) async throws {
        try await backend.withFreshStore { store in
            var ids: [String] = []
            for index in 0..<5 {
                ids.append(try await store.enqueue(Self.spec, idempotencyKey: nil, maxAttempts: 1, now: t0 + Int64(index)).job.id)
            }
            let page1 = try await store.list(status: nil, limit: 2, after: nil)
            #expect(page1.jobs.map(\.id) == [ids[4], ids[3]])
            let page2 = try await store.list(status: nil, limit: 2, after: page1.nextCursor)
            #expect(page1.nextCursor != nil)
            #expect(page2.jobs.map(\.id) == [ids[2], ids[1]])
            let page3 = try await store.list(status: nil, limit: 2, after: page2.nextCursor)
            #expect(page2.nextCursor != nil)
            #expect(page3.jobs.map(\.id) == [ids[0]] && page3.nextCursor == nil)

            _ = try await store.claim(worker: "w", lease: .seconds(30), now: t0 + 10)
            #expect(try await store.list(status: .running, limit: 10, after: nil).jobs.map(\.id) == [ids[0]])
            #expect(try await store.list(status: .queued, limit: 10, after: nil).jobs.count == 4)
            await #expect(throws: JobStoreError.self) { try await store.list(status: nil, limit: 2, after: "garbage") }
        }
    }

    @Test(arguments: JobBackend.allCases)
    func claimTakesTheOldestDueJobOnce(_ backend: JobBackend) async throws {
        try await backend.withFreshStore { store in
            let a = try await store.enqueue(Self.spec, idempotencyKey: nil, maxAttempts: 3, now: t0).job
            let b = try await store.enqueue(Self.spec, idempotencyKey: nil, maxAttempts: 3, now: t0 + 1).job
            let claimed = try #require(try await store.claim(worker: "w1", lease: .seconds(30), now: t0 + 5))
            #expect(claimed.id == a.id && claimed.status == .running && claimed.attempts == 1)
            #expect(claimed.leaseOwner == "w1" && claimed.leaseExpiresAt == t0 + 5 + 30_000 && claimed.startedAt == t0 + 5)
            #expect(try await store.claim(worker: "w2", lease: .seconds(30), now: t0 + 6)?.id == b.id)
            #expect(try await store.claim(worker: "w3", lease: .seconds(30), now: t0 + 7) == nil)
        }
    }

    @Test(arguments: JobBackend.allCases)
    func concurrentClaimsNeverShareAJob(_ backend: JobBackend) async throws {
        try await backend.withFreshStore { store in
            for index in 0..<20 {
                _ = try await store.enqueue(Self.spec, idempotencyKey: nil, maxAttempts: 3, now: t0 + Int64(index))
            }
            let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<6 {
                    group.addTask {
                        var mine: [String] = []
                        while let job = try await store.claim(worker: "w\(worker)", lease: .seconds(30), now: self.t0 + 100) {
                            mine.append(job.id)
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(claimed.count == 20 && Set(claimed).count == 20)
        }
    }

    @Test(arguments: JobBackend.allCases)
    func heartbeatExtendsTheLeaseAndAnExpiredLeaseIsClaimedAgain(_ backend: JobBackend) async throws {
        try await backend.withFreshStore { store in
            let job = try await store.enqueue(Self.spec, idempotencyKey: nil, maxAttempts: 2, now: t0).job
            _ = try await store.claim(worker: "w1", lease: .seconds(10), now: t0)
            #expect(try await store.heartbeat(id: job.id, worker: "w1", lease: .seconds(10), sentencesDone: 2, sentencesTotal: 5, now: t0 + 8_000) == .proceed)
            // Renewed at 8 s for 10 s: not due at 15 s, due at 19 s.
            #expect(try await store.claim(worker: "w2", lease: .seconds(10), now: t0 + 15_000) == nil)
            let again = try #require(try await store.claim(worker: "w2", lease: .seconds(10), now: t0 + 19_000))
            #expect(again.id == job.id && again.attempts == 2 && again.leaseOwner == "w2" && again.sentencesDone == 2 && again.sentencesTotal == 5)
            // The first worker has lost it: its heartbeat and its result are refused.
            #expect(try await store.heartbeat(id: job.id, worker: "w1", lease: .seconds(10), sentencesDone: 3, sentencesTotal: 5, now: t0 + 19_500) == .lost)
            #expect(try await store.succeed(id: job.id, worker: "w1", objectKey: "k", now: t0 + 19_600) == false)
            // The second worker dies too, with no attempt left: the job fails with the reason.
            #expect(try await store.claim(worker: "w3", lease: .seconds(10), now: t0 + 40_000) == nil)
            let failed = try #require(try await store.job(id: job.id))
            #expect(failed.status == .failed && failed.error?.contains("lease expired") == true && failed.finishedAt == t0 + 40_000)
        }
    }

    @Test(arguments: JobBackend.allCases)
    func succeedAndFailWithRetries(_ backend: JobBackend) async throws {
        try await backend.withFreshStore { store in
            let job = try await store.enqueue(Self.spec, idempotencyKey: nil, maxAttempts: 2, now: t0).job
            _ = try await store.claim(worker: "w", lease: .seconds(30), now: t0)
            #expect(try await store.fail(id: job.id, worker: "w", error: "storage down", retryAt: t0 + 2_000, now: t0 + 100))
            var current = try #require(try await store.job(id: job.id))
            #expect(current.status == .queued && current.error == "storage down" && current.availableAt == t0 + 2_000 && current.leaseOwner == nil)
            // Not before its back-off.
            #expect(try await store.claim(worker: "w", lease: .seconds(30), now: t0 + 1_999) == nil)
            #expect(try await store.claim(worker: "w", lease: .seconds(30), now: t0 + 2_000)?.attempts == 2)
            #expect(try await store.succeed(id: job.id, worker: "w", objectKey: "jobs/x.mp3", now: t0 + 3_000))
            current = try #require(try await store.job(id: job.id))
            #expect(current.status == .succeeded && current.objectKey == "jobs/x.mp3" && current.error == nil && current.finishedAt == t0 + 3_000)
            // Final states do not move.
            #expect(try await store.fail(id: job.id, worker: "w", error: "late", retryAt: nil, now: t0 + 4_000) == false)

            let doomed = try await store.enqueue(Self.spec, idempotencyKey: nil, maxAttempts: 1, now: t0).job
            _ = try await store.claim(worker: "w", lease: .seconds(30), now: t0 + 5_000)
            #expect(try await store.fail(id: doomed.id, worker: "w", error: "unknown voice", retryAt: nil, now: t0 + 5_100))
            current = try #require(try await store.job(id: doomed.id))
            #expect(current.status == .failed && current.error == "unknown voice" && current.finishedAt == t0 + 5_100)
        }
    }

    @Test(arguments: JobBackend.allCases)
    func cancelQueuedAtOnceAndRunningThroughTheWorker(_ backend: JobBackend) async throws {
        try await backend.withFreshStore { store in
            let running = try await store.enqueue(Self.spec, idempotencyKey: nil, maxAttempts: 3, now: t0).job
            let queued = try await store.enqueue(Self.spec, idempotencyKey: nil, maxAttempts: 3, now: t0 + 1).job
            _ = try await store.claim(worker: "w", lease: .seconds(30), now: t0 + 2)
            #expect(try await store.cancel(id: queued.id, now: t0 + 3)?.status == .cancelled)
            let asked = try #require(try await store.cancel(id: running.id, now: t0 + 4))
            #expect(asked.status == .running && asked.cancelRequested)
            #expect(try await store.heartbeat(id: running.id, worker: "w", lease: .seconds(30), sentencesDone: 1, sentencesTotal: 3, now: t0 + 5) == .cancelRequested)
            #expect(try await store.finishCancelled(id: running.id, worker: "w", now: t0 + 6))
            #expect(try await store.job(id: running.id)?.status == .cancelled)
            #expect(try await store.cancel(id: "missing", now: t0) == nil)
            #expect(try await store.claim(worker: "w", lease: .seconds(30), now: t0 + 10) == nil)
        }
    }

    @Test(arguments: JobBackend.allCases)
    func releaseGivesTheAttemptBack(_ backend: JobBackend) async throws {
        try await backend.withFreshStore { store in
            let job = try await store.enqueue(Self.spec, idempotencyKey: nil, maxAttempts: 1, now: t0).job
            _ = try await store.claim(worker: "w", lease: .seconds(30), now: t0)
            #expect(try await store.release(id: job.id, worker: "w", now: t0 + 1))
            let again = try #require(try await store.claim(worker: "w2", lease: .seconds(30), now: t0 + 2))
            #expect(again.id == job.id && again.attempts == 1)
        }
    }

    @Test(arguments: JobBackend.allCases)
    func purgeDeletesOnlyFinishedJobsPastRetention(_ backend: JobBackend) async throws {
        try await backend.withFreshStore { store in
            let old = try await store.enqueue(Self.spec, idempotencyKey: nil, maxAttempts: 1, now: t0).job
            _ = try await store.claim(worker: "w", lease: .seconds(30), now: t0)
            _ = try await store.succeed(id: old.id, worker: "w", objectKey: "jobs/old.mp3", now: t0 + 1_000)
            let recent = try await store.enqueue(Self.spec, idempotencyKey: nil, maxAttempts: 1, now: t0 + 2_000).job
            _ = try await store.cancel(id: recent.id, now: t0 + 60_000)
            let waiting = try await store.enqueue(Self.spec, idempotencyKey: nil, maxAttempts: 1, now: t0 + 3_000).job
            let purged = try await store.purge(finishedBefore: t0 + 30_000, limit: 10)
            #expect(purged.map(\.id) == [old.id] && purged.first?.objectKey == "jobs/old.mp3")
            #expect(try await store.job(id: old.id) == nil)
            #expect(try await store.job(id: recent.id) != nil)
            #expect(try await store.job(id: waiting.id) != nil)
        }
    }

    @Test(arguments: JobBackend.allCases)
    func migrationsRunOnceAndAgainIsHarmless(_ backend: JobBackend) async throws {
        try await backend.withFreshStore { store in
            let job = try await store.enqueue(Self.spec, idempotencyKey: nil, maxAttempts: 1, now: t0).job
            try await store.migrate()
            try await store.migrate()
            #expect(try await store.job(id: job.id) == job)
        }
    }

    @Test func unreachablePostgresFailsWithAClearMessage() async throws {
        await #expect {
            _ = try await JobQueueLocation.postgres(url: "postgres://lark@127.0.0.1:9/none").open(logger: Logger(label: "test"))
        } throws: { error in
            "\(error)".contains("not reachable") && "\(error)".contains("127.0.0.1:9")
        }
        #expect(throws: JobStoreError.self) { try JobQueueLocation("mysql://x") }
    }
}

/// The callback's state on the job (schema 2), on both backends, and a database made by the
/// first schema brought up to date.
@Suite struct JobCallbackStateTests {
    let t0: Int64 = 1_800_000_000_000

    @Test(arguments: JobBackend.allCases)
    func callbackStateIsRecordedAndReadBack(_ backend: JobBackend) async throws {
        try await backend.withFreshStore { store in
            let (job, _) = try await store.enqueue(JobStoreConformanceTests.spec, idempotencyKey: nil, maxAttempts: 3, now: t0)
            #expect(job.callback == CallbackState(status: .pending, attempts: 0, lastError: nil))
            let (plain, _) = try await store.enqueue(JobSpec(text: "Hi.", voice: "v"), idempotencyKey: nil, maxAttempts: 3, now: t0)
            #expect(plain.callback == nil)
            try await store.recordCallback(id: job.id, state: .init(status: .pending, attempts: 1, lastError: "the receiver answered 500"), now: t0 + 1)
            #expect(try await store.job(id: job.id)?.callback == CallbackState(status: .pending, attempts: 1, lastError: "the receiver answered 500"))
            try await store.recordCallback(id: job.id, state: .init(status: .delivered, attempts: 2, lastError: nil), now: t0 + 2)
            #expect(try await store.job(id: job.id)?.callback == CallbackState(status: .delivered, attempts: 2, lastError: nil))
            // Migrating again changes nothing.
            try await store.migrate()
            #expect(try await store.job(id: job.id)?.callback?.status == .delivered)
        }
    }

    @Test func aFirstSchemaDatabaseIsMigrated() async throws {
        let directory = NSTemporaryDirectory() + "lark-jobs-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = try await SQLiteJobDatabase.open(path: directory + "/jobs.sqlite", logger: Logger(label: "test.jobs"))
        // The tables as schema 1 made them, with a job in them.
        for statement in [
            """
            CREATE TABLE lark_jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, spec TEXT NOT NULL, idempotency_key TEXT UNIQUE,
                attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL, sentences_done INTEGER NOT NULL DEFAULT 0,
                sentences_total INTEGER, error TEXT, object_key TEXT, cancel_requested INTEGER NOT NULL DEFAULT 0,
                created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, started_at INTEGER, finished_at INTEGER,
                available_at INTEGER NOT NULL, lease_owner TEXT, lease_expires_at INTEGER)
            """,
            "CREATE TABLE lark_schema_version (version INTEGER NOT NULL)",
            "INSERT INTO lark_schema_version (version) VALUES (1)",
            """
            INSERT INTO lark_jobs (id, status, spec, max_attempts, created_at, updated_at, available_at)
            VALUES ('old', 'succeeded', '{"text":"Hi.","voice":"v","format":"wav","callbackURL":"http://example.com/"}', 3, 1, 1, 1)
            """,
        ] {
            _ = try await database.query(statement, [])
        }
        let store = SQLJobStore(database: database)
        try await store.migrate()
        let old = try #require(try await store.job(id: "old"))
        #expect(old.status == .succeeded && old.callback == nil)
        try await store.recordCallback(id: "old", state: .init(status: .failed, attempts: 4, lastError: "x"), now: 2)
        #expect(try await store.job(id: "old")?.callback == CallbackState(status: .failed, attempts: 4, lastError: "x"))
        try await store.close()
    }
}
