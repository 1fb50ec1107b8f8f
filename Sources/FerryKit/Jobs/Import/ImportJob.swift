import Foundation

public struct ImportOptions: Sendable {
    public enum OnConflict: String, CaseIterable, Sendable {
        /// Update the values that differ (empty cells never erase).
        case update
        /// Leave an existing contact as it is; the line counts as skipped.
        case skip
        /// Reject the line with the differences as its reason.
        case error
    }

    /// `--tenant`: with a tenant column, only these tenants' rows are imported (the others are skipped);
    /// without one, the one tenant every row goes to.
    public var tenants: [String] = []
    public var encoding: TextEncoding?
    public var dryRun = false
    public var onConflict = OnConflict.update
    public var deactivateMissing = false
    /// Where rejected lines go; by default FILE.rejects.csv beside the input.
    public var rejectFile: String?
    /// How the run paces itself, as every writing job does: batch size, batch delay, replica lag, lock
    /// and statement timeouts, waiting for the lock, the snapshot file.
    public var pacing = RunPacing()
    public var batchSize: Int? {
        get { pacing.batchSize }
        set { pacing.batchSize = newValue }
    }
    public var wait: Bool {
        get { pacing.wait }
        set { pacing.wait = newValue }
    }
    /// Also write the run's snapshot to this file (gzip, with FILE.sha256 beside it).
    public var snapshotFile: String? {
        get { pacing.snapshotFile }
        set { pacing.snapshotFile = newValue }
    }
    public var showProgress = true
    /// `--jobs`: writer sessions, each taking its share of the file's contacts (divided by tenant and
    /// email, see ImportPartition); nil when not given (one session, or what a resumed run was started with).
    public var jobs: Int?

    /// Why `--jobs N` cannot go with `--deactivate-missing` (nil when it can): the command line and the
    /// import refuse it in the same words.
    public static func writersRefused(jobs: Int?, deactivateMissing: Bool) -> String? {
        guard let jobs, jobs > 1, deactivateMissing else { return nil }
        return "--deactivate-missing needs every line of the file in one session's memory: not with --jobs \(jobs)"
    }
    /// Continue this interrupted import run (by default the newest interrupted import of the same mapping
    /// and the same file bytes is continued).
    public var resumeRunId: Int64?
    /// Write every phone anomaly of the lines written (or, in a dry run, to be written) to this CSV file.
    public var anomalyFile: String?
    /// `--plan`: the approved dry run's plan file; the import refuses to start if anything it binds changed.
    public var plan: PlanFile?
    public var planSHA256: String?
    public var allowDrift = false
    public var retry = RetryPolicy()
    public var log: @Sendable (String) -> Void = FerryLog.note

    public init() {}
}

/// `ferry import FILE`: a partner's contact file → contacts upserted by (tenant, lower(email)), their
/// phones normalized by the backfill's transform and merged. Reads the file twice: first to prove it
/// is well-formed CSV (a broken file is refused before anything is written), then to load it.
public struct ImportJob: Sendable {
    public static let name = "contacts-csv"
    public let mapping: ContactsCSVMapping
    public let conninfo: String

    public init(mapping: ContactsCSVMapping, conninfo: String) {
        self.mapping = mapping
        self.conninfo = conninfo
    }

    public func schemaSteps(using connection: PostgresConnection) throws -> [SchemaStep] {
        let types = try keyTypes(connection)
        return LedgerSchema.steps
            + PhonesSchema.steps(
                phones: mapping.phoneNumbers, types: mapping.typeDefinitions, contacts: mapping.contacts.table,
                tenantColumn: mapping.contacts.tenant, keyColumn: mapping.contacts.key,
                tenantType: types.tenant, keyType: types.contact, isolation: mapping.isolation,
                engine: try engine(using: connection))
            + sql(types).lookupIndexes
    }

    public func engine(using connection: PostgresConnection) throws -> DatabaseEngine {
        try DatabaseEngine.detect(source: mapping.contacts.table, on: connection)
    }

    /// A session lost mid-run takes the run's memory of the file's lines with it (its temporary tables),
    /// so the import cannot go on in place as a table job does: it resumes the run, as `ferry resume`
    /// would, as many times as the retry policy retries a statement.
    public func run(file: String, _ given: ImportOptions = ImportOptions()) throws -> ImportSummary {
        let started = Date()
        var options = given
        var attempt = 1
        // Kept from an attempt to its resume, so that no other import of the job starts in between.
        var lock: RunLock?
        defer { lock?.release() }
        while true {
            do {
                return try runOnce(file: file, options, startedAt: started, keeping: &lock)
            } catch let stopped as RunInterrupted
                where stopped.sessionLost && stopped.signal == nil && attempt < options.retry.attempts
            {
                options.log(
                    "import run \(stopped.runId) lost a session (\(stopped.reason)); resuming it, attempt \(attempt) of \(options.retry.attempts - 1)"
                )
                options.resumeRunId = stopped.runId
                attempt += 1
            }
        }
    }

