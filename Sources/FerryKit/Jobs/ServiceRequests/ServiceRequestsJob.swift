import Foundation

/// Work owned by companies instead of people: each request's email columns resolve to contacts
/// (created on first sight, never twice for one canonical email), the company columns to those
/// contacts' organizations, and the legacy status to the new set. Same pipeline, ledger and rollback
/// as the other jobs.
public struct ServiceRequestsJob: Sendable {
    public static let name = "service-requests"
    public let mapping: ServiceRequestsMapping
    public let conninfo: String
    public var showProgress = true

    public init(mapping: ServiceRequestsMapping, conninfo: String) {
        self.mapping = mapping
        self.conninfo = conninfo
    }

    public func schemaSteps(using connection: PostgresConnection) throws -> [SchemaStep] {
        LedgerSchema.steps + ServiceRequestsSchema.steps(for: mapping, types: try keyTypes(connection))
    }

    public func plan() throws -> ServiceRequestsSummary {
        let reader = try PostgresConnection(conninfo: conninfo, applicationName: "ferry plan service-requests")
        try reader.execute(script: "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        defer { _ = try? reader.execute(script: "ROLLBACK") }
        try preflight(reader, forApply: false)
        let sql = ServiceRequestsSQL(mapping: mapping, types: try keyTypes(reader))
        var summary = try run(
            mode: .plan, reader: reader, sql: sql,
            extractor: extractor(reader, sql: sql, pageSize: mapping.load.batchSize),
            firstBatch: 1
        ) { _ in }
        summary.checks = try checks(reader, sql: sql, summary: summary, predicted: true)
        summary.applyStatements = sql.applyStatements(
            contacts: try SnapshotTable.resolve(mapping.contacts.table.quoted, on: reader),
            requests: try SnapshotTable.resolve(mapping.requests.table.quoted, on: reader))
        return summary
    }

    public func apply(_ options: ApplyOptions = ApplyOptions()) throws -> ServiceRequestsSummary {
        try LedgerRun.apply(
            job: Self.name, mappingFile: mapping.file, mappingSHA256: mapping.sha256, load: mapping.load,
            conninfo: conninfo, options: options,
            preflight: { try preflight($0, forApply: true, warn: options.log) }
        ) { run in
            let sql = ServiceRequestsSQL(mapping: mapping, types: try keyTypes(run.reader))
            let loader = try ServiceRequestsLoader(
                conninfo: conninfo, sql: sql, runId: run.runId, timeouts: run.timeouts)
            let extract = extractor(
                run.reader, sql: sql, pageSize: run.options.batchSize ?? mapping.load.batchSize,
                after: run.resume?.lastKey,
                retry: run.options.retry, log: run.options.log, reconnect: run.openReader)
            let pacing = ApplyPacing(options: run.options, open: run.openPacingSession)
            var applied = ServiceRequestsSummary.Applied()
            var summary = try self.run(
                mode: .apply, reader: run.reader, sql: sql, extractor: extract,
                firstBatch: (run.resume?.lastBatch ?? 0) + 1
            ) { batch in
                try pacing.beforeBatch(batch.number)
                let result = try run.options.retry.run(
                    "batch \(batch.number)", reconnect: loader.reconnect, log: run.options.log
                ) {
                    try loader.load(batch)
                }
                applied.contactsCreated += result.contactsCreated
                applied.requestsUpdated += result.requestsUpdated
                applied.batchesCommitted += 1
                FerryLog.logger.info(
                    "batch committed",
                    metadata: ["run": "\(run.runId)", "job": "\(Self.name)", "batch": "\(batch.number)"])
            }
            summary.applied = applied
            summary.runId = run.runId
            summary.checks = try checks(run.reader, sql: sql, summary: summary, predicted: false)
            if mapping.statusConstraint {
                summary.statusConstraint = try addStatusConstraint(sql: sql, run: run, options: run.options)
            }
            return summary
        }
    }

    /// The CHECK on the new statuses, once no request has another status; recorded in the ledger so a
    /// rollback of this run drops it before restoring legacy statuses.
    private func addStatusConstraint(
        sql: ServiceRequestsSQL, run: LedgerRun.Context, options: ApplyOptions
    ) throws -> String {
        let connection = try run.openReader()
        defer { connection.close() }
        if try connection.query(sql.statusConstraintExists).scalar != "0" { return "already present" }
        let others = Int(try connection.query(sql.statusesOutsideTheNewSet).scalar ?? "0") ?? 0
        guard others == 0 else {
            return
                "not added: \(formatCount(others)) request\(others == 1 ? " has a status" : "s have statuses") outside the new set"
        }
        try options.retry.run("adding \(sql.statusConstraintName)", log: options.log) {
            try connection.transaction {
                try connection.query(PhonesSQL.setLocalTimeouts, [run.timeouts.lock, run.timeouts.statement])
                try connection.execute(script: sql.addStatusConstraint)
            }
        }
        let table = try SnapshotTable.resolve(mapping.requests.table.quoted, on: connection).qualifiedName
        try run.ledger.event(
            runId: run.runId, kind: "constraint added",
            detail: ["table": table, "constraint": sql.statusConstraintName])
        return "added: \(sql.statusConstraintName)"
    }

    private func extractor(
        _ connection: PostgresConnection, sql: ServiceRequestsSQL, pageSize: Int, after: [String]? = nil,
        retry: RetryPolicy? = nil, log: @escaping @Sendable (String) -> Void = { _ in },
        reconnect: (() throws -> PostgresConnection)? = nil
    ) -> KeysetExtractor<LegacyServiceRequest> {
        KeysetExtractor(
            connection: connection, what: "service requests", pageSize: pageSize, after: after, retry: retry, log: log,
            reconnect: reconnect, query: sql.extractPage(after:)
        ) { row in
            func match(_ at: Int) -> ActorMatch? {
                row[at].map { ActorMatch(key: $0, organization: row[at + 1], candidates: Int(row[at + 2] ?? "1") ?? 1) }
            }
            return LegacyServiceRequest(
                tenant: row[0] ?? "", requestKey: row[1] ?? "", status: row[2] ?? "", submittedByEmail: row[3],
                assignedToEmail: row[4], submittedMatch: match(10), assignedMatch: match(13), submittedContact: row[5],
                assignedContact: row[6], fleetCompany: row[7], supplierCompany: row[8], createdAt: row[9])
        }
    }

    private func run(
        mode: ServiceRequestsSummary.Mode, reader: PostgresConnection, sql: ServiceRequestsSQL,
        extractor: KeysetExtractor<LegacyServiceRequest>, firstBatch: Int,
        sink: (ServiceRequestsBatch) throws -> Void
    ) throws -> ServiceRequestsSummary {
        let started = Date()
        var summary = ServiceRequestsSummary(mode: mode, mapping: mapping)
        summary.database = reader.info
        var builder = ServiceRequestsSummaryBuilder(summary: summary)
        let progress = ProgressLine(
            label: "\(mode.rawValue) service requests", total: Int(try reader.query(sql.requestCount).scalar ?? ""),
            enabled: showProgress && isatty(STDERR_FILENO) == 1)
        let transform = ServiceRequestTransform(mapping: mapping)
        let batchCounter = Counter(startingAfter: firstBatch - 1)
        try BatchPipeline.run(
            extract: { try extractor.nextPage() },
            transform: { (requests: [LegacyServiceRequest]) in
                ServiceRequestsBatch(
                    number: batchCounter.next(), requests: requests, decisions: parallelMap(requests, transform.decide),
                    firstKey: [requests[0].tenant, requests[0].requestKey],
                    lastKey: [requests[requests.count - 1].tenant, requests[requests.count - 1].requestKey])
            },
            consume: { (batch: ServiceRequestsBatch) in
                try sink(batch)
                for (request, decision) in zip(batch.requests, batch.decisions) {
                    builder.add(decision, request: request)
                }
                progress.update(done: builder.summary.requestsRead)
            })
        progress.finish()
        summary = builder.finished
        summary.elapsedSeconds = Date().timeIntervalSince(started)
        summary.peakResidentMegabytes = peakResidentMegabytes()
        return summary
    }

    private func checks(
        _ connection: PostgresConnection, sql: ServiceRequestsSQL, summary: ServiceRequestsSummary, predicted: Bool
    ) throws -> [ConstraintCheck] {
        func count(_ query: String) throws -> Int { Int(try connection.query(query).scalar ?? "0") ?? 0 }
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
        return [requests, contacts, organizations] + (forApply ? PhonesSchema.ledgerExpectations() : [])
    }

    func preflight(_ connection: PostgresConnection, forApply: Bool, warn: (String) -> Void = { _ in }) throws {
        try Doctor(connection: connection).check(
            try expectations(using: connection, forApply: forApply),
            ownSteps: (try? schemaSteps(using: connection)) ?? [], mappingFile: mapping.file
        )
        .requireNoErrors(warn: warn)
    }
}

struct ServiceRequestsBatch: Sendable {
    let number: Int
    let requests: [LegacyServiceRequest]
    let decisions: [ServiceRequestDecision]
    let firstKey: [String]
    let lastKey: [String]
}

/// The apply sink: COPY the batch's updates into staging, create first-seen contacts, resolve every
/// email again (a contact created by an earlier batch, or by the application meanwhile, is found), then
/// the requests' pre-images and update, and the batch cursor, in one transaction.
final class ServiceRequestsLoader {
    struct BatchResult {
        var contactsCreated = 0
        var requestsUpdated = 0
    }

