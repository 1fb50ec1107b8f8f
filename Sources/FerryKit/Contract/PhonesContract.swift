import Foundation

public struct ContractOptions: Sendable {
    /// Without it the step only checks and reports.
    public var confirm = false
    /// A CSV naming exactly the unmigrated contacts whose legacy values may be dropped.
    public var acceptRejectedFile: String?
    /// Where the list of unmigrated contacts goes (written whenever there are any).
    public var unmigratedFile = "ferry-contract-phones-unmigrated.csv"
    public var lockTimeout: DurationSetting?
    public var wait = false
    public var retry = RetryPolicy()
    public var log: @Sendable (String) -> Void = { FileHandle.standardError.write(Data("ferry: \($0)\n".utf8)) }

    public init() {}
}

/// Raised inside the drop transaction when the re-check under the lock fails: the transaction rolls back.
private struct RecheckFailed: Error {}

/// The contract half of the phones migration: drops the legacy phone columns, but only once every
/// non-empty legacy value is proven to be in the phone rows (or a DBA accepted losing exactly those
/// that are not), and keeps the dropped values so `ferry rollback` can put them back.
public struct PhonesContract: Sendable {
    public let mapping: PhonesMapping
    public let conninfo: String

    public init(mapping: PhonesMapping, conninfo: String) {
        self.mapping = mapping
        self.conninfo = conninfo
    }

    public func run(_ options: ContractOptions = ContractOptions()) throws -> ContractReport {
        let sql = PhonesContractSQL(mapping: mapping)
        let connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry contract phones")
        var report = ContractReport(job: PhonesJob.name, table: mapping.source.table.description, columns: sql.legacyColumns)
        report.confirmed = options.confirm
        try preflight(connection, sql: sql)
        let lock = options.confirm ? try RunLock(conninfo: conninfo, job: PhonesJob.name, wait: options.wait) : nil
        defer { withExtendedLifetime(lock) {} }

        guard let apply = try connection.query(PhonesContractSQL.lastSuccessfulApply, [PhonesJob.name]).rows.first,
              let applyRun = Int64(apply[0] ?? ""), let applyXid = apply[1] else {
            report.problems.append("no successful `ferry apply` of the phones job on this database: apply first, then contract")
            return report
        }
        report.lastApplyRunId = applyRun
        report.lastApplyFinishedAt = apply[2]
        let accepted = try options.acceptRejectedFile.map(ContractKeyFile.read)
        report.acceptedFile = options.acceptRejectedFile

        // The checks read one consistent snapshot and take no lock.
        var verification = Verification(transform: mapping.transform)
        let snapshotXmin: String = try connection.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY") {
            let xmin = try connection.query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").scalar ?? "0"
            try verification.read(connection, sql: sql, applyXid: applyXid, writtenSince: nil)
            return xmin
        }
        verification.judge(into: &report, accepted: accepted, options: options)
        guard !report.refused, options.confirm else { return report }