    /// `held`: the job's lock, taken by the first attempt (and again if its session was lost too), given
    /// up by the caller.
    private func runOnce(
        file: String, _ given: ImportOptions, startedAt started: Date, keeping held: inout RunLock?
    ) throws -> ImportSummary {
        var options = given
        let encoding = options.encoding ?? mapping.encoding
        var summary = ImportSummary(
            dryRun: options.dryRun, file: file, mapping: mapping, onConflict: options.onConflict.rawValue)

        // Pass 1: the whole file must be CSV, and its header must be usable, before a row is written.
        let scan = try scanFile(file, encoding: encoding)
        summary.fileSHA256 = scan.sha256
        summary.fileBytes = scan.bytes
        guard let headerRecord = scan.header else {
            throw ImportFileError(
                file: file, line: nil,
                reason: scan.blankLines > 0
                    ? "the file has no header row (only \(scan.blankLines) blank line\(scan.blankLines == 1 ? "" : "s"))"
                    : "the file is empty: no header row")
        }
        if let oversized = headerRecord.oversized {
            throw ImportFileError(
                file: file, line: headerRecord.line, reason: "the header row is too large: \(oversized)")
        }
        let reader = try CSVReader(path: file, dialect: mapping.dialect, encoding: encoding, limits: mapping.limits)
        summary.encoding = reader.encoding.rawValue
        let header = try ImportHeader.resolve(
            headerRecord, encoding: reader.encoding, mapping: mapping, file: file,
            tenantFromFlag: !options.tenants.isEmpty)
        summary.headerLine = header.line
        summary.ignoredColumns = header.ignored
        let tenants = try options.tenants.map { tenant in
            guard let uuid = UUID(uuidString: tenant) else {
                throw ImportFileError(file: file, line: nil, reason: "--tenant '\(tenant)' is not a UUID")
            }
            return uuid.uuidString.lowercased()
        }
        if header.tenantIndex == nil, tenants.count > 1 {
            throw ImportFileError(
                file: file, line: header.line,
                reason: "the file has no tenant column, so several --tenant cannot say where its rows go: pass one")
        }
        summary.tenantsSelected = tenants
        summary.deactivateMissing = options.deactivateMissing
        let transform = ContactImportTransform(
            header: header, encoding: reader.encoding, selectedTenants: tenants, mapping: mapping)

        let connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry import")
        summary.database = connection.info
        try preflight(connection, forApply: !options.dryRun, warn: options.log)
        let types = try keyTypes(connection)
        let engine = try engine(using: connection)
        if engine.isCitus { summary.database?.engine = engine.description }
        options.retry.inDoubt = try InDoubtTransactions.on(connection, conninfo: conninfo)
        summary.applyStatements = sql(types, engine: engine, dryRun: false).applyStatements(
            organizations: try SnapshotTable.resolve(mapping.organizations.table.quoted, on: connection),
            contacts: try SnapshotTable.resolve(mapping.contacts.table.quoted, on: connection),
            types: try SnapshotTable.resolve(mapping.typeDefinitions.table.quoted, on: connection),
            phones: try SnapshotTable.resolve(mapping.phoneNumbers.table.quoted, on: connection),
            createMissingOrganizations: mapping.createMissingOrganizations)
        if let jobs = options.jobs, jobs > 1 {
            if let reason = ImportOptions.writersRefused(jobs: jobs, deactivateMissing: options.deactivateMissing) {
                throw ImportFileError(file: file, line: nil, reason: reason)
            }
            if engine.isCitus {
                throw ImportFileError(
                    file: file, line: nil,
                    reason:
                        "on Citus the import writes with one session (its staging tables are shared by the cluster): drop --jobs \(jobs)"
                )
            }
        }
        var lock: RunLock?
        var ledger: RunLedger?
        var runId: Int64?
        var earlier: EarlierLines?
        if options.dryRun, engine.isCitus {
            // Dry runs on Citus share distributed staging tables (see ImportSQL.dryRun): one at a time.
            lock = try RunLock(conninfo: conninfo, job: Self.name + " dry run", wait: options.wait)
            held = lock
        }
        if !options.dryRun {
            if let kept = held, (try? kept.confirmHeld()) != nil {
                lock = kept
            } else {
                lock = try RunLock(conninfo: conninfo, job: Self.name, wait: options.wait)
                held = lock
            }
            let runLedger = try LedgerRun.openLedger(job: Self.name, conninfo: conninfo)
            let resuming = try resumable(
                runLedger, file: file, sha256: scan.sha256, requested: options.resumeRunId, options: options,
                tenants: tenants)
            let point = resuming?.point
            // A resumed run was checked against its plan when it started; what its first part wrote is no drift.
            let drift = try point == nil ? options.plan.map { try self.drift(from: $0, connection, summary) } ?? [] : []
            if !drift.isEmpty, !options.allowDrift { throw DriftError(changes: drift) }
            if let point {
                // What this command does not set, the run keeps as it was started with.
                let recorded = try runLedger.run(point.runId)?.options ?? .object([:])
                options.pacing = options.pacing.resuming(recorded: recorded).0
                // The run's --tenant is the import's own (`tenants`), named in its file event.
                let kept = options.pacing.recorded
                let part = try EarlierLines(point, runLedger)
                // Its lines are divided among as many sessions as its first part's were.
                options.jobs = resuming?.recorded.jobs
                try runLedger.resume(point)
                runId = point.runId
                earlier = part
                for tally in part.tallies { summary.add(tally) }
                summary.batches = point.lastBatch
                summary.resumed = ImportSummary.EarlierPart(
                    batches: point.lastBatch, throughLine: part.throughLine,
                    inserted: part.tallies.reduce(0) { $0 + $1.inserted },
                    updated: part.tallies.reduce(0) { $0 + $1.updated })
                let through =
                    part.committedThrough.count > 1
                    ? "each of its \(options.jobs ?? 1) writer sessions through its own last line (at most line \(part.throughLine))"
                    : "through line \(part.throughLine)"
                options.log(
                    "resuming import run \(point.runId): its first part committed \(point.lastBatch) batch\(point.lastBatch == 1 ? "" : "es") \(through); reading on after it"
                        + ApplyOptions.keptNote(kept)
                )
            } else {
                let id = try runLedger.start(
                    job: Self.name, mode: "import", mappingFile: mapping.file, mappingSHA256: mapping.sha256,
                    options: runOptions(options, tenants: tenants))
                try runLedger.event(
                    runId: id, kind: "file",
                    detail: [
                        "path": URL(fileURLWithPath: file).standardizedFileURL.path, "sha256": scan.sha256,
                        "bytes": String(scan.bytes), "records": String(scan.records),
                        "encoding": reader.encoding.rawValue, "on_conflict": options.onConflict.rawValue,
                        "deactivate_missing": String(options.deactivateMissing),
                        "tenants": tenants.joined(separator: ","),
                        // A resumed part writes the same reject file, in batches of the same size.
                        "rejects": URL(fileURLWithPath: options.rejectFile ?? file + ".rejects.csv").standardizedFileURL
                            .path,
                        "batch_size": String(options.batchSize ?? mapping.load.batchSize),
                        "jobs": String(options.jobs ?? 1),
                    ])
                try runLedger.record(
                    try PhoneRowsSQL.defaultPerContact(mapping.phoneNumbers, on: connection), runId: id)
                if let plan = options.plan {
                    try runLedger.event(
                        runId: id, kind: "plan checked",
                        detail: [
                            "plan_created_at": plan.createdAt, "drift": String(drift.count),
                            "plan_sha256": options.planSHA256 ?? "",
                        ])
                    for change in drift {
                        try runLedger.event(runId: id, kind: "drift allowed", detail: ["change": change])
                    }
                }
                runId = id
            }
            ledger = runLedger
            summary.runId = runId
        }

        /// The file's lines into the database, then --deactivate-missing; the run's end is recorded around it.
        func importLines() throws -> ImportSummary {
            // Kept on failure too: the lines of batches committed before it were rejected for real.
            var openRejects: RejectFile?
            var openWriters: SessionThreads<ImportLoader>?
            do {
                // A dry run counts what it would create in its session's memory: one session sees it all.
                let writers = try writerSessions(
                    options.dryRun ? 1 : options.jobs ?? 1, sql: sql(types, engine: engine, dryRun: options.dryRun),
                    runId: runId,
                    options: options)
                openWriters = writers
                summary.writers = writers.count
                let rejectPath = options.rejectFile ?? file + ".rejects.csv"
                let rejects = try RejectFile(path: rejectPath, header: headerRecord, dialect: mapping.dialect)
                openRejects = rejects
                summary.rejectFile = rejectPath
                let anomalies = try options.anomalyFile.map { try CSVWriter(path: $0) }
                try anomalies?.writeRow(["line", "tenant", "email", "column", "raw", "class", "detail"])
                try load(
                    reader: reader, transform: transform, writers: writers, rejects: rejects, anomalies: anomalies,
                    scan: scan, earlier: earlier, lock: lock, options: options, summary: &summary)
                try anomalies?.close()
                summary.anomalyFile = options.anomalyFile
                if options.deactivateMissing, earlier?.deactivated != true {
                    let unkeyed = summary.rejectsByClass.filter {
                        ["wrong number of fields", "invalid text", "invalid tenant", "invalid email"].contains($0.key)
                    }
                    .values.reduce(0) { $0 + $1.count }
                    if unkeyed > 0 {
                        throw ImportFileError(
                            file: file, line: nil,
                            reason:
                                "--deactivate-missing refused: \(unkeyed) rejected line\(unkeyed == 1 ? " has" : "s have") no usable tenant and email, so ferry cannot tell which contacts they are (see \(rejectPath)); the rest of the file was \(options.dryRun ? "checked" : "imported")"
                        )
                    }
                    summary.batches += 1
                    let batch = summary.batches
                    // One writer session (see run): its memory holds every line of the file.
                    summary.contactsDeactivated = try writers.perform([{ try $0.deactivateMissing(batch: batch) }])[0]!
                        .get()
                }
                try rejects.close()
                guard summary.addsUp, summary.rowsRead == scan.records else {
                    throw LedgerError(
                        "the counts do not add up (read \(summary.rowsRead) of \(scan.records) records; inserted \(summary.inserted) + updated \(summary.updated) + unchanged \(summary.unchanged) + skipped \(summary.skipped) + rejected \(summary.rejected)): did the file change during the import?"
                    )
                }
                try writers.performOnEach { _, loader in try loader.emptyStagingTables() }
                writers.close()
                try estimateGrowth(&summary, connection)
                summary.elapsedSeconds = Date().timeIntervalSince(started)
                summary.peakResidentMegabytes = peakResidentMegabytes()
                if let ledger, let runId, let path = options.snapshotFile {
                    summary.snapshotFile = try SnapshotFile.write(
                        runId: runId, ledger: ledger, path: path)
                }
                return summary
            } catch {
                try? openRejects?.close()
                try? openWriters?.performOnEach { _, loader in try loader.emptyStagingTables() }
                openWriters?.close()
                throw error
            }
        }
        guard let ledger, let runId else { return try importLines() }
        return try LedgerRun.recording(
            runId: runId, ledger: ledger,
            resumeCommand: "ferry import \(file) --mapping \(mapping.file)   (or: ferry resume \(runId))",
            body: importLines)
    }

