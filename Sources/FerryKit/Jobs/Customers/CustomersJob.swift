import Foundation

/// Organizations as customers: for each project whose customer is a contact, that contact's organization
/// becomes the customer and the contact its primary contact point. plan and apply share everything up to
/// the sink, as for the phones job; every write is snapshotted, so `ferry rollback` undoes a run exactly.
public struct CustomersJob: Sendable {
    public static let name = "customers"
    public let mapping: CustomersMapping
    public let conninfo: String

    public init(mapping: CustomersMapping, conninfo: String) {
        self.mapping = mapping
        self.conninfo = conninfo
    }

    public func schemaSteps(using connection: PostgresConnection) throws -> [SchemaStep] {
        LedgerSchema.steps
            + CustomersSchema.steps(
                for: mapping, types: try keyTypes(connection),
                engine: try DatabaseEngine.detect(source: mapping.projects.table, on: connection))
    }
}

extension CustomersJob: TableMigration {
    var source: KeysetSource {
        KeysetSource(
            table: mapping.projects.table, tenantColumn: mapping.projects.tenant, keyColumn: mapping.projects.key,
            noun: "projects")
    }

    func statements(_ reader: PostgresConnection) throws -> CustomersSQL {
        CustomersSQL(mapping: mapping, types: try keyTypes(reader), engine: try sourceEngine(using: reader))
    }

    func extractPage(_ sql: CustomersSQL) -> String { sql.extractPage }

    func record(_ row: Row) throws -> LegacyProjectCustomer {
        var project = LegacyProjectCustomer(
            tenant: try row.required("ferry_tenant"), projectKey: try row.required("ferry_key"),
            contactKey: try row.required("customer"), customerOrganization: try row.optional("customer_organization"),
            contactName: try row.optional("full_name") ?? "", contactType: try row.optional("contact_type"),
            email: try row.optional("email"), organization: try row.optional("organization"),
            roleText: try row.optional("role"), hasContactPoint: try row.required("has_contact_point"),
            projectsOfContact: try row.required("projects_of_contact"), isPrimaryContact: try row.required("is_primary")
        )
        project.legacyHash = try row.optional("ferry_legacy_hash")
        return project
    }

    func key(of record: LegacyProjectCustomer) -> [String] { [record.tenant, record.projectKey] }

    func makeTransform() -> @Sendable (LegacyProjectCustomer) -> ProjectCustomerDecision {
        let transform = CustomerTransform(mapping: mapping)
        return { transform.decide($0) }
    }

    func summaryBuilder(
        mode: RunMode, settings: RunSettings, sql: CustomersSQL, reader: PostgresConnection
    ) throws -> CustomersSummaryBuilder {
        let existingDomains = Set(
            try reader.query(sql.existingDomainOrganizations).decoded("organizations by email domain").map {
                CustomersSummaryBuilder.domainKey(tenant: try $0.required("tenant"), domain: try $0.required("domain"))
            })
        return CustomersSummaryBuilder(
            summary: CustomersSummary(mode: mode, mapping: mapping), existingDomains: existingDomains)
    }

    func loader(_ sql: CustomersSQL, run: LedgerRun.Context) throws -> CustomersLoader {
        var sql = sql
        sql.writer = run.writer
        return try CustomersLoader(run: run, sql: sql)
    }

    func count(
        _ result: CustomersLoader.BatchResult, of batch: CustomersBatch, into applied: inout CustomersSummary.Applied
    ) {
        applied.organizationsCreated += result.organizationsCreated
        applied.contactsUpdated += result.contactsUpdated
        applied.projectsUpdated += result.projectsUpdated
        applied.contactPointsInserted += result.contactPointsInserted
        applied.projectsGoneSinceRead += result.projectsGoneSinceRead
        applied.contactPointsNotInserted +=
            batch.decisions.filter(\.insertsContactPoint).count - result.contactPointsInserted
            - result.contactPointsGoneSinceRead
    }

    func applyStatements(_ sql: CustomersSQL, reader: PostgresConnection) throws -> [String] {
        sql.applyStatements(
            organizations: try SnapshotTable.resolve(mapping.organizations.table.quoted, on: reader),
            contacts: try SnapshotTable.resolve(mapping.contacts.table.quoted, on: reader),
            projects: try SnapshotTable.resolve(mapping.projects.table.quoted, on: reader),
            points: try SnapshotTable.resolve(mapping.contactPoints.table.quoted, on: reader))
    }

    func planReport(_ summary: CustomersSummary) -> PlanReport {
        PlanReport(customersSummary: summary, mapping: mapping)
    }

    func terminalText(_ summary: CustomersSummary, colour: Bool) -> String {
        summary.mode == .plan
            ? (try? planReport(summary).render(.terminal, colour: colour)) ?? ""
            : CustomersTerminalReport.render(summary)
    }

