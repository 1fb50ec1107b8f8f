/// The apply sink: COPY a batch into a staging table, then set-based inserts, snapshot rows and the
/// batch cursor, all in one transaction.
final class PhonesLoader: BatchLoader {
    struct BatchResult: BatchWrites {
        /// Phone rows.
        var phoneRowsInserted = 0
        var contactsInserted = 0
        var customTypesCreated = 0
        /// Naive rows rewritten in place, and deleted (no usable number).
        var naiveRowsReplaced = 0
        var naiveRowsDeleted = 0
        var rowsInserted: Int { phoneRowsInserted + customTypesCreated }
        var rowsUpdated: Int { naiveRowsReplaced }
        var rowsDeleted: Int { naiveRowsDeleted }
    }

    private let session: LoaderSession
    private var connection: PostgresConnection { session.connection }
    private let sql: PhonesSQL
    private let mapping: PhonesMapping
    private let phonesTable: SnapshotTable
    private let typesTable: SnapshotTable
    private var encoder = CopyTextEncoder()
    private var replaceEncoder = CopyTextEncoder()
    private var readsEncoder = CopyTextEncoder()
    private var rowKeys = RandomUUIDs()
    /// Per tenant: whether an earlier run recorded reads there (only those can need forgetting).
    private var earlierReads: [String: Bool] = [:]

    /// `sql`: the run's statements (engine and writer set), which this session stages and writes through.
    init(run: LedgerRun.Context, sql: PhonesSQL, tenantType: String, keyType: String) throws {
        self.mapping = sql.mapping
        self.sql = sql
        session = try LoaderSession(run: run) { connection in
            let idType = try sql.phoneKeyType(on: connection)
            for statement in sql.createSessionTables(tenantType: tenantType, keyType: keyType, idType: idType) {
                try connection.execute(script: statement)
            }
        }
        phonesTable = try SnapshotTable.resolve(mapping.phoneNumbers.table.quoted, on: session.connection)
        typesTable = try SnapshotTable.resolve(mapping.typeDefinitions.table.quoted, on: session.connection)
    }

    func reconnect() throws { try session.reconnect() }