        let ledger = RunLedger(connection: try PostgresConnection(conninfo: conninfo, applicationName: "ferry ledger"))
        let runId = try ledger.start(job: PhonesJob.name, mode: "contract", mappingFile: mapping.file, mappingSHA256: mapping.sha256)
        report.runId = runId
        let table = try SnapshotTable.resolve(mapping.source.table.quoted, on: connection)
        let lockTimeout = (options.lockTimeout ?? mapping.load.lockTimeout).text
        do {
            // ACCESS EXCLUSIVE, bounded by lock_timeout and retried: never queued behind a long transaction.
            try options.retry.run("locking \(mapping.source.table)", log: options.log) {
                do {
                    try connection.transaction {
                        try connection.query(PhonesSQL.setLocalTimeouts, [lockTimeout, mapping.load.statementTimeout.text])
                        try connection.execute(script: "LOCK TABLE \(mapping.source.table.quoted) IN ACCESS EXCLUSIVE MODE")
                        // Rows written since the checks' snapshot are judged again, now that nobody can write.
                        var recheck = verification
                        report.rechecked = try recheck.read(connection, sql: sql, applyXid: applyXid, writtenSince: snapshotXmin)
                        recheck.judge(into: &report, accepted: accepted, options: options)
                        if report.refused { throw RecheckFailed() }
                        try connection.query(PhonesContractSQL.recordColumns,
                                             [String(runId), table.qualifiedName, textArrayLiteral(sql.legacyColumns)])
                        report.valuesKept = try connection.query(sql.recordValues(table), [String(runId), table.qualifiedName]).affectedRows
                        try connection.execute(script: sql.dropColumns)
                    }
                } catch let error as PostgresError where error.sqlState == "55P03" {
                    options.log("\(mapping.source.table) is busy (lock_timeout \(lockTimeout)); retrying")
                    throw error
                }
            }
        } catch is RecheckFailed {
            try ledger.finish(runId: runId, status: "failed", error: "refused by the re-check under the table lock")
            return report
        } catch {
            try? ledger.finish(runId: runId, status: "failed", error: String(describing: error))
            throw error
        }
        report.dropped = true
        try ledger.event(runId: runId, kind: "columns dropped",
                         detail: ["table": table.qualifiedName, "columns": sql.legacyColumns.joined(separator: ","),
                                  "values_kept": String(report.valuesKept), "accepted_unmigrated": String(report.accepted)])
        try ledger.finish(runId: runId, status: "succeeded",
                          countsJSON: String(decoding: try JSONEncoder.sorted.encode(report), as: UTF8.self))
        return report
    }

    private func preflight(_ connection: PostgresConnection, sql: PhonesContractSQL) throws {
        let table = mapping.source.table
        let existing = Set(try connection.query(PhonesContractSQL.existingColumns, [table.quoted, textArrayLiteral(sql.legacyColumns)])
            .rows.compactMap { $0[0] })
        let hasLedger = try connection.query("SELECT to_regclass('ferry.dropped_values') IS NOT NULL").scalar == "t"
        guard hasLedger else {
            throw PreflightError(problems: ["the contract ledger (ferry.dropped_values) does not exist; run `ferry schema apply \(mapping.file)` first"])
        }
        let missing = sql.legacyColumns.filter { !existing.contains($0) }
        guard missing.isEmpty else {
            let run = try connection.query(PhonesContractSQL.contractInForce,
                                           [try SnapshotTable.resolve(table.quoted, on: connection).qualifiedName, textArrayLiteral(missing)]).scalar
            throw PreflightError(problems: missing.map { column in
                "column \(table).\(column) does not exist" + (run.map { " (dropped by contract run \($0 ?? "?"); `ferry rollback \($0 ?? "?")` re-adds it)" } ?? "")
            })
        }
    }
}

/// The verdicts on every contact with a legacy value, accumulated page by page. Memory stays small:
/// unmigrated contacts are kept whole, the others only as a hashed key and a count.
private struct Verification {
    let transform: PhoneTransform
    private(set) var unmigrated: [ContactRef: UnmigratedValue] = [:]
    private var seen = Set<Int>()
    private var empty = Set<Int>()
    private(set) var migrated = 0

    init(transform: PhoneTransform) {
        self.transform = transform
    }

    var checked: Int { seen.count }
    var nothingToMigrate: Int { empty.count }

    /// Reads the contacts (all, or those written since `writtenSince`) through a cursor; returns how many.
    /// A contact read again replaces its earlier verdict.
    @discardableResult
    mutating func read(_ connection: PostgresConnection, sql: PhonesContractSQL, applyXid: String, writtenSince: String?) throws -> Int {
        let cursor = "ferry_contract_values"
        try connection.query("DECLARE \(cursor) NO SCROLL CURSOR FOR \(sql.legacyValues)", [applyXid, writtenSince])
        defer { _ = try? connection.execute(script: "CLOSE \(cursor)") }
        let valueCount = sql.legacyColumns.count
        var read = 0
        while true {
            let rows = try connection.query("FETCH 5000 FROM \(cursor)").rows
            if rows.isEmpty { break }
            for row in rows {
                let contact = LegacyPhoneContact(tenant: row[0] ?? "", contactKey: row[1] ?? "", region: row[2],
                                                 values: Array(row[3..<(3 + valueCount)]))
                let verdict = transform.contractVerdict(contact, existing: Set(row[3 + valueCount].map(parseTextArray) ?? []))
                record(ContactRef(tenant: contact.tenant, contactKey: contact.contactKey), verdict,
                       values: contact.values.map { $0 ?? "" }.joined(separator: " | "), changedSinceApply: row[4 + valueCount] == "t")
            }
            read += rows.count
        }
        return read
    }

