/// One result row read by column name into Swift types. A NULL or an unreadable value where a value is
/// required throws, naming what the query was for, the column and the row's key, instead of becoming 0
/// or "" without a word; a column added to a SELECT shifts nothing.
public struct Row: Sendable {
    /// The result's column names, shared by its rows. Rows are read a few columns at a time, by short
    /// names: a scan comparing small strings costs less than hashing each name for a dictionary.
    let columns: [String]
    let values: [String?]
    /// What the query reads ("ferry.runs"), and the row's key once known, for error messages.
    let purpose: String
    var key: String?

    /// A value the row must have.
    public func required<T: PostgresText>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let text = try text(column) else {
            throw RowDecodingError(purpose: purpose, column: column, key: key, reason: "is NULL")
        }
        guard let value = T(postgresText: text) else {
            throw RowDecodingError(purpose: purpose, column: column, key: key, reason: "'\(text)' is not a \(T.self)")
        }
        return value
    }

    /// A value that may be NULL (an unreadable one still throws).
    public func optional<T: PostgresText>(_ column: String, as type: T.Type = T.self) throws -> T? {
        guard let text = try text(column) else { return nil }
        guard let value = T(postgresText: text) else {
            throw RowDecodingError(purpose: purpose, column: column, key: key, reason: "'\(text)' is not a \(T.self)")
        }
        return value
    }

    private func text(_ column: String) throws -> String? {
        // Lengths first: most names in a result differ in length, and comparing them costs no more than
        // reading a stored count (this runs for every column of every row read).
        let length = column.utf8.count
        guard let index = columns.firstIndex(where: { $0.utf8.count == length && $0 == column }) else {
            throw RowDecodingError(purpose: purpose, column: column, key: key, reason: "is not in the result")
        }
        return values[index]
    }
}

public struct RowDecodingError: Error, CustomStringConvertible, Sendable {
    public let purpose: String
    public let column: String
    public let key: String?
    public let reason: String
    public var description: String {
        "reading \(purpose): column \(column) \(reason)" + (key.map { " (row \($0))" } ?? "")
    }
}

/// A Swift type read from PostgreSQL's text form of a value.
public protocol PostgresText {
    init?(postgresText: String)
}

extension String: PostgresText { public init?(postgresText: String) { self = postgresText } }
extension Int: PostgresText { public init?(postgresText: String) { self.init(postgresText) } }
extension Int64: PostgresText { public init?(postgresText: String) { self.init(postgresText) } }
extension Double: PostgresText { public init?(postgresText: String) { self.init(postgresText) } }
/// A text array (`{a,b}`, `array(…)::text`).
extension Array: PostgresText where Element == String {
    public init?(postgresText: String) { self = parseTextArray(postgresText) }
}
extension Bool: PostgresText {
    public init?(postgresText: String) {
        switch postgresText {
        case "t": self = true
        case "f": self = false
        default: return nil
        }
    }
}

extension QueryResult {
    /// The value of a one-value result (`SELECT count(*)`, `SELECT to_regclass(…) IS NOT NULL`), typed: no
    /// row, a NULL or an unreadable value throws, naming what the query was for.
    public func value<T: PostgresText>(_ purpose: String, as type: T.Type = T.self) throws -> T {
        guard let text = rows.first?.first ?? nil else {
            throw RowDecodingError(
                purpose: purpose, column: columns.first ?? "?", key: nil,
                reason: rows.isEmpty ? "has no row" : "is NULL")
        }
        guard let value = T(postgresText: text) else {
            throw RowDecodingError(
                purpose: purpose, column: columns.first ?? "?", key: nil, reason: "'\(text)' is not a \(T.self)")
        }
        return value
    }

    /// The rows, each read by name; `key` names the column that identifies a row in error messages.
    public func decoded(_ purpose: String, key: String? = nil) -> [Row] {
        let keyIndex = key.flatMap { columns.firstIndex(of: $0) }
        return rows.map { values in
            Row(columns: columns, values: values, purpose: purpose, key: keyIndex.flatMap { values[$0] })
        }
    }
}
