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

/// How many lines of a batch (of one tenant on Citus) the classification gave each kind of write.
struct DecisionCounts {
    /// New contacts.
    let inserts: Int
    /// Existing contacts with values to change (others of the `update` lines only gain phones).
    let contactUpdates: Int
    /// Lines that write: inserts and updates (their phones are staged).
    let writes: Int
    /// Writing lines naming an organization the tenant lacks.
    let newOrganizations: Int

    init(_ row: Row) throws {
        inserts = try row.required("inserts")
        contactUpdates = try row.required("contact_updates")
        writes = try row.required("writes")
        newOrganizations = try row.required("new_organizations")
    }
}

/// The import's sink: one session with its staging tables. A batch is one transaction; a dry run's is
/// READ ONLY and writes to the session's temporary tables only.
final class ImportLoader {
    private let connection: PostgresConnection
    private let sql: ImportSQL
    private let runId: Int64?
    private let timeouts: (lock: String, statement: String)
    private let createMissingOrganizations: Bool
    /// Other writer sessions of the run (`--jobs`) may create the same organization at the same time.
    private let sharesOrganizations: Bool
    private let onConflict: String
    /// The size of the batch the staging tables' statistics were taken from (0: none yet).
    private var analyzedBatchSize = 0
    private var rowEncoder = CopyTextEncoder()
    private var phoneEncoder = CopyTextEncoder()
    private var tables:
        (organizations: SnapshotTable, contacts: SnapshotTable, types: SnapshotTable, phones: SnapshotTable)?