    private mutating func record(_ ref: ContactRef, _ verdict: LegacyValueVerdict, values: String, changedSinceApply: Bool) {
        let hash = ref.hashValue
        if !seen.insert(hash).inserted {
            if unmigrated.removeValue(forKey: ref) == nil, empty.remove(hash) == nil { migrated -= 1 }
        }
        switch verdict {
        case .migrated: migrated += 1
        case .nothingToMigrate: empty.insert(hash)
        case .rejected, .missing:
            unmigrated[ref] = UnmigratedValue(contact: ref, values: values, reason: verdict.reason, changedSinceApply: changedSinceApply)
        }
    }

    /// Fills the report's counts and problems. A value written since the apply must be migrated (the
    /// apply never saw it); any other unmigrated value must be named in the accepted file, exactly.
    func judge(into report: inout ContractReport, accepted: Set<ContactRef>?, options: ContractOptions) {
        report.checked = checked
        report.migrated = migrated
        report.nothingToMigrate = nothingToMigrate
        let unmigrated = self.unmigrated.values.sorted { $0.contact < $1.contact }
        report.unmigrated = unmigrated.count
        report.examples = Array(unmigrated.prefix(20))
        report.problems = []
        report.unmigratedFile = nil
        if !unmigrated.isEmpty {
            do {
                try ContractKeyFile.write(unmigrated, to: options.unmigratedFile)
                report.unmigratedFile = options.unmigratedFile
            } catch {
                report.problems.append("cannot write the list of unmigrated contacts to \(options.unmigratedFile): \(error)")
            }
        }
        let changed = unmigrated.filter(\.changedSinceApply)
        report.changedSinceApply = changed.count
        if !changed.isEmpty {
            report.problems.append("\(formatCount(changed.count)) contact\(changed.count == 1 ? "" : "s") changed since apply run \(report.lastApplyRunId ?? 0) hold legacy values that are not migrated (e.g. \(changed[0].contact): \(changed[0].reason)): run `ferry apply \(report.job == PhonesJob.name ? "MAPPING" : report.job)` again, then contract")
        }
        let acceptable = Set(unmigrated.filter { !$0.changedSinceApply }.map(\.contact))
        guard let accepted else {
            if !acceptable.isEmpty {
                report.problems.append("\(formatCount(acceptable.count)) contact\(acceptable.count == 1 ? "'s legacy value is" : "s' legacy values are") not migrated (listed in \(options.unmigratedFile)): migrate them, or accept losing exactly these with --accept-rejected FILE")
            }
            return
        }
        report.accepted = acceptable.intersection(accepted).count
        let notAccepted = acceptable.subtracting(accepted).sorted()
        let notUnmigrated = accepted.subtracting(acceptable).sorted()
        let file = options.acceptRejectedFile ?? "--accept-rejected"
        if !notAccepted.isEmpty {
            report.problems.append("\(formatCount(notAccepted.count)) unmigrated contact\(notAccepted.count == 1 ? " is" : "s are") not named in \(file) (e.g. \(notAccepted[0]))")
        }
        if !notUnmigrated.isEmpty {
            report.problems.append("\(file) names \(formatCount(notUnmigrated.count)) contact\(notUnmigrated.count == 1 ? "" : "s") that \(notUnmigrated.count == 1 ? "is" : "are") not an unmigrated one (e.g. \(notUnmigrated[0])): the list must be exact")
        }
    }
}
