import Foundation

/// Phones normalized where they stand, after the application dropped the legacy column: the phone
/// table is its own source, read contact by contact. A row already in stored form is left alone; any
/// other row gets its first number written into it (key, type, default and order kept) and further
/// numbers added beside it; a row with no usable number stays (or, if the mapping says so, is deleted).
/// Every change has its pre-image in the run's snapshot: rollback restores the rows exactly.
public struct PhonesInPlaceJob: Sendable {
    public static let name = PhonesMapping.inPlaceJob
    public let mapping: PhonesMapping
    public let conninfo: String

    public init(mapping: PhonesMapping, conninfo: String) {
        self.mapping = mapping
        self.conninfo = conninfo
    }

    private func keyTypes(_ connection: PostgresConnection) throws -> (tenant: String, contact: String, id: String) {
        let columns = try connection.columnTypes(mapping.phoneNumbers.table)
        let phones = mapping.phoneNumbers
        guard let tenant = columns[phones.tenant], let contact = columns[phones.contactKey], let id = columns[phones.id]
        else {
            throw PreflightError(problems: ["cannot read the key columns of \(phones.table) (named in \(mapping.file))"]
            )
        }
        return (tenant, contact, id)
    }

    /// Only the ledger: the phone tables are the application's (this job reads them, it cannot make them).
    public func schemaSteps(using connection: PostgresConnection) throws -> [SchemaStep] {
        LedgerSchema.steps
    }

    /// The phone table (read and written), the type table, and the ledger for apply.
    public func expectations(using connection: PostgresConnection, forApply: Bool) throws -> [TableExpectation] {
        let phones = mapping.phoneNumbers
        let columns = try connection.columnTypes(phones.table)
        let lookups = mapping.source.regionLookup.map { [$0.expectation] } ?? []
        return PhonesSchema.expectations(
            phones: phones, types: mapping.typeDefinitions, contacts: nil,
            tenantColumn: phones.tenant, keyColumn: phones.contactKey, tenantType: columns[phones.tenant],
            keyType: columns[phones.contactKey], use: forApply ? .write : .read, steps: []
        ) + lookups + (forApply ? LedgerSchema.expectations() : [])
    }
}

extension PhonesInPlaceJob: TableMigration {
    /// A contact's rows depend on no other contact's; custom types are inserted ON CONFLICT DO NOTHING.
    static var writesTenantsInSlices: Bool { true }

    var source: KeysetSource {
        KeysetSource(
            table: mapping.phoneNumbers.table, tenantColumn: mapping.phoneNumbers.tenant,
            keyColumn: mapping.phoneNumbers.contactKey, noun: "contacts")
    }

    func statements(_ reader: PostgresConnection) throws -> PhonesInPlaceSQL {
        let types = try keyTypes(reader)
        return PhonesInPlaceSQL(
            mapping: mapping, tenantType: types.tenant, contactType: types.contact, idType: types.id,
            engine: try sourceEngine(using: reader))
    }

    func extractPage(_ sql: PhonesInPlaceSQL) -> String { sql.extractPage() }
    func extractTenantPage(_ sql: PhonesInPlaceSQL) -> String? { sql.extractPage(oneTenant: true) }

    func record(_ row: Row) throws -> PhoneRowsOfContact {
        let rows: [ExistingPhoneRow]
        if try row.required("row_count", as: Int.self) == 1 {
            rows = [
                ExistingPhoneRow(
                    id: try row.required("only_id"), number: try row.required("only_number"),
                    ext: try row.optional("only_ext"))
            ]
        } else {
            let json = try row.required("rows", as: String.self)
            do {
                rows = try JSONDecoder().decode([ExistingPhoneRow].self, from: Data(json.utf8))
            } catch {
                throw RowDecodingError(
                    purpose: "phone rows", column: "rows", key: row.key, reason: "is not their JSON: \(error)")
            }
        }
        return PhoneRowsOfContact(
            tenant: try row.required("ferry_tenant"), contactKey: try row.required("ferry_key"),
            region: try row.optional("region_lookup"), rows: rows)
    }

    func key(of contact: PhoneRowsOfContact) -> [String] { [contact.tenant, contact.contactKey] }