    private let conninfo: String
    private var connection: PostgresConnection
    private let sql: ServiceRequestsSQL
    private let runId: Int64
    private let timeouts: (lock: String, statement: String)
    private let contacts, requests: SnapshotTable
    private var encoder = CopyTextEncoder()

    init(conninfo: String, sql: ServiceRequestsSQL, runId: Int64, timeouts: (lock: String, statement: String)) throws {
        self.conninfo = conninfo
        self.sql = sql
        self.runId = runId
        self.timeouts = timeouts
        connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry apply service-requests")
        contacts = try SnapshotTable.resolve(sql.mapping.contacts.table.quoted, on: connection)
        requests = try SnapshotTable.resolve(sql.mapping.requests.table.quoted, on: connection)
        try connection.execute(script: sql.createStagingTable)
    }

    func reconnect() throws {
        connection.close()
        connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry apply service-requests")
        try connection.execute(script: sql.createStagingTable)
    }

    func load(_ batch: ServiceRequestsBatch) throws -> BatchResult {
        encoder.removeAll()
        var sequence = 0
        for (request, decision) in zip(batch.requests, batch.decisions) where decision.action == .update {
            sequence += 1
            encoder.appendRow([
                String(sequence), request.tenant, request.requestKey, decision.newStatus ?? request.status,
                decision.submittedEmail, decision.assignedEmail, request.createdAt,
            ])
        }
        let run = String(runId), number = String(batch.number)
        return try connection.transaction {
            try connection.query(PhonesSQL.setLocalTimeouts, [timeouts.lock, timeouts.statement])
            var result = BatchResult()
            if sequence > 0 {
                _ = try connection.copyIn(ServiceRequestsSQL.copyIntoStaging) { write in
                    try encoder.bytes.withUnsafeBytes { try write($0) }
                }
                result.contactsCreated =
                    Int(
                        try connection.query(
                            sql.insertEmergentContacts(snapshot: contacts),
                            [run, number, contacts.qualifiedName, sql.mapping.emergentContactType]
                        ).scalar ?? "0") ?? 0
                try connection.query(sql.resolveActors)
                try connection.query(sql.snapshotRequests(snapshot: requests), [run, number, requests.qualifiedName])
                result.requestsUpdated = try connection.query(sql.updateRequests).affectedRows
            }
            try connection.query(
                LedgerRun.recordBatch(.key),
                [
                    run, number, textArrayLiteral(batch.firstKey), textArrayLiteral(batch.lastKey),
                    String(result.contactsCreated), String(result.requestsUpdated),
                ])
            return result
        }
    }
}
