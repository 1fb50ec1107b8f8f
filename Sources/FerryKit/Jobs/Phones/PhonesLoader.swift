/// The apply sink: COPY a batch into a staging table, then set-based inserts, in one transaction.
final class PhonesLoader {
    struct BatchResult {
        var rowsInserted = 0
        var contactsInserted = 0
        var customTypesCreated = 0
    }

    private let connection: PostgresConnection
    private let sql: PhonesSQL
    private let mapping: PhonesMapping
    private var encoder = CopyTextEncoder()

    init(connection: PostgresConnection, sql: PhonesSQL, mapping: PhonesMapping, tenantType: String, keyType: String) throws {
        self.connection = connection
        self.sql = sql
        self.mapping = mapping
        try connection.execute(script: sql.createStagingTable(tenantType: tenantType, keyType: keyType))
    }

    func load(_ batch: PhonesBatch) throws -> BatchResult {
        encoder.removeAll()
        var sequence = 0
        for outcome in batch.outcomes {
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
        guard sequence > 0 else { return BatchResult() }
        return try connection.transaction {
            try connection.query(PhonesSQL.setLocalTimeouts, [mapping.load.lockTimeout.text, mapping.load.statementTimeout.text])
            _ = try connection.copyIn(sql.copyIntoStaging) { write in
                try encoder.bytes.withUnsafeBytes { try write($0) }
            }
            var result = BatchResult()
            result.customTypesCreated = Int(try connection.query(sql.insertCustomTypes).scalar ?? "0") ?? 0
            let inserted = try connection.query(sql.insertPhoneRows)
            result.rowsInserted = Int(inserted.rows[0][0] ?? "0") ?? 0
            result.contactsInserted = Int(inserted.rows[0][1] ?? "0") ?? 0
            return result
        }
    }
}