    func makeTransform() -> @Sendable (PhoneRowsOfContact) -> InPlaceDecision {
        let transform = PhonesInPlaceTransform(
            phones: mapping.transform, unusableRows: mapping.unusableRows, column: mapping.phoneNumbers.phoneNumber)
        return { transform.decide($0) }
    }

    func summaryBuilder(
        mode: RunMode, settings: RunSettings, sql: PhonesInPlaceSQL, reader: PostgresConnection
    ) throws -> PhonesInPlaceSummaryBuilder {
        PhonesInPlaceSummaryBuilder(summary: PhonesInPlaceSummary(mode: mode, mapping: mapping))
    }

    func loader(_ sql: PhonesInPlaceSQL, run: LedgerRun.Context) throws -> PhonesInPlaceLoader {
        var sql = sql
        sql.writer = run.writer
        return try PhonesInPlaceLoader(run: run, sql: sql)
    }

    func count(
        _ result: PhonesInPlaceLoader.BatchResult, of batch: MigrationBatch<PhoneRowsOfContact, InPlaceDecision>,
        into applied: inout PhonesInPlaceSummary.Applied
    ) {
        applied.rowsRewritten += result.rewritten
        applied.rowsAdded += result.added
        applied.rowsDeleted += result.deleted
        applied.customTypesCreated += result.customTypesCreated
        applied.rowsChangedMeanwhile +=
            batch.decisions.reduce(0) { $0 + $1.rewrites.count + $1.deletions.count } - result.rewritten
            - result.deleted
    }

    func checks(
        _ summary: PhonesInPlaceSummary, sql: PhonesInPlaceSQL, reader: PostgresConnection, predicted: Bool
    ) throws -> [ConstraintCheck] {
        var accounting = ConstraintCheck(
            constraint: "every row read is unchanged, rewritten or unusable (the counts add up)")
        accounting.violations = summary.accountingAddsUp ? 0 : 1
        return [accounting]
    }

    func applyStatements(_ sql: PhonesInPlaceSQL, reader: PostgresConnection) throws -> [String] {
        sql.applyStatements(
            types: try SnapshotTable.resolve(mapping.typeDefinitions.table.quoted, on: reader),
            phones: try SnapshotTable.resolve(mapping.phoneNumbers.table.quoted, on: reader))
    }

    /// Rollback keeps a contact's one default: it needs each contact's default before the first batch.
    func beforeApply(_ sql: PhonesInPlaceSQL, run: LedgerRun.Context) throws {
        try run.ledger.record(
            try PhoneRowsSQL.defaultPerContact(mapping.phoneNumbers, on: run.reader), runId: run.runId)
    }

    func planReport(_ summary: PhonesInPlaceSummary) -> PlanReport {
        PlanReport(inPlaceSummary: summary, mapping: mapping)
    }

    func terminalText(_ summary: PhonesInPlaceSummary, colour: Bool) -> String {
        PhonesInPlaceTerminalReport.render(summary, colour: colour)
    }
}

/// The apply sink: the batch's rewrites, deletions and further numbers staged by COPY, then each row
/// locked and snapshotted if it still holds the value read, rewritten or deleted, and the further
/// numbers added after the contact's rows; one transaction with the batch cursor.
final class PhonesInPlaceLoader: BatchLoader {
    struct BatchResult: BatchWrites {
        var rewritten = 0
        var added = 0
        var deleted = 0
        var customTypesCreated = 0
        var rowsInserted: Int { added + customTypesCreated }
        var rowsUpdated: Int { rewritten }
        var rowsDeleted: Int { deleted }
    }

    private let session: LoaderSession
    private var connection: PostgresConnection { session.connection }
    private let sql: PhonesInPlaceSQL
    private let phonesTable: SnapshotTable
    private let typesTable: SnapshotTable
    private var rewrites = CopyTextEncoder(), deletions = CopyTextEncoder(), additions = CopyTextEncoder()

