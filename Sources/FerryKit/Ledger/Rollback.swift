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
    /// Rows kept because deleting them would break a rule the job recorded (a contact left with phone
    /// rows but no default): conflicts, listed.
    public var keptForInvariant = 0
    /// Rows the run updated or deleted that cannot be put back: a row their pre-image references (their
    /// contact, their organization) was deleted since, or a row written since holds the same unique key
    /// (another default for the contact). Conflicts, their pre-images kept in the ledger.
    public var cannotGoBack = 0
    public var undone = 0
    /// Rows restored (or to restore) that the table's BEFORE INSERT or UPDATE row triggers changed on
    /// the way back, so that they differ from their pre-images; the columns changed; the triggers.
    public var restoredOtherwise = 0
    public var columnsChangedByTriggers: [String] = []
    public var beforeTriggers: [String] = []
    /// The triggers were disabled while the rows were restored (`--disable-before-triggers`).
    public var triggersDisabled = false

    init(table: String) { self.table = table }
}

public struct RollbackReport: Codable, Equatable, Sendable {
    public let runId: Int64
    public var rollbackRunId: Int64?
    public let dryRun: Bool
    public let force: Bool
    public var tables: [RollbackTableReport] = []
    public var conflicts: [String] = []
    /// Tables whose rows were (or would be) restored, but not as they were: a trigger changed them.
    public var notRestoredExactly: [String] = []
    /// Nothing of the run is left to undo: it is now `rolled_back`.
    public var complete = false
    /// The run wrote no rows: there was nothing to undo, and no rollback run was recorded.
    public var nothingToUndo = false
}

/// Undoes one run from its snapshots: deletes the rows it inserted, restores the rows it updated or
/// deleted, but only rows that still equal what the run wrote (unless forced). Runs as a run itself.
public struct Rollback {
    public let conninfo: String
    /// Restores rows exactly where a table's BEFORE INSERT or UPDATE row triggers would change them on
    /// the way back (an `updated_at` set to now()): those triggers are disabled while its rows are
    /// restored, inside the rollback's transaction (it needs the table's owner, and writes to the table
    /// wait for the rollback to commit). Without it such rows are restored through the triggers and
    /// reported as not restored exactly.
    public var disablesBeforeTriggers = false

    public init(conninfo: String) {
        self.conninfo = conninfo
    }

