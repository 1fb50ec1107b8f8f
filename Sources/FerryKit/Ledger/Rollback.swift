import Foundation

/// What rollback found (dry run) or did for one table.
public struct RollbackTableReport: Codable, Equatable, Sendable {
    public let table: String
    /// Rows exactly as the run left them: undone (or to undo).
    public var unchanged = 0
    /// Rows changed since the run (by the application): conflicts, left alone unless forced.
    public var changedSince = 0
    /// Rows the run inserted that are already gone.
    public var alreadyGone = 0
    /// Rows that could not be deleted because newer rows still reference them.
    public var stillReferenced = 0
    public var undone = 0

    init(table: String) { self.table = table }
}

public struct RollbackReport: Codable, Equatable, Sendable {
    public let runId: Int64
    public var rollbackRunId: Int64?
    public let dryRun: Bool
    public let force: Bool
    public var tables: [RollbackTableReport] = []
    public var conflicts: [String] = []
    /// Nothing of the run is left to undo: it is now `rolled_back`.
    public var complete = false
    /// The run wrote no rows: there was nothing to undo, and no rollback run was recorded.
    public var nothingToUndo = false
}

/// Undoes one run from its snapshots: deletes the rows it inserted, restores the rows it updated or
/// deleted, but only rows that still equal what the run wrote (unless forced). Runs as a run itself.
public struct Rollback {
    public let conninfo: String

    public init(conninfo: String) {
        self.conninfo = conninfo
    }