    /// The sessions that write the file's lines, each on a thread of its own (`--jobs`; one by default).
    private func writerSessions(
        _ count: Int, sql: ImportSQL, runId: Int64?, options: ImportOptions
    ) throws -> SessionThreads<ImportLoader> {
        let conninfo = conninfo, mapping = mapping
        let timeouts = options.pacing.timeouts(mapping.load), onConflict = options.onConflict
        return try SessionThreads(count: count, name: "ferry import writer") { index in
            let connection = try PostgresConnection(
                conninfo: conninfo, applicationName: count == 1 ? "ferry import" : "ferry import (writer \(index + 1))")
            return try ImportLoader(
                connection: connection, sql: sql, runId: runId, timeouts: timeouts,
                createMissingOrganizations: mapping.createMissingOrganizations, onConflict: onConflict,
                sharesOrganizations: count > 1)
        }
    }

    private func load(
        reader: CSVReader, transform: ContactImportTransform, writers: SessionThreads<ImportLoader>,
        rejects: RejectFile, anomalies: CSVWriter?, scan: FileScan, earlier: EarlierLines?, lock: RunLock?,
        options: ImportOptions, summary: inout ImportSummary
    ) throws {
        let batchSize = options.batchSize ?? mapping.load.batchSize
        let pacing = ApplyPacing(
            options.pacing, log: options.log,
            open: { try PostgresConnection(conninfo: conninfo, applicationName: "ferry import (pacing)") })
        let progress = ProgressLine(
            label: options.dryRun ? "import (dry run)" : "import", total: scan.records,
            enabled: options.showProgress && isatty(STDERR_FILENO) == 1)
        let shares = writers.count
        // With several writers each one's transaction holds about a batch: the file is read in batches of
        // that many lines per writer (up to a bound), one batch ahead instead of two, so that memory
        // stays near one writer's.
        let linesPerRead = shares == 1 ? batchSize : min(batchSize * shares, max(batchSize, 10_000))
        let source = RecordSource(reader: reader, headerLine: scan.header?.line ?? 0, batchSize: linesPerRead)
        try BatchPipeline.run(
            depth: shares == 1 ? 2 : 1,
            extract: { try source.nextBatch() },
            transform: { (records: [CSVRecord]) in
                (records, parallelMap(records, transform.transform))
            },
            consume: { (records: [CSVRecord], outcomes: [ImportRowOutcome]) in
                summary.rowsRead += records.count
                defer {
                    summary.blankLines = source.blankLines
                    progress.update(done: summary.rowsRead)
                }
                let work = BatchShares(records: records, outcomes: outcomes, among: shares, earlier: earlier)
                // A batch number for each share with lines to write, in order.
                var numbers: [Int?] = Array(repeating: nil, count: shares)
                if work.shares.contains(where: { !$0.fresh.records.isEmpty }) {
                    try pacing.beforeBatch(summary.batches + 1)
                }
                for (index, share) in work.shares.enumerated() where !share.fresh.records.isEmpty {
                    summary.batches += 1
                    numbers[index] = summary.batches
                }
                let samplesWanted = 10 - summary.samples.count
                try lock?.confirmHeld()
                let outcomesByShare = writers.perform(
                    work.shares.enumerated().map { index, share -> ((ImportLoader) throws -> ShareLoaded?)? in
                        guard !share.replayed.isEmpty || numbers[index] != nil else { return nil }
                        return { loader in
                            try load(
                                share, batch: numbers[index], partition: shares > 1 ? index : nil, loader: loader,
                                samplesWanted: samplesWanted, options: options)
                        }
                    })
                // Every share that committed is counted (and its rejects written) before a failure is thrown.
                let loaded = outcomesByShare.compactMap { try? $0?.get() }.compactMap { $0 }
                let tallies = loaded.map(\.tally)
                let samples = tallies.flatMap(\.samples).sorted { $0.line < $1.line }
                for var tally in tallies {
                    tally.samples = []
                    summary.add(tally)
                }
                summary.samples += samples.prefix(max(0, 10 - summary.samples.count))
                try reject(
                    work.shares.flatMap(\.replayedRejects) + tallies.flatMap(\.rejects), in: records,
                    summary: &summary, file: rejects)
                if let anomalies {
                    let written = loaded.reduce(into: Set<Int>()) { $0.formUnion($1.written) }
                    try writeAnomalies(
                        of: work.shares.flatMap(\.fresh.contacts).filter { written.contains($0.line) }, to: anomalies)
                }
                if let failure = outcomesByShare.lazy.compactMap({ outcome -> (any Error)? in
                    if case .failure(let error) = outcome { return error }
                    return nil
                }).first {
                    throw failure
                }
                for share in loaded {
                    FerryLog.logger.info(
                        options.dryRun ? "batch classified" : "batch committed",
                        metadata: [
                            "run": "\(summary.runId.map(String.init) ?? "")", "job": "\(Self.name)",
                            "batch": "\(share.tally.batch)",
                            "first_line": "\(share.firstLine)", "last_line": "\(share.tally.lastLine)",
                            "rows": "\(share.tally.rows)",
                        ])
                }
            })
        summary.blankLines = source.blankLines
        progress.finish()
    }

