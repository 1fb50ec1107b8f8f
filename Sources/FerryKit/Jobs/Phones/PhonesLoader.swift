/// The apply sink: COPY a batch into a staging table, then set-based inserts, snapshot rows and the
/// batch cursor, all in one transaction.
final class PhonesLoader: BatchLoader {
    struct BatchResult: BatchWrites {
        /// Phone rows.
        var phoneRowsInserted = 0
        var contactsInserted = 0
        var customTypesCreated = 0
        var rowsInserted: Int { phoneRowsInserted + customTypesCreated }
        var rowsUpdated: Int { 0 }
    }

    private let conninfo: String
    private var connection: PostgresConnection
    private let sql: PhonesSQL
    private let mapping: PhonesMapping
    private let runId: Int64
    private let timeouts: (lock: String, statement: String)
    private let phonesTable: SnapshotTable
    private let typesTable: SnapshotTable
    private let stagingTypes: (tenant: String, key: String)
    private var encoder = CopyTextEncoder()

    init(
        conninfo: String, mapping: PhonesMapping, runId: Int64, timeouts: (lock: String, statement: String),
        tenantType: String, keyType: String
    ) throws {
        self.conninfo = conninfo
        self.mapping = mapping
        self.sql = PhonesSQL(mapping: mapping)
        self.runId = runId
        self.timeouts = timeouts
        self.stagingTypes = (tenantType, keyType)
        connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry apply phones")
        phonesTable = try SnapshotTable.resolve(mapping.phoneNumbers.table.quoted, on: connection)
        typesTable = try SnapshotTable.resolve(mapping.typeDefinitions.table.quoted, on: connection)
        try connection.execute(script: sql.phoneRows.createStagingTable(tenantType: tenantType, keyType: keyType))
    }

    /// After a lost connection: a new session, and its own staging table.
    func reconnect() throws {
        connection.close()
        connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry apply phones")
        try connection.execute(
            script: sql.phoneRows.createStagingTable(tenantType: stagingTypes.tenant, keyType: stagingTypes.key))
    }

    func load(_ batch: PhonesBatch) throws -> BatchResult {
        encoder.removeAll()
        var sequence = 0
        for outcome in batch.decisions {
            for row in outcome.rows {
                sequence += 1
                let label = row.type.customLabel
                encoder.appendRow([
                    String(sequence), row.tenant, row.contactKey, row.e164, row.extensionDigits,
                    row.type.canonical?.rawValue, label, label.map(normalizePhoneLabel),
                    row.isDefault ? "t" : "f", String(row.displayOrder),
                ])
            }
        }
        let run = String(runId), number = String(batch.number)
        return try connection.transaction {
            try connection.query(PhonesSQL.setLocalTimeouts, [timeouts.lock, timeouts.statement])
            var result = BatchResult()
            if sequence > 0 {
                _ = try connection.copyIn(sql.phoneRows.copyIntoStaging) { write in
                    try encoder.bytes.withUnsafeBytes { try write($0) }
                }
                result.customTypesCreated =
                    Int(
                        try connection.query(
                            sql.phoneRows.insertCustomTypes(snapshot: typesTable),
                            [run, number, typesTable.qualifiedName]
                        ).scalar ?? "0") ?? 0
                let inserted = try connection.query(
                    sql.phoneRows.insertPhoneRows(snapshot: phonesTable), [run, number, phonesTable.qualifiedName])
                guard let counts = inserted.decoded("the phone rows a batch inserted").first else {
                    throw LedgerError("batch \(batch.number): the insert returned no counts")
                }
                result.phoneRowsInserted = try counts.required("rows_inserted")
                result.contactsInserted = try counts.required("contacts_inserted")
            }
            try connection.query(
                LedgerRun.recordBatch(.key),
                [
                    run, number, textArrayLiteral(batch.firstKey), textArrayLiteral(batch.lastKey),
                    String(result.rowsInserted), String(result.rowsUpdated),
                ])
            return result
        }
    }
}
