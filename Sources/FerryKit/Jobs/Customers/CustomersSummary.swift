import Foundation

/// What a customers run found and would do (plan) or did (apply).
public struct CustomersSummary: MigrationSummary, Codable {
    public typealias Mode = RunMode

    public struct Applied: AppliedCounts, Equatable {
        public init() {}
        public var organizationsCreated = 0
        public var contactsUpdated = 0
        public var projectsUpdated = 0
        public var contactPointsInserted = 0
        /// Contact points the plan expected but PostgreSQL did not insert (a concurrent writer got there first).
        public var contactPointsNotInserted = 0
        /// Projects to link whose project, contact or organization the application deleted after the
        /// batch read them: left out.
        public var projectsGoneSinceRead = 0
        public var batchesCommitted = 0
    }

    public let mode: Mode
    public let mappingFile: String
    public let mappingSHA256: String
    public var database: ConnectionInfo?
    public var projectsRead = 0
    public var projectsToLink = 0
    public var projectsAlreadyLinked = 0
    public var projectsRejected = 0
    /// Rejected projects that have no customer organization (and keep having none).
    public var projectsRejectedWithoutOrganization = 0
    public var projectsToUpdate = 0
    public var contactsToUpdate = 0
    public var contactPointsToInsert = 0
    /// "tenant: name (company, from example.com)", one per organization the run creates, sorted.
    public var organizationsToCreate: [String] = []
    /// Organizations the email-domain rule finds already standing for a domain (reused, not created).
    public var organizationsReused = 0
    public var anomalies: [String: CountWithExamples] = [:]
    public var tenants: [String: TenantCounts] = [:]
    public var samples: [ContactSample] = []
    public var checks: [ConstraintCheck] = []
    public var applied: Applied?
    public var runId: Int64?
    public var elapsedSeconds = 0.0
    /// (plan) The SQL apply would run, for the report's appendix.
    public var applyStatements: [String]? = nil
    public var peakResidentMegabytes = 0.0
    /// (apply --snapshot-file) The file the run's snapshot was written to.
    public var snapshotFile: SnapshotFile.Written?

    public var accountingAddsUp: Bool { projectsRead == projectsToLink + projectsRejected + projectsAlreadyLinked }
    public var changesPending: Bool { projectsToLink > 0 }

    init(mode: Mode, mapping: CustomersMapping) {
        self.mode = mode
        mappingFile = mapping.file
        mappingSHA256 = mapping.sha256
    }
}

/// Accumulates decisions batch by batch; memory is bounded by the examples kept and the organizations
/// to create (which the plan must list in full).
struct CustomersSummaryBuilder {
    private(set) var summary: CustomersSummary
    private let existingDomains: Set<String>
    private var plannedOrganizations = Set<String>()
    /// The organizations to create by tenant and lower-cased name: what each was made from.
    private var plannedNames: [String: String] = [:]
    /// Contacts counted as updated (a contact may be the customer of several projects), hashed to stay small.
    private var updatedContacts = Set<Int>()
    private var samples = SampleSelection<String>(maximum: 16)

    init(summary: CustomersSummary, existingDomains: Set<String>) {
        self.summary = summary
        self.existingDomains = existingDomains
    }

    static func domainKey(tenant: String, domain: String) -> String { tenant + "\u{1F}" + domain }

    mutating func add(_ decision: ProjectCustomerDecision, project: LegacyProjectCustomer) {
        summary.projectsRead += 1
        var sameName: CustomerAnomaly?
        var tenant = summary.tenants[project.tenant] ?? TenantCounts()
        tenant.contactsScanned += 1
        switch decision.action {
        case .alreadyLinked:
            summary.projectsAlreadyLinked += 1
            tenant.contactsSkippedExisting += 1
        case .rejected:
            summary.projectsRejected += 1
            if project.customerOrganization == nil { summary.projectsRejectedWithoutOrganization += 1 }
            tenant.valuesRejected += 1
        case .link(let organization, _):
            summary.projectsToLink += 1
            tenant.contactsWithNumbers += 1
            if decision.setsProjectOrganization { summary.projectsToUpdate += 1 }
            if decision.insertsContactPoint {
                summary.contactPointsToInsert += 1
                tenant.rowsToInsert += 1
            }
            if decision.updatesContact,
                updatedContacts.insert(RowKey(tenant: project.tenant, key: project.contactKey).hashValue).inserted
            {
                summary.contactsToUpdate += 1
            }
            switch organization {
            case .existing: break
            case .emailDomain(let domain, let name):
                let key = Self.domainKey(tenant: project.tenant, domain: domain)
                if existingDomains.contains(key) {
                    if plannedOrganizations.insert(key).inserted { summary.organizationsReused += 1 }
                } else if plannedOrganizations.insert(key).inserted {
                    summary.organizationsToCreate.append("\(project.tenant): \(name) (company, from \(domain))")
                    sameName = planName(name, from: domain, tenant: project.tenant)
                }
            case .individual(let name):
                if plannedOrganizations.insert(project.tenant + "\u{1F}contact:" + project.contactKey).inserted {
                    summary.organizationsToCreate.append(
                        "\(project.tenant): \(name) (individual, contact \(project.contactKey))")
                    sameName = planName(name, from: "contact \(project.contactKey)", tenant: project.tenant)
                }
            }
        }
        summary.tenants[project.tenant] = tenant
        // The project's own anomalies and the one only the whole run can see, counted and sampled alike.
        let anomalies = decision.anomalies + (sameName.map { [$0] } ?? [])
        let who = "\(project.contactName) <\(project.email ?? "no email")>"
        for anomaly in anomalies {
            summary.anomalies[anomaly.kind.rawValue, default: CountWithExamples()].add(
                ValueExample(
                    tenant: project.tenant, contactKey: project.projectKey, column: "customer_id", raw: who,
                    detail: anomaly.detail))
        }
        sample(decision, project: project, classes: anomalies.map(\.kind.rawValue))
    }

