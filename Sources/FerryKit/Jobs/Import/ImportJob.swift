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

    public var tenant: String?
    public var encoding: TextEncoding?
    public var dryRun = false
    public var onConflict = OnConflict.update
    public var deactivateMissing = false
    /// Where rejected lines go; by default FILE.rejects.csv beside the input.
    public var rejectFile: String?
    public var batchSize: Int?
    public var showProgress = true
    public var wait = false
    /// Continue this interrupted import run (by default the newest interrupted import of the same mapping
    /// and the same file bytes is continued).
    public var resumeRunId: Int64?
    /// Also write the run's snapshot to this file (gzip, with FILE.sha256 beside it).
    public var snapshotFile: String?
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

    public func run(file: String, _ options: ImportOptions = ImportOptions()) throws -> ImportSummary {
        let started = Date()
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
            tenantFromFlag: options.tenant != nil)
        summary.headerLine = header.line
        summary.ignoredColumns = header.ignored
        var tenantFlag: String?
        if let tenant = options.tenant {
            guard let uuid = UUID(uuidString: tenant) else {
                throw ImportFileError(file: file, line: nil, reason: "--tenant '\(tenant)' is not a UUID")
            }
            tenantFlag = uuid.uuidString.lowercased()
        }
        let transform = ContactImportTransform(
            header: header, encoding: reader.encoding, tenantFromFlag: tenantFlag, mapping: mapping)

        let connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry import")
        summary.database = connection.info
        try preflight(connection, forApply: !options.dryRun, warn: options.log)
        let types = try keyTypes(connection)
        summary.applyStatements = sql(types).applyStatements(
            organizations: try SnapshotTable.resolve(mapping.organizations.table.quoted, on: connection),
            contacts: try SnapshotTable.resolve(mapping.contacts.table.quoted, on: connection),
            types: try SnapshotTable.resolve(mapping.typeDefinitions.table.quoted, on: connection),
            phones: try SnapshotTable.resolve(mapping.phoneNumbers.table.quoted, on: connection),
            createMissingOrganizations: mapping.createMissingOrganizations)
        let timeouts = (mapping.load.lockTimeout.text, mapping.load.statementTimeout.text)

        var lock: RunLock?
        var ledger: RunLedger?
        var runId: Int64?
        var earlier: ImportSummary.EarlierPart?
        if !options.dryRun {
            lock = try RunLock(conninfo: conninfo, job: Self.name, wait: options.wait)
            let runLedger = RunLedger(
                connection: try PostgresConnection(conninfo: conninfo, applicationName: "ferry ledger"))
            try runLedger.markDeadRunsInterrupted(job: Self.name)
            if let point = try resumable(runLedger, file: file, sha256: scan.sha256, requested: options.resumeRunId) {
                try runLedger.resume(point)
                runId = point.runId
                earlier = try earlierPart(point, runLedger)
                summary.batches = point.lastBatch
                options.log(
                    "resuming import run \(point.runId): its first part committed \(point.lastBatch) batch\(point.lastBatch == 1 ? "" : "es") (through line \(earlier?.throughLine ?? 0)); the whole file is read again, and the lines that part wrote now count as its inserts and updates"
                )
            } else {
                let id = try runLedger.start(
                    job: Self.name, mode: "import", mappingFile: mapping.file, mappingSHA256: mapping.sha256,
                    options: options.snapshotFile.map { ["snapshot_file": $0] } ?? [:])
                try runLedger.event(
                    runId: id, kind: "file",
                    detail: [
                        "path": URL(fileURLWithPath: file).standardizedFileURL.path, "sha256": scan.sha256,
                        "bytes": String(scan.bytes), "records": String(scan.records),
                        "encoding": reader.encoding.rawValue, "on_conflict": options.onConflict.rawValue,
                        "deactivate_missing": String(options.deactivateMissing), "tenant": options.tenant ?? "",
                    ])
                try runLedger.record(
                    try PhoneRowsSQL.defaultPerContact(mapping.phoneNumbers, on: connection), runId: id)
                runId = id
            }
            ledger = runLedger
            summary.runId = runId
        }
        defer { withExtendedLifetime(lock) {} }

        // Kept on failure too: the lines of batches committed before it were rejected for real.
        var openRejects: RejectFile?
        do {
            let loader = try ImportLoader(
                connection: connection, sql: sql(types), runId: runId, timeouts: timeouts,
                createMissingOrganizations: mapping.createMissingOrganizations, onConflict: options.onConflict)
            let rejectPath = options.rejectFile ?? file + ".rejects.csv"
            let rejects = try RejectFile(path: rejectPath, header: headerRecord, dialect: mapping.dialect)
            openRejects = rejects
            summary.rejectFile = rejectPath
            try load(
                reader: reader, transform: transform, loader: loader, rejects: rejects, scan: scan, options: options,
                summary: &summary)
            if options.deactivateMissing {
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
                summary.contactsDeactivated = try loader.deactivateMissing(batch: summary.batches)
            }
            try rejects.close()
            if let earlier { summary.count(earlier) }
            guard summary.addsUp, summary.rowsRead == scan.records else {
                throw LedgerError(
                    "the counts do not add up (read \(summary.rowsRead) of \(scan.records) records; inserted \(summary.inserted) + updated \(summary.updated) + unchanged \(summary.unchanged) + skipped \(summary.skipped) + rejected \(summary.rejected)): did the file change during the import?"
                )
            }
            summary.elapsedSeconds = Date().timeIntervalSince(started)
            summary.peakResidentMegabytes = peakResidentMegabytes()
            if let ledger, let runId {
                if let path = options.snapshotFile {
                    summary.snapshotFile = try SnapshotFile.write(
                        runId: runId, connection: ledger.connection, path: path)
                }
                try ledger.finish(
                    runId: runId, status: "succeeded",
                    countsJSON: String(decoding: try JSONEncoder.sorted.encode(summary), as: UTF8.self))
            }
            return summary
        } catch {
            try? openRejects?.close()
            guard let ledger, let runId else { throw error }
            // A lost connection, a lock timeout or a stop signal leaves a run to continue, not a failure.
            let cancelled = error as? Cancelled
            let transient = cancelled != nil || ((error as? PostgresError)?.isTransient ?? false)
            try? ledger.finish(
                runId: runId, status: transient ? "interrupted" : "failed", error: String(describing: error))
            guard transient else { throw error }
            throw RunInterrupted(
                runId: runId, reason: String(describing: error),
                resumeCommand: "ferry import \(file) --mapping \(mapping.file)   (or: ferry resume \(runId))",
                signal: cancelled?.signal)
        }
    }

    private func load(
        reader: CSVReader, transform: ContactImportTransform, loader: ImportLoader, rejects: RejectFile,
        scan: FileScan, options: ImportOptions, summary: inout ImportSummary
    ) throws {
        let batchSize = options.batchSize ?? mapping.load.batchSize
        let progress = ProgressLine(
            label: options.dryRun ? "import (dry run)" : "import", total: scan.records,
            enabled: options.showProgress && isatty(STDERR_FILENO) == 1)
        let source = RecordSource(reader: reader, headerLine: scan.header?.line ?? 0, batchSize: batchSize)
        try BatchPipeline.run(
            extract: { try source.nextBatch() },
            transform: { (records: [CSVRecord]) in
                (records, parallelMap(records, transform.transform))
            },
            consume: { (records: [CSVRecord], outcomes: [ImportRowOutcome]) in
                summary.batches += 1
                summary.rowsRead += records.count
                let contacts = outcomes.compactMap { outcome -> ImportedContact? in
                    if case .contact(let contact) = outcome { return contact }
                    return nil
                }
                let result = try options.retry.run("batch \(summary.batches)", log: options.log) {
                    try loader.load(
                        contacts, batch: summary.batches, firstLine: records.first?.line ?? 0,
                        lastLine: records.last?.line ?? 0)
                }
                let decided = Dictionary(uniqueKeysWithValues: result.lines.map { ($0.line, $0) })
                let byLine = Dictionary(uniqueKeysWithValues: contacts.map { ($0.line, $0) })
                for (record, outcome) in zip(records, outcomes) {
                    switch outcome {
                    case .rejected(let line, let reason):
                        summary.reject(line: line, reason: reason, raw: record.displayText, tenant: nil)
                        try rejects.write(record, reason: reason)
                    case .contact(let contact):
                        guard let line = decided[contact.line] else {
                            throw LedgerError("line \(contact.line) got no decision from the database")
                        }
                        try count(
                            line, contact: byLine[contact.line]!, record: record, rejects: rejects, summary: &summary)
                    }
                }
                summary.organizationsToCreate += result.organizationsCreated
                summary.customTypesToCreate += result.customTypesCreated
                summary.blankLines = source.blankLines
                FerryLog.logger.info(
                    options.dryRun ? "batch classified" : "batch committed",
                    metadata: [
                        "run": "\(summary.runId.map(String.init) ?? "")", "job": "\(Self.name)",
                        "batch": "\(summary.batches)",
                        "first_line": "\(records.first?.line ?? 0)", "last_line": "\(records.last?.line ?? 0)",
                        "rows": "\(records.count)",
                    ])
                progress.update(done: summary.rowsRead)
            })
        summary.blankLines = source.blankLines
        progress.finish()
    }

    private func count(
        _ decision: ImportLineResult, contact: ImportedContact, record: CSVRecord, rejects: RejectFile,
        summary: inout ImportSummary
    ) throws {
        switch decision.action {
        case .insert: summary.inserted += 1
        case .update: summary.updated += 1
        case .unchanged: summary.unchanged += 1
        case .skip: summary.skipped += 1
        case .reject:
            let reason = decision.reason ?? "rejected by the database"
            summary.reject(line: decision.line, reason: reason, raw: record.displayText, tenant: contact.tenant)
            try rejects.write(record, reason: reason)
            return
        }
        summary.tenants[contact.tenant, default: TenantCounts()].count(decision.action)
        if decision.action.writes {
            summary.phoneRowsToInsert += decision.phoneRows
            for anomaly in contact.phones.anomalies {
                let name =
                    anomaly.rejectionReason == .emptyToken ? "no number in the cell (n/a, -, …)" : anomaly.kind.rawValue
                summary.phoneAnomalies[name, default: 0] += 1
            }
        }
        if summary.samples.count < 10, decision.action != .unchanged {
            summary.samples.append(
                ImportSummary.Sample(
                    line: contact.line, action: decision.action.rawValue, tenant: contact.tenant, email: contact.email,
                    fullName: contact.fullName,
                    changed: decision.changed,
                    phones: contact.phones.rows.map {
                        ContactSample.Row(
                            phoneNumber: $0.e164, extensionDigits: $0.extensionDigits,
                            type: $0.type.description, isDefault: $0.isDefault,
                            displayOrder: $0.displayOrder)
                    }))
        }
    }

    // MARK: Resume

    /// The interrupted import run to continue: the one `requested` names (refused unless it read these
    /// same bytes), else the newest import run of this job if it was interrupted with this mapping and
    /// these bytes. A run over other bytes is left as it is (a new run starts).
    private func resumable(
        _ ledger: RunLedger, file: String, sha256: String, requested: Int64?
    ) throws -> ResumePoint? {
        let candidate: RunRecord?
        if let requested {
            candidate = try ledger.resumableRun(requested, job: Self.name, mode: "import")
        } else {
            candidate = try ledger.runs(limit: 50).first { $0.job == Self.name && $0.mode == "import" }
            guard candidate?.status == "interrupted" else { return nil }
        }
        guard let run = candidate else { return nil }
        let recorded = try ledger.events(run.runId).first { $0.kind == "file" }?.detail.stringObject ?? [:]
        guard run.mappingSHA256 == mapping.sha256, recorded["sha256"] == sha256 else {
            if requested == nil { return nil }
            throw LedgerError(
                "run \(run.runId) imported other bytes or another mapping (file sha256 \(recorded["sha256"]?.prefix(12) ?? "?")…, now \(sha256.prefix(12))…): restore them, or start a new import"
            )
        }
        return try ledger.resumePoint(runId: run.runId)
    }

    /// What the interrupted part of a run committed, from its batches.
    private func earlierPart(_ point: ResumePoint, _ ledger: RunLedger) throws -> ImportSummary.EarlierPart {
        let row = try ledger.connection.query(
            """
            SELECT coalesce(sum(rows_inserted), 0) AS inserted, coalesce(sum(rows_updated), 0) AS updated
            FROM ferry.batches WHERE run_id = $1
            """, [String(point.runId)]
        ).decoded("ferry.batches").first
        return ImportSummary.EarlierPart(
            batches: point.lastBatch, throughLine: point.lastKey?.first.flatMap { Int($0) } ?? 0,
            inserted: try row?.required("inserted") ?? 0, updated: try row?.required("updated") ?? 0)
    }

    /// The import run recorded in the ledger, continued with the options it was started with.
    public static func resume(runId: Int64, conninfo: String, showProgress: Bool) throws -> ImportSummary {
        let ledger = RunLedger(connection: try PostgresConnection(conninfo: conninfo, applicationName: "ferry ledger"))
        guard let run = try ledger.run(runId), run.job == name, run.mode == "import" else {
            throw LedgerError("run \(runId) is not a \(name) import run")
        }
        let recorded = try ledger.events(runId).first { $0.kind == "file" }?.detail.stringObject ?? [:]
        guard let path = recorded["path"] else { throw LedgerError("run \(runId) recorded no file") }
        var options = ImportOptions()
        options.resumeRunId = runId
        options.tenant = recorded["tenant"].flatMap { $0.isEmpty ? nil : $0 }
        options.encoding = recorded["encoding"].flatMap(TextEncoding.init(name:))
        options.onConflict = recorded["on_conflict"].flatMap(ImportOptions.OnConflict.init(rawValue:)) ?? .update
        options.deactivateMissing = recorded["deactivate_missing"] == "true"
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

    private func sql(_ types: (tenant: String, contact: String, organization: String)) -> ImportSQL {
        ImportSQL(
            mapping: mapping, tenantType: types.tenant, contactKeyType: types.contact,
            organizationKeyType: types.organization)
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
            engine: try engine(using: connection), runsOnCitus: runsOnCitus
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
            + (forApply ? PhonesSchema.ledgerExpectations() : [])
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
            case .record(let record): if record.line > headerLine { records.append(record) }
            }
        }
        return records.isEmpty ? nil : records
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