    public func run(_ runId: Int64, dryRun: Bool, force: Bool, wait: Bool = false) throws -> RollbackReport {
        let connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry rollback")
        let ledger = RunLedger(connection: connection)
        guard let record = try ledger.run(runId) else { throw LedgerError("there is no run \(runId)") }
        guard record.mode != "rollback" else {
            throw LedgerError("run \(runId) is itself a rollback; it cannot be rolled back")
        }
        if record.status == "rolled_back" {
            let by =
                try connection.query("SELECT max(run_id) FROM ferry.runs WHERE rollback_of = $1", [String(runId)])
                .scalar ?? "?"
            throw LedgerError("run \(runId) was already rolled back (by run \(by)); a run is rolled back once")
        }
        // The dry run deletes too (in a transaction it rolls back): it holds the job's lock like the rollback.
        let lock = try RunLock(conninfo: conninfo, job: record.job, wait: wait)
        if !dryRun { try ledger.markDeadRunsInterrupted(job: record.job) }
        defer { withExtendedLifetime(lock) {} }
        if !dryRun, try ledger.run(runId)?.status == "running" {
            throw LedgerError("run \(runId) is still running")
        }

        if record.mode == "contract" {
            return try ContractRollback(
                connection: connection, ledger: ledger, lock: lock, disablesBeforeTriggers: disablesBeforeTriggers
            ).run(
                runId, dryRun: dryRun, force: force, record: record)
        }
        var report = RollbackReport(runId: runId, dryRun: dryRun, force: force)
        let tables = try connection.query(
            """
            SELECT table_order, table_name FROM ferry.snapshot_rows WHERE run_id = $1
            GROUP BY 1, 2 ORDER BY 1 DESC, 2
            """, [String(runId)]
        ).decoded("ferry.snapshot_rows", key: "table_name").map {
            (
                order: try $0.required("table_order", as: String.self),
                name: try $0.required("table_name", as: String.self)
            )
        }
        if tables.isEmpty {
            try Self.requireUndoRecord(of: record, connection: connection)
            report.nothingToUndo = true
            return report
        }
        if !dryRun { try Self.requirePartialStatuses(connection) }
        // Citus tables get their scratch tables before the transaction (see DistributedRollback).
        let resolved = try tables.map { (name: $0.name, snapshot: try SnapshotTable.resolve($0.name, on: connection)) }
        var distributed: [String: DistributedRollback] = [:]
        defer { for rollback in distributed.values { rollback.drop(on: connection) } }
        for (index, table) in resolved.enumerated() {
            distributed[table.name] = try DistributedRollback.prepare(
                table.snapshot, runId: runId, index: index, on: connection)
        }

        if dryRun {
            // The dry run is the rollback itself, in a transaction it then rolls back: what it reports is
            // exactly what the rollback would do now (rows kept for a rule, or still referenced, included).
            try connection.execute(script: "BEGIN")
            defer { _ = try? connection.execute(script: "ROLLBACK") }
            report.conflicts = []
            try undoTables(
                runId, tables: resolved, distributed: distributed, report: &report, ledger: ledger, rollbackRunId: nil)
            return report
        }

        return try Self.recorded(runId, record: record, ledger: ledger, lock: lock, report: report) {
            rollbackRunId, report in
            try undoTables(
                runId, tables: resolved, distributed: distributed, report: &report, ledger: ledger,
                rollbackRunId: rollbackRunId)
            let remaining =
                try connection.query(
                    "SELECT count(*) FROM ferry.snapshot_rows WHERE run_id = $1",
                    [String(runId)]
                ).value("a count", as: Int.self)
            report.complete = remaining == 0
            try connection.query(
                "UPDATE ferry.runs SET status = $2 WHERE run_id = $1",
                [String(runId), report.complete ? "rolled_back" : "partially_rolled_back"])
            try ledger.event(
                runId: runId, kind: report.complete ? "rollback done" : "rollback left conflicts",
                detail: ["rollback_run": String(rollbackRunId), "rows_left": String(remaining)])
        }
    }

    /// Undoes every table of the run, newest-written first, inside the caller's transaction; the rows
    /// it restores are recorded as restored by `rollbackRunId` (nil: a dry run, which records nothing).
    private func undoTables(
        _ runId: Int64, tables: [(name: String, snapshot: SnapshotTable)], distributed: [String: DistributedRollback],
        report: inout RollbackReport, ledger: RunLedger, rollbackRunId: Int64?
    ) throws {
        let connection = ledger.connection
        // Constraints the run added go first: the rows about to be restored may not satisfy them.
        for added in try connection.query(
            """
            SELECT detail->>'table' AS "table", detail->>'constraint' AS "constraint" FROM ferry.events
            WHERE run_id = $1 AND kind = 'constraint added'
            """, [String(runId)]
        ).decoded("constraints the run added", key: "constraint") {
            let table: String = try added.required("table"), constraint: String = try added.required("constraint")
            try connection.execute(
                script: "ALTER TABLE \(table) DROP CONSTRAINT IF EXISTS \(quoteIdentifier(constraint))")
        }
        let rules = try RollbackRules(run: runId, force: report.force, ledger: ledger)
        for (name, snapshot) in tables {
            let references = try ReferencingKey.all(referencing: snapshot.qualifiedName, on: connection)
            if let rollback = distributed[name] {
                var tableReport = try rollback.classify(
                    runId: runId, force: report.force, invariants: rules.invariants, references: references,
                    connection: connection)
                if tableReport.changedSince + tableReport.keptForInvariant + tableReport.stillReferenced > 0 {
                    report.conflicts += try rollback.conflictExamples(connection: connection)
                }
                let undone = try rollback.undo(runId: runId, force: report.force, connection: connection)
                tableReport.undone = undone.rows
                tableReport.cannotGoBack = undone.cannotGoBack
                tableReport.unchanged -= undone.cannotGoBack
                report.conflicts += undone.conflicts
                report.tables.append(tableReport)
                continue
            }
            // Classified just before it is undone: rows of the tables undone before it are gone by then.
            var tableReport = try classify(snapshot, rules: rules, references: references, connection: connection)
            let triggers = try RowTrigger.beforeRowTriggers(on: snapshot.qualifiedName, connection: connection)
            if tableReport.changedSince + tableReport.keptForInvariant + tableReport.stillReferenced > 0 {
                report.conflicts += try conflictExamples(
                    snapshot, rules: rules, references: references, connection: connection)
            }
            let undone = try undo(
                snapshot, rules: rules, references: references, connection: connection, triggers: triggers,
                restoredBy: rules.followsRestores ? rollbackRunId : nil,
                stillReferenced: &tableReport.stillReferenced, conflicts: &report.conflicts)
            tableReport.undone = undone.deleted + undone.restores.restored
            tableReport.cannotGoBack = undone.cannotGoBack
            tableReport.unchanged -= undone.cannotGoBack
            tableReport.restores(through: triggers, disabled: disablesBeforeTriggers)
            if let notExact = tableReport.note(undone.restores, table: snapshot.qualifiedName) {
                report.notRestoredExactly.append(notExact)
            }
            report.tables.append(tableReport)
        }
    }

