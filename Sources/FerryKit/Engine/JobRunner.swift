import Foundation

/// Everything around a table job: plan (a READ ONLY snapshot) and apply (through the ledger) share the
/// extract and transform and differ only in their sink; apply adds the run lock, resume, retries,
/// pacing, plan-file drift refusal and snapshot files. No job implements any of these itself.
struct JobRunner<Job: TableMigration> {
    let job: Job
    var settings: RunSettings

    init(_ job: Job, settings: RunSettings = RunSettings()) {
        self.job = job
        self.settings = settings
    }

    /// Reads and decides everything in one READ ONLY snapshot; writes nothing (not even the ledger).
    func plan() throws -> Job.Summary {
        try planInSnapshot(fingerprint: false).summary
    }

    /// The plan, plus the fingerprint of the data it read (from the same snapshot), for `apply --plan`.
    func planFile() throws -> (file: PlanFile, summary: Job.Summary) {
        let (summary, fingerprint, xmax) = try planInSnapshot(fingerprint: true)
        let file = PlanFile(
            job: Job.name, mappingFile: job.mappingFile, mappingSHA256: job.mappingSHA256, noun: job.source.noun,
            tenants: settings.tenants, fingerprint: fingerprint, snapshotXmax: xmax, database: summary.database,
            summary: try JSONValue(encoding: summary))
        return (file, summary)
    }

