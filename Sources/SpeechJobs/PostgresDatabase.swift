import Foundation
import Logging
import PostgresNIO

/// The shared job database for many workers on many machines: PostgreSQL through postgres-nio's
/// connection pool. The pool runs in a task of its own for as long as the database is open (it
/// must run before the first query, and start-up migrates the schema before the process's
/// service group starts); `close()` cancels that task and waits for it to end, and the service
/// group's "job database" part calls `close()` at shutdown, so it never outlives the database.
public final class PostgresJobDatabase: SQLDatabase {
    public let dialect = SQLDialect.postgres
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    /// How long one statement may take, waiting for a connection included: while the server is
    /// down, postgres-nio's pool holds requests until its circuit breaker trips (a minute), and
    /// callers are better told sooner that the database is unavailable.
    private let deadline: Duration

    private init(client: PostgresClient, deadline: Duration) {
        self.client = client
        self.deadline = deadline
        runner = Task { await client.run() }
    }

    /// Connects to `postgres://user:password@host:port/database[?sslmode=disable|prefer|require]`
    /// and checks the connection within `timeout`, so a wrong address fails at start-up; later
    /// statements that get no answer within `timeout` fail as `JobStoreError.unavailable`.
    public static func connect(url: String, logger: Logger, timeout: Duration = .seconds(10)) async throws -> PostgresJobDatabase {
        let configuration = try configuration(from: url)
        var options = PostgresClient.Configuration(
            host: configuration.host, port: configuration.port, username: configuration.user,
            password: configuration.password, database: configuration.database, tls: configuration.tls)
        options.options.connectTimeout = timeout
        options.options.maximumConnections = 8
        let database = PostgresJobDatabase(client: PostgresClient(configuration: options, backgroundLogger: logger), deadline: timeout)
        do {
            try await withDeadline(timeout) { _ = try await database.query("SELECT 1 AS ok", []) }
        } catch {
            try? await database.close()
            throw JobStoreError.unavailable("PostgreSQL at \(configuration.host):\(configuration.port) (database \(configuration.database ?? configuration.user)): \(describe(error))")
        }
        return database
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRecord] {
        let client = client
        do {
            return try await withDeadline(deadline) {
                let rows: PostgresRowSequence
                do {
                    rows = try await client.query(PostgresQuery(unsafeSQL: sql, binds: Self.bindings(binds)))
                } catch let error as PSQLError {
                    throw error
                } catch let error as CancellationError {
                    throw error
                } catch {
                    // The pool's own refusals: its circuit breaker open after a long outage, or
                    // a wait for a connection cut short by the deadline.
                    throw JobStoreError.unavailable("PostgreSQL: \(error)")
                }
                return try await Self.records(rows)
            }
        } catch {
            // The caller's own task cancelled (shutting down) is not an outage.
            if Task.isCancelled { throw CancellationError() }
            throw Self.translated(error)
        }
    }

    /// A lost or refused connection (the server restarting, shutting down, or out of
    /// connections) or a statement with no answer in time as `JobStoreError.unavailable`, which
    /// callers may wait out and retry; any other error (a statement the server refuses) as it is.
    /// Called only when the caller's task is not cancelled: a cancellation here is the deadline's.
    static func translated(_ error: any Error) -> any Error {
        if error is DeadlineExceeded || error is CancellationError { return JobStoreError.unavailable("PostgreSQL: no answer in time") }
        guard let error = error as? PSQLError else { return error }
        if error.code == .queryCancelled { return JobStoreError.unavailable("PostgreSQL: no answer in time") }
        let lostConnection: Set<PSQLError.Code> = [.serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown]
        if lostConnection.contains(error.code) { return JobStoreError.unavailable("PostgreSQL: \(describe(error))") }
        // SQLSTATE class 08 (connection exception), 57P01-57P03 (shutting down, crashed,
        // starting up) and 53300 (too many connections).
        if error.code == .server, let state = error.serverInfo?[.sqlState],
           state.hasPrefix("08") || ["57P01", "57P02", "57P03", "53300"].contains(state) {
            return JobStoreError.unavailable("PostgreSQL: \(describe(error))")
        }
        return error
    }

    private static func bindings(_ binds: [SQLValue]) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: binds.count)
        for value in binds {
            switch value {
            case .text(let text): bindings.append(text)
            case .integer(let number): bindings.append(number)
            case .null: bindings.appendNull()
            }
        }
        return bindings
    }

    private static func records(_ rows: PostgresRowSequence) async throws -> [SQLRecord] {
        var records: [SQLRecord] = []
        for try await row in rows {
            var values: [String: SQLValue] = [:]
            for cell in row {
                values[cell.columnName] = try Self.value(of: cell)
            }
            records.append(SQLRecord(values: values))
        }
        return records
    }

    public func exclusively(_ body: @Sendable (any SQLExecutor) async throws -> Void) async throws {
        let logger = Logger(label: "lark.jobs.migrate")
        do {
            try await client.withTransaction(logger: logger) { connection in
                // One migrating process at a time: the others wait here, then find nothing to do.
                try await connection.query("SELECT pg_advisory_xact_lock(7340581)", logger: logger)
                try await body(TransactionExecutor(connection: connection, logger: logger))
            }
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw Self.translated(error)
        }
    }

    /// Queries inside `exclusively`'s transaction, on its connection.
    private struct TransactionExecutor: SQLExecutor {
        let connection: PostgresConnection
        let logger: Logger

        func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRecord] {
            try await PostgresJobDatabase.records(
                try await connection.query(PostgresQuery(unsafeSQL: sql, binds: PostgresJobDatabase.bindings(binds)), logger: logger))
        }
    }

    public func close() async throws {
        runner.cancel()
        await runner.value
    }

    private static func value(of cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int8, .int4, .int2: return .integer(try cell.decode(Int64.self))
        case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
        default: return .text(try cell.decode(String.self))
        }
    }

    struct Location {
        var host: String
        var port: Int
        var user: String
        var password: String?
        var database: String?
        var tls: PostgresClient.Configuration.TLS
    }

    static func configuration(from url: String) throws -> Location {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, !host.isEmpty
        else {
            throw JobStoreError.invalidLocation("'\(url)' is not a PostgreSQL URL (postgres://user:password@host:port/database)")
        }
        let database = components.path.split(separator: "/").first.map(String.init)
        let mode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "disable"
        let tls: PostgresClient.Configuration.TLS
        switch mode {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        default: throw JobStoreError.invalidLocation("sslmode '\(mode)' is not one of disable, prefer, require")
        }
        return Location(
            host: host, port: components.port ?? 5432, user: components.user ?? "postgres",
            password: components.password, database: database, tls: tls)
    }

    private static func describe(_ error: any Error) -> String {
        if case JobStoreError.unavailable(let detail) = error {
            return detail.hasPrefix("PostgreSQL: ") ? String(detail.dropFirst("PostgreSQL: ".count)) : detail
        }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            if let underlying = error.underlying { return String(describing: underlying) }
            return String(describing: error.code)
        }
        return String(describing: error)
    }
}

struct DeadlineExceeded: Error, CustomStringConvertible {
    var description: String { "no answer in time" }
}

/// Runs `body`, or throws `DeadlineExceeded` once `limit` has passed.
func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw DeadlineExceeded()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