    /// A foreign key (a row the pre-image references is gone) or a unique key (a row written since holds
    /// it) refuses to take a row back: a conflict, not a failure of the rollback.
    static func refusesRestore(_ error: PostgresError) -> Bool {
        error.sqlState == "23503" || error.sqlState == "23505"
    }

    /// Runs `write` in a savepoint: its result, or the error of a key that refused it
    /// (`refusesRestore`), the savepoint then undoing what it wrote. Any other error is thrown.
    static func unlessAKeyRefuses<T>(
        on connection: PostgresConnection, _ write: () throws -> T
    ) throws -> Result<T, PostgresError> {
        try connection.execute(script: "SAVEPOINT ferry_key_guard")
        do {
            let written = try write()
            try connection.execute(script: "RELEASE SAVEPOINT ferry_key_guard")
            return .success(written)
        } catch let error as PostgresError where refusesRestore(error) {
            try connection.execute(script: "ROLLBACK TO SAVEPOINT ferry_key_guard")
            try connection.execute(script: "RELEASE SAVEPOINT ferry_key_guard")
            return .failure(error)
        }
    }

    /// Puts `rows` back through `attempt` (one statement for the rows given): all at once, and where a
    /// key refuses (`refusesRestore`), each half again, down to the single rows the key refuses, which
    /// go to `refused`. A few such rows among many cost a few statements each, not one per row.
    static func putBack<Row>(
        _ rows: ArraySlice<Row>, on connection: PostgresConnection, _ attempt: (ArraySlice<Row>) throws -> Void,
        refused: (Row, PostgresError) throws -> Void
    ) throws {
        guard let first = rows.first,
            case .failure(let error) = try unlessAKeyRefuses(on: connection, { try attempt(rows) })
        else { return }
        if rows.count == 1 { return try refused(first, error) }
        let middle = rows.startIndex + rows.count / 2
        try putBack(rows[..<middle], on: connection, attempt, refused: refused)
        try putBack(rows[middle...], on: connection, attempt, refused: refused)
    }

    /// The conflict line of a row `refusesRestore` kept out.
    static func cannotGoBack(_ table: String, key: String, _ error: PostgresError) -> String {
        let why =
            error.sqlState == "23503"
            ? "a row it references was deleted since the run" : "a row written since the run holds the same unique key"
        return
            "\(table) \(key): cannot be put back: \(why) (\(error.detailInASentence)); its pre-image stays in ferry.snapshot_rows (not even --force puts it back)"
    }