    /// The checks on live data: after apply, what it left; in a plan, what apply would leave.
    func checks(
        _ summary: CustomersSummary, sql: CustomersSQL, reader connection: PostgresConnection, predicted: Bool
    ) throws -> [ConstraintCheck] {
        let unlinkedNow = try connection.query(sql.projectsWithoutOrganization).value("a count", as: Int.self)
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
        outside.violations = try connection.query(sql.contactPointsOutsideTheirOrganization).value(
            "a count", as: Int.self)
        var missing = ConstraintCheck(constraint: "every project's customer contact exists")
        missing.violations = try connection.query(sql.projectsWithMissingCustomer).value("a count", as: Int.self)
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
        return [projects, contacts, organizations, points] + (forApply ? LedgerSchema.expectations() : [])
    }
}

typealias CustomersBatch = MigrationBatch<LegacyProjectCustomer, ProjectCustomerDecision>

/// The apply sink: COPY the batch's decisions into a staging table, then organizations, contacts,
/// projects and contact points, each with its snapshot, and the batch cursor, in one transaction.
final class CustomersLoader: BatchLoader {
    struct BatchResult: BatchWrites {
        var organizationsCreated = 0
        var contactsUpdated = 0
        var projectsUpdated = 0
        var contactPointsInserted = 0
        /// Staged projects left out because a row they need was deleted since the read, and of those
        /// the ones that were to get a contact point.
        var projectsGoneSinceRead = 0
        var contactPointsGoneSinceRead = 0
        var rowsInserted: Int { organizationsCreated + contactPointsInserted }
        var rowsUpdated: Int { contactsUpdated + projectsUpdated }
    }

    private let session: LoaderSession
    private var connection: PostgresConnection { session.connection }
    private let sql: CustomersSQL
    private let organizations, contacts, projects, points: SnapshotTable
    private var encoder = CopyTextEncoder()
    private var reads = CopyTextEncoder()

    init(run: LedgerRun.Context, sql: CustomersSQL) throws {
        self.sql = sql
        session = try LoaderSession(run: run) { connection in
            for statement in sql.createStagingTable { try connection.execute(script: statement) }
        }
        organizations = try SnapshotTable.resolve(sql.mapping.organizations.table.quoted, on: session.connection)
        contacts = try SnapshotTable.resolve(sql.mapping.contacts.table.quoted, on: session.connection)
        projects = try SnapshotTable.resolve(sql.mapping.projects.table.quoted, on: session.connection)
        points = try SnapshotTable.resolve(sql.mapping.contactPoints.table.quoted, on: session.connection)
    }

    func reconnect() throws { try session.reconnect() }

    /// `onlyRowsStillThere`: staged projects whose project, contact or existing organization is gone
    /// are dropped before anything is written.
    func load(_ batch: CustomersBatch, onlyRowsStillThere: Bool) throws -> BatchResult {
        encoder.removeAll()
        reads.removeAll()
        var sequence = 0
        for (project, decision) in zip(batch.records, batch.decisions) {
            if let hash = project.legacyHash { reads.appendRow([project.tenant, project.projectKey, hash]) }
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
                if onlyRowsStillThere {
                    let gone = try connection.query(sql.dropStagedRowsGoneSince, tenant).decoded("staged rows gone")
                    result.projectsGoneSinceRead = gone.count
                    result.contactPointsGoneSinceRead = try gone.filter { try $0.required("inserts_point") }.count
                }
                try connection.query(sql.resolveOrganizations, tenant)
                result.organizationsCreated =
                    try connection.query(
                        sql.insertOrganizations(snapshot: organizations),
                        [run, number, organizations.qualifiedName] + tenant
                    ).value("a count", as: Int.self)
                result.contactsUpdated = try connection.changeRows(
                    contacts, preImages: sql.snapshotContacts(snapshot: contacts), change: sql.updateContacts,
                    record: sql.recordContactPreImages(snapshot: contacts), run: run, batch: number, tenant: tenant)
                result.projectsUpdated = try connection.changeRows(
                    projects, preImages: sql.snapshotProjects(snapshot: projects), change: sql.updateProjects,
                    record: sql.recordProjectPreImages(snapshot: projects), run: run, batch: number, tenant: tenant)
                result.contactPointsInserted =
                    try connection.query(
                        sql.insertContactPoints(snapshot: points),
                        [run, number, points.qualifiedName] + tenant
                    ).value("a count", as: Int.self)
            }
            try sql.legacyReads.record(reads, run: run, tenant: tenant, on: connection)
            return result
        }
    }
}

extension CustomersJob: JobSchema {
    public func engine(using connection: PostgresConnection) throws -> DatabaseEngine {
        try sourceEngine(using: connection)
    }
}