    /// One writer session's share of a batch: the lines the run's first part committed are only
    /// remembered (so a later duplicate is still found), the others loaded in one transaction.
    private func load(
        _ share: BatchShares.Share, batch: Int?, partition: Int?, loader: ImportLoader, samplesWanted: Int,
        options: ImportOptions
    ) throws -> ShareLoaded? {
        if let last = share.replayed.last {
            try options.retry.run("lines through \(last.line) (already committed)", log: options.log) {
                try loader.remember(share.replayed)
            }
        }
        guard let batch else { return nil }
        let records = share.fresh.records, outcomes = share.fresh.outcomes
        let contacts = share.fresh.contacts
        var written = Set<Int>()
        let tally = try options.retry.run("batch \(batch)", log: options.log) {
            // Written again, the batch is decided again: a contact deleted since is then a new one.
            try writtenAgainIfARowWentAway("batch \(batch)", log: options.log) { _ in
                try loader.load(
                    contacts, batch: batch, firstLine: records.first?.line ?? 0, lastLine: records.last?.line ?? 0
                ) { decided in
                    written = Set(decided.lines.filter(\.action.writes).map(\.line))
                    var tally = try ImportBatchTally(
                        batch: batch, records: records, outcomes: outcomes, decided: decided,
                        samplesWanted: samplesWanted)
                    tally.partition = partition
                    return tally
                }
            }
        }
        return ShareLoaded(firstLine: records.first?.line ?? 0, tally: tally, written: written)
    }

