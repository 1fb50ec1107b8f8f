/// What a phones run found and did. `plan` fills the predictions; `apply` also fills the `applied` part
/// from what PostgreSQL reported.
public struct PhonesSummary: MigrationSummary, Codable {
    public typealias Mode = RunMode

    public struct Applied: AppliedCounts, Equatable {
        public init() {}
        public var rowsInserted = 0
        public var contactsInserted = 0
        public var customTypesCreated = 0
        public var batchesCommitted = 0
        /// Contacts that gained phone rows from elsewhere, or were deleted, between extract and load: left alone.
        public var contactsSkippedAtLoad = 0
        /// Naive rows rewritten in place, and deleted (no usable number in their value).
        public var naiveRowsReplaced = 0
        public var naiveRowsDeleted = 0
        /// Source rows inserted or changed by others after the run started: a re-run picks them up.
        public var sourceRowsChangedDuringRun = 0
    }

    public var mode: Mode
    public var mappingFile: String
    public var mappingSHA256: String
    public var database: ConnectionInfo?
    public var contactsScanned = 0
    public var contactsWithNumbers = 0
    public var contactsWithoutNumbers = 0
    public var contactsSkippedExisting = 0
    public var values = PhoneValueCounts()
    /// (existing_rows: replace_naive) Naive rows to rewrite in place with a contact's first normalized
    /// number, and naive rows to delete because their value holds no usable number.
    public var naiveRowsToReplace = 0
    public var naiveRowsToDelete = 0
    /// Contacts with a value, by the region their values were read in and where it came from: "GB (lookup)".
    public var contactsByRegion: [String: Int] = [:]
    public var rowsToInsert = 0
    public var defaults = 0
    public var rowsByType: [String: Int] = [:]
    public var customTypesToCreate: [String] = []
    public var rejectedByReason: [String: CountWithExamples] = [:]
    public var anomalies: [String: CountWithExamples] = [:]
    public var tenants: [String: TenantCounts] = [:]
    /// Rows already in each target table (plan): left unchanged.
    public var targetRowsExisting: [String: Int] = [:]
    public var estimatedApplySeconds: Double?
    public var estimateBasis: String?
    public var samples: [ContactSample] = []
    public var checks: [ConstraintCheck] = []
    public var applied: Applied?
    public var runId: Int64?
    public var resumedAfterBatch: Int?
    public var snapshotFile: SnapshotFile.Written?
    public var elapsedSeconds = 0.0
    /// ferry's own peak resident memory, for the DBA who worries about memory growing with the table.
    public var peakResidentMegabytes = 0.0
    /// (plan) What the rows to insert will take in the phone table with its indexes, measured on the
    /// plan's sample load.
    public var estimatedGrowthBytes: Int? = nil
    /// (plan) The SQL apply would run, for the report's appendix.
    public var applyStatements: [String]? = nil
    public var changesPending: Bool { rowsToInsert > 0 }

    /// Contacts: scanned = with numbers + without + skipped. Values: read = loaded + rejected + skipped.
    public var accountingAddsUp: Bool {
        values.addsUp && contactsScanned == contactsWithNumbers + contactsWithoutNumbers + contactsSkippedExisting
    }

    public init(mode: Mode, mappingFile: String, mappingSHA256: String) {
        self.mode = mode
        self.mappingFile = mappingFile
        self.mappingSHA256 = mappingSHA256
    }
}

/// Folds transform outcomes into a summary, keeping a few examples per class.
struct PhonesSummaryBuilder {

    private(set) var summary: PhonesSummary
    private var knownCustomTypes: Set<String>

    init(summary: PhonesSummary, existingCustomTypes: Set<String>) {
        self.summary = summary
        self.knownCustomTypes = existingCustomTypes
    }

    static func customTypeKey(tenant: String, label: String) -> String {
        tenant + "\u{1F}" + normalizePhoneLabel(label)
    }

    private var samples = SampleSelection<SampleClass>()

    mutating func add(_ outcome: PhoneContactOutcome, contact: LegacyPhoneContact, columns: [PhoneSourceColumn]) {
        add(outcome)
        // Contacts arrive grouped by tenant: count into the current tenant, store it when the tenant changes.
        if contact.tenant != currentTenant.name {
            flushTenant()
            currentTenant = (contact.tenant, summary.tenants[contact.tenant] ?? TenantCounts())
        }
        currentTenant.counts.contactsScanned += 1
        currentTenant.counts.rowsToInsert += outcome.rows.count
        currentTenant.counts.valuesRejected += outcome.counts.rejected
        if outcome.counts.skippedExistingPhones > 0 { currentTenant.counts.contactsSkippedExisting += 1 }
        if !outcome.rows.isEmpty { currentTenant.counts.contactsWithNumbers += 1 }
        checkConstraints(outcome)
        sampleIfNew(outcome, contact: contact, columns: columns)
    }

    private var currentTenant: (name: String, counts: TenantCounts) = ("", TenantCounts())

    private mutating func flushTenant() {
        if !currentTenant.name.isEmpty { summary.tenants[currentTenant.name] = currentTenant.counts }
    }

    /// The summary with every tenant's counts stored.
    var finished: PhonesSummary {
        var copy = self
        copy.flushTenant()
        for (key, count) in regions { copy.summary.contactsByRegion["\(key.region) (\(key.origin.rawValue))"] = count }
        return copy.summary
    }

