import Foundation

/// Undoes a contract run: re-adds the dropped columns, puts every kept value back by primary key, then
/// restores defaults, NOT NULL, and the indexes and constraints that were dropped with the columns.
struct ContractRollback {
    let connection: PostgresConnection
    let ledger: RunLedger
    let lock: RunLock
    /// See `Rollback.disablesBeforeTriggers`: putting the values back updates every row they belong to.
    let disablesBeforeTriggers: Bool

    func run(_ runId: Int64, dryRun: Bool, force: Bool, record: RunRecord) throws -> RollbackReport {
        var report = RollbackReport(runId: runId, dryRun: dryRun, force: force)
        let columns = try connection.query(ContractSQL.droppedColumns, [String(runId)])
            .decoded("ferry.dropped_columns", key: "column_name").map(DroppedColumn.init)
        guard let tableName = columns.first?.table else {
            throw LedgerError("contract run \(runId) recorded no dropped column (it failed before dropping anything)")
        }
        let names = columns.map(\.name)
        let present = try connection.query(ContractSQL.existingColumns, [tableName, textArrayLiteral(names)])
            .decoded("columns of \(tableName)").map { try $0.required("attname", as: String.self) }
        guard present.isEmpty else {
            throw LedgerError(
                "\(tableName) already has column\(present.count == 1 ? "" : "s") \(present.joined(separator: ", ")) again; "
                    + "ferry will not overwrite it. Drop or rename it first, then roll back run \(runId)")
        }
        let kept = try connection.query("SELECT count(*) FROM ferry.dropped_values WHERE run_id = $1", [String(runId)])
            .value("ferry.dropped_values", as: Int.self)
        var tableReport = RollbackTableReport(table: "\(tableName) (columns \(names.joined(separator: ", ")))")
        tableReport.unchanged = kept
        // Not looked at on Citus, as for the other rollbacks there.
        let triggers =
            try SnapshotTable.isDistributed(tableName, on: connection)
            ? [] : try RowTrigger.beforeRowTriggers(on: tableName, connection: connection).filter(\.onUpdate)
        tableReport.restores(through: triggers, disabled: disablesBeforeTriggers)
        if dryRun {
            // This dry run counts without writing: what the triggers would change is not known here.
            if !triggers.isEmpty && !disablesBeforeTriggers {
                report.notRestoredExactly.append(
                    "\(tableName): the kept values would be put back through trigger\(triggers.count == 1 ? "" : "s") "
                        + "\(triggers.map(\.name).joined(separator: ", ")), which may change other columns of every row "
                        + "they go to (--disable-before-triggers restores exactly)")
            }
            report.tables = [tableReport]
            return report
        }

        // On Citus the kept values cannot be joined from the coordinator's ledger to the distributed table:
        // they go through a scratch table distributed like it, created before the transaction.
        let table = try SnapshotTable.resolve(tableName, on: connection)
        let scratch = try DistributedRollback.prepareKeptValues(table, runId: runId, on: connection)
        defer { if let scratch { _ = try? connection.execute(script: "DROP TABLE IF EXISTS \(scratch.table)") } }

        return try Rollback.recorded(runId, record: record, ledger: ledger, lock: lock, report: report) {
            rollbackRunId, report in
            // Values first, then defaults: a default added with the column would fill rows that were NULL.
            try connection.execute(
                script: "ALTER TABLE \(tableName) "
                    + columns.map { "ADD COLUMN \(quoteIdentifier($0.name)) \($0.type)" }.joined(separator: ", "))
            let restored: Int
            if let scratch {
                try connection.query(scratch.fill, [String(runId)])
                restored = try connection.query(
                    scratch.restore(columns: columns.map { ($0.name, $0.type) })
                ).affectedRows
            } else {
                let bypassed = disablesBeforeTriggers ? triggers : []
                try RowTrigger.disable(bypassed, on: tableName, connection: connection)
                let compares = !triggers.isEmpty && bypassed.isEmpty
                var outcome = RestoreOutcome()
                try outcome.add(
                    "the kept values put back", ContractSQL.restoreValues(table, columns: names, comparing: compares),
                    [String(runId)] + (compares ? [textArrayLiteral(names)] : []), on: connection)
                try RowTrigger.enable(bypassed, on: tableName, connection: connection)
                restored = outcome.restored
                if let notExact = tableReport.note(outcome, table: tableName) {
                    report.notRestoredExactly.append(notExact)
                }
            }
            tableReport.undone = restored
            tableReport.alreadyGone = kept - restored
            var statements: [String] = []
            for column in columns {
                let name = quoteIdentifier(column.name)
                if let defaultExpression = column.defaultExpression {
                    statements.append("ALTER TABLE \(tableName) ALTER COLUMN \(name) SET DEFAULT \(defaultExpression)")
                }
                if column.notNull { statements.append("ALTER TABLE \(tableName) ALTER COLUMN \(name) SET NOT NULL") }
            }
            for column in columns {
                for statement in column.restoreStatements where !statements.contains(statement) {
                    statements.append(statement)
                }
            }
            for statement in statements { try connection.execute(script: statement) }
            try connection.query("DELETE FROM ferry.dropped_values WHERE run_id = $1", [String(runId)])
            try connection.query("UPDATE ferry.runs SET status = 'rolled_back' WHERE run_id = $1", [String(runId)])
            var detail = [
                "rollback_run": String(rollbackRunId), "values_restored": String(restored),
                "rows_gone_since": String(kept - restored),
            ]
            if scratch == nil {
                // A later contract judges rows by xmin: the rows this transaction restored count as ferry's.
                detail[ContractSQL.restoreXidDetail] = try connection.query("SELECT pg_current_xact_id()::text AS xid")
                    .value("the rollback's transaction id", as: String.self)
            }
            try ledger.event(runId: runId, kind: "rollback done", detail: detail)
            report.tables = [tableReport]
            report.complete = true
            if tableReport.alreadyGone > 0 {
                report.conflicts.append(
                    "\(tableReport.alreadyGone) rows of \(tableName) were deleted since the contract; their kept values had nowhere to go"
                )
            }
        }
    }
}

/// A column a contract run dropped, as `ferry.dropped_columns` recorded it.
private struct DroppedColumn {
    let name: String
    let type: String
    let notNull: Bool
    let defaultExpression: String?
    /// The indexes and constraints that went with the column, to create again.
    let restoreStatements: [String]
    let table: String

    init(_ row: Row) throws {
        name = try row.required("column_name")
        type = try row.required("column_type")
        notNull = try row.required("not_null")
        defaultExpression = try row.optional("default_expr")
        restoreStatements = try row.optional("restore_statements") ?? []
        table = try row.required("table_name")
    }
}