    /// What a share's batch committed, and which of its lines wrote their contact.
    private struct ShareLoaded {
        let firstLine: Int
        let tally: ImportBatchTally
        let written: Set<Int>
    }

    /// Counts a batch's rejected lines and writes them to the reject file, in the file's order.
    private func reject(
        _ rejected: [ImportBatchTally.Reject], in records: [CSVRecord], summary: inout ImportSummary, file: RejectFile
    ) throws {
        guard !rejected.isEmpty else { return }
        let byLine = Dictionary(rejected.map { ($0.line, $0) }, uniquingKeysWith: { first, _ in first })
        for record in records {
            guard let line = byLine[record.line] else { continue }
            summary.reject(line: line.line, reason: line.reason, raw: record.displayText, tenant: line.tenant)
            try file.write(record, reason: line.reason)
        }
    }

    private func writeAnomalies(of contacts: [ImportedContact], to anomalies: CSVWriter) throws {
        for contact in contacts.sorted(by: { $0.line < $1.line }) {
            for anomaly in contact.phones.anomalies {
                // Opened in a spreadsheet for review: a value must not run as a formula there.
                try anomalies.writeRow([
                    String(contact.line), contact.tenant, contact.email, anomaly.column,
                    FormulaGuard.guarded(anomaly.raw), anomaly.importClass, FormulaGuard.guarded(anomaly.detail),
                ])
            }
        }
    }

    /// What the run records about itself beyond the mapping: its pacing options (as apply records them),
    /// its snapshot file and `--tenant`.
    private func runOptions(_ options: ImportOptions, tenants: [String]) -> [String: String] {
        var values = options.pacing.recorded
        if !tenants.isEmpty { values["tenants"] = tenants.joined(separator: ",") }
        return values
    }

    // MARK: Growth

    /// Table, index and snapshot-row bytes the import's rows take (`GrowthEstimate`).
    private func estimateGrowth(_ summary: inout ImportSummary, _ connection: PostgresConnection) throws {
        let updated = summary.updated + summary.contactsDeactivated
        let written = [
            (mapping.contacts.table, summary.inserted + updated, updated),
            (mapping.phoneNumbers.table, summary.phoneRowsToInsert, 0),
            (mapping.organizations.table, summary.organizationsToCreate, 0),
            (mapping.typeDefinitions.table, summary.customTypesToCreate, 0),
        ].map { GrowthEstimate.Written(table: $0.0, versions: $0.1, snapshotRows: $0.1, beforeImages: $0.2) }
        (summary.estimatedGrowthBytes, summary.growthBasis) = try GrowthEstimate.of(written, on: connection)
    }

    // MARK: Plan files

    /// A dry run bound into a plan file (`import FILE --dry-run --out P`): the file's bytes, the options, and
    /// per tenant of the file a fingerprint of what the classification reads.
    public func planFile(file: String, _ options: ImportOptions) throws -> (file: PlanFile, summary: ImportSummary) {
        var dryRun = options
        dryRun.dryRun = true
        let summary = try run(file: file, dryRun)
        let connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry import")
        defer { connection.close() }
        let tenants = summary.tenants.keys.filter { $0 != ImportSummary.unknownTenant }.sorted()
        let xmax = try connection.query("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").value(
            "the snapshot's xmax", as: Int64.self)
        let plan = PlanFile(
            job: Self.name, mappingFile: mapping.file, mappingSHA256: mapping.sha256, noun: "contacts",
            tenants: summary.tenantsSelected, fingerprint: try fingerprint(tenants, connection), snapshotXmax: xmax,
            database: summary.database, summary: try JSONValue(encoding: summary))
        return (plan, summary)
    }

    private func fingerprint(_ tenants: [String], _ connection: PostgresConnection) throws -> [TenantFingerprint] {
        let types = try keyTypes(connection)
        let engine = try engine(using: connection)
        let statement = sql(types, engine: engine, dryRun: false).fingerprint
        // On Citus a tenant at a time, each read on its shard group.
        let reads = engine.isCitus ? tenants.map { [textArrayLiteral([$0]), $0] } : [[textArrayLiteral(tenants)]]
        return try reads.flatMap { parameters in
            try connection.query(statement, parameters).decoded("the import's fingerprint", key: "tenant").map {
                TenantFingerprint(
                    tenant: try $0.required("tenant"), rows: try $0.required("records"), sha: try $0.required("sha"))
            }
        }
    }

