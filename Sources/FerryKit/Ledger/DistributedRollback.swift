/// Rollback of one Citus distributed table. The rules are those of `RollbackRules` (a row is undone only
/// while it is exactly as the run wrote it; rows kept for a recorded invariant or still referenced are
/// conflicts), judged without what Citus cannot do: a row's `ctid` and `xmin` belong to its worker, and a
/// statement may not join the coordinator's ledger with a distributed table. So the run's snapshot rows
/// for the table are first copied into a scratch table distributed like it (`prepare`, before the
/// rollback's transaction: Citus creates distributed tables outside one), every judgement is a statement
/// between two tables colocated on the tenant, and "unchanged" is the hash recorded when the row was
/// written (`SnapshotTable.hashesRows`). Pre-images of updated and deleted rows are restored through a
/// second scratch table shaped like the table (`images`): Citus takes no STABLE function of a column in
/// an UPDATE, so the JSON pre-images become typed rows in an INSERT first.
struct DistributedRollback {
    let snapshot: SnapshotTable
    let scratch: String
    let distributionColumn: String
    let distributionType: String
    /// The typed pre-images, when the run updated or deleted rows of the table.
    var images: String?

    /// Creates the scratch table for `snapshot` (outside any transaction); nil when the table is not distributed.
    static func prepare(
        _ snapshot: SnapshotTable, runId: Int64, index: Int, on connection: PostgresConnection
    ) throws -> DistributedRollback? {
        guard snapshot.hashesRows else { return nil }
        guard let placement = try distribution(of: snapshot, on: connection) else {
            throw LedgerError(
                "\(snapshot.qualifiedName) is a Citus table but not hash-distributed: ferry cannot roll it back there; nothing was changed"
            )
        }
        var rollback = DistributedRollback(
            snapshot: snapshot, scratch: TableName(schema: "ferry", name: "rollback_\(runId)_\(index)").quoted,
            distributionColumn: placement.column, distributionType: placement.type)
        guard snapshot.keyColumns.contains(where: { $0.name == rollback.distributionColumn }) else {
            throw LedgerError(
                "the primary key of \(snapshot.qualifiedName) lacks its distribution column \(rollback.distributionColumn); nothing was changed"
            )
        }
        try createScratch(
            rollback.scratch,
            """
            (
                tenant \(rollback.distributionType) NOT NULL,
                action text NOT NULL,
                key jsonb NOT NULL,
                before jsonb,
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
            """, distributedBy: "tenant", colocatedWith: snapshot, on: connection)
        if try connection.query(
            "SELECT EXISTS (SELECT 1 FROM ferry.snapshot_rows WHERE run_id = $1 AND table_name = $2 AND action <> 'insert')",
            [String(runId), snapshot.qualifiedName]
        ).value("whether run \(runId) updated or deleted rows of \(snapshot.qualifiedName)", as: Bool.self) {
            let images = TableName(schema: "ferry", name: "rollback_\(runId)_\(index)_images").quoted
            try createScratch(
                images, "(LIKE \(snapshot.qualifiedName))", distributedBy: rollback.distributionColumn,
                colocatedWith: snapshot, on: connection)
            rollback.images = images
        }
        return rollback
    }

    /// After the rollback's transaction ended.
    func drop(on connection: PostgresConnection) {
        _ = try? connection.execute(script: "DROP TABLE IF EXISTS \(scratch)")
        if let images { _ = try? connection.execute(script: "DROP TABLE IF EXISTS \(images)") }
    }

    private var table: String { snapshot.qualifiedName }
    /// The pre-image `i` (in `images`) is the row a snapshot row `s` (in the scratch table) restores.
    private var sameImage: String {
        "i.\(quoteIdentifier(distributionColumn)) = s.tenant AND \(snapshot.keyMatch(table: "i", snapshot: "s"))"
    }

    private var sameRow: String {
        "t.\(quoteIdentifier(distributionColumn)) = s.tenant AND \(snapshot.keyMatch(table: "t", snapshot: "s"))"
    }

