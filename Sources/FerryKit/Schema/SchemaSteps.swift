import Foundation

/// One schema change ferry owns, identified by name and by the checksum of its statement text.
public struct SchemaStep: Sendable {
    public let name: String
    /// Run one at a time: Citus forwards a DDL statement's text to its workers, and refuses a text
    /// holding several.
    public let statements: [String]
    /// Checksums under which the same step counts as applied: its text on the other engine (a database
    /// moved from PostgreSQL to Citus applied the PostgreSQL text).
    public var equivalentChecksums: Set<String> = []
    /// A step that only makes runs faster. Pending, it is a warning rather than an error, so that
    /// upgrading ferry does not stop a scheduled job until someone runs `ferry schema apply`.
    public var onlySpeedsUpRuns = false

    public init(name: String, sql: String, onlySpeedsUpRuns: Bool = false) {
        self.init(name: name, statements: [sql], onlySpeedsUpRuns: onlySpeedsUpRuns)
    }

    /// `statements` without their final semicolons.
    public init(name: String, statements: [String], onlySpeedsUpRuns: Bool = false) {
        self.name = name
        self.statements = statements
        self.onlySpeedsUpRuns = onlySpeedsUpRuns
    }

    /// `statements` run only where `table` does not exist yet, as one statement (a step creating a table
    /// the application may already have made).
    static func whenMissing(_ table: TableName, _ statements: String) -> String {
        var tag = "$ferry$"
        while statements.contains(tag) { tag = "$ferry\(tag.count)$" }  // a table name may contain "$ferry$"
        return """
            DO \(tag)
            BEGIN
            IF to_regclass(\(sqlLiteral(table.quoted))) IS NULL THEN
            \(statements)
            END IF;
            END
            \(tag);
            """
    }

    /// The statements as one text: what the checksum covers and `schema status --sql` shows.
    public var sql: String {
        statements.count == 1 ? statements[0] : statements.map { $0 + ";" }.joined(separator: "\n")
    }

    /// The same step, also counting as applied where `other` (its text on the other engine) was.
    func equivalent(to other: SchemaStep) -> SchemaStep {
        var step = self
        if other.checksum != checksum { step.equivalentChecksums.insert(other.checksum) }
        return step
    }

    /// Each step of `steps` counting as applied where its namesake in `other` was.
    static func equivalent(_ steps: [SchemaStep], to other: [SchemaStep]) -> [SchemaStep] {
        steps.map { step in other.first { $0.name == step.name }.map { step.equivalent(to: $0) } ?? step }
    }

    /// sha256 of the statement with whitespace and line ends normalized, so re-indenting is not drift.
    public var checksum: String {
        let normalized = sql.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        return SHA256.hash(data: Data(normalized.utf8)).hexString
    }
}

public enum SchemaStepState: Equatable, Sendable {
    case pending
    case applied(at: String, by: String)
    /// Recorded under the same name with another checksum: the definition changed after it was applied.
    case drifted(recordedChecksum: String)
}

public struct SchemaStepStatus: Sendable {
    public let step: SchemaStep
    public let state: SchemaStepState
}

/// Applies schema steps in order, each in its own transaction with its record in `ferry.schema_steps`.
public struct SchemaMigrator {
    let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    static let bootstrap = SchemaStep(
        name: "ferry/ledger-schema",
        sql: """
            CREATE SCHEMA IF NOT EXISTS ferry;
            CREATE TABLE IF NOT EXISTS ferry.schema_steps (
                name text PRIMARY KEY,
                sha256 text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                applied_by text NOT NULL DEFAULT current_user,
                os_user text
            );
            """)

    public func status(_ steps: [SchemaStep]) throws -> [SchemaStepStatus] {
        let all = [Self.bootstrap] + steps
        let exists = try connection.query("SELECT to_regclass('ferry.schema_steps') IS NOT NULL")
            .value("ferry.schema_steps", as: Bool.self)
        var recorded: [String: (sha: String, at: String, by: String)] = [:]
        if exists {
            for row in try connection.query("SELECT name, sha256, applied_at::text, applied_by FROM ferry.schema_steps")
                .decoded("ferry.schema_steps", key: "name")
            {
                recorded[try row.required("name")] = (
                    try row.required("sha256"), try row.required("applied_at"), try row.required("applied_by")
                )
            }
        }
        return all.map { step in
            guard let record = recorded[step.name] else { return SchemaStepStatus(step: step, state: .pending) }
            if record.sha != step.checksum && !step.equivalentChecksums.contains(record.sha) {
                return SchemaStepStatus(step: step, state: .drifted(recordedChecksum: record.sha))
            }
            return SchemaStepStatus(step: step, state: .applied(at: record.at, by: record.by))
        }
    }

    /// Applies pending steps; drifted steps are reported, never re-run. When a step is pending, `snapshot`
    /// runs first (a schema-only copy of the affected tables). Returns the names of the steps applied now,
    /// the status after the run, and the snapshot taken.
    @discardableResult
    public func apply(
        _ steps: [SchemaStep], snapshot: (() throws -> SchemaSnapshot)? = nil
    )
        throws -> (applied: [String], status: [SchemaStepStatus], snapshot: SchemaSnapshot?)
    {
        var applied: [String] = []
        let osUser = ProcessInfo.processInfo.environment["USER"] ?? NSUserName()
        let pending = try status(steps).filter { $0.state == .pending }
        let taken = pending.isEmpty ? nil : try snapshot?()
        for entry in pending {
            try connection.transaction {
                for statement in entry.step.statements { try connection.execute(script: statement) }
                try connection.query(
                    "INSERT INTO ferry.schema_steps (name, sha256, os_user) VALUES ($1, $2, $3)",
                    [entry.step.name, entry.step.checksum, osUser])
            }
            applied.append(entry.step.name)
        }
        return (applied, try status(steps), taken)
    }
}
