import Foundation
import Logging

/// Where the job queue lives, as `--queue` names it: a SQLite file (`sqlite:///path/jobs.db`, or
/// a plain path) for one process, or `postgres://…` shared by many workers.
public enum JobQueueLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    public init(_ text: String) throws {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(url: text)
        } else if text.hasPrefix("sqlite://") {
            let path = String(text.dropFirst("sqlite://".count))
            guard path.hasPrefix("/") || !path.isEmpty else { throw JobStoreError.invalidLocation("'\(text)' names no file") }
            self = .sqlite(path: path)
        } else if text.contains("://") {
            throw JobStoreError.invalidLocation("--queue '\(text)' is neither sqlite:///path nor postgres://…")
        } else {
            self = .sqlite(path: text)
        }
    }

    /// The location without a password, for logs and messages.
    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite://\(path)"
        case .postgres(let url):
            guard var components = URLComponents(string: url) else { return "postgres://…" }
            if components.password != nil { components.password = "***" }
            return components.string ?? "postgres://…"
        }
    }

    /// Opens the database and brings its schema up to date; a PostgreSQL server that does not
    /// answer within `timeout` is reported unreachable.
    public func open(logger: Logger, timeout: Duration = .seconds(10)) async throws -> SQLJobStore {
        let database: any SQLDatabase
        switch self {
        case .sqlite(let path):
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw JobStoreError.unavailable("cannot create \(directory) for the job database: \(error.localizedDescription)")
            }
            database = try await SQLiteJobDatabase.open(path: path, logger: logger)
        case .postgres(let url):
            database = try await PostgresJobDatabase.connect(url: url, logger: logger, timeout: timeout)
        }
        let store = SQLJobStore(database: database)
        do {
            try await store.migrate()
        } catch {
            try? await store.close()
            throw JobStoreError.unavailable("the job database \(self) could not be prepared: \(error)")
        }
        return store
    }
}