    /// Classifies the run's rows of the table (in the rollback's transaction): what `RollbackTableReport` counts.
    func classify(
        runId: Int64, force: Bool, invariants: [RollbackInvariant], references: [ReferencingKey],
        connection: PostgresConnection
    ) throws -> RollbackTableReport {
        let run = [String(runId), table]
        try connection.query(
            """
            INSERT INTO \(scratch) (tenant, action, key, before, after_hash)
            SELECT (s.key ->> \(sqlLiteral(distributionColumn)))::\(distributionType), s.action, s.key, s.before, s.after_hash
            FROM ferry.snapshot_rows s WHERE s.run_id = $1 AND s.table_name = $2
            """, run)
        // A row without a recorded hash was written where xmin judged it: here it counts as changed. Citus
        // takes the row's text form (a STABLE function) in a SELECT but not in an UPDATE: the judgement is
        // inserted beside the loaded rows, which then go.
        let unchanged = force ? "true" : "s.after_hash IS NOT NULL AND \(SnapshotTable.rowHash("t")) = s.after_hash"
        try connection.query(
            """
            INSERT INTO \(scratch) (tenant, action, key, before, after_hash, judged, current, seen_xmin, state)
            SELECT s.tenant, s.action, s.key, s.before, s.after_hash, true, to_jsonb(t), t.xmin::text,
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
            SELECT count(*) FILTER (WHERE action = 'delete' OR (state = 'unchanged' AND kept IS NULL)) AS unchanged,
                   count(*) FILTER (WHERE action <> 'delete' AND state = 'changed') AS changed_since,
                   count(*) FILTER (WHERE action <> 'delete' AND state IS NULL) AS already_gone,
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
            FROM \(scratch) WHERE action <> 'delete' AND (state = 'changed' OR kept IS NOT NULL)
            ORDER BY state, key::text LIMIT 20
            """
        ).decoded("the rollback's conflicts in \(table)").map {
            "\(table) \(try $0.required("key", as: String.self)): \(try $0.required("reason", as: String.self))"
        }
    }

    /// What `undo` did: rows undone, and rows a foreign or unique key kept from going back (see
    /// `Rollback.refusesRestore`), with examples.
    struct Undone {
        var rows = 0
        var cannotGoBack = 0
        var conflicts: [String] = []
    }

    /// Deletes the inserted rows still as written and not kept, restores the updated rows still as
    /// written and the deleted rows still absent (those a key refuses stay, conflicts); drops the
    /// snapshot rows of what is undone and of rows already gone.
    func undo(runId: Int64, force: Bool, connection: PostgresConnection) throws -> Undone {
        // Unchanged since the judgement: the same row version on its worker.
        let unchanged = force ? "true" : "t.xmin::text = s.seen_xmin"
        var undone = try connection.query(
            """
            DELETE FROM \(table) t USING \(scratch) s
            WHERE \(sameRow) AND s.action = 'insert' AND s.state = 'unchanged' AND s.kept IS NULL AND \(unchanged)
            """
        ).affectedRows
        var result = Undone()
        if images != nil {
            undone += try restorePreImages(runId: runId, unchanged: unchanged, connection: connection, into: &result)
        }
        // Done is what is gone now (deleted here or before): a row changed since the classification stays
        // undoable.
        try connection.query(
            """
            UPDATE \(scratch) s SET done = true
            WHERE s.action <> 'delete' AND NOT EXISTS (SELECT 1 FROM \(table) t WHERE \(sameRow))
            """)
        // By key (a run writes a row once per action): Citus plans no modification by ctid, a local table's included.
        try connection.query(
            """
            DELETE FROM ferry.snapshot_rows
            WHERE run_id = $1 AND table_name = $2 AND (action, key) IN (SELECT action, key FROM \(scratch) WHERE done)
            """, [String(runId), table])
        result.rows = undone
        return result
    }

