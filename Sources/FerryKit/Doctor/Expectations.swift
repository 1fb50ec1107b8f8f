/// What a job expects of one table: it reads or writes it, these columns with these types, and the
/// keys and indexes its SQL relies on. `ferry doctor` and every job's preflight check these.
public struct TableExpectation: Sendable {
    public enum Use: String, Sendable {
        /// Read only (the legacy source, or any table during a plan).
        case read
        /// Rows are inserted, updated and deleted (by apply and by rollback).
        case write
    }

    public struct Column: Sendable {
        public let name: String
        /// The type as PostgreSQL's format_type prints it; nil accepts any type.
        public let type: String?
    }

    public struct Key: Sendable {
        public let columns: [String]
        /// A partial unique index, e.g. `WHERE is_default`.
        public var predicate: String?
        /// An ON CONFLICT clause needs it (error when missing); otherwise it guards an invariant (warning).
        public var required = true
        /// Why the job needs it, when not for ON CONFLICT or an invariant.
        public var reason: String?
    }

    public struct ForeignKey: Sendable {
        public let columns: [String]
        public let references: TableName
        public let referencedColumns: [String]
    }

    public let table: TableName
    public var use: Use
    public var columns: [Column] = []
    /// Rollback and resume find rows by the primary key.
    public var needsPrimaryKey = false
    /// Unique keys the job's ON CONFLICT clauses (error when missing) or invariants (warning) rely on.
    public var uniqueKeys: [Key] = []
    /// Indexes whose leading columns the job's queries use: missing is a warning (slow, not wrong).
    public var indexes: [[String]] = []
    /// Foreign keys that keep the written rows consistent: missing is a warning.
    public var foreignKeys: [ForeignKey] = []
    /// The schema step that creates the table, when ferry owns it.
    public var createdBy: SchemaStep?
    /// A query the mapping gives in place of a table (`table` then names where the mapping says it): it
    /// must run for the role and return `columns`; keys, indexes and privileges are not asked of it.
    public var query: String?

    public init(_ table: TableName, use: Use) {
        self.table = table
        self.use = use
    }

    mutating func column(_ name: String, _ type: String? = nil) {
        columns.append(Column(name: name, type: type))
    }
}

/// One thing `ferry doctor` found, with the SQL (or command) that fixes it.
public struct DoctorFinding: Codable, Equatable, Sendable {
    public enum Severity: String, Codable, Sendable {
        /// The job cannot run correctly: it refuses before the first batch.
        case error
        /// The job runs, but slower or with less protection.
        case warning
    }

    public let severity: Severity
    public let problem: String
    public let fix: String

    /// The problem with its fix, as preflight errors and the terminal list print it.
    public var text: String { "\(problem)\n      fix: \(fix.replacingOccurrences(of: "\n", with: "\n           "))" }

    /// The problem with the first line of its fix (preflight errors; `ferry doctor` prints the whole fix).
    var briefText: String {
        let lines = fix.split(separator: "\n", omittingEmptySubsequences: false)
        return "\(problem)\n      fix: \(lines[0])" + (lines.count > 1 ? "   (`ferry doctor` prints the SQL)" : "")
    }
}
