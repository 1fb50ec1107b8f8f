/// Rollback of one Citus distributed table. The rules are those of `RollbackRules` (a row is undone only
/// while it is exactly as the run wrote it; rows kept for a recorded invariant or still referenced are
/// conflicts), judged without what Citus cannot do: a row's `ctid` and `xmin` belong to its worker, and a
/// statement may not join the coordinator's ledger with a distributed table. So the run's snapshot rows
/// for the table are first copied into a scratch table distributed like it (`prepare`, before the
/// rollback's transaction: Citus creates distributed tables outside one), every judgement is a statement
/// between two tables colocated on the tenant, and "unchanged" is the hash recorded when the row was
/// written (`SnapshotTable.hashesRows`).
struct DistributedRollback {
    let snapshot: SnapshotTable
    let scratch: String
    let distributionColumn: String
    let distributionType: String

    /// Creates the scratch table for `snapshot` (outside any transaction); nil when the table is not distributed.
    static func prepare(
        _ snapshot: SnapshotTable, runId: Int64, index: Int, on connection: PostgresConnection
    ) throws -> DistributedRollback? {
        guard snapshot.hashesRows else { return nil }
        guard
            let placement = try connection.query(
                """
                SELECT column_to_column_name(logicalrelid, partkey) AS column_name,
                       (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                        WHERE a.attrelid = logicalrelid AND a.attname = column_to_column_name(logicalrelid, partkey)) AS column_type
                FROM pg_dist_partition WHERE logicalrelid = to_regclass($1) AND partmethod = 'h'
                """, [snapshot.qualifiedName]
            ).decoded("the distribution of \(snapshot.qualifiedName)").first
        else {
            throw LedgerError(
                "\(snapshot.qualifiedName) is a Citus table but not hash-distributed: ferry cannot roll it back there; nothing was changed"
            )
        }
        let rollback = DistributedRollback(
            snapshot: snapshot, scratch: TableName(schema: "ferry", name: "rollback_\(runId)_\(index)").quoted,
            distributionColumn: try placement.required("column_name"),
            distributionType: try placement.required("column_type"))
        guard snapshot.keyColumns.contains(where: { $0.name == rollback.distributionColumn }) else {
            throw LedgerError(
                "the primary key of \(snapshot.qualifiedName) lacks its distribution column \(rollback.distributionColumn); nothing was changed"
            )
        }
        try connection.execute(script: "DROP TABLE IF EXISTS \(rollback.scratch)")
        try connection.execute(
            script: """
                CREATE UNLOGGED TABLE \(rollback.scratch) (
                    tenant \(rollback.distributionType) NOT NULL,
                    action text NOT NULL,
                    key jsonb NOT NULL,
                    after_hash text,
                    -- Set by the judgement: the row as it is now (for the rules' group and reference columns),
                    -- and its xmin then, which the delete compares (a worker's own id, compared on that worker).
                    judged boolean NOT NULL DEFAULT false,
                    current jsonb,
                    seen_xmin text,
                    state text,
                    kept text,
                    done boolean NOT NULL DEFAULT false
                )
                """)
        try connection.query(
            "SELECT create_distributed_table($1, $2, colocate_with => $3)",
            [rollback.scratch, "tenant", snapshot.qualifiedName])
        return rollback
    }

    /// After the rollback's transaction ended.
    func drop(on connection: PostgresConnection) {
        _ = try? connection.execute(script: "DROP TABLE IF EXISTS \(scratch)")
    }

    private var table: String { snapshot.qualifiedName }
    private var sameRow: String {
        "t.\(quoteIdentifier(distributionColumn)) = s.tenant AND \(snapshot.keyMatch(table: "t", snapshot: "s"))"
    }