    /// Updated rows back to their pre-images, deleted rows back in; each marked done in the scratch table.
    /// Rows a key refuses are counted into `undone`, with examples.
    private func restorePreImages(
        runId: Int64, unchanged: String, connection: PostgresConnection, into undone: inout Undone
    ) throws -> Int {
        guard let images else { return 0 }
        let columns = try connection.writableColumns(table)
        let reinserted = try connection.columnsOfDeletedPreImages(table, runId: runId)
        // `some`: only the rows of tenant $1 whose keys $2 (a text array) names.
        let someRows = { (some: Bool) in
            some ? " AND s.tenant = $1::\(self.distributionType) AND s.key = ANY ($2::text[]::jsonb[])" : ""
        }
        try connection.query(
            """
            INSERT INTO \(images)
            SELECT (jsonb_populate_record(t, s.before)).* FROM \(scratch) s LEFT JOIN \(table) t ON \(sameRow)
            WHERE s.action = 'delete' OR (s.action = 'update' AND s.state = 'unchanged')
            """)
        var restored = try restoreEach(
            "s.action = 'update' AND s.state = 'unchanged'", connection: connection, into: &undone
        ) { some in
            """
            UPDATE \(table) t SET (\(columns.joined(separator: ", "))) = (\(columns.map { "i." + $0 }.joined(separator: ", ")))
            FROM \(scratch) s, \(images) i
            WHERE \(sameRow) AND \(sameImage) AND t.\(quoteIdentifier(distributionColumn)) = i.\(quoteIdentifier(distributionColumn))
              AND s.action = 'update' AND s.state = 'unchanged' AND \(unchanged)\(someRows(some))
            """
        }
        if !reinserted.isEmpty {
            restored += try restoreEach("s.action = 'delete'", connection: connection, into: &undone) { some in
                """
                INSERT INTO \(table) (\(reinserted.joined(separator: ", ")))
                SELECT \(reinserted.map { "i." + $0 }.joined(separator: ", ")) FROM \(images) i JOIN \(scratch) s ON \(sameImage)
                WHERE s.action = 'delete'\(someRows(some)) AND NOT EXISTS (
                    SELECT 1 FROM \(table) t WHERE t.\(quoteIdentifier(distributionColumn)) = i.\(quoteIdentifier(distributionColumn))
                      AND \(snapshot.keyMatch(table: "t", snapshot: "s")))
                """
            }
        }
        // A restored row is now its pre-image, in a version this rollback wrote. Citus compares row text
        // forms in a SELECT but not in an UPDATE: the done rows are inserted again, marked, and the
        // unmarked copies go.
        try connection.query(
            """
            INSERT INTO \(scratch) (tenant, action, key, before, after_hash, judged, current, seen_xmin, state, kept, done)
            SELECT s.tenant, s.action, s.key, s.before, s.after_hash, s.judged, s.current, s.seen_xmin, s.state, s.kept, true
            FROM \(scratch) s JOIN \(table) t ON \(sameRow) JOIN \(images) i ON \(sameImage)
            WHERE s.action = 'update' AND s.state = 'unchanged' AND NOT s.done
              AND t.xmin::text <> s.seen_xmin AND t::text = i::text
            """)
        try connection.query(
            """
            DELETE FROM \(scratch) s
            WHERE s.action = 'update' AND NOT s.done
              AND EXISTS (SELECT 1 FROM \(scratch) d WHERE d.tenant = s.tenant AND d.key = s.key AND d.action = 'update' AND d.done)
            """)
        // The plain rollback's rule: a deleted row's snapshot goes once the row is back (or was put back).
        try connection.query(
            "UPDATE \(scratch) s SET done = true WHERE s.action = 'delete' AND EXISTS (SELECT 1 FROM \(table) t WHERE \(sameRow))"
        )
        return restored
    }
    /// Runs `statement(false)` for every row; when a foreign or unique key refuses it (see
    /// `Rollback.refusesRestore`), `statement(true)` tenant by tenant ($1) over the keys ($2) of the
    /// scratch rows `which` selects, in halves down to the rows refused (`Rollback.putBack`), which are
    /// left out and counted into `undone`.
    private func restoreEach(
        _ which: String, connection: PostgresConnection, into undone: inout Undone, _ statement: (Bool) -> String
    ) throws -> Int {
        var restored = 0
        guard
            case .failure = try Rollback.unlessAKeyRefuses(
                on: connection, { restored = try connection.query(statement(false)).affectedRows })
        else { return restored }
        let rows = try connection.query(
            "SELECT s.tenant::text AS tenant, s.key::text AS key FROM \(scratch) s WHERE \(which) ORDER BY 1, 2"
        ).decoded("rows to put back in parts", key: "key").map {
            (tenant: try $0.required("tenant", as: String.self), key: try $0.required("key", as: String.self))
        }
        for (tenant, keys) in Dictionary(grouping: rows, by: \.tenant).sorted(by: { $0.key < $1.key }) {
            try Rollback.putBack(keys.map(\.key)[...], on: connection) { some in
                restored += try connection.query(statement(true), [tenant, textArrayLiteral(Array(some))]).affectedRows
            } refused: { key, error in
                undone.cannotGoBack += 1
                if undone.conflicts.count < 20 {
                    undone.conflicts.append(Rollback.cannotGoBack(table, key: key, error))
                }
            }
        }
        return restored
    }
}

