import Foundation

/// `JobStore` in SQL that SQLite (3.35+) and PostgreSQL both run: every state change is one
/// `UPDATE … WHERE <the state it may leave> RETURNING`, so two workers can never both move a job,
/// and a claim is one statement (with `FOR UPDATE SKIP LOCKED` on PostgreSQL, where workers in
/// other processes claim at the same time).
public final class SQLJobStore: JobStore {
    private let database: any SQLDatabase
    private let table = "lark_jobs"

    public init(database: any SQLDatabase) {
        self.database = database
    }

    // MARK: - Schema

    /// Each migration runs once, in order, under the database's exclusive lock; the version
    /// table says how far a database is.
    private var migrations: [[String]] {
        let bigint = database.dialect.bigint
        return [
            [
                """
                CREATE TABLE \(table) (
                    id TEXT PRIMARY KEY,
                    status TEXT NOT NULL,
                    spec TEXT NOT NULL,
                    idempotency_key TEXT UNIQUE,
                    attempts \(bigint) NOT NULL DEFAULT 0,
                    max_attempts \(bigint) NOT NULL,
                    sentences_done \(bigint) NOT NULL DEFAULT 0,
                    sentences_total \(bigint),
                    error TEXT,
                    object_key TEXT,
                    cancel_requested \(bigint) NOT NULL DEFAULT 0,
                    created_at \(bigint) NOT NULL,
                    updated_at \(bigint) NOT NULL,
                    started_at \(bigint),
                    finished_at \(bigint),
                    available_at \(bigint) NOT NULL,
                    lease_owner TEXT,
                    lease_expires_at \(bigint)
                )
                """,
                "CREATE INDEX \(table)_due ON \(table) (status, available_at, created_at)",
                "CREATE INDEX \(table)_created ON \(table) (created_at, id)",
                "CREATE INDEX \(table)_finished ON \(table) (finished_at)",
            ],
            // 2: how each job's callback went (`Job.callback`).
            [
                "ALTER TABLE \(table) ADD COLUMN callback_status TEXT",
                "ALTER TABLE \(table) ADD COLUMN callback_attempts \(bigint) NOT NULL DEFAULT 0",
                "ALTER TABLE \(table) ADD COLUMN callback_error TEXT",
            ],
            // 3: who submitted each job (`JobSpec.owner`), for listing one key's jobs.
            [
                "ALTER TABLE \(table) ADD COLUMN owner TEXT",
                "CREATE INDEX \(table)_owner ON \(table) (owner, created_at, id)",
            ],
        ]
    }

    public func migrate() async throws {
        let migrations = self.migrations
        try await database.exclusively { sql in
            try await sql.execute("CREATE TABLE IF NOT EXISTS lark_schema_version (version \(self.database.dialect.bigint) NOT NULL)")
            let current = try await sql.execute("SELECT MAX(version) AS version FROM lark_schema_version").first?.optionalInteger("version") ?? 0
            guard current <= Int64(migrations.count) else {
                throw JobStoreError.corruptRow("the job database has schema version \(current), newer than this Lark (\(migrations.count))")
            }
            for (index, statements) in migrations.enumerated() where Int64(index + 1) > current {
                for statement in statements { try await sql.execute(statement) }
                try await sql.execute("INSERT INTO lark_schema_version (version) VALUES ($1)", .int(index + 1))
            }
        }
    }

    // MARK: - Submitting and reading

    public func enqueue(_ spec: JobSpec, idempotencyKey: String?, maxAttempts: Int, now: Int64) async throws -> (job: Job, created: Bool) {
        let specJSON = String(decoding: try JSONEncoder().encode(spec), as: UTF8.self)
        let inserted = try await database.execute(
            """
            INSERT INTO \(table) (id, status, spec, idempotency_key, attempts, max_attempts, sentences_done,
                cancel_requested, created_at, updated_at, available_at, callback_status, callback_attempts, owner)
            VALUES ($1, 'queued', $2, $3, 0, $4, 0, 0, $5, $5, $5, $6, 0, $7)
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING *
            """,
            .text(UUID().uuidString.lowercased()), .text(specJSON), .optional(idempotencyKey), .int(max(1, maxAttempts)), .integer(now),
            .optional(spec.callbackURL == nil ? nil : CallbackStatus.pending.rawValue), .optional(spec.owner))
        if let row = inserted.first { return (try Self.job(row), true) }
        // The key was taken: by an earlier submission of the same work.
        guard let idempotencyKey,
              let existing = try await database.execute("SELECT * FROM \(table) WHERE idempotency_key = $1", .text(idempotencyKey)).first
        else { throw JobStoreError.corruptRow("the insert was refused, but no job has its idempotency key") }
        return (try Self.job(existing), false)
    }

