import Foundation

/// What a service-requests run found and would do (plan) or did (apply).
public struct ServiceRequestsSummary: MigrationSummary, Codable {
    public typealias Mode = RunMode

    public struct Applied: AppliedCounts, Equatable {
        public init() {}
        public var contactsCreated = 0
        public var requestsUpdated = 0
        public var batchesCommitted = 0
    }

    public let mode: Mode
    public let mappingFile: String
    public let mappingSHA256: String
    public var database: ConnectionInfo?
    public var requestsRead = 0
    public var requestsToUpdate = 0
    public var requestsUnchanged = 0
    public var requestsRejected = 0
    /// Rejected requests that keep a status outside the new set (unmapped, or rejected for an email).
    public var requestsRejectedWithLegacyStatus = 0
    /// Distinct (tenant, canonical email) with no contact: one contact each is created.
    public var contactsToCreate = 0
    /// "tenant: email (N contacts)", every canonical email that several contacts share, sorted.
    public var duplicateContacts: [String] = []
    static let duplicateContactsTitle =
        "Contacts that share a canonical email within a tenant (not merged; one is used)"
    public var statusesMapped: [String: Int] = [:]
    public var anomalies: [String: CountWithExamples] = [:]
    public var tenants: [String: TenantCounts] = [:]
    public var samples: [ContactSample] = []
    public var checks: [ConstraintCheck] = []
    public var applied: Applied?
    /// With `status_constraint: true`: whether the CHECK on the new statuses was added, exists, or why not.
    public var statusConstraint: String?
    public var runId: Int64?
    public var elapsedSeconds = 0.0
    /// (plan) The SQL apply would run, for the report's appendix.
    public var applyStatements: [String]? = nil
    public var peakResidentMegabytes = 0.0
    /// (apply --snapshot-file) The file the run's snapshot was written to.
    public var snapshotFile: SnapshotFile.Written?

    public var changesPending: Bool { requestsToUpdate > 0 }
    public var accountingAddsUp: Bool { requestsRead == requestsToUpdate + requestsRejected + requestsUnchanged }

    init(mode: Mode, mapping: ServiceRequestsMapping) {
        self.mode = mode
        mappingFile = mapping.file
        mappingSHA256 = mapping.sha256
    }
}

struct ServiceRequestsSummaryBuilder {
    private(set) var summary: ServiceRequestsSummary
    private var emergent = Set<Int>()
    private var duplicates = Set<String>()
    private var samples = SampleSelection<String>(maximum: 16)

    init(summary: ServiceRequestsSummary) {
        self.summary = summary
    }

    mutating func add(_ decision: ServiceRequestDecision, request: LegacyServiceRequest) {
        summary.requestsRead += 1
        var tenant = summary.tenants[request.tenant] ?? TenantCounts()
        tenant.contactsScanned += 1
        for anomaly in decision.anomalies {
            summary.anomalies[anomaly.kind.rawValue, default: CountWithExamples()].add(
                ValueExample(
                    tenant: request.tenant, contactKey: request.requestKey, column: "request",
                    raw: "\(request.status) | \(request.submittedByEmail ?? "-") | \(request.assignedToEmail ?? "-")",
                    detail: anomaly.detail))
        }
        switch decision.action {
        case .unchanged:
            summary.requestsUnchanged += 1
            tenant.contactsSkippedExisting += 1
        case .rejected:
            summary.requestsRejected += 1
            if !ServiceRequestsMapping.newStatuses.contains(request.status) {
                summary.requestsRejectedWithLegacyStatus += 1
            }
            tenant.valuesRejected += 1
        case .update:
            summary.requestsToUpdate += 1
            tenant.contactsWithNumbers += 1
            if let status = decision.newStatus, status != request.status {
                summary.statusesMapped["\(request.status) → \(status)", default: 0] += 1
            }
            for (actor, match) in [
                (decision.submitted, request.submittedMatch), (decision.assigned, request.assignedMatch),
            ] {
                if case .emergent(let email)? = actor,
                    emergent.insert((request.tenant + "\u{1F}" + email).hashValue).inserted
                {
                    summary.contactsToCreate += 1
                    tenant.rowsToInsert += 1
                }
                if let match, match.candidates > 1, case .existing? = actor {
                    let email = actor == decision.submitted ? decision.submittedEmail : decision.assignedEmail
                    let entry =
                        "\(request.tenant): \(email ?? "?") (\(match.candidates) contacts; \(match.key) is used)"
                    if duplicates.insert(entry).inserted { summary.duplicateContacts.append(entry) }
                }
            }
        }
        summary.tenants[request.tenant] = tenant
        sample(decision, request: request)
    }

