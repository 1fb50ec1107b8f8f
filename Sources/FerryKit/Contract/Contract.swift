import Foundation

public struct ContractOptions: Sendable {
    /// Without it the step only checks and reports.
    public var confirm = false
    /// A CSV naming exactly the unmigrated rows whose legacy values may be dropped.
    public var acceptRejectedFile: String?
    /// Where the list of unmigrated rows goes (written whenever there are any); nil: ferry-contract-JOB-unmigrated.csv.
    public var unmigratedFile: String?
    public var lockTimeout: DurationSetting?
    public var wait = false
    public var retry = RetryPolicy()
    public var log: @Sendable (String) -> Void = FerryLog.note

    public init() {}
}

/// Raised inside the drop transaction when the re-check under the lock fails: the transaction rolls back.
private struct RecheckFailed: Error {}

/// The contract half of a migration: drops a job's legacy columns, but only once every non-empty
/// legacy value is proven migrated (or a DBA accepted losing exactly those that are not), and keeps the
/// dropped values so `ferry rollback` can put them back.
public struct Contract: Sendable {
    public let subject: any ContractSubject
    public let conninfo: String

    public init(subject: any ContractSubject, conninfo: String) {
        self.subject = subject
        self.conninfo = conninfo
    }

    public func run(_ given: ContractOptions = ContractOptions()) throws -> ContractReport {
        let connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry contract \(subject.job)")
        var options = given
        options.retry.inDoubt = try InDoubtTransactions.on(connection, conninfo: conninfo)
        var report = ContractReport(
            job: subject.job, table: subject.table.description, columns: subject.legacyColumns, rowNoun: subject.rowNoun
        )
        report.confirmed = options.confirm
        let unmigratedFile = options.unmigratedFile ?? "ferry-contract-\(subject.job)-unmigrated.csv"
        let engine = try preflight(connection)
        let lock = options.confirm ? try RunLock(conninfo: conninfo, job: subject.job, wait: options.wait) : nil
        defer { withExtendedLifetime(lock) {} }

        guard
            let apply = try connection.query(ContractSQL.lastSuccessfulApply, [subject.job]).decoded("ferry.runs").first
        else {
            report.problems.append(
                "no successful `ferry apply` of the \(subject.job) job on this database: apply first, then contract")
            return report
        }
        let applyXid: String = try apply.required("start_xid")
        report.lastApplyRunId = try apply.required("run_id")
        report.lastApplyFinishedAt = try apply.optional("finished_at")
        let keyColumn = "\(subject.rowNoun)_key"
        let accepted = try options.acceptRejectedFile.map { try ContractKeyFile.read($0, keyColumn: keyColumn) }
        report.acceptedFile = options.acceptRejectedFile
        let judgement = Judgement(
            unmigratedFile: unmigratedFile, acceptedFile: options.acceptRejectedFile, keyColumn: keyColumn,
            accepted: accepted)

        // The checks read one consistent snapshot and take no lock. On Citus each worker's snapshot is
        // its own: the check under the table lock then reads every row again, not only newer ones.
        var verification = Verification(subject: subject)
        if engine.isCitus {
            guard let tenantType = try connection.columnTypes(subject.table)[subject.tenantColumn] else {
                throw PreflightError(problems: ["cannot read the type of \(subject.table).\(subject.tenantColumn)"])
            }
            let applies = try connection.query(
                """
                SELECT coalesce(array_agg(run_id), '{}')::text FROM ferry.runs
                WHERE job = $1 AND mode = 'apply' AND status = 'succeeded'
                """, [subject.job]
            ).value("the job's successful applies", as: String.self)
            verification.citus = (tenantType, applies)
        }
        let snapshotXmin: String = try connection.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY") {
            let xmin = try connection.query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                .value("the snapshot's xmin", as: String.self)
            try verification.read(connection, applyXid: applyXid, writtenSince: nil)
            return xmin
        }
        verification.judge(into: &report, judgement)
        guard !report.refused, options.confirm else { return report }

