import Foundation

/// Work owned by companies instead of people: each request's email columns resolve to contacts
/// (created on first sight, never twice for one canonical email), the company columns to those
/// contacts' organizations, and the legacy status to the new set. Same pipeline, ledger and rollback
/// as the other jobs.
public struct ServiceRequestsJob: Sendable {
    public static let name = "service-requests"
    public let mapping: ServiceRequestsMapping
    public let conninfo: String

    public init(mapping: ServiceRequestsMapping, conninfo: String) {
        self.mapping = mapping
        self.conninfo = conninfo
    }

    public func schemaSteps(using connection: PostgresConnection) throws -> [SchemaStep] {
        LedgerSchema.steps + ServiceRequestsSchema.steps(for: mapping, types: try keyTypes(connection))
    }

}

extension ServiceRequestsJob: TableMigration {
    var source: KeysetSource {
        KeysetSource(
            table: mapping.requests.table, tenantColumn: mapping.requests.tenant, keyColumn: mapping.requests.key,
            noun: "service requests")
    }

    func statements(_ reader: PostgresConnection) throws -> ServiceRequestsSQL {
        ServiceRequestsSQL(mapping: mapping, types: try keyTypes(reader), engine: try sourceEngine(using: reader))
    }

    func extractPage(_ sql: ServiceRequestsSQL) -> String { sql.extractPage }

    func record(_ row: Row) throws -> LegacyServiceRequest {
        func match(_ prefix: String) throws -> ActorMatch? {
            try row.optional(prefix).map {
                ActorMatch(
                    key: $0, organization: try row.optional(prefix + "_organization"),
                    candidates: try row.optional(prefix + "_candidates") ?? 1)
            }
        }
        return LegacyServiceRequest(
            tenant: try row.required("ferry_tenant"), requestKey: try row.required("ferry_key"),
            status: try row.optional("status") ?? "", submittedByEmail: try row.optional("submitted_by_email"),
            assignedToEmail: try row.optional("assigned_to_email"), submittedMatch: try match("submitted_match"),
            assignedMatch: try match("assigned_match"), submittedContact: try row.optional("submitted_by_contact"),
            assignedContact: try row.optional("assigned_to_contact"), fleetCompany: try row.optional("fleet_company"),
            supplierCompany: try row.optional("supplier_company"), createdAt: try row.optional("created_at"))
    }

    func key(of record: LegacyServiceRequest) -> [String] { [record.tenant, record.requestKey] }

    func makeTransform() -> @Sendable (LegacyServiceRequest) -> ServiceRequestDecision {
        let transform = ServiceRequestTransform(mapping: mapping)
        return { transform.decide($0) }
    }

    func summaryBuilder(
        mode: RunMode, settings: RunSettings, sql: ServiceRequestsSQL, reader: PostgresConnection
    ) throws -> ServiceRequestsSummaryBuilder {
        ServiceRequestsSummaryBuilder(summary: ServiceRequestsSummary(mode: mode, mapping: mapping))
    }

    func loader(_ sql: ServiceRequestsSQL, run: LedgerRun.Context) throws -> ServiceRequestsLoader {
        var sql = sql
        sql.writer = run.writer
        return try ServiceRequestsLoader(run: run, sql: sql)
    }

    func count(
        _ result: ServiceRequestsLoader.BatchResult, of batch: ServiceRequestsBatch,
        into applied: inout ServiceRequestsSummary.Applied
    ) {
        applied.contactsCreated += result.contactsCreated
        applied.requestsUpdated += result.requestsUpdated
    }

    func applyStatements(_ sql: ServiceRequestsSQL, reader: PostgresConnection) throws -> [String] {
        sql.applyStatements(
            contacts: try SnapshotTable.resolve(mapping.contacts.table.quoted, on: reader),
            requests: try SnapshotTable.resolve(mapping.requests.table.quoted, on: reader))
    }

    func afterApply(_ summary: inout ServiceRequestsSummary, sql: ServiceRequestsSQL, run: LedgerRun.Context) throws {
        if mapping.statusConstraint {
            summary.statusConstraint = try addStatusConstraint(sql: sql, run: run, options: run.options)
        }
    }

