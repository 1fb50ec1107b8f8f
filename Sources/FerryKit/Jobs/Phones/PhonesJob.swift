import Foundation

/// The phones backfill: extract legacy contacts → transform phones → a sink (the runner's).
public struct PhonesJob: Sendable {
    public static let name = "phones"
    public let mapping: PhonesMapping
    public let conninfo: String
    /// The extract statement's names for the mapped columns' values (made once, read for every row).
    let valueColumns: [String]

    public init(mapping: PhonesMapping, conninfo: String) {
        self.mapping = mapping
        self.conninfo = conninfo
        valueColumns = mapping.source.columns.indices.map { "value_\($0)" }
    }

    /// The schema steps of this job, typed after the live source table.
    public func schemaSteps(using connection: PostgresConnection) throws -> [SchemaStep] {
        let types = try keyTypes(connection)
        let engine = try DatabaseEngine.detect(source: mapping.source.table, on: connection)
        return LedgerSchema.steps
            + PhonesSchema.steps(for: mapping, tenantType: types.tenant, keyType: types.key, engine: engine)
    }

    /// apply's duration, from this plan's measured transform throughput and a load rate: measured on
    /// earlier applies of this job here when there are some, else this plan's sample load (one batch into
    /// a temporary copy of the table with its indexes), else a conservative default.
    fileprivate func estimateApply(
        _ summary: inout PhonesSummary, _ reader: PostgresConnection,
        sample: (rate: Double, rows: Int, bytesPerRow: Double)?
    ) throws {
        if let sample { summary.estimatedGrowthBytes = Int(sample.bytesPerRow * Double(summary.rowsToInsert)) }
        var loadRate = 30_000.0
        var basis = "load rate: a default of 30,000 rows/s (no earlier apply on this database, no sample load)"
        if let sample {
            // A temporary table writes no WAL and checks no foreign keys, and the real batch also writes snapshot rows.
            loadRate = sample.rate / 3
            basis =
                "load rate: a sample load of \(formatCount(sample.rows)) rows into a temporary copy of the table with its indexes ran at \(formatCount(Int(sample.rate.rounded()))) rows/s; a third of that is assumed for the real table (WAL, foreign keys, snapshot rows)"
        }
        // A failed statement would abort the plan's snapshot transaction: look before querying the ledger.
        let hasLedger =
            try reader.query(
                """
                SELECT CASE WHEN to_regclass('ferry.batches') IS NULL OR to_regclass('ferry.runs') IS NULL THEN false
                            ELSE has_table_privilege('ferry.batches', 'SELECT') AND has_table_privilege('ferry.runs', 'SELECT') END
                """
            ).value("access to the ledger", as: Bool.self)
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
            basis =
                "load rate: \(formatCount(Int(history.rounded()))) rows/s measured on earlier applies of this job here"
        }
        let transformSeconds = summary.elapsedSeconds
        summary.estimatedApplySeconds = max(transformSeconds, Double(summary.rowsToInsert) / loadRate) * 1.1 + 1
        summary.estimateBasis =
            String(format: "an estimate: transform as measured by this plan (%.1f s), ", transformSeconds) + basis
            + ", plus 10%"
    }

    private func keyTypes(_ connection: PostgresConnection) throws -> (tenant: String, key: String) {
        guard let types = try sourceKeyTypes(connection) else {
            try preflight(connection, forApply: false, warn: { _ in })
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

}

/// The phones job's statements with the live key types of its source.
struct PhonesStatements: Sendable {
    let sql: PhonesSQL
    let tenantType: String
    let keyType: String
}

extension PhonesJob: TableMigration {
    var source: KeysetSource { mapping.source.keyset }
    static var planChecksAreConstraints: Bool { true }
    static var writesAnomalyList: Bool { true }
    /// A contact's rows depend on no other contact's; custom types are inserted ON CONFLICT DO NOTHING.
    static var writesTenantsInSlices: Bool { true }

    func statements(_ reader: PostgresConnection) throws -> PhonesStatements {
        let types = try keyTypes(reader)
        var sql = PhonesSQL(mapping: mapping, engine: try sourceEngine(using: reader))
        // On Citus every page is one tenant's statement, planned on that tenant's shards; whether a
        // query's plan keeps to them depends on the query, and nothing here has measured one.
        if sql.engine.isCitus, mapping.source.query != nil {
            throw PreflightError(problems: [
                "source.query in \(mapping.file): a query as the source is not supported on Citus; read from source.table (a table or a view)"
            ])
        }
        sql.drawsPhoneRowKeys = try PhoneRowsSQL.drawsRowKeys(mapping.phoneNumbers, engine: sql.engine, on: reader)
        return PhonesStatements(sql: sql, tenantType: types.tenant, keyType: types.key)
    }

    func extractPage(_ statements: PhonesStatements) -> String {
        statements.sql.extractPage(tenantType: statements.tenantType, keyType: statements.keyType)
    }

    func extractTenantPage(_ statements: PhonesStatements) -> String? {
        statements.sql.extractPage(tenantType: statements.tenantType, keyType: statements.keyType, oneTenant: true)
    }

    func record(_ row: Row) throws -> LegacyPhoneContact {
        let (region, origin) = try LegacyPhoneContact.region(of: row)
        var contact = LegacyPhoneContact(
            tenant: try row.required("ferry_tenant"), contactKey: try row.required("ferry_key"),
            region: region, regionOrigin: origin,
            values: try valueColumns.map { try row.optional($0) },
            alreadyHasPhones: try row.required("has_phones"), naiveRow: try row.optional("naive_row"))
        contact.legacyHash = try row.optional("ferry_legacy_hash")
        if mapping.source.timestampsFromSource {
            contact.createdAt = try row.optional("source_created_at")
            contact.updatedAt = try row.optional("source_updated_at")
        }
        return contact
    }

    func key(of contact: LegacyPhoneContact) -> [String] { [contact.tenant, contact.contactKey] }

    func makeTransform() -> @Sendable (LegacyPhoneContact) -> PhoneContactOutcome {
        let transform = mapping.transform
        return { transform.transform($0) }
    }

    /// The planner's row count (an exact count on a never-analyzed table, or for some tenants only; for a
    /// query source, the planner's estimate of what the query returns, which may leave out much of the table).
    func recordCount(_ statements: PhonesStatements, _ reader: PostgresConnection, tenants: String?) throws -> Int? {
        if tenants != nil {
            return try reader.query("SELECT count(*) FROM (\(extractPage(statements))) x", [nil, nil, nil, tenants])
                .value("the contacts of the tenants", as: Int.self)
        }
        if let query = mapping.source.query {
            return try reader.plannerRowEstimate("SELECT 1 FROM \(subquery(query)) AS ferry_source")
        }
        return Int(
            try reader.query(statements.sql.estimatedSourceRows, [mapping.source.table.quoted]).scalar ?? "")
    }

    func summaryBuilder(
        mode: RunMode, settings: RunSettings, sql statements: PhonesStatements, reader: PostgresConnection
    ) throws -> PhonesRunBuilder {
        let existingTypes = Set(
            try reader.query(statements.sql.existingCustomTypes).decoded("existing custom types").map {
                PhonesSummaryBuilder.customTypeKey(tenant: try $0.required("tenant"), label: try $0.required("label"))
            })
        let summary = PhonesSummary(mode: mode, mappingFile: mapping.file, mappingSHA256: mapping.sha256)
        return try PhonesRunBuilder(
            builder: PhonesSummaryBuilder(summary: summary, existingCustomTypes: existingTypes),
            columns: mapping.source.columns, anomalyFile: settings.anomalyFile)
    }

    func loader(_ statements: PhonesStatements, run: LedgerRun.Context) throws -> PhonesLoader {
        var sql = statements.sql
        sql.writer = run.writer
        return try PhonesLoader(run: run, sql: sql, tenantType: statements.tenantType, keyType: statements.keyType)
    }

    func count(_ result: PhonesLoader.BatchResult, of batch: PhonesBatch, into applied: inout PhonesSummary.Applied) {
        applied.rowsInserted += result.phoneRowsInserted
        applied.contactsInserted += result.contactsInserted
        applied.customTypesCreated += result.customTypesCreated
        applied.naiveRowsReplaced += result.naiveRowsReplaced
        applied.naiveRowsDeleted += result.naiveRowsDeleted
        // Contacts whose rows were not written after all: phones arrived from elsewhere, or their naive
        // row was changed by the application between the read and the write.
        let replacing = batch.decisions.filter { $0.replacesRow != nil }
        applied.contactsSkippedAtLoad +=
            batch.decisions.filter { !$0.rows.isEmpty && $0.replacesRow == nil }.count - result.contactsInserted
            + replacing.count - result.naiveRowsReplaced - result.naiveRowsDeleted
    }

    /// The phones job's checks are the target's constraints, counted on the planned rows by the plan's
    /// own sink (see `planExtras`); an apply adds none.
    func checks(
        _ summary: PhonesSummary, sql: PhonesStatements, reader: PostgresConnection, predicted: Bool
    ) throws -> [ConstraintCheck] {
        summary.checks
    }

    func applyStatements(_ statements: PhonesStatements, reader: PostgresConnection) throws -> [String] {
        statements.sql.applyStatements(
            types: try SnapshotTable.resolve(mapping.typeDefinitions.table.quoted, on: reader),
            phones: try SnapshotTable.resolve(mapping.phoneNumbers.table.quoted, on: reader),
            tenantType: statements.tenantType, keyType: statements.keyType,
            idType: try statements.sql.phoneKeyType(on: reader))
    }

    /// The plan checks the target's constraints on every planned row, in a session of its own on the
    /// plan's snapshot, then loads one sample batch into a temporary copy of the table to estimate apply.
    func planExtras(_ statements: PhonesStatements, reader: PostgresConnection) throws -> PlanExtras<PhonesJob> {
        let snapshot = try reader.query("SELECT pg_export_snapshot()").scalar ?? ""
        let constraints = try LiveConstraintChecks(conninfo: conninfo, snapshot: snapshot, mapping: mapping)
        var extras = PlanExtras<PhonesJob>()
        extras.consume = { batch in try constraints.add(batch.decisions) }
        extras.finish = { summary, reader in
            summary.checks += try constraints.results()
            let sample = try constraints.sampleLoad(rows: mapping.load.batchSize)
            for table in [mapping.phoneNumbers.table, mapping.typeDefinitions.table] {
                summary.targetRowsExisting[table.description] =
                    try reader.query("SELECT count(*) FROM \(table.quoted)").value("a count", as: Int.self)
            }
            try estimateApply(&summary, reader, sample: sample)
        }
        return extras
    }

    /// Rollback keeps a contact's default row the application gave another number since the run: it
    /// needs each contact's default before the first batch.
    func beforeApply(_ statements: PhonesStatements, run: LedgerRun.Context) throws {
        try run.ledger.record(
            try PhoneRowsSQL.defaultPerContact(mapping.phoneNumbers, on: run.reader), runId: run.runId)
    }

    func afterApply(_ summary: inout PhonesSummary, sql statements: PhonesStatements, run: LedgerRun.Context) throws {
        let startXid =
            try run.reader.query("SELECT start_xid FROM ferry.runs WHERE run_id = $1", [String(run.runId)])
            .decoded("ferry.runs").first?.required("start_xid", as: Int64.self) ?? 0
        summary.resumedAfterBatch = run.resume?.lastBatch
        summary.applied?.sourceRowsChangedDuringRun =
            try sourceRowsWritten(since: startXid, run.reader, tenants: []).values.reduce(0, +)
    }

    func planReport(_ summary: PhonesSummary) -> PlanReport { PlanReport(summary: summary, mapping: mapping) }

    func terminalText(_ summary: PhonesSummary, colour: Bool) -> String {
        PhonesTerminalReport.render(summary, colour: colour)
    }
}

/// The phones summary, plus every anomaly written to the plan's anomaly list as it goes by.
struct PhonesRunBuilder: SummaryBuilding {
    var builder: PhonesSummaryBuilder
    let columns: [PhoneSourceColumn]
    let anomalies: CSVWriter?

    init(builder: PhonesSummaryBuilder, columns: [PhoneSourceColumn], anomalyFile: String?) throws {
        self.builder = builder
        self.columns = columns
        anomalies = try anomalyFile.map { try CSVWriter(path: $0) }
        try anomalies?.writeRow(["tenant", "contact_key", "column", "raw", "class", "detail"])
    }

    mutating func add(_ outcome: PhoneContactOutcome, of contact: LegacyPhoneContact) throws {
        builder.add(outcome, contact: contact, columns: columns)
        for anomaly in outcome.anomalies {
            // Opened in a spreadsheet for review: a legacy value must not run as a formula there.
            try anomalies?.writeRow([
                anomaly.tenant, anomaly.contactKey, anomaly.column, FormulaGuard.guarded(anomaly.raw),
                anomaly.kind.rawValue, FormulaGuard.guarded(anomaly.detail),
            ])
        }
    }

    mutating func finish() throws -> PhonesSummary {
        try anomalies?.close()
        return builder.finished
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

extension LegacyPhoneContact {
    /// A source row's region and where it came from: its own `region` column, and when that is absent or
    /// blank its `region_lookup` (without either, the transform goes on to the tenant map and the default).
    static func region(of row: Row) throws -> (region: String?, origin: RegionOrigin) {
        let own = try row.optional("region", as: String.self)
        if let lookedUp = try row.optional("region_lookup", as: String.self),
            own.map({ $0.trimmingWhitespace().isEmpty }) ?? true
        {
            return (lookedUp, .lookup)
        }
        return (own, .row)
    }
}

extension PhonesJob: JobSchema {
    public func engine(using connection: PostgresConnection) throws -> DatabaseEngine {
        try sourceEngine(using: connection)
    }
}
