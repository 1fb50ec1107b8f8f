import Foundation

/// A problem found before any row is touched: missing tables, columns, or a schema step not applied.
public struct PreflightError: Error, CustomStringConvertible, Sendable {
    public let problems: [String]
    public var description: String {
        "ferry cannot start:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// How `apply` paces itself on a live database. Unset values come from the mapping file.
public struct ApplyOptions: Sendable {
    public var batchSize: Int?
    /// Pause between batches, to leave room for the application (seconds; nil when not set).
    public var batchDelay: Double?
    /// Pause while a streaming standby's replay lag exceeds this many seconds.
    public var maxReplicaLag: Double?
    public var lockTimeout: DurationSetting?
    public var statementTimeout: DurationSetting?
    /// Queue behind a running apply of the same job instead of exiting at once.
    public var wait = false
    /// Resume this run (by default the newest interrupted run of the job with the same mapping).
    public var resumeRunId: Int64?
    /// Also write the run's snapshot to this file (gzip, with FILE.sha256 beside it).
    public var snapshotFile: String?
    /// The approved plan: apply refuses, before the first batch, if the mapping or the data changed since.
    public var plan: PlanFile?
    /// The sha256 of the plan file's bytes, recorded with the run (the report a reviewer signed names it).
    public var planSHA256: String?
    /// Apply despite drift from the plan; every change is recorded in the ledger.
    public var allowDrift = false
    public var retry = RetryPolicy()
    /// Where progress notes (retries, pauses) go.
    public var log: @Sendable (String) -> Void = FerryLog.note

    public init() {}
}

/// The phones backfill: extract legacy contacts → transform phones → a sink.
/// `plan` and `apply` share everything up to the sink.
public struct PhonesJob: Sendable {
    public static let name = "phones"
    public let mapping: PhonesMapping
    public let conninfo: String
    public var showProgress = true
    /// Every anomaly of every contact, as the plan finds it (the report keeps a few examples per class):
    /// `plan --report FILE` writes them all to FILE.anomalies.csv.
    public var anomalyFile: String?

    public init(mapping: PhonesMapping, conninfo: String) {
        self.mapping = mapping
        self.conninfo = conninfo
    }

    /// The schema steps of this job, typed after the live source table.
    public func schemaSteps(using connection: PostgresConnection) throws -> [SchemaStep] {
        let types = try keyTypes(connection)
        return LedgerSchema.steps + PhonesSchema.steps(for: mapping, tenantType: types.tenant, keyType: types.key)
    }

    /// Reads and transforms everything in one READ ONLY snapshot, writes nothing (not even the ledger).
    public func plan() throws -> PhonesSummary {
        try planInSnapshot(fingerprint: false).summary
    }

    /// The plan, plus the fingerprint of the data it read (from the same snapshot), for `apply --plan`.
    public func planFile() throws -> PlanFile {
        let (summary, fingerprint, xmax) = try planInSnapshot(fingerprint: true)
        return PlanFile(
            job: Self.name, mapping: mapping, fingerprint: fingerprint, snapshotXmax: xmax, summary: summary)
    }

    private func planInSnapshot(
        fingerprint: Bool
    ) throws -> (summary: PhonesSummary, fingerprint: [TenantFingerprint], xmax: Int64) {
        let reader = try PostgresConnection(conninfo: conninfo, applicationName: "ferry plan phones")
        try reader.execute(script: "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        defer { _ = try? reader.execute(script: "ROLLBACK") }
        try preflight(reader, forApply: false)
        let snapshot = try reader.query("SELECT pg_export_snapshot()").scalar ?? ""
        let constraints = try LiveConstraintChecks(conninfo: conninfo, snapshot: snapshot, mapping: mapping)
        let extractor = PhonesExtractor(
            connection: reader, sql: PhonesSQL(mapping: mapping), pageSize: mapping.load.batchSize)
        var summary = try run(mode: .plan, reader: reader, extractor: extractor, firstBatch: 1) { batch in
            try constraints.add(batch.outcomes.map(\.rows))
        }
        summary.checks += try constraints.results()
        let keys = try keyTypes(reader)
        summary.applyStatements = PhonesSQL(mapping: mapping).applyStatements(
            types: try SnapshotTable.resolve(mapping.typeDefinitions.table.quoted, on: reader),
            phones: try SnapshotTable.resolve(mapping.phoneNumbers.table.quoted, on: reader), tenantType: keys.tenant,
            keyType: keys.key)
        let sample = try constraints.sampleLoad(rows: mapping.load.batchSize)
        for table in [mapping.phoneNumbers.table, mapping.typeDefinitions.table] {
            summary.targetRowsExisting[table.description] =
                Int(try reader.query("SELECT count(*) FROM \(table.quoted)").scalar ?? "0") ?? 0
        }
        try estimateApply(&summary, reader, sample: sample)
        let xmax = Int64(try reader.query("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").scalar ?? "0") ?? 0
        return (summary, fingerprint ? try sourceFingerprint(reader) : [], xmax)
    }

    /// apply's duration, from this plan's measured transform throughput and a load rate: measured on
    /// earlier applies of this job here when there are some, else this plan's sample load (one batch into
    /// a temporary copy of the table with its indexes), else a conservative default.
    private func estimateApply(
        _ summary: inout PhonesSummary, _ reader: PostgresConnection,
        sample: (rate: Double, rows: Int, bytesPerRow: Double)?
    ) throws {
        if let sample { summary.estimatedGrowthBytes = Int(sample.bytesPerRow * Double(summary.rowsToInsert)) }
        var loadRate = 30_000.0
        var basis = "load rate: a default of 30,000 rows/s (no earlier apply on this database, no sample load)"
        if let sample {
            // A temporary table writes no WAL and checks no foreign keys, and the real batch also writes snapshot rows.
            loadRate = sample.rate / 3
            basis = String(
                format:
                    "load rate: a sample load of %d rows into a temporary copy of the table with its indexes ran at %.0f rows/s; a third of that is assumed for the real table (WAL, foreign keys, snapshot rows)",
                sample.rows, sample.rate)
        }
        // A failed statement would abort the plan's snapshot transaction: look before querying the ledger.
        let hasLedger =
            try reader.query(
                """
                SELECT CASE WHEN to_regclass('ferry.batches') IS NULL OR to_regclass('ferry.runs') IS NULL THEN false
                            ELSE has_table_privilege('ferry.batches', 'SELECT') AND has_table_privilege('ferry.runs', 'SELECT') END
                """
            ).scalar == "t"
        let history =
            !hasLedger
            ? nil
            : try reader.query(
                """
                SELECT sum(b.rows_inserted)::float8 / nullif(extract(epoch FROM max(b.committed_at) - min(b.committed_at)), 0)
                FROM ferry.batches b JOIN ferry.runs r USING (run_id)
                WHERE r.job = $1 AND r.mode = 'apply' AND b.rows_inserted > 0
                HAVING count(*) >= 3
                """, [Self.name]
            ).scalar.flatMap { Double($0) }
        if let history, history > 0 {
            loadRate = history
            basis = String(format: "load rate: %.0f rows/s measured on earlier applies of this job here", history)
        }
        let transformSeconds = summary.elapsedSeconds
        summary.estimatedApplySeconds = max(transformSeconds, Double(summary.rowsToInsert) / loadRate) * 1.1 + 1
        summary.estimateBasis =
            String(format: "an estimate: transform as measured by this plan (%.1f s), ", transformSeconds) + basis
            + ", plus 10%"
    }

    func sourceFingerprint(_ connection: PostgresConnection) throws -> [TenantFingerprint] {
        try connection.query(PhonesSQL(mapping: mapping).sourceFingerprint).rows.map {
            TenantFingerprint(tenant: $0[0] ?? "", rows: Int($0[1] ?? "0") ?? 0, sha: $0[2] ?? "")
        }
    }

    /// Per tenant, source rows inserted or updated by others from transaction `xid` on.
    func sourceRowsWritten(since xid: Int64, _ connection: PostgresConnection) throws -> [String: Int] {
        var written: [String: Int] = [:]
        for row in try connection.query(PhonesSQL(mapping: mapping).sourceRowsWrittenSincePerTenant, [String(xid)]).rows
        {
            written[row[0] ?? ""] = Int(row[1] ?? "0") ?? 0
        }
        return written
    }

    /// Writes the phone rows, one transaction per batch, each with its snapshot and cursor; resumes an
    /// interrupted run of the same mapping; holds the job's lock throughout.
    public func apply(_ options: ApplyOptions = ApplyOptions()) throws -> PhonesSummary {
        var drift: [String] = []
        return try LedgerRun.apply(
            job: Self.name, mappingFile: mapping.file, mappingSHA256: mapping.sha256, load: mapping.load,
            conninfo: conninfo, options: options,
            preflight: { reader in
                try preflight(reader, forApply: true, warn: options.log)
                if let plan = options.plan {
                    drift = plan.drift(
                        mapping: mapping, now: try sourceFingerprint(reader),
                        writtenSince: try sourceRowsWritten(since: plan.snapshotXmax, reader))
                    if !drift.isEmpty, !options.allowDrift { throw DriftError(changes: drift) }
                }
            }
        ) { run in
            if let plan = run.options.plan {
                try run.ledger.event(
                    runId: run.runId, kind: "plan checked",
                    detail: [
                        "plan_created_at": plan.createdAt, "drift": String(drift.count),
                        "plan_sha256": run.options.planSHA256 ?? "",
                    ])
                for change in drift {
                    try run.ledger.event(runId: run.runId, kind: "drift allowed", detail: ["change": change])
                }
            }
            let reader = run.reader
            try run.ledger.record(
                try PhoneRowsSQL.defaultPerContact(mapping.phoneNumbers, on: reader), runId: run.runId)
            let startXid =
                Int64(
                    try reader.query("SELECT start_xid FROM ferry.runs WHERE run_id = $1", [String(run.runId)]).scalar
                        ?? "") ?? 0
            let types = try keyTypes(reader)
            let loader = try PhonesLoader(
                conninfo: conninfo, mapping: mapping, runId: run.runId, timeouts: run.timeouts,
                tenantType: types.tenant, keyType: types.key)
            let extractor = PhonesExtractor(
                connection: reader, sql: PhonesSQL(mapping: mapping),
                pageSize: run.options.batchSize ?? mapping.load.batchSize,
                after: run.resume?.lastKey, retry: run.options.retry, log: run.options.log, reconnect: run.openReader)
            let pacing = ApplyPacing(options: run.options, open: run.openPacingSession)
            var applied = PhonesSummary.Applied()
            var summary = try self.run(
                mode: .apply, reader: reader, extractor: extractor, firstBatch: (run.resume?.lastBatch ?? 0) + 1
            ) { batch in
                try pacing.beforeBatch(batch.number)
                let result = try run.options.retry.run(
                    "batch \(batch.number)", reconnect: loader.reconnect, log: run.options.log
                ) {
                    try loader.load(batch)
                }
                applied.rowsInserted += result.rowsInserted
                applied.contactsInserted += result.contactsInserted
                applied.customTypesCreated += result.customTypesCreated
                applied.batchesCommitted += 1
                FerryLog.logger.info(
                    "batch committed",
                    metadata: [
                        "run": "\(run.runId)", "job": "\(Self.name)", "batch": "\(batch.number)",
                        "contacts": "\(batch.contacts.count)", "rows_inserted": "\(result.rowsInserted)",
                    ])
                applied.contactsSkippedAtLoad +=
                    batch.outcomes.filter { !$0.rows.isEmpty }.count - result.contactsInserted
            }
            applied.sourceRowsChangedDuringRun = try sourceRowsWritten(since: startXid, reader).values.reduce(0, +)
            summary.applied = applied
            summary.runId = run.runId
            summary.resumedAfterBatch = run.resume?.lastBatch
            if let path = run.options.snapshotFile {
                summary.snapshotFile = try SnapshotFile.write(
                    runId: run.runId, connection: run.ledger.connection, path: path)
            }
            return summary
        }
    }

    // MARK: The shared run

    private func run(
        mode: PhonesSummary.Mode, reader: PostgresConnection, extractor: PhonesExtractor, firstBatch: Int,
        sink: (PhonesBatch) throws -> Void
    ) throws -> PhonesSummary {
        let started = Date()
        let sql = PhonesSQL(mapping: mapping)
        var summary = PhonesSummary(mode: mode, mappingFile: mapping.file, mappingSHA256: mapping.sha256)
        summary.database = reader.info
        let existingTypes = Set(
            try reader.query(sql.existingCustomTypes).rows.map {
                PhonesSummaryBuilder.customTypeKey(tenant: $0[0] ?? "", label: $0[1] ?? "")
            })
        var builder = PhonesSummaryBuilder(summary: summary, existingCustomTypes: existingTypes)
        let estimate = Int(try reader.query(sql.estimatedSourceRows, [mapping.source.table.quoted]).scalar ?? "")
        let enabled = showProgress && isatty(STDERR_FILENO) == 1
        // A resumed run's progress starts where its earlier part stopped, not at 0.
        let before =
            enabled
            ? try extractor.startedAfter.map { key in
                Int(try reader.query(sql.contactsThrough, [key.first, key.last]).scalar ?? "0") ?? 0
            } ?? 0 : 0
        let progress = ProgressLine(
            label: "\(mode.rawValue) phones", total: estimate, enabled: enabled, alreadyDone: before)
        let transform = mapping.transform
        let batchCounter = Counter(startingAfter: firstBatch - 1)
        let anomalies = try anomalyFile.map { try CSVWriter(path: $0) }
        try anomalies?.writeRow(["tenant", "contact_key", "column", "raw", "class", "detail"])
        try BatchPipeline.run(
            extract: { try extractor.nextPage() },
            transform: { (contacts: [LegacyPhoneContact]) in
                PhonesBatch(
                    number: batchCounter.next(), contacts: contacts,
                    outcomes: parallelMap(contacts, transform.transform),
                    firstKey: [contacts[0].tenant, contacts[0].contactKey],
                    lastKey: [contacts[contacts.count - 1].tenant, contacts[contacts.count - 1].contactKey])
            },
            consume: { (batch: PhonesBatch) in
                try sink(batch)
                for (contact, outcome) in zip(batch.contacts, batch.outcomes) {
                    builder.add(outcome, contact: contact, columns: mapping.source.columns)
                    for anomaly in outcome.anomalies {
                        // Opened in a spreadsheet for review: a legacy value must not run as a formula there.
                        try anomalies?.writeRow([
                            anomaly.tenant, anomaly.contactKey, anomaly.column, FormulaGuard.guarded(anomaly.raw),
                            anomaly.kind.rawValue, FormulaGuard.guarded(anomaly.detail),
                        ])
                    }
                }
                progress.update(done: builder.summary.contactsScanned)
            })
        progress.finish()
        try anomalies?.close()
        summary = builder.finished
        summary.elapsedSeconds = Date().timeIntervalSince(started)
        summary.peakResidentMegabytes = peakResidentMegabytes()
        return summary
    }

    private func keyTypes(_ connection: PostgresConnection) throws -> (tenant: String, key: String) {
        guard let types = try sourceKeyTypes(connection) else {
            try preflight(connection, forApply: false)
            throw PreflightError(problems: ["cannot read the key columns of \(mapping.source.table)"])
        }
        return types
    }

    /// The SQL types of the source's tenant and key columns; nil when the table or a column is missing.
    func sourceKeyTypes(_ connection: PostgresConnection) throws -> (tenant: String, key: String)? {
        let columns = try connection.columnTypes(mapping.source.table)
        guard let tenant = columns[mapping.source.tenantColumn], let key = columns[mapping.source.keyColumn] else {
            return nil
        }
        return (tenant, key)
    }

    /// `ferry doctor`'s checks, before the first batch: errors refuse the run, warnings go to `warn`.
    func preflight(_ connection: PostgresConnection, forApply: Bool, warn: (String) -> Void = { _ in }) throws {
        try Doctor(connection: connection).check(
            try expectations(using: connection, forApply: forApply),
            ownSteps: (try? schemaSteps(using: connection)) ?? [], mappingFile: mapping.file
        )
        .requireNoErrors(warn: warn)
    }
}

/// Batch delay and replica-lag pauses, between batches, on the loading thread. The lag is read on a
/// session of its own: the reader's belongs to the extract thread, and sharing it (libpq sessions are
/// not thread-safe) corrupted memory while a standby lagged.
final class ApplyPacing {
    let options: ApplyOptions
    private let open: () throws -> PostgresConnection
    private var session: PostgresConnection?

    init(options: ApplyOptions, open: @escaping () throws -> PostgresConnection) {
        self.options = options
        self.open = open
    }

    deinit { session?.close() }

    func beforeBatch(_ number: Int) throws {
        if let delay = options.batchDelay, delay > 0, number > 1 { Thread.sleep(forTimeInterval: delay) }
        guard let bound = options.maxReplicaLag else { return }
        if session == nil { session = try open() }
        guard let connection = session else { return }
        var announced = false
        while true {
            let lag =
                Double(
                    try connection.query(
                        """
                        SELECT coalesce(max(extract(epoch FROM greatest(replay_lag, write_lag, flush_lag))), 0) FROM pg_stat_replication
                        """
                    ).scalar ?? "0") ?? 0
            if lag <= bound { return }
            if !announced {
                options.log(
                    String(format: "replica lag %.1f s exceeds %.1f s: pausing before batch %d", lag, bound, number))
                announced = true
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
    }
}

/// This process's own peak resident set size so far, in MB. Read from VmHWM, which belongs to the
/// process image: getrusage's maxrss survives exec, so a ferry started by a large parent (a test
/// runner, a scheduler) reported the parent's size instead of its own.
func peakResidentMegabytes() -> Double {
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
        let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
    {
        return kilobytes / 1024
    }
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// Numbers batches from the transform thread.
final class Counter: @unchecked Sendable {
    private var value: Int
    init(startingAfter value: Int = 0) { self.value = value }
    func next() -> Int { value += 1; return value }
}