    private func planInSnapshot(
        fingerprint: Bool
    ) throws -> (summary: Job.Summary, fingerprint: [TenantFingerprint], xmax: Int64) {
        let reader = try PostgresConnection(conninfo: job.conninfo, applicationName: "ferry plan \(Job.name)")
        try reader.execute(script: "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        defer { _ = try? reader.execute(script: "ROLLBACK") }
        try job.preflight(reader, forApply: false, warn: { _ in })
        try requireUniqueKeyOfAView(reader)
        let sql = try job.statements(reader)
        let extras = try job.planExtras(sql, reader: reader)
        var summary = try run(
            mode: .plan, reader: reader, sql: sql,
            extractor: try extractor(reader, sql: sql, pageSize: job.load.batchSize), firstBatch: 1,
            sink: extras.consume)
        summary.checks = try job.checks(summary, sql: sql, reader: reader, predicted: true)
        summary.applyStatements = try job.applyStatements(sql, reader: reader)
        try extras.finish(&summary, reader)
        let xmax = try reader.query("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").value(
            "the snapshot's xmax", as: Int64.self)
        return (summary, fingerprint ? try sourceFingerprint(sql, reader) : [], xmax)
    }

    /// Writes the job's rows, one transaction per batch, each with its snapshot and cursor; resumes an
    /// interrupted run of the same mapping; holds the job's lock throughout.
    func apply(_ given: ApplyOptions = ApplyOptions()) throws -> Job.Summary {
        var options = given
        if !settings.tenants.isEmpty { options.tenants = settings.tenants }
        var drift: [String] = []
        return try LedgerRun.apply(
            job: Job.name, mappingFile: job.mappingFile, mappingSHA256: job.mappingSHA256, load: job.load,
            conninfo: job.conninfo, options: options,
            preflight: { reader in
                try job.preflight(reader, forApply: true, warn: options.log)
                try requireUniqueKeyOfAView(reader)
                if let plan = options.plan {
                    let sql = try job.statements(reader)
                    drift = plan.drift(
                        mappingFile: job.mappingFile, mappingSHA256: job.mappingSHA256,
                        now: try sourceFingerprint(sql, reader, tenants: plan.tenants),
                        writtenSince: try job.sourceRowsWritten(since: plan.snapshotXmax, reader, tenants: plan.tenants)
                    )
                    if plan.job != Job.name {
                        drift.insert("the plan file is for the \(plan.job) job, not \(Job.name)", at: 0)
                    }
                    if plan.tenants != options.tenants {
                        drift.append(
                            "the plan covered \(Self.describe(plan.tenants)), this apply covers \(Self.describe(options.tenants))"
                        )
                    }
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
            var runSettings = settings
            runSettings.tenants = run.options.tenants
            let runner = JobRunner(job, settings: runSettings)
            let sql = try job.statements(run.reader)
            try job.beforeApply(sql, run: run)
            let pacing = ApplyPacing(run.options.pacing, log: run.options.log, open: run.openPacingSession)
            var applied = Job.Summary.Applied()
            var summary: Job.Summary
            if run.options.writers > 1 {
                summary = try runner.applyInParallel(run: run, sql: sql, pacing: pacing, applied: &applied)
            } else {
                let loader = try job.loader(sql, run: run)
                let extract = try runner.extractor(
                    run.reader, sql: sql, pageSize: run.options.pacing.batchSize ?? job.load.batchSize,
                    after: run.resume?.lastKey, retry: run.options.retry, log: run.options.log,
                    reconnect: { try run.reopenReader(run.reader) })
                summary = try runner.run(
                    mode: .apply, reader: run.reader, sql: sql, extractor: extract,
                    firstBatch: (run.resume?.lastBatch ?? 0) + 1
                ) { batch in
                    try pacing.beforeBatch(batch.number)
                    let result = try runner.load(batch, with: loader, run: run)
                    job.count(result, of: batch, into: &applied)
                    applied.batchesCommitted += 1
                }
            }
            summary.applied = applied
            summary.runId = run.runId
            // The reader may have lost its session while the writers worked (idle, it would not know yet).
            try run.options.retry.run(
                "the checks after the last batch", reconnect: { _ = try run.reopenReader(run.reader) },
                log: run.options.log
            ) { _ = try run.reader.query("SELECT 1") }
            summary.checks = try job.checks(summary, sql: sql, reader: run.reader, predicted: false)
            try job.afterApply(&summary, sql: sql, run: run)
            if let path = run.options.pacing.snapshotFile {
                summary.snapshotFile = try SnapshotFile.write(
                    runId: run.runId, ledger: run.ledger, path: path)
            }
            return summary
        }
    }

    /// Keyset paging skips or repeats rows whose key is not unique. A table proves its key with an index
    /// (`ferry doctor` checks it); a view cannot, so its declared key is counted before it is read.
    func requireUniqueKeyOfAView(_ connection: PostgresConnection) throws {
        let source = job.source
        guard try source.keyIsOnlyDeclared(connection) else { return }
        let tenant = quoteIdentifier(source.tenantColumn), key = quoteIdentifier(source.keyColumn)
        let duplicates = try connection.query(
            """
            SELECT count(*) AS keys, min(\(tenant)::text || ' / ' || \(key)::text) AS example FROM (
                SELECT \(tenant), \(key) FROM \(source.fromItem) s GROUP BY 1, 2 HAVING count(*) > 1) d
            """
        ).decoded("duplicate keys of \(source.table)").first
        let count = try duplicates?.required("keys", as: Int.self) ?? 0
        guard count == 0 else {
            throw PreflightError(problems: [
                "\(source.described) repeats its declared key (\(source.tenantColumn), \(source.keyColumn)) for \(formatCount(count)) keys (e.g. \(try duplicates?.optional("example", as: String.self) ?? "?")): ferry pages by it, and would skip or repeat those rows; name a column that is unique per tenant"
            ])
        }
    }

    private static func describe(_ tenants: [String]) -> String {
        tenants.isEmpty ? "every tenant" : "tenants " + tenants.joined(separator: ", ")
    }

    // MARK: The shared run

    /// `tenants` (the statement's $4) defaults to the run's `--tenant` list. On Citus the source is read a
    /// tenant at a time (see `KeysetExtractor.tenantWalk`), from the tenant of `after` on; a caller that
    /// already knows the walk (one tenant) passes it.
    func extractor(
        _ connection: PostgresConnection, sql: Job.Statements, pageSize: Int, after: [String]? = nil,
        retry: RetryPolicy? = nil, log: @escaping @Sendable (String) -> Void = { _ in },
        reconnect: (() throws -> PostgresConnection)? = nil, tenants: String? = nil, walk known: [String]? = nil,
        until: TenantSlice.Bound? = nil
    ) throws -> KeysetExtractor<Job.Record> {
        let scope = tenants ?? settings.tenantsParameter
        let walk =
            try known
            ?? (job.sourceEngine(using: connection).isCitus
                ? tenantsInOrder(connection, scope, from: after?.first) : [])
        return KeysetExtractor(
            connection: connection, what: job.source.noun,
            query: TenantSlice.Bound.page(job.extractPage(sql), cutAt: until),
            pageSize: pageSize, tenants: scope, after: after, retry: retry, log: log, reconnect: reconnect,
            tenantWalk: walk,
            tenantQuery: job.extractTenantPage(sql).map { TenantSlice.Bound.page($0, cutAt: until) },
            until: until?.key, record: job.record)
    }

    /// The source's tenants (those of `scope`, from `first` on) in the order the extract pages them.
    private func tenantsInOrder(
        _ connection: PostgresConnection, _ scope: String?, from first: String?
    ) throws -> [String] {
        let table = job.source.fromItem, tenant = quoteIdentifier(job.source.tenantColumn)
        return try connection.query(
            """
            SELECT d.\(tenant)::text AS tenant FROM (
                SELECT DISTINCT \(tenant) FROM \(table) s
                WHERE ($1::text[] IS NULL OR \(tenant)::text = ANY ($1::text[]))) d
            WHERE $2::text IS NULL OR d.\(tenant) >= (SELECT \(tenant) FROM \(table) s WHERE \(tenant)::text = $2 LIMIT 1)
            ORDER BY d.\(tenant)
            """, [scope, first]
        ).decoded("the tenants of \(job.source.table)").map { try $0.required("tenant") }
    }

    /// The pipeline's transform stage: a page of records decided (on every core), numbered after `last`.
    private func batchMaker(
        numberingAfter last: Int
    ) -> @Sendable ([Job.Record]) -> MigrationBatch<Job.Record, Job.Decision> {
        let transform = job.makeTransform()
        let key = job.key(of:)
        let numbers = Counter(startingAfter: last)
        let job = job
        return { records in
            MigrationBatch(
                number: numbers.next(), records: records, decisions: job.decide(records, with: transform),
                firstKey: key(records[0]), lastKey: key(records[records.count - 1]))
        }
    }

    /// One batch through the loader, retried as the run's policy says, and logged.
    func load(
        _ batch: MigrationBatch<Job.Record, Job.Decision>, with loader: Job.Loader, run: LedgerRun.Context
    ) throws -> Job.Loader.Result {
        try run.confirmLock()
        let result = try run.options.retry.run(
            "batch \(batch.number)", reconnect: loader.reconnect, log: run.options.log
        ) {
            try writtenAgainIfARowWentAway("batch \(batch.number)", log: run.options.log) { again in
                try loader.load(batch, onlyRowsStillThere: again)
            }
        }
        FerryLog.logger.info(
            "batch committed",
            metadata: [
                "run": "\(run.runId)", "job": "\(Job.name)", "batch": "\(batch.number)", "writer": "\(run.writer)",
                "records": "\(batch.records.count)", "rows_inserted": "\(result.rowsInserted)",
                "rows_updated": "\(result.rowsUpdated)",
            ])
        return result
    }

    /// `--jobs N`: N writers, each with a reader and a loader session of its own, take whole tenants from
    /// one queue. A batch holds one tenant's records, so a resumed run continues each tenant after its
    /// own last committed batch (a tenant without one from its start). One summary, one progress line and
    /// the run lock (held by the caller) cover them all; the first error stops the others between batches.
    func applyInParallel(
        run: LedgerRun.Context, sql: Job.Statements, pacing: ApplyPacing, applied: inout Job.Summary.Applied
    ) throws -> Job.Summary {
        let started = Date()
        let slices = try sliceQueue(run)
        let firstBatch =
            try run.ledger.query(
                "SELECT coalesce(max(batch_no), 0) + 1 AS next FROM ferry.batches WHERE run_id = $1",
                [String(run.runId)]
            ).decoded("ferry.batches").first?.required("next", as: Int.self) ?? 1
        let enabled = settings.showProgress && isatty(STDERR_FILENO) == 1
        let total = enabled ? try job.recordCount(sql, run.reader, tenants: settings.tenantsParameter) : nil
        let remaining =
            enabled
            ? try slices.reduce(0) {
                $0
                    + (try job.extractCount(
                        sql, run.reader, after: $1.after, tenants: textArrayLiteral([$1.tenant]), until: $1.until) ?? 0)
            } : nil
        let shared = ParallelApply<Job>(
            builder: try job.summaryBuilder(mode: .apply, settings: settings, sql: sql, reader: run.reader),
            applied: applied,
            progress: ProgressLine(
                label: "apply \(Job.name)", total: total, enabled: enabled,
                alreadyDone: remaining.map { max(0, (total ?? 0) - $0) } ?? 0))
        let batchOf = batchMaker(numberingAfter: firstBatch - 1)
        let engine = try job.sourceEngine(using: run.reader)
        let walksTenants = engine.isCitus
        // Each writer touches only its own sessions; what they share is `shared`, under its lock.
        let context = UncheckedSendable((runner: self, run: run, sql: sql, pacing: pacing))
        let writers = DispatchGroup()
        for writer in 0..<min(run.options.writers, slices.count) {
            writers.enter()
            let thread = Thread {
                defer { writers.leave() }
                let (runner, run, sql, pacing) = context.value
                do {
                    var own = run
                    own.writer = writer
                    let reader = try run.openReader()
                    defer { reader.close() }
                    let loader = try runner.job.loader(sql, run: own)
                    while let slice = shared.nextSlice(of: slices) {
                        let extractor = try runner.extractor(
                            reader, sql: sql, pageSize: run.options.pacing.batchSize ?? runner.job.load.batchSize,
                            after: slice.after, retry: run.options.retry, log: run.options.log,
                            reconnect: { try run.reopenReader(reader) },
                            tenants: textArrayLiteral([slice.tenant]),
                            walk: walksTenants ? [slice.tenant] : [], until: slice.until)
                        try BatchPipeline.run(
                            stopRequested: {
                                Cancellation.requested ?? (shared.failed ? ParallelApply<Job>.stopCode : nil)
                            },
                            extract: { try extractor.nextPage() },
                            transform: batchOf,
                            consume: { (batch: MigrationBatch<Job.Record, Job.Decision>) in
                                try shared.paced { try pacing.beforeBatch(batch.number) }
                                let result = try runner.load(batch, with: loader, run: own)
                                try shared.committed(batch) { applied in
                                    runner.job.count(result, of: batch, into: &applied)
                                }
                            })
                    }
                } catch let stop as Cancelled where stop.signal == ParallelApply<Job>.stopCode {
                    return
                } catch {
                    shared.fail(error)
                }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        writers.wait()
        if let failure = shared.failure { throw failure }
        applied = shared.applied
        return try finish(shared.builder, reader: run.reader, engine: engine, started: started)
    }

    /// What the writers of a parallel apply take from their queue: whole tenants, or, for a job whose
    /// records of one tenant are independent (`writesTenantsInSlices`) on a source with fewer tenants
    /// than twice the writers, each tenant in as many slices of its keys as there are writers (a
    /// database of one tenant is written in parallel too). The slices' bounds are recorded
    /// in the run's events when it starts, so a resumed run divides the rows the same way; each slice
    /// continues after the last key its own committed batches reached.
    private func sliceQueue(_ run: LedgerRun.Context) throws -> [TenantSlice] {
        let tenants = try tenantsInOrder(run.reader, settings.tenantsParameter, from: nil)
        let bounds = try sliceBounds(run, tenants: tenants)
        let keyType = bounds.keyType
        var slices: [TenantSlice] = []
        for tenant in tenants {
            let cuts = bounds.cuts[tenant] ?? []
            for index in 0...cuts.count {
                let from = index == 0 ? nil : cuts[index - 1]
                let until = index == cuts.count ? nil : cuts[index]
                slices.append(
                    TenantSlice(
                        tenant: tenant, after: from.map { [tenant, $0] },
                        until: until.map { TenantSlice.Bound(key: $0, keyType: keyType) }))
            }
        }
        guard run.resume != nil else { return slices }
        // Each slice (a whole tenant: no bounds) continues after its own last batch; a batch belongs to
        // the slice whose bounds hold its last key, compared as the key's type.
        let inBounds =
            bounds.cuts.isEmpty
            ? ""
            : """

                 AND (s.after = '' OR b.last_key[2]::\(keyType) > s.after::\(keyType))
                 AND (s.until = '' OR b.last_key[2]::\(keyType) <= s.until::\(keyType))
            """
        var resumeAfter: [Int: String] = [:]
        for row in try run.ledger.query(
            """
            SELECT DISTINCT ON (s.slice) s.slice, b.last_key[2] AS last
            FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY s (tenant, after, until, slice)
            JOIN ferry.batches b ON b.run_id = $1 AND b.last_key[1] = s.tenant\(inBounds)
            ORDER BY s.slice, b.batch_no DESC
            """,
            [
                String(run.runId), textArrayLiteral(slices.map(\.tenant)),
                textArrayLiteral(slices.map { $0.after?[1] ?? "" }),
                textArrayLiteral(slices.map { $0.until?.key ?? "" }),
            ]
        ).decoded("ferry.batches", key: "slice") {
            resumeAfter[try row.required("slice", as: Int.self)] = try row.required("last", as: String.self)
        }
        return slices.enumerated().map { index, slice in
            var slice = slice
            if let last = resumeAfter[index + 1] { slice.after = [slice.tenant, last] }
            return slice
        }
    }

    /// Each tenant's slice bounds (keys: a slice ends at its bound, the next starts after it), recorded
    /// as the run's `slices` event when it starts; a resumed run reads them back (none recorded: whole
    /// tenants). Only keys whose text form sorts back as the type does are sliced (uuid and integers).
    private func sliceBounds(
        _ run: LedgerRun.Context, tenants: [String]
    ) throws -> (cuts: [String: [String]], keyType: String) {
        let columns = try run.reader.columnTypes(job.source.table)
        let keyType = columns[job.source.keyColumn] ?? ""
        if run.resume != nil {
            let recorded = try run.ledger.events(run.runId).last { $0.kind == "slices" }?.detail.stringObject ?? [:]
            return (recorded.mapValues { $0.split(separator: ",").map(String.init) }, keyType)
        }
        let writers = run.options.writers
        guard Job.writesTenantsInSlices, writers > 1, tenants.count < writers * 2,
            ["uuid", "integer", "bigint", "smallint"].contains(keyType)
        else { return ([:], keyType) }
        let fractions = (1..<writers).map { String(Double($0) / Double(writers)) }.joined(separator: ",")
        let table = job.source.fromItem, tenant = quoteIdentifier(job.source.tenantColumn)
        let key = quoteIdentifier(job.source.keyColumn)
        let tenantType = columns[job.source.tenantColumn] ?? "text"
        var cuts: [String: [String]] = [:]
        for name in tenants {
            // The tenant as its own type: on Citus the statement then runs on the shard that holds it.
            let bounds =
                try run.reader.query(
                    """
                    SELECT (percentile_disc($2::float8[]) WITHIN GROUP (ORDER BY \(key)))::text[]::text AS bounds
                    FROM \(table) s WHERE \(tenant) = $1::\(tenantType)
                    """, [name, "{\(fractions)}"]
                ).decoded("the key ranges of \(job.source.table)").first?.required("bounds", as: [String].self) ?? []
            // In key order already (the fractions ascend); a tenant with few keys repeats some.
            var distinct: [String] = []
            for bound in bounds where bound != distinct.last { distinct.append(bound) }
            if !distinct.isEmpty { cuts[name] = distinct }
        }
        try run.ledger.event(runId: run.runId, kind: "slices", detail: cuts.mapValues { $0.joined(separator: ",") })
        return (cuts, keyType)
    }

    /// The summary as every run ends it: counts from the builder, where it ran, how long, how much memory.
    /// `engine`: asked before the first batch, so that finishing needs no session (the reader's may
    /// have been lost and replaced meanwhile).
    private func finish(
        _ builder: Job.Builder, reader: PostgresConnection, engine: DatabaseEngine, started: Date
    ) throws -> Job.Summary {
        var builder = builder
        var summary = try builder.finish()
        summary.database = reader.info
        if engine.isCitus { summary.database?.engine = engine.description }
        summary.elapsedSeconds = Date().timeIntervalSince(started)
        summary.peakResidentMegabytes = peakResidentMegabytes()
        return summary
    }

    private func run(
        mode: RunMode, reader: PostgresConnection, sql: Job.Statements, extractor: KeysetExtractor<Job.Record>,
        firstBatch: Int, sink: @escaping (MigrationBatch<Job.Record, Job.Decision>) throws -> Void
    ) throws -> Job.Summary {
        let started = Date()
        let engine = try job.sourceEngine(using: reader)
        var builder = try job.summaryBuilder(mode: mode, settings: settings, sql: sql, reader: reader)
        let enabled = settings.showProgress && isatty(STDERR_FILENO) == 1
        let total = enabled ? try job.recordCount(sql, reader, tenants: settings.tenantsParameter) : nil
        // A resumed run's progress starts where its earlier part stopped, not at 0.
        let remaining =
            enabled
            ? try extractor.startedAfter.map {
                try job.extractCount(sql, reader, after: $0, tenants: settings.tenantsParameter) ?? 0
            } : nil
        let progress = ProgressLine(
            label: "\(mode.rawValue) \(Job.name)", total: total, enabled: enabled,
            alreadyDone: remaining.map { max(0, (total ?? 0) - $0) } ?? 0)
        var done = 0
        try BatchPipeline.run(
            extract: { try extractor.nextPage() },
            transform: batchMaker(numberingAfter: firstBatch - 1),
            consume: { (batch: MigrationBatch<Job.Record, Job.Decision>) in
                try sink(batch)
                try builder.add(batch.decisions, of: batch.records)
                done += batch.records.count
                progress.update(done: done)
            })
        progress.finish()
        return try finish(builder, reader: reader, engine: engine, started: started)
    }

    /// Per tenant: the records the job reads and a hash of each one's extracted values in key order.
    /// plan and apply --plan both read it through the job's own extract statement, so they compare like
    /// with like and every value the transform sees is covered.
    func sourceFingerprint(
        _ sql: Job.Statements, _ connection: PostgresConnection, tenants: [String]? = nil
    ) throws -> [TenantFingerprint] {
        let tenants = tenants ?? settings.tenants
        let query = """
            SELECT x.ferry_tenant, count(*) AS records, md5(string_agg(md5(x::text), '' ORDER BY x.ferry_key)) AS sha
            FROM (\(job.extractPage(sql))) x
            GROUP BY 1 ORDER BY 1
            """
        return try connection.query(query, [nil, nil, nil, tenants.isEmpty ? nil : textArrayLiteral(tenants)])
            .decoded("the \(Job.name) source's fingerprint", key: "ferry_tenant").map {
                TenantFingerprint(
                    tenant: try $0.required("ferry_tenant"), rows: try $0.required("records"),
                    sha: try $0.required("sha"))
            }
    }
}

extension TableMigration {
    /// An exact count of what the extract statement returns.
    func recordCount(_ sql: Statements, _ reader: PostgresConnection, tenants: String?) throws -> Int? {
        try extractCount(sql, reader, after: nil, tenants: tenants)
    }

    /// How many records the extract statement returns after a keyset position (nil: from the start).
    func extractCount(
        _ sql: Statements, _ reader: PostgresConnection, after key: [String]?, tenants: String?,
        until: TenantSlice.Bound? = nil
    ) throws -> Int? {
        let page = TenantSlice.Bound.page(extractPage(sql), cutAt: until)
        return try reader.query(
            "SELECT count(*) FROM (\(page)) x", [key?[0], key?[1], nil, tenants] + (until.map { [$0.key] } ?? [])
        )
        .value("the records to read", as: Int.self)
    }

    /// Per tenant, source rows inserted or updated by others from transaction `xid` on (32-bit xid
    /// compare; nothing is kept for the four billion transactions it would take to wrap).
    func sourceRowsWritten(
        since xid: Int64, _ connection: PostgresConnection, tenants: [String]
    ) throws -> [String: Int] {
        // A view or a query has no transaction ids of its own, and on Citus a row's xmin is its
        // worker's: the fingerprint alone says what changed.
        if try source.keyIsOnlyDeclared(connection) || SnapshotTable.isDistributed(source.table.quoted, on: connection)
        {
            return [:]
        }
        let table = source.table.quoted, tenant = quoteIdentifier(source.tenantColumn)
        let query = """
            SELECT s.\(tenant)::text AS tenant, count(*) AS written FROM \(table) s
            WHERE s.xmin::text::bigint >= $1::bigint % 4294967296
              AND ($2::text[] IS NULL OR s.\(tenant)::text = ANY ($2::text[]))
            GROUP BY 1
            """
        var written: [String: Int] = [:]
        for row in try connection.query(query, [String(xid), tenants.isEmpty ? nil : textArrayLiteral(tenants)])
            .decoded("source rows written since transaction \(xid)", key: "tenant")
        {
            written[try row.required("tenant")] = try row.required("written")
        }
        return written
    }
}

/// What the writers of a parallel apply share: the tenant queue's position, the summary, the counts,
/// the progress line and the first error, all under one lock.
final class ParallelApply<Job: TableMigration>: @unchecked Sendable {
    /// The stop request a writer's pipeline sees when another writer failed (no signal has this number).
    static var stopCode: Int32 { 0 }

    private let lock = NSLock()
    private(set) var builder: Job.Builder
    private(set) var applied: Job.Summary.Applied
    private let progress: ProgressLine
    private var next = 0
    private var done = 0
    private(set) var failure: Error?

    init(builder: Job.Builder, applied: Job.Summary.Applied, progress: ProgressLine) {
        self.builder = builder
        self.applied = applied
        self.progress = progress
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    var failed: Bool { locked { failure != nil } }

    func nextSlice(of slices: [TenantSlice]) -> TenantSlice? {
        locked {
            guard failure == nil, Cancellation.requested == nil, next < slices.count else { return nil }
            next += 1
            return slices[next - 1]
        }
    }

    /// Pacing (a pause, a replica-lag check on its one session) is one for the run.
    func paced(_ body: () throws -> Void) throws { try locked(body) }

    func committed(
        _ batch: MigrationBatch<Job.Record, Job.Decision>, count: (inout Job.Summary.Applied) -> Void
    ) throws {
        try locked {
            count(&applied)
            applied.batchesCommitted += 1
            try builder.add(batch.decisions, of: batch.records)
            done += batch.records.count
            progress.update(done: done)
        }
    }

    func fail(_ error: Error) {
        locked { if failure == nil { failure = error } }
    }
}

/// A value handed to another thread that only that thread uses from then on.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