    /// `onlyRowsStillThere`: the insert only for contacts that still exist.
    func load(_ batch: PhonesBatch, onlyRowsStillThere contactsStillThere: Bool) throws -> BatchResult {
        encoder.removeAll()
        replaceEncoder.removeAll()
        readsEncoder.removeAll()
        var sequence = 0, replacing = 0, customLabels = 0
        // Rows for a contact that had none (not a naive row's replacement): only those need the insert
        // that checks the phone table, whose scan of the batch costs as much when it inserts nothing.
        var rowsForContactsWithoutPhones = false
        let timestampsFromSource = sql.phoneRows.timestampsFromSource
        let drawsRowKeys = sql.drawsPhoneRowKeys
        for (contact, outcome) in zip(batch.records, batch.decisions) {
            for row in outcome.rows {
                sequence += 1
                let label = row.type.customLabel
                if label != nil { customLabels += 1 }
                var fields: [String?] = [
                    String(sequence), row.tenant, row.contactKey, row.e164, row.extensionDigits,
                    row.type.canonical?.rawValue, label, label.map(normalizePhoneLabel),
                    row.isDefault ? "t" : "f", String(row.displayOrder),
                ]
                if timestampsFromSource { fields += [contact.createdAt, contact.updatedAt] }
                if drawsRowKeys { fields.append(rowKeys.draw()) }
                encoder.appendRow(fields)
            }
            // Only a value the contract may find unmigrated needs its read (see `LegacyReads.forget`).
            if let hash = contact.legacyHash, outcome.mayLeaveValueUnmigrated {
                readsEncoder.appendRow([contact.tenant, contact.contactKey, hash])
            }
            if !outcome.rows.isEmpty, outcome.replacesRow == nil { rowsForContactsWithoutPhones = true }
            if let naive = outcome.replacesRow {
                replacing += 1
                replaceEncoder.appendRow([
                    contact.tenant, contact.contactKey, naive,
                    LegacyPhoneContact.naiveNumber(contact.values.first ?? nil),
                    outcome.rows.isEmpty ? "f" : "t",
                ])
            }
        }
        let run = String(session.runId), number = String(batch.number)
        // On Citus every batch is one tenant's (the extract reads a tenant at a time): the statements name it.
        let tenant = try sql.phoneRows.staging.isDistributed ? [batch.onlyTenant()] : []
        let snapshotParameters = [run, number, phonesTable.qualifiedName] + tenant
        let emptied =
            [sql.phoneRows.staging.emptyBeforeCommit]
            + (mapping.existingRows == .replaceNaive ? [sql.phoneRows.replacing.emptyBeforeCommit] : [])
        return try session.commit(batch, emptiedBeforeCommit: emptied.compactMap { $0 }, tenant: tenant) {
            var result = BatchResult()
            if sequence > 0 {
                _ = try connection.copyIn(sql.phoneRows.copyIntoStaging) { write in
                    try encoder.bytes.withUnsafeBytes { try write($0) }
                }
            }
            // Most batches name no custom type: no statement (on Citus, no distributed plan) for them.
            if customLabels > 0 {
                result.customTypesCreated =
                    try connection.query(
                        sql.phoneRows.insertCustomTypes(snapshot: typesTable),
                        [run, number, typesTable.qualifiedName] + tenant
                    ).value("a count", as: Int.self)
            }
            if replacing > 0 {
                _ = try connection.copyIn(sql.phoneRows.copyIntoReplaceTable) { write in
                    try replaceEncoder.bytes.withUnsafeBytes { try write($0) }
                }
                let rows = sql.phoneRows
                if rows.replacing.isDistributed {
                    // One tenant's shard per statement: Citus's planning, not table statistics, decides.
                    let snapshot = rows.citusSnapshotNaiveRows(snapshot: phonesTable, signature: sql.naiveSignature)
                    try connection.query(snapshot.preImages, snapshotParameters)
                    try connection.query(snapshot.markDone, tenant)
                } else {
                    // No ANALYZE of the replace table: the lock probes each row by its key, and the rewrite and
                    // the delete reach it by the ctid the lock recorded (a TID scan), whatever its statistics say.
                    try connection.query(
                        rows.snapshotNaiveRows(snapshot: phonesTable, signature: sql.naiveSignature),
                        [run, number, phonesTable.qualifiedName])
                }
                result.naiveRowsReplaced = try connection.query(rows.updateNaiveRows, tenant).affectedRows
                result.naiveRowsDeleted = try connection.query(rows.deleteNaiveRows, tenant).affectedRows
                if let record = rows.recordNaivePreImages(snapshot: phonesTable) {
                    try connection.query(record, [phonesTable.qualifiedName] + tenant)
                }
                if sequence > 0 {
                    result.phoneRowsInserted += try insert(.replacing, snapshotParameters, batch: batch.number).rows
                }
            }
            if rowsForContactsWithoutPhones {
                let counts = try insert(
                    .existing, snapshotParameters, batch: batch.number, stillThere: contactsStillThere)
                result.phoneRowsInserted += counts.rows
                result.contactsInserted = counts.contacts
            }
            if sequence > 0,
                let forget = sql.legacyReads.forget(staged: sql.phoneRows.staging, keyColumn: "contact_key"),
                try hasEarlierReads(tenant, run: run)
            {
                try connection.query(forget, tenant)
            }
            try sql.legacyReads.record(readsEncoder, run: run, tenant: tenant, on: connection)
            return result
        }
    }

    /// Whether reads that a batch may have to forget can exist in `tenant`: a run reads each source row
    /// once, so its own batches never recorded the rows a later batch stages; only an earlier run can
    /// have. Asked once per tenant: the forgetting join, planned while the reads table grows faster
    /// than its statistics, cost more per batch as the run went on.
    private func hasEarlierReads(_ tenant: [String], run: String) throws -> Bool {
        let key = tenant.first ?? ""
        if let known = earlierReads[key] { return known }
        let found = try connection.query(sql.legacyReads.hasEarlierReads, tenant + [run]).value(
            "whether an earlier run recorded reads", as: Bool.self)
        earlierReads[key] = found
        return found
    }

    private func insert(
        _ contacts: PhoneRowsSQL.StagedContacts, _ parameters: [String?], batch: Int, stillThere: Bool = false
    ) throws -> (rows: Int, contacts: Int) {
        let inserted = try connection.query(
            sql.phoneRows.insertPhoneRows(snapshot: phonesTable, for: contacts, stillThere: stillThere), parameters)
        guard let counts = inserted.decoded("the phone rows a batch inserted").first else {
            throw LedgerError("batch \(batch): the insert returned no counts")
        }
        return (try counts.required("rows_inserted"), try counts.required("contacts_inserted"))
    }
}
