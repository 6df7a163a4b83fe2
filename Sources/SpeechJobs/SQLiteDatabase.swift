import Foundation
import Logging
import SQLiteNIO

/// The embedded job database: one SQLite file (through sqlite-nio, which bundles SQLite and runs
/// its calls off the event loop). Write-ahead logging lets readers go on while a worker writes;
/// a transaction committed before a `kill -9` is on disk when the process starts again.
public final class SQLiteJobDatabase: SQLDatabase {
    public let dialect = SQLDialect.sqlite
    private let connection: SQLiteConnection

    private init(connection: SQLiteConnection) {
        self.connection = connection
    }

    /// Opens (creating if needed) the database file; its directory must exist.
    public static func open(path: String, logger: Logger) async throws -> SQLiteJobDatabase {
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw JobStoreError.unavailable("cannot open the SQLite database \(path): \(error)")
        }
        let database = SQLiteJobDatabase(connection: connection)
        // busy_timeout: a second process (an operator's `lark worker` on the same file) waits
        // for the writer instead of failing at once.
        _ = try await connection.query("PRAGMA journal_mode=WAL")
        _ = try await connection.query("PRAGMA busy_timeout=10000")
        _ = try await connection.query("PRAGMA synchronous=NORMAL")
        return database
    }

    public func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRecord] {
        let rows = try await connection.query(Self.sqlitePlaceholders(sql), binds.map(Self.data))
        return rows.map { row in
            var values: [String: SQLValue] = [:]
            for column in row.columns {
                switch column.data {
                case .integer(let value): values[column.name] = .integer(Int64(value))
                case .float(let value): values[column.name] = .integer(Int64(value))
                case .text(let value): values[column.name] = .text(value)
                case .blob, .null: values[column.name] = .null
                }
            }
            return SQLRecord(values: values)
        }
    }

    public func exclusively(_ body: @Sendable (any SQLExecutor) async throws -> Void) async throws {
        // BEGIN IMMEDIATE takes the write lock at once: another process migrating waits.
        _ = try await connection.query("BEGIN IMMEDIATE")
        do {
            try await body(self)
            _ = try await connection.query("COMMIT")
        } catch {
            _ = try? await connection.query("ROLLBACK")
            throw error
        }
    }

    public func close() async throws {
        try await connection.close()
    }

    /// `$1` → `?1`: the statements are written once, in PostgreSQL's spelling.
    static func sqlitePlaceholders(_ sql: String) -> String {
        var result = ""
        var previous: Character = " "
        for character in sql {
            if previous == "$", character.isNumber { result.removeLast(); result.append("?") }
            result.append(character)
            previous = character
        }
        return result
    }

    private static func data(_ value: SQLValue) -> SQLiteData {
        switch value {
        case .text(let text): .text(text)
        case .integer(let number): .integer(Int(number))
        case .null: .null
        }
    }
}