    /// Classifies the run's rows of the table (in the rollback's transaction): what `RollbackTableReport` counts.
    func classify(
        runId: Int64, force: Bool, invariants: [RollbackInvariant], references: [ReferencingKey],
        connection: PostgresConnection
    ) throws -> RollbackTableReport {
        let run = [String(runId), table]
        if try connection.query(
            "SELECT count(*) FROM ferry.snapshot_rows WHERE run_id = $1 AND table_name = $2 AND action <> 'insert'", run
        ).value("the run's updates and deletes of \(table)", as: Int.self) > 0 {
            throw LedgerError(
                "run \(runId) updated or deleted rows of \(table): restoring them on Citus is not supported yet; nothing was changed"
            )
        }
        try connection.query(
            """
            INSERT INTO \(scratch) (tenant, action, key, after_hash)
            SELECT (s.key ->> \(sqlLiteral(distributionColumn)))::\(distributionType), s.action, s.key, s.after_hash
            FROM ferry.snapshot_rows s WHERE s.run_id = $1 AND s.table_name = $2
            """, run)
        // A row without a recorded hash was written where xmin judged it: here it counts as changed. Citus
        // takes the row's text form (a STABLE function) in a SELECT but not in an UPDATE: the judgement is
        // inserted beside the loaded rows, which then go.
        let unchanged = force ? "true" : "s.after_hash IS NOT NULL AND \(SnapshotTable.rowHash("t")) = s.after_hash"
        try connection.query(
            """
            INSERT INTO \(scratch) (tenant, action, key, after_hash, judged, current, seen_xmin, state)
            SELECT s.tenant, s.action, s.key, s.after_hash, true, to_jsonb(t), t.xmin::text,
                   CASE WHEN t.\(quoteIdentifier(distributionColumn)) IS NULL THEN NULL
                        WHEN \(unchanged) THEN 'unchanged' ELSE 'changed' END
            FROM \(scratch) s LEFT JOIN \(table) t ON \(sameRow)
            WHERE NOT s.judged
            """)
        try connection.query("DELETE FROM \(scratch) WHERE NOT judged")
        let candidate = "s.action = 'insert' AND s.state = 'unchanged' AND s.kept IS NULL"
        for rule in force ? [] : invariants.filter({ $0.table == table }) {
            try keep(for: rule, candidate: candidate, connection: connection)
        }
        for key in references {
            try keepReferenced(by: key, candidate: candidate, connection: connection)
        }
        let row = try connection.query(
            """
            SELECT count(*) FILTER (WHERE state = 'unchanged' AND kept IS NULL) AS unchanged,
                   count(*) FILTER (WHERE state = 'changed') AS changed_since,
                   count(*) FILTER (WHERE state IS NULL) AS already_gone,
                   count(*) FILTER (WHERE kept = 'invariant') AS kept_for_invariant,
                   count(*) FILTER (WHERE kept = 'referenced') AS still_referenced
            FROM \(scratch)
            """
        ).decoded("the rollback's classification of \(table)")
        guard let counts = row.first else { throw LedgerError("no classification for \(table)") }
        var report = RollbackTableReport(table: table)
        report.unchanged = try counts.required("unchanged")
        report.changedSince = try counts.required("changed_since")
        report.alreadyGone = try counts.required("already_gone")
        report.keptForInvariant = try counts.required("kept_for_invariant")
        report.stillReferenced = try counts.required("still_referenced")
        return report
    }

