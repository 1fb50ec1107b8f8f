import Foundation

/// A rule the rows a rollback leaves behind must keep, recorded by the job that wrote them: in `table`,
/// every group of rows (by `group`) that keeps rows keeps one with `flag` true. The phones' "exactly
/// one default per contact with phones" is one: deleting ferry's default row of a contact to which the
/// application has since added a number would leave that contact without a default.
public struct RollbackInvariant: Codable, Equatable, Sendable {
    /// Qualified as `SnapshotTable` resolves it (the name snapshot rows carry).
    public let table: String
    public let group: [String]
    public let flag: String

    public init(table: String, group: [String], flag: String) {
        self.table = table
        self.group = group
        self.flag = flag
    }
}

extension RunLedger {
    static let invariantEvent = "rollback invariant"

    /// Records the rule with the run (once per process that writes: a resumed run records it again,
    /// and rollback reads each rule once).
    public func record(_ invariant: RollbackInvariant, runId: Int64) throws {
        let group = String(decoding: try JSONEncoder.sorted.encode(invariant.group), as: UTF8.self)
        try event(
            runId: runId, kind: Self.invariantEvent,
            detail: ["table": invariant.table, "group": group, "flag": invariant.flag])
    }

    func invariants(runId: Int64) throws -> [RollbackInvariant] {
        try connection.query(
            """
            SELECT DISTINCT detail->>'table' AS "table", detail->>'group' AS "group", detail->>'flag' AS flag
            FROM ferry.events WHERE run_id = $1 AND kind = $2
            """, [String(runId), Self.invariantEvent]
        ).decoded("the run's rollback invariants", key: "table").map { row in
            let group: String = try row.required("group")
            return RollbackInvariant(
                table: try row.required("table"),
                group: try JSONDecoder().decode([String].self, from: Data(group.utf8)),
                flag: try row.required("flag"))
        }
    }
}

/// A foreign key that references a table a run wrote to.
struct ReferencingKey: Sendable {
    let table: String
    let columns: [String]
    let referencedColumns: [String]

    static func all(referencing table: String, on connection: PostgresConnection) throws -> [ReferencingKey] {
        try connection.query(
            """
            SELECT format('%I.%I', n.nspname, c.relname) AS referencing,
                   (SELECT array_agg(a.attname ORDER BY u.ord) FROM unnest(k.conkey) WITH ORDINALITY u (attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum)::text AS columns,
                   (SELECT array_agg(a.attname ORDER BY u.ord) FROM unnest(k.confkey) WITH ORDINALITY u (attnum, ord)
                    JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum)::text AS referenced
            FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE k.contype = 'f' AND k.confrelid = to_regclass($1)
            ORDER BY 1
            """, [table]
        ).decoded("foreign keys referencing \(table)", key: "referencing").map { row in
            ReferencingKey(
                table: try row.required("referencing"), columns: try row.required("columns"),
                referencedColumns: try row.required("referenced"))
        }
    }
}

/// Which of a run's inserted rows in one table a rollback deletes, as common table expressions over
/// `ferry.snapshot_rows` ($1 run, $2 table) that the classification and the delete share:
/// - `candidates`: rows the run inserted that are still exactly as written (every one with --force);
/// - `kept_invariant`: candidates whose deletion would break a recorded `RollbackInvariant`, because
///   their group keeps rows the rollback does not delete (never with --force);
/// - `kept_referenced`: other candidates that rows still in place reference (tables are undone in
///   reverse order of writing, so a referencing row of the same run is already gone by then).
/// Set-based: a correlated subquery per row did not scale to large runs.
struct RollbackRules {
    let run: Int64
    let force: Bool
    let invariants: [RollbackInvariant]

    /// The ledger records the rows rollbacks restore (`LedgerSchema.restoredRowsStep`); without that
    /// step a restored row counts as changed, as it did before the step.
    let followsRestores: Bool

    init(run: Int64, force: Bool, ledger: RunLedger) throws {
        self.run = run
        self.force = force
        invariants = try ledger.invariants(runId: run)
        followsRestores = try ledger.recordsRestoredRows()
    }