        let ledger = try RunLedger.ownSession(conninfo: conninfo)
        let runId = try ledger.start(
            job: subject.job, mode: "contract", mappingFile: subject.mappingFile, mappingSHA256: subject.mappingSHA256)
        report.runId = runId
        let source = subject.table
        let table = try SnapshotTable.resolve(source.quoted, on: connection)
        let lockTimeout = (options.lockTimeout ?? subject.load.lockTimeout).text
        do {
            // ACCESS EXCLUSIVE, bounded by lock_timeout and retried: never queued behind a long transaction.
            try options.retry.run("locking \(source)", log: options.log) {
                do {
                    try connection.transaction {
                        try connection.execute(
                            script: SessionSettings.setLocalBatchSettings(
                                (lockTimeout, subject.load.statementTimeout.text)))
                        try connection.execute(script: "LOCK TABLE \(source.quoted) IN ACCESS EXCLUSIVE MODE")
                        // Rows written since the checks' snapshot are judged again, now that nobody can write.
                        var recheck = verification
                        report.rechecked = try recheck.read(connection, applyXid: applyXid, writtenSince: snapshotXmin)
                        recheck.judge(into: &report, judgement)
                        if report.refused { throw RecheckFailed() }
                        try connection.query(
                            ContractSQL.recordColumns,
                            [String(runId), table.qualifiedName, textArrayLiteral(subject.legacyColumns)])
                        report.valuesKept = try connection.query(
                            ContractSQL.recordValues(table, source: source, columns: subject.legacyColumns),
                            [String(runId), table.qualifiedName]
                        ).affectedRows
                        try connection.execute(script: ContractSQL.dropColumns(source, subject.legacyColumns))
                        // Last: a contract whose lock session ended meanwhile drops nothing.
                        try lock?.confirmHeld()
                    }
                } catch let error as PostgresError where error.sqlState == "55P03" {
                    options.log("\(source) is busy (lock_timeout \(lockTimeout)); retrying")
                    throw error
                }
            }
        } catch is RecheckFailed {
            try ledger.finish(runId: runId, status: "failed", error: "refused by the re-check under the table lock")
            return report
        } catch let lost as LockLost {
            try? ledger.finish(runId: runId, status: "failed", error: String(describing: lost))
            throw LedgerError("\(lost); the contract's transaction was rolled back: no column was dropped")
        } catch {
            try? ledger.finish(runId: runId, status: "failed", error: String(describing: error))
            throw error
        }
        report.dropped = true
        try ledger.event(
            runId: runId, kind: "columns dropped",
            detail: [
                "table": table.qualifiedName, "columns": subject.legacyColumns.joined(separator: ","),
                "values_kept": String(report.valuesKept), "accepted_unmigrated": String(report.accepted),
            ])
        try ledger.finish(
            runId: runId, status: "succeeded",
            countsJSON: String(decoding: try JSONEncoder.sorted.encode(report), as: UTF8.self))
        return report
    }

    /// Refuses what the contract cannot judge or drop; returns the engine the subject's table is on.
    private func preflight(_ connection: PostgresConnection) throws -> DatabaseEngine {
        let table = subject.table
        let engine = try DatabaseEngine.detect(source: table, on: connection)
        if engine.isCitus {
            // Dropping columns on a judgement that can be wrong loses data: refuse rather than guess.
            guard let reads = subject.citusReads else {
                throw PreflightError(problems: [
                    "the \(subject.job) contract does not run on Citus yet: it judges \"changed since the apply\" by xmin, which on a distributed \(table) is each worker's own transaction id, so a value the application changed after the apply could be accepted and its column dropped"
                ])
            }
            guard
                try connection.query("SELECT to_regclass($1) IS NOT NULL", [reads.quoted]).value(
                    "whether \(reads) exists", as: Bool.self)
            else {
                throw PreflightError(problems: [
                    "\(reads) does not exist: on Citus the contract compares each legacy value with what the applies read, and no apply recorded its reads on this database; run `ferry apply \(subject.mappingFile)`, then contract"
                ])
            }
        }
        let hasLedger = try connection.query("SELECT to_regclass('ferry.dropped_values') IS NOT NULL").value(
            "whether ferry.dropped_values exists", as: Bool.self)
        guard hasLedger else {
            throw PreflightError(problems: [
                "the contract ledger (ferry.dropped_values) does not exist; run `ferry schema apply \(subject.mappingFile)` first"
            ])
        }
        let existing = Set(
            try connection.query(ContractSQL.existingColumns, [table.quoted, textArrayLiteral(subject.legacyColumns)])
                .decoded("the legacy columns").map { try $0.required("attname", as: String.self) })
        let missing = subject.legacyColumns.filter { !existing.contains($0) }
        guard missing.isEmpty else {
            let run = try connection.query(
                ContractSQL.contractInForce,
                [try SnapshotTable.resolve(table.quoted, on: connection).qualifiedName, textArrayLiteral(missing)]
            ).scalar
            throw PreflightError(
                problems: missing.map { column in
                    "column \(table).\(column) does not exist"
                        + (run.map { " (dropped by contract run \($0); `ferry rollback \($0)` re-adds it)" } ?? "")
                })
        }
        return engine
    }
}

/// How the verdicts become problems: where the unmigrated list goes, and the accepted list if any.
private struct Judgement {
    let unmigratedFile: String
    let acceptedFile: String?
    let keyColumn: String
    let accepted: Set<RowKey>?
}

/// The verdicts on every row with a legacy value, accumulated page by page. Memory stays small:
/// unmigrated rows are kept whole, the others only as a hashed key and a count.
private struct Verification {
    let subject: any ContractSubject
    private(set) var unmigrated: [RowKey: UnmigratedValue] = [:]
    private var seen = Set<Int>()
    private var empty = Set<Int>()
    private(set) var migrated = 0
    /// On Citus: the tenant column's type, and the job's successful applies (a bigint[] literal), whose
    /// reads judge "changed".
    var citus: (tenantType: String, applies: String)?

    init(subject: any ContractSubject) {
        self.subject = subject
    }