    private mutating func sample(_ decision: ServiceRequestDecision, request: LegacyServiceRequest) {
        let classes = decision.anomalies.map(\.kind.rawValue)
        guard samples.shows(classes, isPlain: classes.isEmpty) else { return }
        func describe(_ actor: RequestActor?) -> String {
            switch actor {
            case nil: return "none"
            case .existing(let key, let organization)?: return "contact \(key) (organization \(organization ?? "none"))"
            case .emergent(let email)?: return "new contact \(email) (no organization)"
            }
        }
        let after: [String] =
            switch decision.action {
            case .unchanged: ["unchanged"]
            case .rejected(let reason): ["unchanged: \(reason)"]
            case .update:
                [
                    "status = \(decision.newStatus ?? "?")", "submitted by: \(describe(decision.submitted))",
                    "assigned to: \(describe(decision.assigned))",
                ]
            }
        summary.samples.append(
            ContactSample(
                tenant: request.tenant, contactKey: "request \(request.requestKey)",
                legacyValues: [
                    "status": request.status, "submitted_by_email": request.submittedByEmail,
                    "assigned_to_email": request.assignedToEmail,
                ],
                rows: [], after: after, classes: classes.isEmpty ? ["updated"] : classes))
    }

    var finished: ServiceRequestsSummary {
        var result = summary
        result.duplicateContacts.sort()
        return result
    }
}

extension PlanReport {
    public init(
        serviceRequestsSummary summary: ServiceRequestsSummary, mapping: ServiceRequestsMapping,
        generatedAt: Date = Date()
    ) {
        schema = Self.schemaVersion
        let batchSize = mapping.load.batchSize
        header = Header(
            job: ServiceRequestsJob.name, mappingFile: summary.mappingFile, mappingSHA256: summary.mappingSHA256,
            database: summary.database,
            generatedAt: ISO8601DateFormatter().string(from: generatedAt), ferryVersion: FerryVersion.current,
            locks: [
                "advisory lock ferry:\(ServiceRequestsJob.name) (session), so no second apply of this job runs at once",
                "ROW EXCLUSIVE on \(mapping.contacts.table) and \(mapping.requests.table), one transaction per batch (lock_timeout \(mapping.load.lockTimeout.text), statement_timeout \(mapping.load.statementTimeout.text))",
                "FOR UPDATE on the \(mapping.requests.table) rows a batch changes, for the length of that batch",
                "the email columns are read, never changed",
            ],
            batches: (summary.requestsRead + batchSize - 1) / batchSize, batchSize: batchSize,
            estimatedApplySeconds: summary.elapsedSeconds * 3 + 1,
            estimateBasis: String(
                format: "an estimate: this plan took %.1f s to read and decide; writing takes about twice that again",
                summary.elapsedSeconds))
        tables = [
            TableCounts(
                table: mapping.contacts.table.description, insert: summary.contactsToCreate, update: 0, delete: 0,
                unchanged: 0),
            TableCounts(
                table: mapping.requests.table.description, insert: 0, update: summary.requestsToUpdate, delete: 0,
                unchanged: summary.requestsUnchanged + summary.requestsRejected),
        ]
        tenants = summary.tenants.sorted { $0.key < $1.key }.map { TenantRow(tenant: $0.key, counts: $0.value) }
        anomalies = summary.anomalies.map {
            AnomalyClass(name: $0.key, count: $0.value.count, examples: $0.value.examples)
        }
        .sorted { ($0.count, $1.name) > ($1.count, $0.name) }
        customTypesToCreate = []
        samples = summary.samples
        checks = summary.checks
        if !summary.duplicateContacts.isEmpty {
            listings = [
                Listing(
                    title: ServiceRequestsSummary.duplicateContactsTitle,
                    entries: Array(summary.duplicateContacts.prefix(50)), total: summary.duplicateContacts.count)
            ]
        }
        accounting = [
            Accounting(
                sourceTable: mapping.requests.table.description, read: summary.requestsRead,
                toLoad: summary.requestsToUpdate,
                rejected: summary.requestsRejected, skipped: summary.requestsUnchanged,
                unchanged: summary.requestsUnchanged,
                addsUp: summary.accountingAddsUp)
        ]
        changesPending = summary.requestsToUpdate > 0
        statements = summary.applyStatements
        tenantColumns = ["requests", "to update", "contacts to create", "rejected", "unchanged"]
        batchUnit = "requests"
    }
}

extension ServiceRequestsSummaryBuilder: SummaryBuilding {
    mutating func add(_ decision: ServiceRequestDecision, of request: LegacyServiceRequest) {
        add(decision, request: request)
    }
    mutating func finish() -> ServiceRequestsSummary { finished }
}