    /// A flagged candidate stays when its group holds more rows now than the rollback deletes from it.
    private func keep(for rule: RollbackInvariant, candidate: String, connection: PostgresConnection) throws {
        guard rule.group.contains(distributionColumn) else {
            // Counting a group across tenants would join other workers' rows: keep every flagged row instead.
            try connection.query(
                "UPDATE \(scratch) s SET kept = 'invariant' WHERE \(candidate) AND (s.current ->> \(sqlLiteral(rule.flag)))::boolean"
            )
            return
        }
        let others = rule.group.filter { $0 != distributionColumn }
        let groupOfScratch = others.map { "s.current ->> \(sqlLiteral($0))" }
        let groupOfTable = others.map { "t.\(quoteIdentifier($0))::text" }
        let selectGroup = zip(groupOfScratch, others.indices).map { "\($0) AS g\($1)" }
        let sameGroup = others.indices.map { "d.g\($0) = n.g\($0)" } + ["d.tenant = n.tenant"]
        let scratchInGroup = others.indices.map { "\(groupOfScratch[$0]) = d.g\($0)" } + ["s.tenant = d.tenant"]
        try connection.query(
            """
            WITH deleted AS (
                SELECT s.tenant\(selectGroup.map { ", " + $0 }.joined()), count(*) AS n
                FROM \(scratch) s WHERE \(candidate) GROUP BY 1\(others.indices.map { ", \($0 + 2)" }.joined())
            ), now_in_group AS (
                SELECT t.\(quoteIdentifier(distributionColumn)) AS tenant\(zip(groupOfTable, others.indices).map { ", \($0) AS g\($1)" }.joined()), count(*) AS n
                FROM \(table) t GROUP BY 1\(others.indices.map { ", \($0 + 2)" }.joined())
            ), kept AS (
                SELECT d.* FROM deleted d JOIN now_in_group n ON \(sameGroup.joined(separator: " AND ")) WHERE n.n > d.n
            )
            UPDATE \(scratch) s SET kept = 'invariant' FROM kept d
            WHERE \(scratchInGroup.joined(separator: " AND ")) AND \(candidate)
              AND (s.current ->> \(sqlLiteral(rule.flag)))::boolean
            """)
    }

    private func keepReferenced(by key: ReferencingKey, candidate: String, connection: PostgresConnection) throws {
        let joined = zip(key.columns, key.referencedColumns).map { column, referenced in
            referenced == distributionColumn
                ? "r.\(quoteIdentifier(column)) = s.tenant"
                : "r.\(quoteIdentifier(column))::text = s.current ->> \(sqlLiteral(referenced))"
        }
        try connection.query(
            """
            UPDATE \(scratch) s SET kept = 'referenced'
            WHERE \(candidate) AND EXISTS (SELECT 1 FROM \(key.table) r WHERE \(joined.joined(separator: " AND ")))
            """)
    }

    func conflictExamples(connection: PostgresConnection) throws -> [String] {
        try connection.query(
            """
            SELECT key::text AS key, CASE WHEN state = 'changed' THEN 'changed since the run'
                                          WHEN kept = 'invariant' THEN 'kept: deleting it would leave its group with rows but none marked as the default'
                                          ELSE 'still referenced by newer rows' END AS reason
            FROM \(scratch) WHERE state = 'changed' OR kept IS NOT NULL
            ORDER BY state, key::text LIMIT 20
            """
        ).decoded("the rollback's conflicts in \(table)").map {
            "\(table) \(try $0.required("key", as: String.self)): \(try $0.required("reason", as: String.self))"
        }
    }

    /// Deletes the rows still as written and not kept; drops the snapshot rows of those and of rows
    /// already gone. Returns the rows deleted.
    func undo(runId: Int64, force: Bool, connection: PostgresConnection) throws -> Int {
        // Unchanged since the judgement: the same row version on its worker.
        let unchanged = force ? "true" : "t.xmin::text = s.seen_xmin"
        let deleted = try connection.query(
            """
            DELETE FROM \(table) t USING \(scratch) s
            WHERE \(sameRow) AND s.action = 'insert' AND s.state = 'unchanged' AND s.kept IS NULL AND \(unchanged)
            """
        ).affectedRows
        // Done is what is gone now (deleted here or before): a row changed since the classification stays
        // undoable.
        try connection.query(
            """
            UPDATE \(scratch) s SET done = true
            WHERE s.action = 'insert' AND NOT EXISTS (SELECT 1 FROM \(table) t WHERE \(sameRow))
            """)
        // By key (a run inserts a row once): Citus plans no modification by ctid, a local table's included.
        try connection.query(
            """
            DELETE FROM ferry.snapshot_rows
            WHERE run_id = $1 AND table_name = $2 AND action = 'insert' AND key IN (SELECT key FROM \(scratch) WHERE done)
            """, [String(runId), table])
        return deleted
    }
}