extension DistributedRollback {
    /// The values a contract run kept, on their way back into a distributed table.
    struct KeptValues {
        let table: String
        let snapshot: SnapshotTable
        let distributionColumn: String
        let distributionType: String

        /// $1 the contract run.
        var fill: String {
            """
            INSERT INTO \(table) (tenant, key, "values")
            SELECT (v.key ->> \(sqlLiteral(distributionColumn)))::\(distributionType), v.key, v."values"
            FROM ferry.dropped_values v WHERE v.run_id = $1
            """
        }

        /// Each re-added column from its kept value, cast to its type (Citus takes an immutable operator
        /// in an UPDATE, not a function of a column: `->>` and a cast from text are such).
        func restore(columns: [(name: String, type: String)]) -> String {
            let set = columns.map {
                "\(quoteIdentifier($0.name)) = (k.\"values\" ->> \(sqlLiteral($0.name)))::\($0.type)"
            }
            return """
                UPDATE \(snapshot.qualifiedName) t SET \(set.joined(separator: ", "))
                FROM \(table) k
                WHERE t.\(quoteIdentifier(distributionColumn)) = k.tenant AND \(snapshot.keyMatch(table: "t", snapshot: "k"))
                """
        }
    }

    /// The scratch table for a contract rollback of a distributed table (nil for any other table).
    static func prepareKeptValues(
        _ snapshot: SnapshotTable, runId: Int64, on connection: PostgresConnection
    ) throws -> KeptValues? {
        guard snapshot.hashesRows, let placement = try distribution(of: snapshot, on: connection) else { return nil }
        let table = TableName(schema: "ferry", name: "contract_rollback_\(runId)").quoted
        try createScratch(
            table, "(tenant \(placement.type) NOT NULL, key jsonb NOT NULL, \"values\" jsonb NOT NULL)",
            distributedBy: "tenant", colocatedWith: snapshot, on: connection)
        return KeptValues(
            table: table, snapshot: snapshot, distributionColumn: placement.column, distributionType: placement.type)
    }

    /// A hash-distributed table's distribution column and its type; nil for any other table.
    static func distribution(
        of snapshot: SnapshotTable, on connection: PostgresConnection
    ) throws -> (column: String, type: String)? {
        guard
            let row = try connection.query(
                """
                SELECT column_to_column_name(logicalrelid, partkey) AS column_name,
                       (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                        WHERE a.attrelid = logicalrelid AND a.attname = column_to_column_name(logicalrelid, partkey)) AS column_type
                FROM pg_dist_partition WHERE logicalrelid = to_regclass($1) AND partmethod = 'h'
                """, [snapshot.qualifiedName]
            ).decoded("the distribution of \(snapshot.qualifiedName)").first
        else { return nil }
        return (try row.required("column_name"), try row.required("column_type"))
    }

    /// A scratch table made afresh (`definition`: its column list or LIKE clause in parentheses),
    /// distributed on `column` and colocated with the snapshot's table. Outside any transaction: Citus
    /// distributes a table only there.
    static func createScratch(
        _ name: String, _ definition: String, distributedBy column: String, colocatedWith snapshot: SnapshotTable,
        on connection: PostgresConnection
    ) throws {
        try connection.execute(script: "DROP TABLE IF EXISTS \(name)")
        try connection.execute(script: "CREATE UNLOGGED TABLE \(name) \(definition)")
        try connection.query(
            "SELECT create_distributed_table($1, $2, colocate_with => $3)", [name, column, snapshot.qualifiedName])
    }
}
