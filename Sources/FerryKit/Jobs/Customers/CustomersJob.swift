import Foundation

/// Organizations as customers: for each project whose customer is a contact, that contact's organization
/// becomes the customer and the contact its primary contact point. plan and apply share everything up to
/// the sink, as for the phones job; every write is snapshotted, so `ferry rollback` undoes a run exactly.
public struct CustomersJob: Sendable {
    public static let name = "customers"
    public let mapping: CustomersMapping
    public let conninfo: String
    public var showProgress = true

    public init(mapping: CustomersMapping, conninfo: String) {
        self.mapping = mapping
        self.conninfo = conninfo
    }

    public func schemaSteps(using connection: PostgresConnection) throws -> [SchemaStep] {
        LedgerSchema.steps + CustomersSchema.steps(for: mapping, types: try keyTypes(connection))
    }

    /// Reads and decides everything in one READ ONLY snapshot; writes nothing.
    public func plan() throws -> CustomersSummary {
        let reader = try PostgresConnection(conninfo: conninfo, applicationName: "ferry plan customers")
        try reader.execute(script: "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        defer { _ = try? reader.execute(script: "ROLLBACK") }
        try preflight(reader, forApply: false)
        let sql = CustomersSQL(mapping: mapping, types: try keyTypes(reader))
        var summary = try run(
            mode: .plan, reader: reader, sql: sql,
            extractor: extractor(reader, sql: sql, pageSize: mapping.load.batchSize),
            firstBatch: 1
        ) { _ in }
        summary.checks = try checks(reader, sql: sql, summary: summary, predicted: true)
        summary.applyStatements = sql.applyStatements(
            organizations: try SnapshotTable.resolve(mapping.organizations.table.quoted, on: reader),
            contacts: try SnapshotTable.resolve(mapping.contacts.table.quoted, on: reader),
            projects: try SnapshotTable.resolve(mapping.projects.table.quoted, on: reader),
            points: try SnapshotTable.resolve(mapping.contactPoints.table.quoted, on: reader))
        return summary
    }

    public func apply(_ options: ApplyOptions = ApplyOptions()) throws -> CustomersSummary {
        try LedgerRun.apply(
            job: Self.name, mappingFile: mapping.file, mappingSHA256: mapping.sha256, load: mapping.load,
            conninfo: conninfo, options: options,
            preflight: { try preflight($0, forApply: true, warn: options.log) }
        ) { run in
            let sql = CustomersSQL(mapping: mapping, types: try keyTypes(run.reader))
            let loader = try CustomersLoader(conninfo: conninfo, sql: sql, runId: run.runId, timeouts: run.timeouts)
            let extract = extractor(
                run.reader, sql: sql, pageSize: run.options.batchSize ?? mapping.load.batchSize,
                after: run.resume?.lastKey,
                retry: run.options.retry, log: run.options.log, reconnect: run.openReader)
            let pacing = ApplyPacing(options: run.options, open: run.openPacingSession)
            var applied = CustomersSummary.Applied()
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
                applied.organizationsCreated += result.organizationsCreated
                applied.contactsUpdated += result.contactsUpdated
                applied.projectsUpdated += result.projectsUpdated
                applied.contactPointsInserted += result.contactPointsInserted
                applied.contactPointsNotInserted +=
                    batch.decisions.filter(\.insertsContactPoint).count - result.contactPointsInserted
                applied.batchesCommitted += 1
                FerryLog.logger.info(
                    "batch committed",
                    metadata: ["run": "\(run.runId)", "job": "\(Self.name)", "batch": "\(batch.number)"])
            }
            summary.applied = applied
            summary.runId = run.runId
            summary.checks = try checks(run.reader, sql: sql, summary: summary, predicted: false)
            return summary
        }
    }

    // MARK: The shared run

    private func extractor(
        _ connection: PostgresConnection, sql: CustomersSQL, pageSize: Int, after: [String]? = nil,
        retry: RetryPolicy? = nil, log: @escaping @Sendable (String) -> Void = { _ in },
        reconnect: (() throws -> PostgresConnection)? = nil
    ) -> KeysetExtractor<LegacyProjectCustomer> {
        KeysetExtractor(
            connection: connection, what: "projects", pageSize: pageSize, after: after, retry: retry, log: log,
            reconnect: reconnect, query: sql.extractPage(after:)
        ) { row in
            LegacyProjectCustomer(
                tenant: row[0] ?? "", projectKey: row[1] ?? "", contactKey: row[2] ?? "", customerOrganization: row[3],
                contactName: row[4] ?? "", contactType: row[5], email: row[6], organization: row[7], roleText: row[8],
                hasContactPoint: row[10] == "t", projectsOfContact: Int(row[11] ?? "1") ?? 1,
                isPrimaryContact: row[9] == "t")
        }
    }