    /// Records a new organization's name; the anomaly when the run already creates one of that name in
    /// the tenant from something else.
    private mutating func planName(_ name: String, from source: String, tenant: String) -> CustomerAnomaly? {
        let key = tenant + "\u{1F}" + name.lowercased()
        guard let first = plannedNames[key] else {
            plannedNames[key] = source
            return nil
        }
        return CustomerAnomaly(
            kind: .sameNameAsAnotherNewOrganization, detail: "\"\(name)\" from \(source), and from \(first)")
    }

    /// The first project of each anomaly class (keyset order, so the same data gives the same samples),
    /// then plain links, up to the maximum.
    private mutating func sample(
        _ decision: ProjectCustomerDecision, project: LegacyProjectCustomer, classes: [String]
    ) {
        guard samples.shows(classes, isPlain: classes.isEmpty) else { return }
        let after: [String]
        switch decision.action {
        case .alreadyLinked: after = ["unchanged (already linked)"]
        case .rejected(let reason): after = ["unchanged: \(reason)"]
        case .link(let organization, let role):
            after =
                [
                    "project.customer_organization_id = \(CustomerTransform.describe(organization))",
                    "contact point: \(project.contactName), role \(role), primary",
                ]
                + (project.organization == nil ? ["contact.client_id = the same organization"] : [])
        }
        summary.samples.append(
            ContactSample(
                tenant: project.tenant, contactKey: "project \(project.projectKey)",
                legacyValues: [
                    "customer_id": project.contactKey, "contact": "\(project.contactName) <\(project.email ?? "")>",
                    "contact_type": project.contactType, "client_id": project.organization, "role": project.roleText,
                    "customer_organization_id": project.customerOrganization,
                ],
                rows: [], after: after, classes: classes.isEmpty ? ["linked"] : classes))
    }

    var finished: CustomersSummary {
        var result = summary
        result.organizationsToCreate.sort()
        return result
    }
}

extension PlanReport {
    /// The customers plan: the same model, renderers and JSON schema as every other job's.
    public init(customersSummary summary: CustomersSummary, mapping: CustomersMapping, generatedAt: Date = Date()) {
        schema = Self.schemaVersion
        let batchSize = mapping.load.batchSize
        header = Header(
            job: CustomersJob.name, mappingFile: summary.mappingFile, mappingSHA256: summary.mappingSHA256,
            database: summary.database,
            generatedAt: ISO8601DateFormatter().string(from: generatedAt), ferryVersion: FerryVersion.current,
            locks: [
                "advisory lock ferry:\(CustomersJob.name) (session), so no second apply of this job runs at once",
                "ROW EXCLUSIVE on \(mapping.organizations.table), \(mapping.contacts.table), \(mapping.projects.table) and \(mapping.contactPoints.table), one transaction per batch (lock_timeout \(mapping.load.lockTimeout.text), statement_timeout \(mapping.load.statementTimeout.text))",
                "FOR UPDATE on the \(mapping.contacts.table) and \(mapping.projects.table) rows a batch updates, for the length of that batch",
                "customer_id is read, never changed",
            ],
            batches: (summary.projectsRead + batchSize - 1) / batchSize, batchSize: batchSize,
            estimatedApplySeconds: summary.elapsedSeconds * 3 + 1,
            estimateBasis: String(
                format: "an estimate: this plan took %.1f s to read and decide; writing takes about twice that again",
                summary.elapsedSeconds))
        tables = [
            TableCounts(
                table: mapping.organizations.table.description, insert: summary.organizationsToCreate.count, update: 0,
                delete: 0, unchanged: 0),
            TableCounts(
                table: mapping.contacts.table.description, insert: 0, update: summary.contactsToUpdate, delete: 0,
                unchanged: 0),
            TableCounts(
                table: mapping.projects.table.description, insert: 0, update: summary.projectsToUpdate, delete: 0,
                unchanged: summary.projectsRead - summary.projectsToUpdate),
            TableCounts(
                table: mapping.contactPoints.table.description, insert: summary.contactPointsToInsert, update: 0,
                delete: 0, unchanged: 0),
        ]
        tenants = summary.tenants.sorted { $0.key < $1.key }.map { TenantRow(tenant: $0.key, counts: $0.value) }
        anomalies = summary.anomalies.map {
            AnomalyClass(name: $0.key, count: $0.value.count, examples: $0.value.examples)
        }
        .sorted { ($0.count, $1.name) > ($1.count, $0.name) }
        customTypesToCreate = []
        samples = summary.samples
        checks = summary.checks
        accounting = [
            Accounting(
                sourceTable: "\(mapping.projects.table) (projects whose customer is a contact)",
                read: summary.projectsRead,
                toLoad: summary.projectsToLink, rejected: summary.projectsRejected,
                skipped: summary.projectsAlreadyLinked,
                addsUp: summary.accountingAddsUp)
        ]
        changesPending = summary.changesPending
        statements = summary.applyStatements
        tenantColumns = ["projects", "to link", "contact points", "rejected", "already linked"]
        batchUnit = "projects"
        organizationsToCreate = summary.organizationsToCreate
    }
}

extension CustomersSummaryBuilder: SummaryBuilding {
    mutating func add(_ decision: ProjectCustomerDecision, of project: LegacyProjectCustomer) {
        add(decision, project: project)
    }
    mutating func finish() -> CustomersSummary { finished }
}