    public func job(id: String) async throws -> Job? {
        try await database.execute("SELECT * FROM \(table) WHERE id = $1", .text(id)).first.map(Self.job)
    }

    public func list(status: JobStatus?, owner: String?, limit: Int, after cursor: String?) async throws -> JobPage {
        let limit = min(max(1, limit), 500)
        var conditions: [String] = []
        var binds: [SQLValue] = []
        if let status {
            binds.append(.text(status.rawValue))
            conditions.append("status = $\(binds.count)")
        }
        if let owner {
            binds.append(.text(owner))
            conditions.append("owner = $\(binds.count)")
        }
        if let cursor {
            let (created, id) = try Self.parse(cursor: cursor)
            binds.append(.integer(created))
            let createdIndex = binds.count
            binds.append(.text(id))
            conditions.append("(created_at < $\(createdIndex) OR (created_at = $\(createdIndex) AND id < $\(binds.count)))")
        }
        binds.append(.int(limit + 1))
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let rows = try await database.query(
            "SELECT * FROM \(table) \(filter) ORDER BY created_at DESC, id DESC LIMIT $\(binds.count)", binds)
        var jobs = try rows.map(Self.job)
        var next: String?
        if jobs.count > limit {
            jobs.removeLast()
            next = jobs.last.map { "\($0.createdAt)_\($0.id)" }
        }
        return JobPage(jobs: jobs, nextCursor: next)
    }

    private static func parse(cursor: String) throws -> (Int64, String) {
        let parts = cursor.split(separator: "_", maxSplits: 1)
        guard parts.count == 2, let created = Int64(parts[0]) else { throw JobStoreError.invalidCursor(cursor) }
        return (created, String(parts[1]))
    }

    // MARK: - Working

    public func claim(worker: String, lease: Duration, now: Int64) async throws -> Job? {
        // Jobs whose worker died: cancelled if a client asked, failed if no attempt is left.
        try await database.execute(
            """
            UPDATE \(table) SET status = 'cancelled', finished_at = $1, updated_at = $1, lease_owner = NULL, lease_expires_at = NULL
            WHERE status = 'running' AND lease_expires_at < $1 AND cancel_requested = 1
            """, .integer(now))
        try await database.execute(
            """
            UPDATE \(table) SET status = 'failed', finished_at = $1, updated_at = $1, lease_owner = NULL, lease_expires_at = NULL,
                error = 'the worker stopped answering (its lease expired) and no attempt is left'
            WHERE status = 'running' AND lease_expires_at < $1 AND attempts >= max_attempts
            """, .integer(now))
        let rows = try await database.execute(
            """
            UPDATE \(table) SET status = 'running', attempts = attempts + 1, lease_owner = $2, lease_expires_at = $3,
                started_at = COALESCE(started_at, $1), updated_at = $1
            WHERE id = (
                SELECT id FROM \(table)
                WHERE (status = 'queued' AND available_at <= $1)
                   OR (status = 'running' AND lease_expires_at < $1 AND attempts < max_attempts AND cancel_requested = 0)
                ORDER BY available_at, created_at
                LIMIT 1 \(database.dialect.skipLocked)
            )
            RETURNING *
            """, .integer(now), .text(worker), .integer(now + lease.milliseconds))
        return try rows.first.map(Self.job)
    }

    public func heartbeat(id: String, worker: String, lease: Duration, sentencesDone: Int, sentencesTotal: Int?, now: Int64) async throws -> HeartbeatReply {
        let rows = try await database.execute(
            """
            UPDATE \(table) SET lease_expires_at = $3, sentences_done = $4, sentences_total = $5, updated_at = $6
            WHERE id = $1 AND lease_owner = $2 AND status = 'running'
            RETURNING cancel_requested
            """, .text(id), .text(worker), .integer(now + lease.milliseconds), .int(sentencesDone),
            .optional(sentencesTotal.map(Int64.init)), .integer(now))
        guard let row = rows.first else { return .lost }
        return try row.integer("cancel_requested") != 0 ? .cancelRequested : .proceed
    }

    public func succeed(id: String, worker: String, objectKey: String, now: Int64) async throws -> Bool {
        try await !database.execute(
            """
            UPDATE \(table) SET status = 'succeeded', object_key = $3, finished_at = $4, updated_at = $4, error = NULL,
                lease_owner = NULL, lease_expires_at = NULL, sentences_done = COALESCE(sentences_total, sentences_done)
            WHERE id = $1 AND lease_owner = $2 AND status = 'running'
            RETURNING id
            """, .text(id), .text(worker), .text(objectKey), .integer(now)
        ).isEmpty
    }