    /// Undoes run `runId` as a run of its own (`mode = rollback`, `rollback_of`): `body` runs in one
    /// transaction on the ledger's session, and the rollback run ends succeeded with the report, or failed.
    /// The job's lock is confirmed last in the transaction: a rollback whose lock session ended while
    /// it worked (a run of the job may have started beside it) commits nothing.
    static func recorded(
        _ runId: Int64, record: RunRecord, ledger: RunLedger, lock: RunLock, report: RollbackReport,
        _ body: (_ rollbackRunId: Int64, _ report: inout RollbackReport) throws -> Void
    ) throws -> RollbackReport {
        var report = report
        let rollbackRunId = try ledger.start(
            job: record.job, mode: "rollback", mappingFile: record.mappingFile,
            mappingSHA256: record.mappingSHA256, rollbackOf: runId)
        report.rollbackRunId = rollbackRunId
        do {
            try ledger.connection.transaction {
                try body(rollbackRunId, &report)
                try lock.confirmHeld()
            }
            try ledger.finish(
                runId: rollbackRunId, status: report.complete ? "succeeded" : "partial",
                countsJSON: String(decoding: try JSONEncoder.sorted.encode(report), as: UTF8.self))
        } catch let lost as LockLost {
            try? ledger.finish(runId: rollbackRunId, status: "failed", error: String(describing: lost))
            throw LedgerError(
                "\(lost); the rollback's transaction was rolled back, nothing was restored: run `ferry rollback \(runId)` again"
            )
        } catch {
            try? ledger.finish(runId: rollbackRunId, status: "failed", error: String(describing: error))
            throw error
        }
        return report
    }

    /// A run without snapshot rows is undone only if it never wrote a row: a run whose snapshots were
    /// pruned (or deleted by hand) would otherwise be reported rolled back while its rows stay.
    static func requireUndoRecord(of record: RunRecord, connection: PostgresConnection) throws {
        let pruned = try connection.query(
            """
            SELECT \(RunLedger.iso8601("at")) AS at, detail->>'older_than' AS older_than FROM ferry.events
            WHERE run_id = $1 AND kind = 'snapshot pruned' ORDER BY event_id DESC LIMIT 1
            """, [String(record.runId)]
        ).decoded("the run's pruning").first
        if let pruned {
            throw LedgerError(
                "run \(record.runId) cannot be rolled back: its snapshots were pruned at \(try pruned.required("at", as: String.self)) "
                    + "(`ferry snapshots prune --older-than \(try pruned.optional("older_than", as: String.self) ?? "?")`), so ferry no longer knows what it wrote; nothing was changed"
            )
        }
        let written = record.rowsInserted + record.rowsUpdated + record.rowsDeleted
        if written > 0 {
            throw LedgerError(
                "run \(record.runId) cannot be rolled back: its batches wrote \(formatCount(written)) rows but its snapshot rows "
                    + "(ferry.snapshot_rows) are gone; nothing was changed")
        }
    }

    /// The statuses a rollback that leaves conflicts records came with a ledger schema step.
    static func requirePartialStatuses(_ connection: PostgresConnection) throws {
        let applied =
            try connection.query(
                "SELECT EXISTS (SELECT 1 FROM ferry.schema_steps WHERE name = $1)",
                [LedgerSchema.runOptionsAndPartialStatusesStep.name]
            ).value("ferry.schema_steps", as: Bool.self)
        guard applied else {
            throw LedgerError(
                "the ledger lacks schema step \(LedgerSchema.runOptionsAndPartialStatusesStep.name): "
                    + "run `ferry schema apply MAPPING` first; nothing was changed")
        }
    }

    // MARK: Per table

    /// Per snapshot row of the table: 'unchanged', 'changed' or NULL (gone), and for an inserted row
    /// that stays, why ('invariant' or 'referenced').
    private func states(_ snapshot: SnapshotTable, rules: RollbackRules, references: [ReferencingKey]) -> String {
        """
        WITH \(rules.commonTableExpressions(snapshot, references: references)),
        states AS (
            SELECT s.action, s.key,
                   CASE WHEN t.ctid IS NULL THEN NULL WHEN \(rules.unchanged("t", "s")) THEN 'unchanged' ELSE 'changed' END AS state,
                   CASE WHEN t.ctid IN (SELECT row_id FROM kept_invariant) THEN 'invariant'
                        WHEN t.ctid IN (SELECT row_id FROM kept_referenced) THEN 'referenced' END AS kept
            FROM ferry.snapshot_rows s LEFT JOIN \(snapshot.qualifiedName) t ON \(snapshot.keyMatch(table: "t", snapshot: "s"))
            WHERE s.run_id = $1 AND s.table_name = $2
        )
        """
    }