    public func run(_ runId: Int64, dryRun: Bool, force: Bool, wait: Bool = false) throws -> RollbackReport {
        let connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry rollback")
        let ledger = RunLedger(connection: connection)
        guard let record = try ledger.run(runId) else { throw LedgerError("there is no run \(runId)") }
        guard record.mode != "rollback" else { throw LedgerError("run \(runId) is itself a rollback; it cannot be rolled back") }
        if record.status == "rolled_back" {
            let by = try connection.query("SELECT max(run_id) FROM ferry.runs WHERE rollback_of = $1", [String(runId)]).scalar ?? "?"
            throw LedgerError("run \(runId) was already rolled back (by run \(by)); a run is rolled back once")
        }
        var lock: RunLock?
        if !dryRun {
            lock = try RunLock(conninfo: conninfo, job: record.job, wait: wait)
            try ledger.markDeadRunsInterrupted(job: record.job)
        }
        defer { withExtendedLifetime(lock) {} }
        if !dryRun, try ledger.run(runId)?.status == "running" {
            throw LedgerError("run \(runId) is still running")
        }

        if record.mode == "contract" {
            return try ContractRollback(connection: connection, ledger: ledger).run(runId, dryRun: dryRun, force: force, record: record)
        }
        var report = RollbackReport(runId: runId, dryRun: dryRun, force: force)
        let tables = try connection.query("""
            SELECT table_order, table_name FROM ferry.snapshot_rows WHERE run_id = $1
            GROUP BY 1, 2 ORDER BY 1 DESC, 2
            """, [String(runId)]).rows.map { (order: $0[0]!, name: $0[1]!) }
        if tables.isEmpty {
            try Self.requireUndoRecord(of: record, connection: connection)
            report.nothingToUndo = true
            return report
        }
        if !dryRun { try Self.requirePartialStatuses(connection) }

        if dryRun {
            try connection.execute(script: "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            defer { _ = try? connection.execute(script: "ROLLBACK") }
            for table in tables {
                let snapshot = try SnapshotTable.resolve(table.name, on: connection)
                report.tables.append(try classify(snapshot, run: runId, connection: connection))
                report.conflicts += try conflictExamples(snapshot, run: runId, connection: connection)
            }
            return report
        }

        return try Self.recorded(runId, record: record, ledger: ledger, report: report) { rollbackRunId, report in
            // Constraints the run added go first: the rows about to be restored may not satisfy them.
            for added in try connection.query("""
                SELECT detail->>'table', detail->>'constraint' FROM ferry.events WHERE run_id = $1 AND kind = 'constraint added'
                """, [String(runId)]).rows {
                try connection.execute(script: "ALTER TABLE \(added[0] ?? "") DROP CONSTRAINT IF EXISTS \(quoteIdentifier(added[1] ?? ""))")
            }
            for table in tables {
                let snapshot = try SnapshotTable.resolve(table.name, on: connection)
                var tableReport = try classify(snapshot, run: runId, connection: connection)
                report.conflicts += try force ? [] : conflictExamples(snapshot, run: runId, connection: connection)
                tableReport.undone = try undo(snapshot, run: runId, force: force, connection: connection,
                                              stillReferenced: &tableReport.stillReferenced, conflicts: &report.conflicts)
                report.tables.append(tableReport)
            }
            let remaining = Int(try connection.query("SELECT count(*) FROM ferry.snapshot_rows WHERE run_id = $1",
                                                     [String(runId)]).scalar ?? "0") ?? 0
            report.complete = remaining == 0
            try connection.query("UPDATE ferry.runs SET status = $2 WHERE run_id = $1",
                                 [String(runId), report.complete ? "rolled_back" : "partially_rolled_back"])
            try ledger.event(runId: runId, kind: report.complete ? "rollback done" : "rollback left conflicts",
                             detail: ["rollback_run": String(rollbackRunId), "rows_left": String(remaining)])
        }
    }

    /// Undoes run `runId` as a run of its own (`mode = rollback`, `rollback_of`): `body` runs in one
    /// transaction on the ledger's session, and the rollback run ends succeeded with the report, or failed.
    static func recorded(_ runId: Int64, record: RunRecord, ledger: RunLedger, report: RollbackReport,
                         _ body: (_ rollbackRunId: Int64, _ report: inout RollbackReport) throws -> Void) throws -> RollbackReport {
        var report = report
        let rollbackRunId = try ledger.start(job: record.job, mode: "rollback", mappingFile: record.mappingFile,
                                             mappingSHA256: record.mappingSHA256, rollbackOf: runId)
        report.rollbackRunId = rollbackRunId
        do {
            try ledger.connection.transaction { try body(rollbackRunId, &report) }
            try ledger.finish(runId: rollbackRunId, status: report.complete ? "succeeded" : "partial",
                              countsJSON: String(decoding: try JSONEncoder.sorted.encode(report), as: UTF8.self))
        } catch {
            try? ledger.finish(runId: rollbackRunId, status: "failed", error: String(describing: error))
            throw error
        }
        return report
    }

    /// A run without snapshot rows is undone only if it never wrote a row: a run whose snapshots were
    /// pruned (or deleted by hand) would otherwise be reported rolled back while its rows stay.
    static func requireUndoRecord(of record: RunRecord, connection: PostgresConnection) throws {
        let pruned = try connection.query("""
            SELECT \(RunLedger.iso8601("at")), detail->>'older_than' FROM ferry.events
            WHERE run_id = $1 AND kind = 'snapshot pruned' ORDER BY event_id DESC LIMIT 1
            """, [String(record.runId)]).rows.first
        if let pruned {
            throw LedgerError("run \(record.runId) cannot be rolled back: its snapshots were pruned at \(pruned[0] ?? "?") "
                + "(`ferry snapshots prune --older-than \(pruned[1] ?? "?")`), so ferry no longer knows what it wrote; nothing was changed")
        }
        let written = record.rowsInserted + record.rowsUpdated + record.rowsDeleted
        if written > 0 {
            throw LedgerError("run \(record.runId) cannot be rolled back: its batches wrote \(written) rows but its snapshot rows "
                + "(ferry.snapshot_rows) are gone; nothing was changed")
        }
    }

    /// The statuses a rollback that leaves conflicts records came with a ledger schema step.
    static func requirePartialStatuses(_ connection: PostgresConnection) throws {
        let applied = try connection.query("SELECT EXISTS (SELECT 1 FROM ferry.schema_steps WHERE name = $1)",
                                           [LedgerSchema.runOptionsAndPartialStatusesStep.name]).scalar == "t"
        guard applied else {
            throw LedgerError("the ledger lacks schema step \(LedgerSchema.runOptionsAndPartialStatusesStep.name): "
                + "run `ferry schema apply MAPPING` first; nothing was changed")
        }
    }

    // MARK: Per table

    /// True while table row `t` is still exactly what snapshot row `s` recorded as written: its xmin is
    /// the writing batch's transaction (any later UPDATE makes a new row version), or its hash matches.
    private static let unchangedSinceRun = """
        CASE WHEN s.after_hash IS NOT NULL THEN md5(t::text) = s.after_hash
             ELSE t.xmin::text::bigint = (SELECT b.xid % 4294967296 FROM ferry.batches b
                                          WHERE b.run_id = s.run_id AND b.batch_no = s.batch_no) END
        """

    /// 'unchanged', 'changed', or NULL when the row is gone.
    private func rowState(_ snapshot: SnapshotTable) -> String {
        """
        (SELECT CASE WHEN \(Self.unchangedSinceRun) THEN 'unchanged' ELSE 'changed' END
         FROM \(snapshot.qualifiedName) t WHERE \(snapshot.keyMatch(table: "t", snapshot: "s")))
        """
    }

    private func classify(_ snapshot: SnapshotTable, run: Int64, connection: PostgresConnection) throws -> RollbackTableReport {
        let row = try connection.query("""
            SELECT count(*) FILTER (WHERE x.state IS NOT NULL AND (s.action = 'delete' OR x.state = 'unchanged')),
                   count(*) FILTER (WHERE s.action <> 'delete' AND x.state = 'changed'),
                   count(*) FILTER (WHERE x.state IS NULL AND s.action <> 'delete'),
                   count(*) FILTER (WHERE x.state IS NULL AND s.action = 'delete')
            FROM ferry.snapshot_rows s, LATERAL (SELECT \(rowState(snapshot)) AS state) x
            WHERE s.run_id = $1 AND s.table_name = $2
            """, [String(run), snapshot.qualifiedName]).rows[0]
        var report = RollbackTableReport(table: snapshot.qualifiedName)
        report.unchanged = Int(row[0] ?? "0")! + Int(row[3] ?? "0")!
        report.changedSince = Int(row[1] ?? "0")!
        report.alreadyGone = Int(row[2] ?? "0")!
        return report
    }

    private func conflictExamples(_ snapshot: SnapshotTable, run: Int64, connection: PostgresConnection) throws -> [String] {
        try connection.query("""
            SELECT s.key::text FROM ferry.snapshot_rows s, LATERAL (SELECT \(rowState(snapshot)) AS state) x
            WHERE s.run_id = $1 AND s.table_name = $2 AND s.action <> 'delete' AND x.state = 'changed'
            LIMIT 20
            """, [String(run), snapshot.qualifiedName]).rows.map { "\(snapshot.qualifiedName) \($0[0]!): changed since the run" }
    }

    /// Undoes what can be undone for one table and removes those snapshot rows; returns rows undone.
    private func undo(_ snapshot: SnapshotTable, run: Int64, force: Bool, connection: PostgresConnection,
                      stillReferenced: inout Int, conflicts: inout [String]) throws -> Int {
        let table = snapshot.qualifiedName
        let match = snapshot.keyMatch(table: "t", snapshot: "s")
        let unchanged = force ? "true" : Self.unchangedSinceRun
        let columns = try connection.query("""
            SELECT quote_ident(attname) FROM pg_attribute
            WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum
            """, [table]).rows.map { $0[0]! }
        let columnList = columns.joined(separator: ", ")
        let recordColumns = columns.map { "r.\($0)" }.joined(separator: ", ")
        let parameters = [String(run), table]
        let scope = "s.run_id = $1 AND s.table_name = $2"

        try connection.execute(script: "SAVEPOINT ferry_rollback_table")
        var undone = 0
        do {
            undone += try connection.query("""
                WITH gone AS (
                    DELETE FROM \(table) t USING ferry.snapshot_rows s
                    WHERE \(scope) AND s.action = 'insert' AND \(match) AND \(unchanged)
                    RETURNING s.ctid AS snapshot_row
                ) DELETE FROM ferry.snapshot_rows WHERE ctid IN (SELECT snapshot_row FROM gone)
                """, parameters).affectedRows
        } catch let error as PostgresError where error.sqlState == "23503" {
            try connection.execute(script: "ROLLBACK TO SAVEPOINT ferry_rollback_table")
            undone += try undoRowByRow(snapshot, run: run, unchanged: unchanged, stillReferenced: &stillReferenced,
                                       conflicts: &conflicts, connection: connection)
        }
        undone += try connection.query("""
            WITH restored AS (
                UPDATE \(table) t SET (\(columnList)) = (SELECT \(recordColumns))
                FROM ferry.snapshot_rows s, jsonb_populate_record(NULL::\(table), s.before) r
                WHERE \(scope) AND s.action = 'update' AND \(match) AND \(unchanged)
                RETURNING s.ctid AS snapshot_row
            ) DELETE FROM ferry.snapshot_rows WHERE ctid IN (SELECT snapshot_row FROM restored)
            """, parameters).affectedRows
        undone += try connection.query("""
            WITH restored AS (
                INSERT INTO \(table) (\(columnList))
                SELECT \(recordColumns) FROM ferry.snapshot_rows s, jsonb_populate_record(NULL::\(table), s.before) r
                WHERE \(scope) AND s.action = 'delete'
                  AND NOT EXISTS (SELECT 1 FROM \(table) t WHERE \(match))
                RETURNING 1
            ) SELECT count(*) FROM restored
            """, parameters).rows.first.flatMap { Int($0[0] ?? "0") } ?? 0
        // Deleted rows now restored, and inserted rows that are already gone: nothing left to undo.
        try connection.query("""
            DELETE FROM ferry.snapshot_rows s
            WHERE \(scope) AND (s.action = 'delete' OR NOT EXISTS (SELECT 1 FROM \(table) t WHERE \(match)))
            """, parameters)
        try connection.execute(script: "RELEASE SAVEPOINT ferry_rollback_table")
        return undone
    }

    /// Deletes inserted rows one by one, leaving those that newer rows still reference (a custom phone
    /// type now used by rows another run wrote, say).
    private func undoRowByRow(_ snapshot: SnapshotTable, run: Int64, unchanged: String, stillReferenced: inout Int,
                              conflicts: inout [String], connection: PostgresConnection) throws -> Int {
        let table = snapshot.qualifiedName
        let candidates = try connection.query("""
            SELECT s.ctid::text, s.key::text FROM ferry.snapshot_rows s
            WHERE s.run_id = $1 AND s.table_name = $2 AND s.action = 'insert'
            """, [String(run), table]).rows
        var undone = 0
        for candidate in candidates {
            try connection.execute(script: "SAVEPOINT ferry_rollback_row")
            do {
                let deleted = try connection.query("""
                    DELETE FROM \(table) t USING ferry.snapshot_rows s
                    WHERE s.ctid = $1::tid AND s.run_id = $2 AND \(snapshot.keyMatch(table: "t", snapshot: "s")) AND \(unchanged)
                    """, [candidate[0], String(run)]).affectedRows
                if deleted > 0 {
                    try connection.query("DELETE FROM ferry.snapshot_rows WHERE ctid = $1::tid AND run_id = $2", [candidate[0], String(run)])
                    undone += deleted
                }
                try connection.execute(script: "RELEASE SAVEPOINT ferry_rollback_row")
            } catch let error as PostgresError where error.sqlState == "23503" {
                try connection.execute(script: "ROLLBACK TO SAVEPOINT ferry_rollback_row")
                stillReferenced += 1
                if conflicts.count < 50 { conflicts.append("\(table) \(candidate[1]!): still referenced by newer rows") }
            }
        }
        return undone
    }
}