    public func fail(id: String, worker: String, error: String, retryAt: Int64?, now: Int64) async throws -> Bool {
        let rows: [SQLRecord]
        if let retryAt {
            rows = try await database.execute(
                """
                UPDATE \(table) SET status = 'queued', error = $3, available_at = $4, updated_at = $5,
                    lease_owner = NULL, lease_expires_at = NULL
                WHERE id = $1 AND lease_owner = $2 AND status = 'running'
                RETURNING id
                """, .text(id), .text(worker), .text(error), .integer(retryAt), .integer(now))
        } else {
            rows = try await database.execute(
                """
                UPDATE \(table) SET status = 'failed', error = $3, finished_at = $4, updated_at = $4,
                    lease_owner = NULL, lease_expires_at = NULL
                WHERE id = $1 AND lease_owner = $2 AND status = 'running'
                RETURNING id
                """, .text(id), .text(worker), .text(error), .integer(now))
        }
        return !rows.isEmpty
    }

    public func release(id: String, worker: String, now: Int64) async throws -> Bool {
        try await !database.execute(
            """
            UPDATE \(table) SET status = 'queued', attempts = attempts - 1, available_at = $3, updated_at = $3,
                lease_owner = NULL, lease_expires_at = NULL
            WHERE id = $1 AND lease_owner = $2 AND status = 'running' AND cancel_requested = 0
            RETURNING id
            """, .text(id), .text(worker), .integer(now)
        ).isEmpty
    }

    public func cancel(id: String, now: Int64) async throws -> Job? {
        try await database.execute(
            "UPDATE \(table) SET status = 'cancelled', finished_at = $2, updated_at = $2 WHERE id = $1 AND status = 'queued'",
            .text(id), .integer(now))
        try await database.execute(
            "UPDATE \(table) SET cancel_requested = 1, updated_at = $2 WHERE id = $1 AND status = 'running'",
            .text(id), .integer(now))
        return try await job(id: id)
    }

    public func finishCancelled(id: String, worker: String, now: Int64) async throws -> Bool {
        try await !database.execute(
            """
            UPDATE \(table) SET status = 'cancelled', finished_at = $3, updated_at = $3, lease_owner = NULL, lease_expires_at = NULL
            WHERE id = $1 AND lease_owner = $2 AND status = 'running'
            RETURNING id
            """, .text(id), .text(worker), .integer(now)
        ).isEmpty
    }

    public func recordCallback(id: String, state: CallbackState, now: Int64) async throws {
        try await database.execute(
            "UPDATE \(table) SET callback_status = $2, callback_attempts = $3, callback_error = $4, updated_at = $5 WHERE id = $1",
            .text(id), .text(state.status.rawValue), .int(state.attempts), .optional(state.lastError), .integer(now))
    }

    public func purge(finishedBefore before: Int64, limit: Int) async throws -> [Job] {
        try await database.execute(
            """
            DELETE FROM \(table) WHERE id IN (
                SELECT id FROM \(table) WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at < $1 LIMIT $2
            )
            RETURNING *
            """, .integer(before), .int(max(1, limit))
        ).map(Self.job)
    }

    public func close() async throws {
        try await database.close()
    }

    // MARK: - Rows

    private static func job(_ row: SQLRecord) throws -> Job {
        let specText = try row.text("spec")
        let spec: JobSpec
        do {
            spec = try JSONDecoder().decode(JobSpec.self, from: Data(specText.utf8))
        } catch {
            throw JobStoreError.corruptRow("job \(row.optionalText("id") ?? "?") has an unreadable spec")
        }
        guard let status = JobStatus(rawValue: try row.text("status")) else {
            throw JobStoreError.corruptRow("job \(row.optionalText("id") ?? "?") has an unknown status")
        }
        return Job(
            id: try row.text("id"), status: status, spec: spec, idempotencyKey: row.optionalText("idempotency_key"),
            attempts: Int(try row.integer("attempts")), maxAttempts: Int(try row.integer("max_attempts")),
            sentencesDone: Int(try row.integer("sentences_done")), sentencesTotal: row.optionalInteger("sentences_total").map(Int.init),
            error: row.optionalText("error"), objectKey: row.optionalText("object_key"),
            cancelRequested: try row.integer("cancel_requested") != 0, createdAt: try row.integer("created_at"),
            updatedAt: try row.integer("updated_at"), startedAt: row.optionalInteger("started_at"),
            finishedAt: row.optionalInteger("finished_at"), availableAt: try row.integer("available_at"),
            leaseOwner: row.optionalText("lease_owner"), leaseExpiresAt: row.optionalInteger("lease_expires_at"),
            callback: row.optionalText("callback_status").flatMap(CallbackStatus.init(rawValue:)).map {
                CallbackState(
                    status: $0, attempts: Int(row.optionalInteger("callback_attempts") ?? 0), lastError: row.optionalText("callback_error"))
            })
    }
}