    private func classify(
        _ snapshot: SnapshotTable, rules: RollbackRules, references: [ReferencingKey],
        connection: PostgresConnection
    ) throws -> RollbackTableReport {
        let rows = try connection.query(
            """
            \(states(snapshot, rules: rules, references: references))
            SELECT count(*) FILTER (WHERE state IS NOT NULL AND (action = 'delete' OR (state = 'unchanged' AND kept IS NULL))) AS unchanged,
                   count(*) FILTER (WHERE action <> 'delete' AND state = 'changed') AS changed_since,
                   count(*) FILTER (WHERE state IS NULL AND action <> 'delete') AS already_gone,
                   count(*) FILTER (WHERE state IS NULL AND action = 'delete') AS deleted_and_gone,
                   count(*) FILTER (WHERE kept = 'invariant') AS kept_for_invariant,
                   count(*) FILTER (WHERE kept = 'referenced') AS still_referenced
            FROM states
            """, [String(rules.run), snapshot.qualifiedName]
        ).decoded("the rollback's classification of \(snapshot.qualifiedName)")
        guard let row = rows.first else { throw LedgerError("no classification for \(snapshot.qualifiedName)") }
        var report = RollbackTableReport(table: snapshot.qualifiedName)
        report.unchanged = try row.required("unchanged", as: Int.self) + row.required("deleted_and_gone", as: Int.self)
        report.changedSince = try row.required("changed_since")
        report.alreadyGone = try row.required("already_gone")
        report.keptForInvariant = try row.required("kept_for_invariant")
        report.stillReferenced = try row.required("still_referenced")
        return report
    }

    private func conflictExamples(
        _ snapshot: SnapshotTable, rules: RollbackRules, references: [ReferencingKey],
        connection: PostgresConnection
    ) throws -> [String] {
        try connection.query(
            """
            \(states(snapshot, rules: rules, references: references))
            SELECT key::text AS key, CASE WHEN state = 'changed' THEN 'changed since the run'
                                   WHEN kept = 'invariant' THEN 'kept: deleting it would leave its group with rows but none marked as the default'
                                   ELSE 'still referenced by newer rows' END AS reason
            FROM states
            WHERE action <> 'delete' AND (state = 'changed' OR kept IS NOT NULL)
            ORDER BY state, key::text
            LIMIT 20
            """, [String(rules.run), snapshot.qualifiedName]
        ).decoded("rows a rollback leaves", key: "key").map {
            "\(snapshot.qualifiedName) \(try $0.required("key", as: String.self)): \(try $0.required("reason", as: String.self))"
        }
    }

    /// What `undo` did to one table: inserted rows deleted, rows restored, rows a key kept from going back.
    private struct TableUndo {
        var deleted = 0
        var restores = RestoreOutcome()
        var cannotGoBack = 0
    }