    /// Reads the rows (all, or those written since `writtenSince`) through a cursor; returns how many.
    /// A row read again replaces its earlier verdict.
    @discardableResult
    mutating func read(_ connection: PostgresConnection, applyXid: String, writtenSince: String?) throws -> Int {
        if let citus, let rows = subject.citusLegacyRows(tenantType: citus.tenantType) {
            // A tenant at a time: each statement then runs on the shard group that holds it.
            var total = 0
            for tenant in try connection.query(
                "SELECT DISTINCT \(quoteIdentifier(subject.tenantColumn))::text AS tenant FROM \(subject.table.quoted) ORDER BY 1"
            ).decoded("the tenants of \(subject.table)").map({ try $0.required("tenant", as: String.self) }) {
                total += try readRows(connection, rows, [citus.applies, tenant])
            }
            return total
        }
        let ferryWrites = try connection.query(ContractSQL.ferryWriteXids).scalar ?? "{}"
        return try readRows(connection, subject.legacyRows, [applyXid, writtenSince, ferryWrites])
    }

    private mutating func readRows(
        _ connection: PostgresConnection, _ statement: String, _ parameters: [String?]
    )
        throws -> Int
    {
        let cursor = "ferry_contract_rows"
        try connection.query("DECLARE \(cursor) NO SCROLL CURSOR FOR \(statement)", parameters)
        defer { _ = try? connection.execute(script: "CLOSE \(cursor)") }
        var read = 0
        while true {
            let rows = try connection.query("FETCH 5000 FROM \(cursor)").decoded("the legacy rows", key: "ferry_key")
            if rows.isEmpty { break }
            for row in rows {
                let (verdict, values) = try subject.judge(row)
                record(
                    RowKey(tenant: try row.required("ferry_tenant"), key: try row.required("ferry_key")), verdict,
                    values: values, changedSinceApply: try row.required("ferry_changed"))
            }
            read += rows.count
        }
        return read
    }

    private mutating func record(_ row: RowKey, _ verdict: LegacyValueVerdict, values: String, changedSinceApply: Bool)
    {
        let hash = row.hashValue
        if !seen.insert(hash).inserted {
            if unmigrated.removeValue(forKey: row) == nil, empty.remove(hash) == nil { migrated -= 1 }
        }
        switch verdict {
        case .migrated: migrated += 1
        case .nothingToMigrate: empty.insert(hash)
        case .rejected, .missing, .notMigrated:
            unmigrated[row] = UnmigratedValue(
                row: row, values: values, reason: verdict.reason, changedSinceApply: changedSinceApply)
        }
    }

    /// Fills the report's counts and problems. A value written since the apply must be migrated (the
    /// apply never saw it); any other unmigrated value must be named in the accepted file, exactly.
    func judge(into report: inout ContractReport, _ judgement: Judgement) {
        report.checked = seen.count
        report.migrated = migrated
        report.nothingToMigrate = empty.count
        let unmigrated = self.unmigrated.values.sorted { $0.row < $1.row }
        let noun = subject.rowNoun
        func plural(_ count: Int) -> String { "\(formatCount(count)) \(noun)\(count == 1 ? "" : "s")" }
        report.unmigrated = unmigrated.count
        report.examples = Array(unmigrated.prefix(20))
        report.problems = []
        report.unmigratedFile = nil
        if !unmigrated.isEmpty {
            do {
                try ContractKeyFile.write(unmigrated, to: judgement.unmigratedFile, keyColumn: judgement.keyColumn)
                report.unmigratedFile = judgement.unmigratedFile
            } catch {
                report.problems.append(
                    "cannot write the list of unmigrated \(noun)s to \(judgement.unmigratedFile): \(error)")
            }
        }
        let changed = unmigrated.filter(\.changedSinceApply)
        report.changedSinceApply = changed.count
        if !changed.isEmpty {
            report.problems.append(
                "\(plural(changed.count)) changed since apply run \(report.lastApplyRunId ?? 0) hold legacy values that are not migrated (e.g. \(changed[0].row): \(changed[0].reason)): run `ferry apply \(subject.mappingFile)` again, then contract"
            )
        }
        let acceptable = Set(unmigrated.filter { !$0.changedSinceApply }.map(\.row))
        guard let accepted = judgement.accepted else {
            if !acceptable.isEmpty {
                report.problems.append(
                    "\(plural(acceptable.count)) with legacy values that are not migrated (listed in \(judgement.unmigratedFile)): migrate them, or accept losing exactly these with --accept-rejected FILE"
                )
            }
            return
        }
        report.accepted = acceptable.intersection(accepted).count
        let notAccepted = acceptable.subtracting(accepted).sorted()
        let notUnmigrated = accepted.subtracting(acceptable).sorted()
        let file = judgement.acceptedFile ?? "--accept-rejected"
        if !notAccepted.isEmpty {
            report.problems.append(
                "\(plural(notAccepted.count)) not migrated \(notAccepted.count == 1 ? "is" : "are") not named in \(file) (e.g. \(notAccepted[0]))"
            )
        }
        if !notUnmigrated.isEmpty {
            report.problems.append(
                "\(file) names \(plural(notUnmigrated.count)) that \(notUnmigrated.count == 1 ? "is" : "are") not an unmigrated one (e.g. \(notUnmigrated[0])): the list must be exact"
            )
        }
    }
}
