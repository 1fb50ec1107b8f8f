import Foundation

/// What the database decided for one line (the classify statement writes exactly these words).
enum ImportAction: String, PostgresText, Sendable {
    case insert, update, unchanged, skip, reject

    init?(postgresText: String) { self.init(rawValue: postgresText) }
    /// Whether the line writes the contact (and so its phones).
    var writes: Bool { self == .insert || self == .update }
}

/// What the database decided for one line of the file.
struct ImportLineResult {
    let line: Int
    let action: ImportAction
    let reason: String?
    let changed: [String]
    /// Phone rows this line adds (all of a new contact's, the missing ones of an existing contact's).
    let phoneRows: Int
}

struct ImportBatchResult {
    var lines: [ImportLineResult] = []
    var organizationsCreated = 0
    var customTypesCreated = 0
    var phoneRowsInserted = 0
}

/// The import's sink: one session with its staging tables. A batch is one transaction; a dry run's is
/// READ ONLY and writes to the session's temporary tables only.
final class ImportLoader {
    private let connection: PostgresConnection
    private let sql: ImportSQL
    private let runId: Int64?
    private let timeouts: (lock: String, statement: String)
    private let createMissingOrganizations: Bool
    private let onConflict: String
    private var rowEncoder = CopyTextEncoder()
    private var phoneEncoder = CopyTextEncoder()
    private var tables:
        (organizations: SnapshotTable, contacts: SnapshotTable, types: SnapshotTable, phones: SnapshotTable)?

    init(
        connection: PostgresConnection, sql: ImportSQL, runId: Int64?, timeouts: (lock: String, statement: String),
        createMissingOrganizations: Bool, onConflict: ImportOptions.OnConflict
    ) throws {
        self.connection = connection
        self.sql = sql
        self.runId = runId
        self.timeouts = timeouts
        self.createMissingOrganizations = createMissingOrganizations
        self.onConflict = onConflict == .error ? "reject" : onConflict.rawValue
        // The run's memory of seen keys lives in temporary tables: give them local buffers (the 8 MB default
        // makes a million-row file thrash). Settable only before the session's first temporary table.
        try connection.execute(script: "SET temp_buffers = '256MB'")
        try connection.execute(script: sql.createSessionTables)
        if runId != nil {
            for statement in sql.phoneRows.createStagingTable(tenantType: sql.tenantType, keyType: sql.contactKeyType) {
                try connection.execute(script: statement)
            }
            let mapping = sql.mapping
            tables = (
                try SnapshotTable.resolve(mapping.organizations.table.quoted, on: connection),
                try SnapshotTable.resolve(mapping.contacts.table.quoted, on: connection),
                try SnapshotTable.resolve(mapping.typeDefinitions.table.quoted, on: connection),
                try SnapshotTable.resolve(mapping.phoneNumbers.table.quoted, on: connection)
            )
        }
    }

    /// Loads a batch in one transaction (READ ONLY in a dry run). `tally` sums up the database's decisions;
    /// an apply records it with the batch, so the ledger knows what every committed line became.
    func load(
        _ contacts: [ImportedContact], batch: Int, firstLine: Int, lastLine: Int,
        tally: (ImportBatchResult) throws -> ImportBatchTally
    ) throws -> ImportBatchTally {
        rowEncoder.removeAll()
        phoneEncoder.removeAll()
        var sequence = 0
        for contact in contacts {
            rowEncoder.appendRow([
                String(contact.line), contact.tenant, contact.email, contact.fullName,
                contact.organization, contact.role, contact.notes,
            ])
            for row in contact.phones.rows {
                sequence += 1
                let label = row.type.customLabel
                phoneEncoder.appendRow([
                    String(contact.line), String(sequence), row.e164, row.extensionDigits,
                    row.type.canonical?.rawValue, label, label.map(normalizePhoneLabel),
                    row.isDefault ? "t" : "f", String(row.displayOrder),
                ])
            }
        }
        let begin = runId == nil ? "BEGIN READ ONLY" : "BEGIN"
        return try connection.transaction(begin) {
            try connection.execute(script: SessionSettings.setLocalTimeouts(timeouts))
            var result = ImportBatchResult()
            if !contacts.isEmpty {
                _ = try connection.copyIn(sql.copyRows) { write in
                    try rowEncoder.bytes.withUnsafeBytes { try write($0) }
                }
                if sequence > 0 {
                    _ = try connection.copyIn(sql.copyPhones) { write in
                        try phoneEncoder.bytes.withUnsafeBytes { try write($0) }
                    }
                }
                // Fresh statistics on the staging tables keep the planner off quadratic nested loops.
                if runId != nil { try connection.execute(script: "ANALYZE ferry_import_rows, ferry_import_phones") }
                try connection.query(sql.classify, [createMissingOrganizations ? "t" : "f", onConflict])
                if runId != nil { try connection.execute(script: "ANALYZE ferry_import_plan") }
                try connection.query(sql.rememberSeen)
                result.organizationsCreated = try count(sql.countNewOrganizations)
                result.customTypesCreated = try count(sql.countNewTypes)
                if let runId, let tables { try write(runId: runId, batch: batch, tables: tables, into: &result) }
                result.lines = try connection.query(sql.outcomes).decoded("the import's line decisions", key: "line")
                    .map { row in
                        ImportLineResult(
                            line: try row.required("line"), action: try row.required("action"),
                            reason: try row.optional("reason"),
                            changed: (try row.optional("changed", as: String.self) ?? "").split(separator: ",").map(
                                String.init),
                            phoneRows: try row.required("phone_rows"))
                    }
            }
            let summed = try tally(result)
            if let runId {
                try connection.query(
                    LedgerRun.recordBatch(.line),
                    [
                        String(runId), String(batch), textArrayLiteral([String(firstLine)]),
                        textArrayLiteral([String(lastLine)]), String(summed.inserted), String(summed.updated), "0",
                    ])
                try record(summed, runId: runId)
            }
            return summed
        }
    }