    /// Everything that differs between the approved dry run and this import, in words.
    private func drift(from plan: PlanFile, _ connection: PostgresConnection, _ now: ImportSummary) throws -> [String] {
        var changes: [String] = []
        if plan.job != Self.name { changes.append("the plan file is for the \(plan.job) job, not \(Self.name)") }
        changes += plan.drift(
            mappingFile: mapping.file, mappingSHA256: mapping.sha256,
            now: try fingerprint(plan.fingerprint.map(\.tenant), connection))
        let planned = try JSONDecoder().decode(ImportSummary.self, from: try JSONEncoder().encode(plan.summary))
        if planned.fileSHA256 != now.fileSHA256 {
            changes.append(
                "file \(now.file) changed since the plan (sha256 \(planned.fileSHA256.prefix(12))… → \(now.fileSHA256.prefix(12))…)"
            )
        }
        if planned.onConflict != now.onConflict {
            changes.append("the plan used --on-conflict \(planned.onConflict), this import \(now.onConflict)")
        }
        if planned.deactivateMissing != now.deactivateMissing {
            changes.append(
                "the plan \(planned.deactivateMissing ? "deactivated" : "did not deactivate") missing contacts, this import \(now.deactivateMissing ? "does" : "does not")"
            )
        }
        if planned.tenantsSelected != now.tenantsSelected {
            let describe = { (tenants: [String]) in tenants.isEmpty ? "every tenant" : tenants.joined(separator: ", ") }
            changes.append(
                "the plan covered \(describe(planned.tenantsSelected)), this import covers \(describe(now.tenantsSelected))"
            )
        }
        return changes
    }

    // MARK: Resume

    /// The interrupted import run to continue: the one `requested` names (refused unless it read these
    /// same bytes), else the newest import run of this job if it was interrupted with this mapping and
    /// these bytes. A run over other bytes is left as it is (a new run starts).
    private func resumable(
        _ ledger: RunLedger, file: String, sha256: String, requested: Int64?, options: ImportOptions,
        tenants: [String]
    ) throws -> (point: ResumePoint, recorded: RecordedImportFile)? {
        let candidate: RunRecord?
        if let requested {
            candidate = try ledger.resumableRun(requested, job: Self.name, mode: "import")
        } else {
            candidate = try ledger.runs(limit: 50).first { $0.job == Self.name && $0.mode == "import" }
            guard candidate?.status == "interrupted" else { return nil }
        }
        guard let run = candidate else { return nil }
        let recorded = try RecordedImportFile(runId: run.runId, ledger)
        guard run.mappingSHA256 == mapping.sha256, recorded.sha256 == sha256 else {
            if requested == nil { return nil }
            throw LedgerError(
                "run \(run.runId) imported other bytes or another mapping (file sha256 \(recorded.sha256?.prefix(12) ?? "?")…, now \(sha256.prefix(12))…): restore them, or start a new import"
            )
        }
        // One run, one set of decisions: its second part must decide lines as its first part did.
        var differ: [String] = []
        if recorded.onConflict != options.onConflict {
            differ.append("--on-conflict \(recorded.onConflict.rawValue) (now \(options.onConflict.rawValue))")
        }
        if recorded.deactivateMissing != options.deactivateMissing {
            differ.append(
                recorded.deactivateMissing ? "--deactivate-missing (now without)" : "no --deactivate-missing (now with)"
            )
        }
        if let jobs = options.jobs, jobs != recorded.jobs {
            differ.append("--jobs \(recorded.jobs) (now \(jobs))")
        }
        let wasTenants = recorded.tenants
        if wasTenants != tenants {
            let describe = { (list: [String]) in
                list.isEmpty ? "every tenant" : "--tenant " + list.joined(separator: ", ")
            }
            differ.append("\(describe(wasTenants)) (now \(describe(tenants)))")
        }
        if !differ.isEmpty {
            throw LedgerError(
                "import run \(run.runId) of this file was interrupted, and it was started with \(differ.joined(separator: "; ")): continue it as it was started (`ferry resume \(run.runId)`), or undo it (`ferry rollback \(run.runId)`) and import again"
            )
        }
        return (try ledger.resumePoint(runId: run.runId), recorded)
    }

    /// What the interrupted part of a run committed, from the tallies its batches recorded.
    struct EarlierLines {
        let tallies: [ImportBatchTally]
        let throughLine: Int
        /// Per writer session's share (see ImportPartition), the last line its committed batches held:
        /// each session commits its share in the file's order, so every line of the share up to it committed.
        let committedThrough: [Int: Int]
        /// Rejected lines by line number, with the reason they were given.
        let rejects: [Int: ImportBatchTally.Reject]
        /// Whether the `--deactivate-missing` batch committed too.
        let deactivated: Bool

        init(_ point: ResumePoint, _ ledger: RunLedger) throws {
            tallies = try ledger.connection.query(ImportSQL.tallies, [String(point.runId)])
                .decoded("the run's batch tallies", key: "batch")
                .map { row in
                    try JSONDecoder().decode(
                        ImportBatchTally.self, from: Data(try row.required("tally", as: String.self).utf8))
                }
            // Under --jobs a share's batch can fail while another's commits: the numbers need not be 1…n.
            let committed = try ledger.connection.query(
                "SELECT batch_no FROM ferry.batches WHERE run_id = $1 ORDER BY batch_no", [String(point.runId)]
            ).decoded("the run's batches", key: "batch_no").map { try $0.required("batch_no", as: Int.self) }
            guard tallies.map(\.batch).sorted() == committed else {
                throw LedgerError(
                    "run \(point.runId) committed \(formatCount(committed.count)) batches but recorded what \(formatCount(tallies.count)) of them decided (an older ferry did not record it): start a new import instead (it finds what the run wrote unchanged)"
                )
            }
            throughLine = tallies.map(\.lastLine).max() ?? 0
            committedThrough = tallies.reduce(into: [:]) { through, tally in
                through[tally.partition ?? 0] = max(through[tally.partition ?? 0] ?? 0, tally.lastLine)
            }
            rejects = Dictionary(
                tallies.flatMap(\.rejects).map { ($0.line, $0) }, uniquingKeysWith: { first, _ in first })
            deactivated = tallies.contains { $0.deactivation }
        }
    }