    func planReport(_ summary: ServiceRequestsSummary) -> PlanReport {
        PlanReport(serviceRequestsSummary: summary, mapping: mapping)
    }

    func terminalText(_ summary: ServiceRequestsSummary, colour: Bool) -> String {
        summary.mode == .plan
            ? (try? planReport(summary).render(.terminal, colour: colour)) ?? ""
            : ServiceRequestsTerminalReport.render(summary)
    }

    /// The CHECK on the new statuses, once no request has another status; recorded in the ledger so a
    /// rollback of this run drops it before restoring legacy statuses.
    private func addStatusConstraint(
        sql: ServiceRequestsSQL, run: LedgerRun.Context, options: ApplyOptions
    ) throws -> String {
        let connection = try run.openReader()
        defer { connection.close() }
        if try connection.query(sql.statusConstraintExists).value("the status constraint", as: Int.self) > 0 {
            return "already present"
        }
        let others = try connection.query(sql.statusesOutsideTheNewSet).value("a count", as: Int.self)
        guard others == 0 else {
            return
                "not added: \(formatCount(others)) request\(others == 1 ? " has a status" : "s have statuses") outside the new set"
        }
        try options.retry.run("adding \(sql.statusConstraintName)", log: options.log) {
            try connection.transaction {
                try connection.execute(script: SessionSettings.setLocalBatchSettings(run.timeouts))
                try connection.execute(script: sql.addStatusConstraint)
            }
        }
        let table = try SnapshotTable.resolve(mapping.requests.table.quoted, on: connection).qualifiedName
        try run.ledger.event(
            runId: run.runId, kind: "constraint added",
            detail: ["table": table, "constraint": sql.statusConstraintName])
        return "added: \(sql.statusConstraintName)"
    }

    func checks(
        _ summary: ServiceRequestsSummary, sql: ServiceRequestsSQL, reader connection: PostgresConnection,
        predicted: Bool
    ) throws -> [ConstraintCheck] {
        func count(_ query: String) throws -> Int { try connection.query(query).value("a count", as: Int.self) }
        var withoutContact = ConstraintCheck(constraint: "every email names a contact, but on the rejected requests")
        withoutContact.violations =
            predicted ? 0 : max(0, try count(sql.actorsWithoutContact) - summary.requestsRejected)
        var companies = ConstraintCheck(constraint: "company columns equal the contacts' organizations")
        companies.violations = predicted ? 0 : try count(sql.companiesDisagreeing)
        var twice = ConstraintCheck(
            constraint: "no contact created on first sight shares its canonical email with another contact")
        twice.violations = try count(sql.duplicatedEmergentContacts)
        var statuses = ConstraintCheck(
            constraint:
                "every status is new, acknowledged, in_progress, completed or declined, but on the rejected requests")
        statuses.violations =
            predicted ? 0 : max(0, try count(sql.statusesOutsideTheNewSet) - summary.requestsRejectedWithLegacyStatus)
        return [withoutContact, companies, twice, statuses]
    }

    func keyTypes(_ connection: PostgresConnection) throws -> TableJobKeyTypes {
        try TableJobKeyTypes.read(
            connection, rows: mapping.requests.table, tenant: mapping.requests.tenant, key: mapping.requests.key,
            contacts: mapping.contacts.table, contactKey: mapping.contacts.key,
            organizations: mapping.organizations.table, organizationKey: mapping.organizations.key,
            mappingFile: mapping.file)
    }