    /// Undoes what can be undone for one table and removes those snapshot rows. Rows restored from a
    /// pre-image that kept its xmin are recorded as restored by run `restoredBy`. Where the table has
    /// BEFORE INSERT or UPDATE row triggers, each restored row is compared with its pre-image (or, with
    /// `disablesBeforeTriggers`, the triggers are disabled while its rows are restored).
    private func undo(
        _ snapshot: SnapshotTable, rules: RollbackRules, references: [ReferencingKey], connection: PostgresConnection,
        triggers: [RowTrigger], restoredBy rollbackRunId: Int64?, stillReferenced: inout Int,
        conflicts: inout [String]
    ) throws -> TableUndo {
        let run = rules.run
        let table = snapshot.qualifiedName
        let match = snapshot.keyMatch(table: "t", snapshot: "s")
        let unchanged = rules.unchanged("t", "s")
        let columns = try connection.writableColumns(table)
        let reinserted = try connection.columnsOfDeletedPreImages(table, runId: run)
        let parameters = [String(run), table]
        let scope = "s.run_id = $1 AND s.table_name = $2"
        let bypassed = disablesBeforeTriggers ? triggers : []
        try RowTrigger.disable(bypassed, on: table, connection: connection)

        try connection.execute(script: "SAVEPOINT ferry_rollback_table")
        var result = TableUndo()
        do {
            result.deleted += try connection.query(
                """
                WITH \(rules.commonTableExpressions(snapshot, references: references)),
                gone AS (
                    DELETE FROM \(table) t USING deletable d WHERE t.ctid = d.row_id
                    RETURNING d.snapshot_row
                ) DELETE FROM ferry.snapshot_rows WHERE ctid IN (SELECT snapshot_row FROM gone)
                """, parameters
            ).affectedRows
        } catch let error as PostgresError where error.sqlState == "23503" {
            try connection.execute(script: "ROLLBACK TO SAVEPOINT ferry_rollback_table")
            result.deleted += try undoInParts(
                snapshot, rules: rules, references: references, stillReferenced: &stillReferenced,
                conflicts: &conflicts, connection: connection)
        }

        // A CTE `restored` of the rows put back: what they were (`ferry_before`), what they are now (`ferry_row`),
        // their key and xmin; what the statement reports is counted from it.
        let records = rollbackRunId != nil
        let compares = !triggers.isEmpty && bypassed.isEmpty
        let restoredParameters = parameters + (rollbackRunId.map { [String($0)] } ?? [])
        func restore(_ purpose: String, _ statement: String, extra: [String] = []) throws {
            let remembered =
                records
                ? """
                , remembered AS (
                    INSERT INTO ferry.restored_rows (rollback_run_id, table_name, key, restored_xmin, original_xmin)
                    SELECT $3, $2, key, restored_xmin, before_xmin FROM restored WHERE before_xmin IS NOT NULL
                )
                """ : ""
            let changed =
                "ARRAY(SELECT e.key FROM jsonb_each(ferry_before) e WHERE ferry_row -> e.key IS DISTINCT FROM e.value)"
            try result.restores.add(
                purpose,
                """
                WITH \(statement)\(remembered), outcome AS (
                    SELECT \(compares ? changed : "'{}'::text[]") AS changed FROM restored
                )
                \(RestoreOutcome.select(from: "outcome"))
                """, restoredParameters + extra, on: connection)
        }
        let kept =
            (records ? ", s.key, s.before_xmin, t.xmin::text::bigint AS restored_xmin" : "")
            + (compares ? ", s.before AS ferry_before, to_jsonb(t) AS ferry_row" : "")
        // `some`: the statement for some snapshot rows, by their ctids (the last parameter, a text array).
        let someRows = " AND s.ctid = ANY ($\(restoredParameters.count + 1)::text[]::tid[])"
        // A pre-image can reference a row deleted since the run (the application deleted the contact, or
        // the organization an import moved a contact away from), or share a unique key with a row written
        // since (the contact's new default): when the statement for all rows hits such a key, the rows go
        // back in halves down to the ones that cannot (`putBack`), which stay in the ledger, conflicts.
        func restoreEach(_ purpose: String, action: String, _ statement: (_ some: Bool) -> String) throws {
            guard
                case .failure = try Self.unlessAKeyRefuses(
                    on: connection, { try restore("the rows \(purpose) in \(table)", statement(false)) })
            else { return }
            let candidates = try connection.query(
                """
                SELECT s.ctid::text AS snapshot_row, s.key::text AS key FROM ferry.snapshot_rows s
                WHERE \(scope) AND s.action = '\(action)'
                ORDER BY s.key::text
                """, parameters
            ).decoded("rows to put back in parts", key: "key").map {
                (row: try $0.required("snapshot_row", as: String.self), key: try $0.required("key", as: String.self))
            }
            try Self.putBack(candidates[...], on: connection) { rows in
                try restore(
                    "rows \(purpose) in \(table)", statement(true), extra: [textArrayLiteral(rows.map(\.row))])
            } refused: { row, error in
                result.cannotGoBack += 1
                if conflicts.count < 50 { conflicts.append(Self.cannotGoBack(table, key: row.key, error)) }
            }
        }
        try restoreEach("restored", action: "update") { some in
            """
            restored AS (
                -- The row as it is, overwritten by its pre-image: a column added since keeps its value.
                UPDATE \(table) t SET (\(columns.joined(separator: ", "))) =
                    (SELECT \(columns.map { "r.\($0)" }.joined(separator: ", ")) FROM jsonb_populate_record(t, s.before) r)
                FROM ferry.snapshot_rows s
                WHERE \(scope) AND s.action = 'update'\(some ? someRows : "") AND \(match) AND \(unchanged)
                RETURNING s.ctid AS snapshot_row\(kept)
            ), gone AS (
                DELETE FROM ferry.snapshot_rows WHERE ctid IN (SELECT snapshot_row FROM restored)
            )
            """
        }
        if !reinserted.isEmpty {
            try restoreEach("re-inserted", action: "delete") { some in
                """
                inserted AS (
                    INSERT INTO \(table) AS t (\(reinserted.joined(separator: ", ")))
                    SELECT \(reinserted.map { "r.\($0)" }.joined(separator: ", "))
                    FROM ferry.snapshot_rows s, jsonb_populate_record(NULL::\(table), s.before) r
                    WHERE \(scope) AND s.action = 'delete'\(some ? someRows : "")
                      AND NOT EXISTS (SELECT 1 FROM \(table) t WHERE \(match))
                    RETURNING \(snapshot.keyObject(alias: "t")) AS key, t.xmin::text::bigint AS restored_xmin, to_jsonb(t) AS ferry_row
                ), restored AS (
                    SELECT x.key, x.restored_xmin, x.ferry_row, s.before AS ferry_before\(records ? ", s.before_xmin" : "")
                    FROM inserted x JOIN ferry.snapshot_rows s ON \(scope) AND s.action = 'delete' AND s.key = x.key
                )
                """
            }
        }
        // Deleted rows now back (or back already), and inserted rows that are already gone: nothing left
        // to undo.
        try connection.query(
            """
            DELETE FROM ferry.snapshot_rows s
            WHERE \(scope) AND (s.action = 'delete') = EXISTS (SELECT 1 FROM \(table) t WHERE \(match))
            """, parameters)
        try connection.execute(script: "RELEASE SAVEPOINT ferry_rollback_table")
        try RowTrigger.enable(bypassed, on: table, connection: connection)
        return result
    }