    private func run(
        mode: CustomersSummary.Mode, reader: PostgresConnection, sql: CustomersSQL,
        extractor: KeysetExtractor<LegacyProjectCustomer>, firstBatch: Int,
        sink: (CustomersBatch) throws -> Void
    ) throws -> CustomersSummary {
        let started = Date()
        var summary = CustomersSummary(mode: mode, mapping: mapping)
        summary.database = reader.info
        let existingDomains = Set(
            try reader.query(sql.existingDomainOrganizations).rows.map {
                CustomersSummaryBuilder.domainKey(tenant: $0[0] ?? "", domain: $0[1] ?? "")
            })
        var builder = CustomersSummaryBuilder(summary: summary, existingDomains: existingDomains)
        let total = Int(try reader.query(sql.projectCount).scalar ?? "")
        let progress = ProgressLine(
            label: "\(mode.rawValue) customers", total: total, enabled: showProgress && isatty(STDERR_FILENO) == 1)
        let transform = CustomerTransform(mapping: mapping)
        let batchCounter = Counter(startingAfter: firstBatch - 1)
        try BatchPipeline.run(
            extract: { try extractor.nextPage() },
            transform: { (projects: [LegacyProjectCustomer]) in
                CustomersBatch(
                    number: batchCounter.next(), projects: projects, decisions: projects.map(transform.decide),
                    firstKey: [projects[0].tenant, projects[0].projectKey],
                    lastKey: [projects[projects.count - 1].tenant, projects[projects.count - 1].projectKey])
            },
            consume: { (batch: CustomersBatch) in
                try sink(batch)
                for (project, decision) in zip(batch.projects, batch.decisions) {
                    builder.add(decision, project: project)
                }
                progress.update(done: builder.summary.projectsRead)
            })
        progress.finish()
        summary = builder.finished
        summary.elapsedSeconds = Date().timeIntervalSince(started)
        summary.peakResidentMegabytes = peakResidentMegabytes()
        return summary
    }

    /// The checks on live data: after apply, what it left; in a plan, what apply would leave.
    private func checks(
        _ connection: PostgresConnection, sql: CustomersSQL, summary: CustomersSummary, predicted: Bool
    ) throws -> [ConstraintCheck] {
        let unlinkedNow = Int(try connection.query(sql.projectsWithoutOrganization).scalar ?? "0") ?? 0
        let unlinked =
            (predicted ? unlinkedNow - summary.projectsToUpdate : unlinkedNow)
            - summary.projectsRejectedWithoutOrganization
        var withoutOrganization = ConstraintCheck(
            constraint:
                "every project with a customer contact has customer_organization_id, but for the \(formatCount(summary.projectsRejectedWithoutOrganization)) rejected ones"
        )
        withoutOrganization.violations = max(0, unlinked)
        var outside = ConstraintCheck(
            constraint: "every contact point's contact belongs to the project's customer organization")
        outside.violations = Int(try connection.query(sql.contactPointsOutsideTheirOrganization).scalar ?? "0") ?? 0
        var missing = ConstraintCheck(constraint: "every project's customer contact exists")
        missing.violations = Int(try connection.query(sql.projectsWithMissingCustomer).scalar ?? "0") ?? 0
        return [withoutOrganization, outside, missing]
    }

    func keyTypes(_ connection: PostgresConnection) throws -> TableJobKeyTypes {
        try TableJobKeyTypes.read(
            connection, rows: mapping.projects.table, tenant: mapping.projects.tenant, key: mapping.projects.key,
            contacts: mapping.contacts.table, contactKey: mapping.contacts.key,
            organizations: mapping.organizations.table, organizationKey: mapping.organizations.key,
            mappingFile: mapping.file)
    }

    /// What the customers job expects of the database; `forApply` adds write privileges and the ledger.
    public func expectations(using connection: PostgresConnection, forApply: Bool) throws -> [TableExpectation] {
        let p = mapping.projects, c = mapping.contacts, o = mapping.organizations, cp = mapping.contactPoints
        let use: TableExpectation.Use = forApply ? .write : .read
        let steps = (try? schemaSteps(using: connection)) ?? []
        var projects = TableExpectation(p.table, use: use)
        for column in [p.tenant, p.key, p.customer, p.customerOrganization] { projects.column(column) }
        projects.needsPrimaryKey = true
        projects.indexes = [[p.tenant, p.customer]]
        projects.createdBy = steps.first { $0.name == "customers/\(p.table)-customer-organization" }
        var contacts = TableExpectation(c.table, use: use)
        for column in [c.tenant, c.key, c.fullName, c.email, c.organization, c.role, c.contactType] {
            contacts.column(column)
        }
        contacts.column(c.isPrimary, "boolean")
        contacts.needsPrimaryKey = true
        var organizations = TableExpectation(o.table, use: use)
        for column in [o.tenant, o.key, o.name, o.type, o.emailDomain] { organizations.column(column) }
        organizations.needsPrimaryKey = true
        organizations.uniqueKeys = [
            .init(
                columns: [o.tenant, o.emailDomain], predicate: "\(quoteIdentifier(o.emailDomain)) IS NOT NULL",
                required: false)
        ]
        var points = TableExpectation(cp.table, use: use)
        for column in [cp.tenant, cp.project, cp.contact, cp.role, cp.isPrimary] { points.column(column) }
        points.needsPrimaryKey = true
        points.uniqueKeys = [.init(columns: [cp.tenant, cp.project, cp.contact])]
        points.indexes = [[cp.tenant, cp.contact]]
        points.createdBy = steps.first { $0.name == "customers/\(cp.table)" }
        return [projects, contacts, organizations, points] + (forApply ? PhonesSchema.ledgerExpectations() : [])
    }