    /// The import run recorded in the ledger, continued with the options it was started with (pacing
    /// that `pacing` sets wins).
    public static func resume(
        runId: Int64, conninfo: String, pacing: RunPacing = RunPacing(), jobs: Int? = nil, showProgress: Bool
    ) throws -> ImportSummary {
        let ledger = try RunLedger.ownSession(conninfo: conninfo)
        guard let run = try ledger.run(runId), run.job == name, run.mode == "import" else {
            throw LedgerError("run \(runId) is not a \(name) import run")
        }
        let recorded = try RecordedImportFile(runId: runId, ledger)
        guard let path = recorded.path else { throw LedgerError("run \(runId) recorded no file") }
        var options = ImportOptions()
        options.resumeRunId = runId
        options.tenants = recorded.tenants
        options.encoding = recorded.encoding
        options.onConflict = recorded.onConflict
        options.deactivateMissing = recorded.deactivateMissing
        options.rejectFile = recorded.rejectFile
        options.pacing = pacing
        options.batchSize = recorded.batchSize
        // Given, it must be what the run was started with (checked with the other options that decide lines).
        options.jobs = jobs
        options.snapshotFile = run.options.stringObject["snapshot_file"]
        options.showProgress = showProgress
        let job = ImportJob(mapping: try ContactsCSVMapping.load(path: run.mappingFile), conninfo: conninfo)
        return try job.run(file: path, options)
    }

    // MARK: Pass 1

    struct FileScan {
        var header: CSVRecord?
        var records = 0
        var blankLines = 0
        var bytes = 0
        var sha256 = ""
    }

    private func scanFile(_ file: String, encoding: TextEncoding?) throws -> FileScan {
        var scan = FileScan()
        let reader = try CSVReader(path: file, dialect: mapping.dialect, encoding: encoding, limits: mapping.limits)
        while let item = try reader.next() {
            switch item {
            case .blankLine: scan.blankLines += 1
            case .record(let record):
                if scan.header == nil { scan.header = record } else { scan.records += 1 }
            }
        }
        guard let handle = FileHandle(forReadingAtPath: file) else {
            throw ImportFileError(file: file, line: nil, reason: "cannot read the file")
        }
        defer { try? handle.close() }
        var hash = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hash.update(data: chunk)
            scan.bytes += chunk.count
        }
        scan.sha256 = hash.finalize().hexString
        return scan
    }

    // MARK: Catalog

    private func sql(
        _ types: (tenant: String, contact: String, organization: String), engine: DatabaseEngine = .postgres,
        dryRun: Bool = false
    ) -> ImportSQL {
        ImportSQL(
            mapping: mapping, tenantType: types.tenant, contactKeyType: types.contact,
            organizationKeyType: types.organization, engine: engine, dryRun: dryRun)
    }

    private func keyTypes(
        _ connection: PostgresConnection
    ) throws -> (tenant: String, contact: String, organization: String) {
        let contactColumns = try connection.columnTypes(mapping.contacts.table)
        let organizationColumns = try connection.columnTypes(mapping.organizations.table)
        guard let tenant = contactColumns[mapping.contacts.tenant], let key = contactColumns[mapping.contacts.key],
            let organization = organizationColumns[mapping.organizations.key]
        else {
            try preflight(connection, forApply: false)
            throw PreflightError(problems: [
                "cannot read the key columns of \(mapping.contacts.table) and \(mapping.organizations.table)"
            ])
        }
        return (tenant, key, organization)
    }

    /// `ferry doctor`'s checks, before the first row: errors refuse the run, warnings go to `warn`.
    func preflight(_ connection: PostgresConnection, forApply: Bool, warn: (String) -> Void = { _ in }) throws {
        try Doctor(connection: connection).check(
            try expectations(using: connection, forApply: forApply),
            ownSteps: (try? schemaSteps(using: connection)) ?? [], mappingFile: mapping.file,
            engine: try engine(using: connection)
        )
        .requireNoErrors(warn: warn)
    }

    /// What the import expects of the database; `forApply` adds write privileges and the ledger.
    public func expectations(using connection: PostgresConnection, forApply: Bool) throws -> [TableExpectation] {
        let c = mapping.contacts, o = mapping.organizations
        let use: TableExpectation.Use = forApply ? .write : .read
        var contacts = TableExpectation(c.table, use: use)
        for column in [c.tenant, c.key, c.fullName, c.email, c.organization, c.role, c.notes, c.inactive, c.updatedAt] {
            contacts.column(column)
        }
        contacts.needsPrimaryKey = true
        var organizations = TableExpectation(o.table, use: mapping.createMissingOrganizations ? use : .read)
        for column in [o.tenant, o.key, o.name] { organizations.column(column) }
        organizations.needsPrimaryKey = true
        var tenants = TableExpectation(mapping.tenants.table, use: .read)
        tenants.column(mapping.tenants.key)
        let contactColumns = try connection.columnTypes(c.table)
        let tenantType = contactColumns[c.tenant], keyType = contactColumns[c.key]
        // schemaSteps reads the same key columns and would come back here through keyTypes if one is missing.
        let organizationKey = try connection.columnTypes(o.table)[o.key]
        let keysReadable = tenantType != nil && keyType != nil && organizationKey != nil
        let steps = keysReadable ? try schemaSteps(using: connection) : []
        return [contacts, organizations, tenants]
            + PhonesSchema.expectations(
                phones: mapping.phoneNumbers, types: mapping.typeDefinitions, contacts: c.table,
                tenantColumn: c.tenant, keyColumn: c.key, tenantType: tenantType, keyType: keyType,
                use: use, steps: steps)
            + (forApply ? LedgerSchema.expectations() : [])
    }
}