    /// Deletes the deletable rows the whole statement could not (`putBack`: halves, down to single rows),
    /// leaving those that rows still reference in a way the catalog did not show (a foreign key added
    /// while the rollback ran, say). Repeated while a pass deletes something: a row that only another
    /// candidate references goes once that one is gone, whatever their order.
    private func undoInParts(
        _ snapshot: SnapshotTable, rules: RollbackRules, references: [ReferencingKey], stillReferenced: inout Int,
        conflicts: inout [String], connection: PostgresConnection
    ) throws -> Int {
        let table = snapshot.qualifiedName
        var candidates = try connection.query(
            """
            WITH \(rules.commonTableExpressions(snapshot, references: references))
            SELECT d.snapshot_row::text AS snapshot_row, d.row_id::text AS row_id, s.key::text AS key
            FROM deletable d JOIN ferry.snapshot_rows s ON s.ctid = d.snapshot_row
            """, [String(rules.run), table]
        ).decoded("rows to delete one by one", key: "key").map {
            (
                snapshotRow: try $0.required("snapshot_row", as: String.self),
                row: try $0.required("row_id", as: String.self),
                key: try $0.required("key", as: String.self)
            )
        }
        var undone = 0
        while true {
            var refused: [(candidate: (snapshotRow: String, row: String, key: String), error: PostgresError)] = []
            try Self.putBack(candidates[...], on: connection) { some in
                let deleted = try connection.query(
                    "DELETE FROM \(table) WHERE ctid = ANY ($1::tid[])", [textArrayLiteral(some.map(\.row))]
                ).affectedRows
                try connection.query(
                    "DELETE FROM ferry.snapshot_rows WHERE ctid = ANY ($1::tid[])",
                    [textArrayLiteral(some.map(\.snapshotRow))])
                undone += deleted
            } refused: { candidate, error in
                refused.append((candidate, error))
            }
            if refused.count == candidates.count {
                for (candidate, error) in refused {
                    guard error.sqlState == "23503" else { throw error }
                    stillReferenced += 1
                    if conflicts.count < 50 {
                        conflicts.append("\(table) \(candidate.key): still referenced by newer rows")
                    }
                }
                return undone
            }
            candidates = refused.map(\.candidate)
        }
    }
}