    func preflight(_ connection: PostgresConnection, forApply: Bool, warn: (String) -> Void = { _ in }) throws {
        try Doctor(connection: connection).check(
            try expectations(using: connection, forApply: forApply),
            ownSteps: (try? schemaSteps(using: connection)) ?? [], mappingFile: mapping.file
        )
        .requireNoErrors(warn: warn)
    }
}

/// One batch as it travels from the transform to a sink.
struct CustomersBatch: Sendable {
    let number: Int
    let projects: [LegacyProjectCustomer]
    let decisions: [ProjectCustomerDecision]
    let firstKey: [String]
    let lastKey: [String]
}

/// The apply sink: COPY the batch's decisions into a staging table, then organizations, contacts,
/// projects and contact points, each with its snapshot, and the batch cursor, in one transaction.
final class CustomersLoader {
    struct BatchResult {
        var organizationsCreated = 0
        var contactsUpdated = 0
        var projectsUpdated = 0
        var contactPointsInserted = 0
    }

    private let conninfo: String
    private var connection: PostgresConnection
    private let sql: CustomersSQL
    private let runId: Int64
    private let timeouts: (lock: String, statement: String)
    private let organizations, contacts, projects, points: SnapshotTable
    private var encoder = CopyTextEncoder()

    init(conninfo: String, sql: CustomersSQL, runId: Int64, timeouts: (lock: String, statement: String)) throws {
        self.conninfo = conninfo
        self.sql = sql
        self.runId = runId
        self.timeouts = timeouts
        connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry apply customers")
        organizations = try SnapshotTable.resolve(sql.mapping.organizations.table.quoted, on: connection)
        contacts = try SnapshotTable.resolve(sql.mapping.contacts.table.quoted, on: connection)
        projects = try SnapshotTable.resolve(sql.mapping.projects.table.quoted, on: connection)
        points = try SnapshotTable.resolve(sql.mapping.contactPoints.table.quoted, on: connection)
        try connection.execute(script: sql.createStagingTable)
    }

    func reconnect() throws {
        connection.close()
        connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry apply customers")
        try connection.execute(script: sql.createStagingTable)
    }

    func load(_ batch: CustomersBatch) throws -> BatchResult {
        encoder.removeAll()
        var sequence = 0
        for (project, decision) in zip(batch.projects, batch.decisions) {
            guard case .link(let organization, let role) = decision.action else { continue }
            sequence += 1
            let (kind, value, name): (String, String, String?) =
                switch organization {
                case .existing(let key): ("existing", key, nil)
                case .emailDomain(let domain, let name): ("domain", domain, name)
                case .individual(let name): ("individual", project.contactKey, name)
                }
            encoder.appendRow([
                String(sequence), project.tenant, project.projectKey, project.contactKey, kind, value, name, role,
                decision.setsProjectOrganization ? "t" : "f", decision.updatesContact ? "t" : "f",
                decision.insertsContactPoint ? "t" : "f",
            ])
        }
        let run = String(runId), number = String(batch.number)
        return try connection.transaction {
            try connection.query(PhonesSQL.setLocalTimeouts, [timeouts.lock, timeouts.statement])
            var result = BatchResult()
            if sequence > 0 {
                _ = try connection.copyIn(CustomersSQL.copyIntoStaging) { write in
                    try encoder.bytes.withUnsafeBytes { try write($0) }
                }
                try connection.query(sql.resolveOrganizations)
                result.organizationsCreated =
                    Int(
                        try connection.query(
                            sql.insertOrganizations(snapshot: organizations),
                            [run, number, organizations.qualifiedName]
                        ).scalar ?? "0") ?? 0
                try connection.query(sql.snapshotContacts(snapshot: contacts), [run, number, contacts.qualifiedName])
                result.contactsUpdated = try connection.query(sql.updateContacts).affectedRows
                try connection.query(sql.snapshotProjects(snapshot: projects), [run, number, projects.qualifiedName])
                result.projectsUpdated = try connection.query(sql.updateProjects).affectedRows
                result.contactPointsInserted =
                    Int(
                        try connection.query(
                            sql.insertContactPoints(snapshot: points),
                            [run, number, points.qualifiedName]
                        ).scalar ?? "0") ?? 0
            }
            try connection.query(
                LedgerRun.recordBatch(.key),
                [
                    run, number, textArrayLiteral(batch.firstKey), textArrayLiteral(batch.lastKey),
                    String(result.organizationsCreated + result.contactPointsInserted),
                    String(result.contactsUpdated + result.projectsUpdated),
                ])
            return result
        }
    }
}