    init(
        connection: PostgresConnection, sql: ImportSQL, runId: Int64?, timeouts: (lock: String, statement: String),
        createMissingOrganizations: Bool, onConflict: ImportOptions.OnConflict, sharesOrganizations: Bool = false
    ) throws {
        self.connection = connection
        self.sharesOrganizations = sharesOrganizations
        self.sql = sql
        self.runId = runId
        self.timeouts = timeouts
        self.createMissingOrganizations = createMissingOrganizations
        self.onConflict = onConflict == .error ? "reject" : onConflict.rawValue
        // The run's memory of seen keys lives in temporary tables: give them local buffers (the 8 MB default
        // makes a million-row file thrash). Settable only before the session's first temporary table.
        try connection.execute(script: "SET temp_buffers = '256MB'")
        // One statement per execution: Citus forwards a statement's whole text to its workers.
        for statement in sql.createSessionTables { try connection.execute(script: statement) }
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
            if tables?.contacts.hashesRows == true {
                try connection.execute(script: SnapshotTable.createPendingPreImages)
            }
        }
    }

    private var onCitus: Bool { sql.engine.isCitus }

    /// The tenants a batch's statements run for, each passed as their last parameter: on Citus each
    /// tenant of the batch (so that every statement runs on one shard group), on PostgreSQL one pass
    /// over the whole batch.
    private func passes(_ contacts: [ImportedContact]) -> [[String]] {
        onCitus ? Set(contacts.map(\.tenant)).sorted().map { [$0] } : [[]]
    }

    /// Loads a batch in one transaction (READ ONLY in a dry run). `tally` sums up the database's decisions;
    /// an apply records it with the batch, so the ledger knows what every committed line became.
    func load(
        _ contacts: [ImportedContact], batch: Int, firstLine: Int, lastLine: Int,
        tally: (ImportBatchResult) throws -> ImportBatchTally
    ) throws -> ImportBatchTally {
        var attempt = 1
        while true {
            do {
                return try loadOnce(contacts, batch: batch, firstLine: firstLine, lastLine: lastLine, tally: tally)
            } catch is OrganizationCreatedMeanwhile where attempt < 10 {
                // Rolled back: decided again, the line finds the organization another session created.
                attempt += 1
            }
        }
    }

    /// Another writer session of the run committed an organization this batch had decided to create.
    private struct OrganizationCreatedMeanwhile: Error {}

    private func loadOnce(
        _ contacts: [ImportedContact], batch: Int, firstLine: Int, lastLine: Int,
        tally: (ImportBatchResult) throws -> ImportBatchTally
    ) throws -> ImportBatchTally {
        rowEncoder.removeAll()
        phoneEncoder.removeAll()
        var sequence = 0
        for contact in contacts {
            rowEncoder.appendRow([
                String(contact.line), contact.tenant, contact.emailAsWritten, contact.fullName,
                contact.organization, contact.role, contact.notes,
            ])
            for row in contact.phones.rows {
                sequence += 1
                let label = row.type.customLabel
                phoneEncoder.appendRow([
                    String(contact.line), contact.tenant, String(sequence), row.e164, row.extensionDigits,
                    row.type.canonical?.rawValue, label, label.map(normalizePhoneLabel),
                    row.isDefault ? "t" : "f", String(row.displayOrder),
                ])
            }
        }
        // A dry run on Citus writes its staging tables, which are distributed: not READ ONLY there, and
        // it writes nothing else (the statements that write the application's tables run only with a run).
        let begin = runId == nil && !onCitus ? "BEGIN READ ONLY" : "BEGIN"
        return try connection.transaction(begin) {
            try connection.execute(script: SessionSettings.setLocalBatchSettings(timeouts))
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
                // Statistics on the staging tables keep the planner off quadratic nested loops. A commit
                // empties the tables but keeps their column statistics, and every batch is alike: taken
                // again only for a batch much larger than the one they were taken from (on Citus each
                // statement reads one tenant's shards, planned by its worker).
                let analyze = runId != nil && !onCitus && contacts.count > 2 * analyzedBatchSize
                if analyze {
                    try connection.execute(script: "ANALYZE \(sql.lines.quoted), \(sql.linePhones.quoted)")
                }
                for tenant in passes(contacts) {
                    try connection.query(sql.classify, [createMissingOrganizations ? "t" : "f", onConflict] + tenant)
                    if analyze {
                        try connection.execute(script: "ANALYZE \(sql.decisions.quoted)")
                        analyzedBatchSize = contacts.count
                    }
                    try connection.query(sql.rememberSeen, tenant)
                    let decided = try DecisionCounts(
                        try connection.query(sql.decisionCounts, tenant).decoded("the batch's decisions")[0])
                    // Each statement below only writes lines of its kind: none, nothing to run (on Citus
                    // each is a round trip through the coordinator, per tenant of the batch).
                    if runId == nil {
                        // A dry run creates nothing: its session remembers what it would have created.
                        if decided.newOrganizations > 0 {
                            result.organizationsCreated += try count(sql.countNewOrganizations, tenant)
                        }
                        if decided.writes > 0 { result.customTypesCreated += try count(sql.countNewTypes, tenant) }
                    }
                    if let runId, let tables {
                        try write(
                            runId: runId, batch: batch, tables: tables, tenant: tenant, decided: decided, into: &result)
                    }
                    result.lines += try connection.query(sql.outcomes, tenant).decoded(
                        "the import's line decisions", key: "line"
                    )
                    .map { row in
                        ImportLineResult(
                            line: try row.required("line"), action: try row.required("action"),
                            reason: try row.optional("reason"),
                            changed: (try row.optional("changed", as: String.self) ?? "").split(separator: ",").map(
                                String.init),
                            phoneRows: try row.required("phone_rows"))
                    }
                    try emptyBatchTables(tenant)
                }
                result.lines.sort { $0.line < $1.line }
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

    /// On Citus, before the batch commits: its staged rows of `tenant` (on PostgreSQL the commit empties them).
    private func emptyBatchTables(_ tenant: [String]) throws {
        for table in sql.batchTables {
            if let empty = table.emptyBeforeCommit { try connection.query(empty, tenant) }
        }
    }

    /// After the run, whatever its end: on Citus the staged lines are personal data in shared tables,
    /// not left behind (a temporary table goes with its session).
    func emptyStagingTables() throws {
        for table in sql.batchTables + sql.runTables {
            if let empty = table.emptyAfterRun { try connection.execute(script: empty) }
        }
    }

    /// A resumed run's replay of a line its first part committed: only the key goes to the session's
    /// memory of seen lines, so a later duplicate in the file is still found.
    func remember(_ contacts: [ImportedContact]) throws {
        guard !contacts.isEmpty else { return }
        rowEncoder.removeAll()
        for contact in contacts {
            rowEncoder.appendRow([
                String(contact.line), contact.tenant, contact.emailAsWritten, contact.fullName, nil, nil, nil,
            ])
        }
        try connection.transaction {
            _ = try connection.copyIn(sql.copyRows) { write in try rowEncoder.bytes.withUnsafeBytes { try write($0) } }
            for tenant in passes(contacts) {
                try connection.query(sql.rememberSeen, tenant)
                try emptyBatchTables(tenant)
            }
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
        tenant: [String], decided: DecisionCounts, into result: inout ImportBatchResult
    ) throws {
        let run = String(runId), number = String(batch)
        func parameters(_ table: SnapshotTable) -> [String?] { [run, number, table.qualifiedName] + tenant }
        if createMissingOrganizations, decided.newOrganizations > 0 {
            if sharesOrganizations {
                // One session at a time creates organizations (the table has no unique name to conflict on);
                // one that another session created since this batch's classification is found by deciding again.
                try connection.query(
                    "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                    [String(RunLock.namespace), ImportJob.name + " organizations"])
                if try count(sql.newOrganizationsCreatedSince, tenant) > 0 { throw OrganizationCreatedMeanwhile() }
            }
            result.organizationsCreated += try count(
                sql.createOrganizations(snapshot: tables.organizations), parameters(tables.organizations))
        }
        if decided.inserts > 0 {
            try connection.query(sql.insertContacts(snapshot: tables.contacts), parameters(tables.contacts))
            try connection.query(sql.markLostInserts, tenant)
        }
        if decided.contactUpdates > 0 {
            _ = try connection.changeRows(
                tables.contacts, preImages: sql.snapshotUpdatedContacts(snapshot: tables.contacts),
                change: sql.updateContacts, record: sql.recordUpdatedContacts(snapshot: tables.contacts), run: run,
                batch: number, tenant: tenant)
        }
        guard decided.writes > 0 else { return }
        let staged = try connection.query(sql.stagePhones, tenant).decoded("the staged phone rows")[0]
        let ofExistingContacts: Int = try staged.required("of_existing"),
            ofNewContacts: Int = try staged.required("of_new")
        result.customTypesCreated += try count(
            sql.phoneRows.insertCustomTypes(snapshot: tables.types), parameters(tables.types))
        if ofExistingContacts > 0 {
            // The staged rows' statistics keep the planner on index lookups for a handful of contacts.
            if !onCitus { try connection.execute(script: "ANALYZE \(sql.phoneRows.staging.quoted)") }
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
        let tenants: [[String]] =
            onCitus
            ? try connection.query(sql.tenantsSeen).decoded("the tenants the file named").map {
                [try $0.required("tenant")]
            } : [[]]
        guard let runId, let tables else {
            return try connection.transaction("BEGIN READ ONLY") {
                try tenants.reduce(0) { $0 + (try count(sql.countMissingContacts, $1)) }
            }
        }
        let contacts = tables.contacts
        let parameters = [String(runId), String(batch), contacts.qualifiedName]
        return try connection.transaction {
            try connection.execute(script: SessionSettings.setLocalBatchSettings(timeouts))
            var deactivated = 0
            for tenant in tenants {
                try connection.query(sql.snapshotMissingContacts(snapshot: contacts), parameters + tenant)
                if let record = sql.recordDeactivated(snapshot: contacts) {
                    let keys = try connection.query(ImportSQL.pendingKeys, [contacts.qualifiedName]).value(
                        "the keys of the contacts to deactivate", as: String.self)
                    deactivated += try connection.query(sql.deactivateByKeys(snapshot: contacts), tenant + [keys])
                        .affectedRows
                    try connection.query(record, [contacts.qualifiedName] + tenant + [keys])
                } else {
                    deactivated += try connection.query(sql.deactivateSnapshotted(snapshot: contacts), parameters)
                        .affectedRows
                }
            }
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