    public func expectations(using connection: PostgresConnection, forApply: Bool) throws -> [TableExpectation] {
        let r = mapping.requests, c = mapping.contacts
        let use: TableExpectation.Use = forApply ? .write : .read
        let steps = (try? schemaSteps(using: connection)) ?? []
        var requests = TableExpectation(r.table, use: use)
        for column in [
            r.tenant, r.key, r.submittedByEmail, r.assignedToEmail, r.status, r.createdAt, r.submittedByContact,
            r.assignedToContact, r.fleetCompany, r.supplierCompany,
        ] { requests.column(column) }
        requests.needsPrimaryKey = true
        requests.createdBy = steps.first { $0.name == "service-requests/\(r.table)-target-columns" }
        var contacts = TableExpectation(c.table, use: use)
        for column in [c.tenant, c.key, c.fullName, c.email, c.organization, c.contactType, c.firstSeenAt] {
            contacts.column(column)
        }
        contacts.needsPrimaryKey = true
        var organizations = TableExpectation(mapping.organizations.table, use: .read)
        organizations.column(mapping.organizations.tenant)
        organizations.column(mapping.organizations.key)
        return [requests, contacts, organizations] + (forApply ? LedgerSchema.expectations() : [])
    }
}

typealias ServiceRequestsBatch = MigrationBatch<LegacyServiceRequest, ServiceRequestDecision>

/// The apply sink: COPY the batch's updates into staging, create first-seen contacts, resolve every
/// email again (a contact created by an earlier batch, or by the application meanwhile, is found), then
/// the requests' pre-images and update, and the batch cursor, in one transaction.
final class ServiceRequestsLoader: BatchLoader {
    struct BatchResult: BatchWrites {
        var contactsCreated = 0
        var requestsUpdated = 0
        var rowsInserted: Int { contactsCreated }
        var rowsUpdated: Int { requestsUpdated }
    }

    private let session: LoaderSession
    private var connection: PostgresConnection { session.connection }
    private let sql: ServiceRequestsSQL
    private let contacts, requests: SnapshotTable
    private var encoder = CopyTextEncoder()

    init(run: LedgerRun.Context, sql: ServiceRequestsSQL) throws {
        self.sql = sql
        session = try LoaderSession(run: run) { connection in
            for statement in sql.createStagingTable { try connection.execute(script: statement) }
        }
        contacts = try SnapshotTable.resolve(sql.mapping.contacts.table.quoted, on: session.connection)
        requests = try SnapshotTable.resolve(sql.mapping.requests.table.quoted, on: session.connection)
    }

    func reconnect() throws { try session.reconnect() }

    /// `onlyRowsStillThere` changes nothing: a request is updated only where it still is, and the
    /// contacts it gets are looked up inside the batch's transaction.
    func load(_ batch: ServiceRequestsBatch, onlyRowsStillThere: Bool) throws -> BatchResult {
        encoder.removeAll()
        var sequence = 0
        for (request, decision) in zip(batch.records, batch.decisions) where decision.action == .update {
            sequence += 1
            encoder.appendRow([
                String(sequence), request.tenant, request.requestKey, decision.newStatus ?? request.status,
                decision.submittedEmail, decision.assignedEmail, request.createdAt,
            ])
        }
        let run = String(session.runId), number = String(batch.number)
        // On Citus every batch is one tenant's (the extract reads a tenant at a time): the statements name it.
        let tenant = try sql.staging.isDistributed ? [batch.onlyTenant()] : []
        return try session.commit(
            batch, emptiedBeforeCommit: [sql.staging.emptyBeforeCommit].compactMap { $0 }, tenant: tenant
        ) {
            var result = BatchResult()
            if sequence > 0 {
                _ = try connection.copyIn(sql.copyIntoStaging) { write in
                    try encoder.bytes.withUnsafeBytes { try write($0) }
                }
                result.contactsCreated =
                    try connection.query(
                        sql.insertEmergentContacts(snapshot: contacts),
                        [run, number, contacts.qualifiedName, sql.mapping.emergentContactType] + tenant
                    ).value("a count", as: Int.self)
                try connection.query(sql.resolveActors, tenant)
                result.requestsUpdated = try connection.changeRows(
                    requests, preImages: sql.snapshotRequests(snapshot: requests), change: sql.updateRequests,
                    record: sql.recordRequestPreImages(snapshot: requests), run: run, batch: number, tenant: tenant)
            }
            return result
        }
    }
}

extension ServiceRequestsJob: JobSchema {
    public func engine(using connection: PostgresConnection) throws -> DatabaseEngine {
        try sourceEngine(using: connection)
    }
}
