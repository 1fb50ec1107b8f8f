import Foundation

/// What an import read, decided and (unless a dry run) wrote. Every data row of the file is in
/// exactly one of inserted, updated, unchanged, skipped or rejected; blank lines are counted apart.
public struct ImportSummary: Codable, Sendable {
    public struct RejectExample: Codable, Equatable, Sendable {
        public let line: Int
        public let reason: String
    }

    public struct Sample: Codable, Equatable, Sendable {
        public let line: Int
        public let action: String
        public let tenant: String
        public let email: String
        public let fullName: String
        public let changed: [String]
        public let phones: [ContactSample.Row]
    }

    public var dryRun: Bool
    public var file: String
    public var fileSHA256 = ""
    public var fileBytes = 0
    public var encoding = ""
    public var mappingFile: String
    public var mappingSHA256: String
    public var database: ConnectionInfo?
    public var onConflict: String
    public var headerLine = 0
    /// `--tenant`: the tenants whose rows were imported (empty: every tenant in the file).
    public var tenantsSelected: [String] = []
    public var deactivateMissing = false
    public var ignoredColumns: [String] = []

    public var rowsRead = 0
    public var blankLines = 0
    public var inserted = 0
    public var updated = 0
    public var unchanged = 0
    /// Existing contacts that differ, left alone because of `--on-conflict skip`, and rows of tenants
    /// `--tenant` did not select (`skippedOtherTenants` of them).
    public var skipped = 0
    public var skippedOtherTenants = 0
    public var rejected = 0
    public var rejectsByClass: [String: CountWithExamples] = [:]
    public var rejectExamples: [RejectExample] = []

    public var phoneRowsToInsert = 0
    public var organizationsToCreate = 0
    public var customTypesToCreate = 0
    public var contactsDeactivated = 0
    public var phoneAnomalies: [String: Int] = [:]
    /// Per class of `phoneAnomalies`, up to five distinct examples, each with how often it occurred.
    public var phoneAnomalyExamples: [String: [ValueExample]] = [:]
    /// (--report FILE) Every phone anomaly of the lines written, one per row: FILE.anomalies.csv.
    public var anomalyFile: String?
    /// What the run's rows take on disk (tables, indexes, snapshot rows), and how that was estimated.
    public var estimatedGrowthBytes: Int?
    public var growthBasis: [String] = []
    public var samples: [Sample] = []

    /// Per tenant: rows read, inserted, updated, rejected, unchanged or skipped (in `TenantCounts`' five
    /// fields, in that order; `PlanReport` labels them). Lines rejected before their tenant was read are
    /// under `ImportSummary.unknownTenant`.
    public var tenants: [String: TenantCounts] = [:]
    public static let unknownTenant = "(rejected before its tenant was read)"

    public var rejectFile: String?
    public var runId: Int64?
    public var batches = 0
    /// The sessions that wrote the file's lines (`--jobs`; nil in summaries from before it).
    public var writers: Int?
    public var elapsedSeconds = 0.0
    public var peakResidentMegabytes = 0.0

    /// What an interrupted earlier part of this run committed: the resumed run started after its last
    /// line and took that part's counts (above) from the ledger.
    public struct EarlierPart: Codable, Equatable, Sendable {
        public let batches: Int
        public let throughLine: Int
        public let inserted: Int
        public let updated: Int
    }
    public var resumed: EarlierPart?
    /// (--snapshot-file) The file the run's snapshot was written to.
    public var snapshotFile: SnapshotFile.Written?
    /// The SQL a real import runs, for the report's appendix.
    public var applyStatements: [String]?

    public var addsUp: Bool { rowsRead == inserted + updated + unchanged + skipped + rejected }
    public var changes: Int { inserted + updated + contactsDeactivated }

    init(dryRun: Bool, file: String, mapping: ContactsCSVMapping, onConflict: String) {
        self.dryRun = dryRun
        self.file = file
        self.mappingFile = mapping.file
        self.mappingSHA256 = mapping.sha256
        self.onConflict = onConflict
    }

    /// Counts a rejected line under its class (the reason's text before the first ": "); `raw` is the
    /// line's fields as read, for the report's examples.
    mutating func reject(line: Int, reason: String, raw: String, tenant: String?) {
        rejected += 1
        tenants[tenant ?? Self.unknownTenant, default: TenantCounts()].contactsScanned += 1
        tenants[tenant ?? Self.unknownTenant, default: TenantCounts()].valuesRejected += 1
        let kind = reason.split(separator: ":", maxSplits: 1).first.map(String.init) ?? reason
        rejectsByClass[kind, default: CountWithExamples()].add(
            ValueExample(tenant: tenant ?? "", contactKey: "line \(line)", column: "", raw: raw, detail: reason))
        if rejectExamples.count < 20 { rejectExamples.append(RejectExample(line: line, reason: reason)) }
    }
}

extension TenantCounts {
    /// An import line's outcome in the five per-tenant fields (see `ImportSummary.tenants`).
    mutating func count(_ action: ImportAction) {
        contactsScanned += 1
        switch action {
        case .insert: contactsWithNumbers += 1
        case .update: rowsToInsert += 1
        case .unchanged, .skip, .reject: contactsSkippedExisting += 1
        }
    }
}
