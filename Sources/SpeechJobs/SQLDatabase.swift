/// The little that `SQLJobStore` needs from a database, so that one set of SQL statements serves
/// SQLite and PostgreSQL. Statements are written with PostgreSQL's `$1, $2…` placeholders; the
/// SQLite backend reads them as its own `?1, ?2…`.
public protocol SQLDatabase: SQLExecutor {
    var dialect: SQLDialect { get }
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRecord]
    /// Runs `body` in one transaction that no other process runs at the same time (schema
    /// migrations), with `query` of its own.
    func exclusively(_ body: @Sendable (any SQLExecutor) async throws -> Void) async throws
    func close() async throws
}

public protocol SQLExecutor: Sendable {
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRecord]
}

extension SQLExecutor {
    @discardableResult
    func execute(_ sql: String, _ binds: SQLValue...) async throws -> [SQLRecord] {
        try await query(sql, binds)
    }
}

public enum SQLDialect: Sendable {
    case sqlite, postgres

    /// Column type for a 64-bit integer.
    var bigint: String { self == .sqlite ? "INTEGER" : "BIGINT" }
    /// The claim's row lock: PostgreSQL skips rows other workers are claiming; SQLite has one
    /// writer at a time, so the single statement is atomic already.
    var skipLocked: String { self == .sqlite ? "" : "FOR UPDATE SKIP LOCKED" }
}

public enum SQLValue: Sendable, Equatable {
    case text(String)
    case integer(Int64)
    case null

    static func optional(_ text: String?) -> SQLValue { text.map(SQLValue.text) ?? .null }
    static func optional(_ number: Int64?) -> SQLValue { number.map(SQLValue.integer) ?? .null }
    static func int(_ number: Int) -> SQLValue { .integer(Int64(number)) }
}

/// One row, by column name.
public struct SQLRecord: Sendable {
    var values: [String: SQLValue]

    func text(_ column: String) throws -> String {
        guard case .text(let value)? = values[column] else { throw JobStoreError.corruptRow("column \(column) is not text") }
        return value
    }

    func optionalText(_ column: String) -> String? {
        if case .text(let value)? = values[column] { return value }
        return nil
    }

    func integer(_ column: String) throws -> Int64 {
        guard case .integer(let value)? = values[column] else { throw JobStoreError.corruptRow("column \(column) is not a number") }
        return value
    }

    func optionalInteger(_ column: String) -> Int64? {
        if case .integer(let value)? = values[column] { return value }
        return nil
    }
}