    /// Contacts per region and origin, keyed without building a string for every contact.
    private struct RegionKey: Hashable {
        let region: String
        let origin: RegionOrigin
    }
    private var regions: [RegionKey: Int] = [:]

    /// The class a sample is kept for: a rejection by its reason, any other anomaly by its kind. Compared
    /// for every contact with anomalies, so without building its name.
    private enum SampleClass: Hashable {
        case rejected(PhoneRejectionReason)
        case anomaly(PhoneAnomalyClass)

        init(_ anomaly: PhoneAnomaly) {
            self = anomaly.rejectionReason.map(Self.rejected) ?? .anomaly(anomaly.kind)
        }

        var name: String {
            switch self {
            case .rejected(let reason): "rejected: \(reason.rawValue)"
            case .anomaly(let kind): kind.rawValue
            }
        }
    }

    /// Keeps the first contact (in key order, so the choice is stable) of every anomaly class, and a few plain ones.
    private mutating func sampleIfNew(
        _ outcome: PhoneContactOutcome, contact: LegacyPhoneContact, columns: [PhoneSourceColumn]
    ) {
        let isPlain = outcome.anomalies.isEmpty && !outcome.rows.isEmpty
        guard samples.shows(outcome.anomalies.lazy.map(SampleClass.init), isPlain: isPlain) else { return }
        let classes = Set(outcome.anomalies.map(SampleClass.init)).map(\.name).sorted()
        var legacy: [String: String?] = [:]
        for (column, value) in zip(columns, contact.values) { legacy[column.name] = value }
        summary.samples.append(
            ContactSample(
                tenant: contact.tenant, contactKey: contact.contactKey, legacyValues: legacy,
                rows: outcome.rows.map {
                    ContactSample.Row(
                        phoneNumber: $0.e164, extensionDigits: $0.extensionDigits,
                        type: $0.type.description, isDefault: $0.isDefault,
                        displayOrder: $0.displayOrder)
                },
                classes: classes.isEmpty ? ["no anomaly"] : classes))
    }

    static let checkNames = [
        "one default per contact (unique index … WHERE is_default)",
        "canonical_type IN (work, mobile, home, fax, other) (check)",
        "exactly one of canonical_type / custom type (check)",
        "normalized_label lower-cased, trimmed, not empty (check)",
        "phone_number NOT NULL, E.164 (with ;ext= only where the mapping keeps extensions in the number)",
    ]

    /// The target's constraints, checked on the rows before anything is written.
    private mutating func checkConstraints(_ outcome: PhoneContactOutcome) {
        if summary.checks.isEmpty { summary.checks = Self.checkNames.map { ConstraintCheck(constraint: $0) } }
        func violation(_ index: Int, _ example: String) {
            summary.checks[index].violations += 1
            if summary.checks[index].examples.count < 5 { summary.checks[index].examples.append(example) }
        }
        guard let first = outcome.rows.first else { return }
        let key = "\(first.tenant)/\(first.contactKey)"
        if outcome.rows.filter(\.isDefault).count != 1 { violation(0, key) }
        for row in outcome.rows {
            if case .custom(let label) = row.type {
                let normalized = normalizePhoneLabel(label)
                if normalized.isEmpty || normalized != normalized.lowercased().trimmingWhitespace() {
                    violation(3, "\(key) \(label)")
                }
            } else if row.type.canonical == nil {
                violation(2, key)
            }
            if !isStoredPhoneNumber(row.e164) { violation(4, "\(key) \(row.e164)") }
        }
    }

    mutating func add(_ outcome: PhoneContactOutcome) {
        summary.contactsScanned += 1
        summary.values += outcome.counts
        if outcome.replacesRow != nil {
            if outcome.rows.isEmpty { summary.naiveRowsToDelete += 1 } else { summary.naiveRowsToReplace += 1 }
        }
        if outcome.counts.read > outcome.counts.skippedEmpty {
            regions[RegionKey(region: outcome.region, origin: outcome.regionOrigin), default: 0] += 1
        }
        if outcome.counts.skippedExistingPhones > 0 {
            summary.contactsSkippedExisting += 1
        } else if outcome.rows.isEmpty {
            summary.contactsWithoutNumbers += 1
        } else {
            summary.contactsWithNumbers += 1
        }
        for row in outcome.rows {
            summary.rowsToInsert += 1
            if row.isDefault { summary.defaults += 1 }
            summary.rowsByType[row.type.canonical?.rawValue ?? "custom", default: 0] += 1
            if let label = row.type.customLabel,
                knownCustomTypes.insert(Self.customTypeKey(tenant: row.tenant, label: label)).inserted
            {
                summary.customTypesToCreate.append("\(row.tenant): \(label)")
            }
        }
        for anomaly in outcome.anomalies {
            let example = ValueExample(
                tenant: anomaly.tenant, contactKey: anomaly.contactKey, column: anomaly.column,
                raw: anomaly.raw, detail: anomaly.detail)
            if anomaly.kind == .rejected, let reason = anomaly.rejectionReason {
                Self.record(example, in: &summary.rejectedByReason[reason.rawValue, default: CountWithExamples()])
            }
            Self.record(example, in: &summary.anomalies[anomaly.kind.rawValue, default: CountWithExamples()])
        }
    }

    static func record(_ example: ValueExample, in entry: inout CountWithExamples) {
        entry.add(example)
    }
}