    /// True while row `t` is still exactly what snapshot row `s` recorded as written: its xmin is the
    /// writing batch's transaction (any later UPDATE makes a new row version), or a rollback of a later
    /// run restored it from a pre-image taken while its xmin was that transaction; or its hash matches.
    /// With --force every row counts as unchanged.
    func unchanged(_ t: String, _ s: String) -> String {
        if force { return "true" }
        let written =
            "(SELECT b.xid % 4294967296 FROM ferry.batches b WHERE b.run_id = \(s).run_id AND b.batch_no = \(s).batch_no)"
        let restored =
            followsRestores
            ? """

                   OR EXISTS (SELECT 1 FROM ferry.restored_rows ferry_restored
                              WHERE ferry_restored.table_name = \(s).table_name AND ferry_restored.key = \(s).key
                                AND ferry_restored.restored_xmin = \(t).xmin::text::bigint
                                AND ferry_restored.original_xmin = \(written))
            """ : ""
        return """
            CASE WHEN \(s).after_hash IS NOT NULL THEN md5(\(t)::text) = \(s).after_hash
                 ELSE \(t).xmin::text::bigint = \(written)\(restored) END
            """
    }

    func commonTableExpressions(_ table: SnapshotTable, references: [ReferencingKey]) -> String {
        let rules = force ? [] : invariants.filter { $0.table == table.qualifiedName }
        let groupColumns = Array(
            Set(rules.flatMap(\.group) + rules.map(\.flag) + references.flatMap(\.referencedColumns))
        ).sorted()
        let carried = groupColumns.map { ", t.\(quoteIdentifier($0))" }.joined()
        var sql = """
            candidates AS MATERIALIZED (
                SELECT s.ctid AS snapshot_row, t.ctid AS row_id\(carried)
                FROM ferry.snapshot_rows s JOIN \(table.qualifiedName) t ON \(table.keyMatch(table: "t", snapshot: "s"))
                WHERE s.run_id = $1 AND s.table_name = $2 AND s.action = 'insert' AND \(unchanged("t", "s"))
            )
            """
        var invariantKept: [String] = []
        for (index, rule) in rules.enumerated() {
            let group = rule.group.map(quoteIdentifier).joined(separator: ", ")
            let sameGroup = rule.group.map { "o.\(quoteIdentifier($0)) = c.\(quoteIdentifier($0))" }.joined(
                separator: " AND ")
            // A flagged candidate stays when its group holds more rows now than the rollback deletes from it.
            sql += """
                , deleted_per_group_\(index) AS (
                    SELECT \(group), count(*) AS deleted FROM candidates GROUP BY \(group)
                ), kept_invariant_\(index) AS (
                    SELECT c.row_id FROM candidates c JOIN deleted_per_group_\(index) d USING (\(group))
                    WHERE c.\(quoteIdentifier(rule.flag))
                      AND (SELECT count(*) FROM \(table.qualifiedName) o WHERE \(sameGroup)) > d.deleted
                )
                """
            invariantKept.append("SELECT row_id FROM kept_invariant_\(index)")
        }
        sql +=
            ", kept_invariant AS (\(invariantKept.isEmpty ? "SELECT NULL::tid AS row_id WHERE false" : invariantKept.joined(separator: " UNION ")))"
        let referenced = references.map { key in
            let joined = zip(key.columns, key.referencedColumns)
                .map { "r.\(quoteIdentifier($0)) = c.\(quoteIdentifier($1))" }.joined(separator: " AND ")
            return "EXISTS (SELECT 1 FROM \(key.table) r WHERE \(joined))"
        }
        sql += """
            , kept_referenced AS (
                SELECT c.row_id FROM candidates c
                WHERE \(referenced.isEmpty ? "false" : referenced.joined(separator: " OR "))
                  AND c.row_id NOT IN (SELECT row_id FROM kept_invariant)
            ), deletable AS (
                SELECT c.snapshot_row, c.row_id FROM candidates c
                WHERE c.row_id NOT IN (SELECT row_id FROM kept_invariant) AND c.row_id NOT IN (SELECT row_id FROM kept_referenced)
            )
            """
        return sql
    }
}