    init(run: LedgerRun.Context, sql: PhonesInPlaceSQL) throws {
        self.sql = sql
        session = try LoaderSession(run: run) { connection in
            for statement in sql.createSessionTables { try connection.execute(script: statement) }
        }
        phonesTable = try SnapshotTable.resolve(sql.mapping.phoneNumbers.table.quoted, on: session.connection)
        typesTable = try SnapshotTable.resolve(sql.mapping.typeDefinitions.table.quoted, on: session.connection)
    }

    func reconnect() throws { try session.reconnect() }

    /// `onlyRowsStillThere` changes nothing: a row is rewritten or deleted only while it still holds
    /// the value read, and further numbers go only to contacts that still have rows.
    func load(
        _ batch: MigrationBatch<PhoneRowsOfContact, InPlaceDecision>, onlyRowsStillThere: Bool
    ) throws -> BatchResult {
        rewrites.removeAll()
        deletions.removeAll()
        additions.removeAll()
        var counts = (rewrites: 0, deletions: 0, additions: 0)
        for (contact, decision) in zip(batch.records, batch.decisions) {
            for rewrite in decision.rewrites {
                rewrites.appendRow([contact.tenant, rewrite.id, rewrite.was, rewrite.number, rewrite.ext])
                counts.rewrites += 1
            }
            for deletion in decision.deletions {
                deletions.appendRow([contact.tenant, deletion.id, deletion.was])
                counts.deletions += 1
            }
            for row in decision.additions {
                counts.additions += 1
                let label = row.type.customLabel
                additions.appendRow([
                    String(counts.additions), row.tenant, row.contactKey, row.e164, row.extensionDigits,
                    row.type.canonical?.rawValue, label, label.map(normalizePhoneLabel), "f", String(row.displayOrder),
                ])
            }
        }
        let run = String(session.runId), number = String(batch.number)
        // On Citus every batch is one tenant's (the extract reads a tenant at a time): the statements name it.
        let tenant = try sql.isDistributed ? [batch.onlyTenant()] : []
        let phones = [run, number, phonesTable.qualifiedName] + tenant
        return try session.commit(batch, emptiedBeforeCommit: sql.emptyBeforeCommit, tenant: tenant) {
            var result = BatchResult()
            if counts.rewrites > 0 {
                _ = try connection.copyIn(sql.copyRewrites) { write in
                    try rewrites.bytes.withUnsafeBytes { try write($0) }
                }
                if sql.isDistributed {
                    let rewrite = sql.citusRewrite(snapshot: phonesTable)
                    result.rewritten = try connection.changeRows(
                        phonesTable, preImages: rewrite.preImages, change: rewrite.update, record: rewrite.record,
                        run: run, batch: number, tenant: tenant)
                } else {
                    result.rewritten = try connection.query(sql.rewriteRows(snapshot: phonesTable), phones)
                        .value("rows rewritten", as: Int.self)
                }
            }
            if counts.deletions > 0 {
                _ = try connection.copyIn(sql.copyDeletions) { write in
                    try deletions.bytes.withUnsafeBytes { try write($0) }
                }
                if sql.isDistributed {
                    let delete = sql.citusDelete(snapshot: phonesTable)
                    result.deleted = try connection.changeRows(
                        phonesTable, preImages: delete.preImages, change: delete.delete, record: nil, run: run,
                        batch: number, tenant: tenant)
                } else {
                    result.deleted = try connection.query(sql.deleteRows(snapshot: phonesTable), phones)
                        .value("rows deleted", as: Int.self)
                }
            }
            if counts.additions > 0 {
                _ = try connection.copyIn(sql.phoneRows.copyIntoStaging) { write in
                    try additions.bytes.withUnsafeBytes { try write($0) }
                }
                result.customTypesCreated =
                    try connection.query(
                        sql.phoneRows.insertCustomTypes(snapshot: typesTable),
                        [run, number, typesTable.qualifiedName] + tenant
                    ).value("a count", as: Int.self)
                result.added = try connection.query(sql.phoneRows.mergePhoneRows(snapshot: phonesTable), phones)
                    .value("rows added", as: Int.self)
            }
            return result
        }
    }
}

extension PhonesInPlaceJob: JobSchema {
    public func engine(using connection: PostgresConnection) throws -> DatabaseEngine {
        try sourceEngine(using: connection)
    }
}