/// What an import run recorded about its file and the options that decide its lines (its `file`
/// event, written when the run starts): what a resume continues with and must agree with.
private struct RecordedImportFile {
    let path: String?
    let sha256: String?
    let encoding: TextEncoding?
    let onConflict: ImportOptions.OnConflict
    let deactivateMissing: Bool
    let tenants: [String]
    let rejectFile: String?
    let batchSize: Int?
    /// How many writer sessions the run's lines are divided among.
    let jobs: Int

    init(runId: Int64, _ ledger: RunLedger) throws {
        let detail = try ledger.events(runId).first { $0.kind == "file" }?.detail.stringObject ?? [:]
        path = detail["path"]
        sha256 = detail["sha256"]
        encoding = detail["encoding"].flatMap(TextEncoding.init(name:))
        onConflict = detail["on_conflict"].flatMap(ImportOptions.OnConflict.init(rawValue:)) ?? .update
        deactivateMissing = detail["deactivate_missing"] == "true"
        // Runs of the release before repeatable --tenant recorded one `tenant`.
        tenants = (detail["tenants"] ?? detail["tenant"] ?? "").split(separator: ",").map(String.init)
        rejectFile = detail["rejects"]
        batchSize = detail["batch_size"].flatMap { Int($0) }
        // Runs from before --jobs wrote with one session.
        jobs = detail["jobs"].flatMap { Int($0) } ?? 1
    }
}

/// Batches of records after the header, counting blank lines on the way.
private final class RecordSource: @unchecked Sendable {
    let reader: CSVReader
    let headerLine: Int
    let batchSize: Int
    private let lock = NSLock()
    private var blank = 0

    init(reader: CSVReader, headerLine: Int, batchSize: Int) {
        self.reader = reader
        self.headerLine = headerLine
        self.batchSize = batchSize
    }

    var blankLines: Int { lock.withLock { blank } }

    func nextBatch() throws -> [CSVRecord]? {
        var records: [CSVRecord] = []
        records.reserveCapacity(batchSize)
        while records.count < batchSize, let item = try reader.next() {
            switch item {
            case .blankLine: lock.withLock { blank += 1 }
            case .record(let record):
                guard record.line > headerLine else { continue }
                records.append(record)
            }
        }
        return records.isEmpty ? nil : records
    }
}

/// A batch of the file divided into the writer sessions' shares (see ImportPartition). On a resumed run
/// a share's lines up to the last one its session committed are replayed (only remembered), the rest loaded.
struct BatchShares {
    struct Lines {
        var records: [CSVRecord] = []
        var outcomes: [ImportRowOutcome] = []

        var contacts: [ImportedContact] {
            outcomes.compactMap { outcome in
                if case .contact(let contact) = outcome { return contact }
                return nil
            }
        }
    }

    struct Share {
        /// Contacts of lines the run's first part committed.
        var replayed: [ImportedContact] = []
        /// The rejects of those lines, as the first part recorded them (written to the reject file again).
        var replayedRejects: [ImportBatchTally.Reject] = []
        var fresh = Lines()
    }

    let shares: [Share]

    init(records: [CSVRecord], outcomes: [ImportRowOutcome], among count: Int, earlier: ImportJob.EarlierLines?) {
        var shares = Array(repeating: Share(), count: count)
        for (record, outcome) in zip(records, outcomes) {
            let index = ImportPartition.of(outcome, among: count)
            if let earlier, record.line <= earlier.committedThrough[index] ?? 0 {
                if let reject = earlier.rejects[record.line] { shares[index].replayedRejects.append(reject) }
                if case .contact(let contact) = outcome { shares[index].replayed.append(contact) }
            } else {
                shares[index].fresh.records.append(record)
                shares[index].fresh.outcomes.append(outcome)
            }
        }
        self.shares = shares
    }
}

/// The reject file: CSV with the original line number, the reason, and the line's original fields
/// (its own bytes, in the input's encoding; UTF-16 input is written as UTF-8).
final class RejectFile {
    private let writer: CSVWriter

    init(path: String, header: CSVRecord, dialect: CSVDialect) throws {
        writer = try CSVWriter(path: path, dialect: dialect)
        try writer.writeRow(
            [Array("line".utf8)[...], Array("reason".utf8)[...]] + (0..<header.count).map { header[$0] })
    }

    func write(_ record: CSVRecord, reason: String) throws {
        try writer.writeRow(
            [Array(String(record.line).utf8)[...], Array(reason.utf8)[...]] + (0..<record.count).map { record[$0] })
    }

    func close() throws { try writer.close() }
}

extension ImportJob: JobSchema {}

extension ImportJob: FileImportJob {
    public func importFile(_ file: String, _ options: ImportOptions, planFile: String?) throws -> FileImportOutcome {
        var reference: PlanReport.PlanFileReference?
        let summary: ImportSummary
        if let planFile {
            let planned = try self.planFile(file: file, options)
            reference = PlanReport.PlanFileReference(path: planFile, sha256: try planned.file.write(to: planFile))
            summary = planned.summary
        } else {
            summary = try run(file: file, options)
        }
        return FileImportOutcome(
            summary: summary, terminalText: ImportTerminalReport.render(summary),
            report: {
                var report = PlanReport(importSummary: summary, mapping: mapping)
                report.header.planFile = reference
                let connection = try PostgresConnection(conninfo: conninfo)
                defer { connection.close() }
                try report.nameTenants(from: mapping.report.tenantNames, using: connection)
                return report
            }, anomalyFile: summary.anomalyFile, rowsRejected: summary.rejected, changesPending: summary.changes > 0)
    }
}