    /// A resumed run's replay of a line its first part committed: only the key goes to the session's
    /// memory of seen lines, so a later duplicate in the file is still found.
    func remember(_ contacts: [ImportedContact]) throws {
        guard !contacts.isEmpty else { return }
        rowEncoder.removeAll()
        for contact in contacts {
            rowEncoder.appendRow([String(contact.line), contact.tenant, contact.email, contact.fullName, nil, nil, nil])
        }
        try connection.transaction {
            _ = try connection.copyIn(sql.copyRows) { write in try rowEncoder.bytes.withUnsafeBytes { try write($0) } }
            try connection.query(sql.rememberSeen)
        }
    }

    private func record(_ tally: ImportBatchTally, runId: Int64) throws {
        try connection.query(
            ImportSQL.recordTally,
            [String(runId), String(decoding: try JSONEncoder.sorted.encode(tally), as: UTF8.self)])
    }

    private func write(
        runId: Int64, batch: Int,
        tables: (organizations: SnapshotTable, contacts: SnapshotTable, types: SnapshotTable, phones: SnapshotTable),
        into result: inout ImportBatchResult
    ) throws {
        let run = String(runId), number = String(batch)
        func parameters(_ table: SnapshotTable) -> [String?] { [run, number, table.qualifiedName] }
        if createMissingOrganizations {
            try connection.query(
                sql.createOrganizations(snapshot: tables.organizations), parameters(tables.organizations))
        }
        try connection.query(sql.insertContacts(snapshot: tables.contacts), parameters(tables.contacts))
        try connection.query(sql.markLostInserts)
        try connection.query(sql.snapshotUpdatedContacts(snapshot: tables.contacts), parameters(tables.contacts))
        try connection.query(sql.updateContacts)
        let staged = try connection.query(sql.stagePhones).decoded("the staged phone rows")[0]
        let ofExistingContacts: Int = try staged.required("of_existing"),
            ofNewContacts: Int = try staged.required("of_new")
        _ = try connection.query(sql.phoneRows.insertCustomTypes(snapshot: tables.types), parameters(tables.types))
        if ofExistingContacts > 0 {
            // The staged rows' statistics keep the planner on index lookups for a handful of contacts.
            try connection.execute(script: "ANALYZE \(PhoneRowsSQL.stagingTable)")
            result.phoneRowsInserted += try count(
                sql.phoneRows.mergePhoneRows(snapshot: tables.phones), parameters(tables.phones))
            result.phoneRowsInserted += try count(
                sql.phoneRows.insertPhoneRows(snapshot: tables.phones, for: .existing), parameters(tables.phones))
        }
        if ofNewContacts > 0 {
            result.phoneRowsInserted += try count(
                sql.phoneRows.insertPhoneRows(snapshot: tables.phones, for: .new), parameters(tables.phones))
        }
    }

    /// --deactivate-missing, as one more batch after the file. Returns contacts deactivated (or, in a dry run, to deactivate).
    func deactivateMissing(batch: Int) throws -> Int {
        guard let runId, let tables else {
            return try connection.transaction("BEGIN READ ONLY") { try count(sql.countMissingContacts) }
        }
        let parameters = [String(runId), String(batch), tables.contacts.qualifiedName]
        return try connection.transaction {
            try connection.execute(script: SessionSettings.setLocalTimeouts(timeouts))
            try connection.query(sql.snapshotMissingContacts(snapshot: tables.contacts), parameters)
            let deactivated = try connection.query(sql.deactivateSnapshotted(snapshot: tables.contacts), parameters)
                .affectedRows
            try connection.query(
                LedgerRun.recordBatch(.line),
                [
                    String(runId), String(batch), "{deactivate-missing}", "{deactivate-missing}", "0",
                    String(deactivated), "0",
                ])
            try record(ImportBatchTally(batch: batch, contactsDeactivated: deactivated), runId: runId)
            return deactivated
        }
    }

    private func count(_ statement: String, _ parameters: [String?] = []) throws -> Int {
        try connection.query(statement, parameters).value("a count", as: Int.self)
    }
}
