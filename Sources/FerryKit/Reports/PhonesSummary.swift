/// An example a DBA can look up: which contact, which column, what it held, and why it is listed.
public struct ValueExample: Codable, Equatable, Sendable {
    public let tenant: String
    public let contactKey: String
    public let column: String
    public let raw: String
    public let detail: String
}

public struct CountWithExamples: Codable, Equatable, Sendable {
    public var count = 0
    public var examples: [ValueExample] = []
}

/// What a phones run found and did. `plan` fills the predictions; `apply` also fills the `applied` part
/// from what PostgreSQL reported.
public struct PhonesSummary: Codable, Sendable {
    public enum Mode: String, Codable, Sendable { case plan, apply }

    public struct Applied: Codable, Equatable, Sendable {
        public var rowsInserted = 0
        public var contactsInserted = 0
        public var customTypesCreated = 0
        public var batchesCommitted = 0
        /// Contacts that gained phone rows from elsewhere between extract and load: left alone.
        public var contactsSkippedAtLoad = 0
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
    public var rowsToInsert = 0
    public var defaults = 0
    public var rowsByType: [String: Int] = [:]
    public var customTypesToCreate: [String] = []
    public var rejectedByReason: [String: CountWithExamples] = [:]
    public var anomalies: [String: CountWithExamples] = [:]
    public var applied: Applied?
    public var runId: Int64?
    public var resumedAfterBatch: Int?
    public var snapshotFile: SnapshotFile.Written?
    public var elapsedSeconds = 0.0
    /// ferry's own peak resident memory, for the DBA who worries about memory growing with the table.
    public var peakResidentMegabytes = 0.0

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
    static let examplesPerClass = 5

    private(set) var summary: PhonesSummary
    private var knownCustomTypes: Set<String>

    init(summary: PhonesSummary, existingCustomTypes: Set<String>) {
        self.summary = summary
        self.knownCustomTypes = existingCustomTypes
    }

    static func customTypeKey(tenant: String, label: String) -> String { tenant + "\u{1F}" + normalizePhoneLabel(label) }

    mutating func add(_ outcome: PhoneContactOutcome) {
        summary.contactsScanned += 1
        summary.values += outcome.counts
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
               knownCustomTypes.insert(Self.customTypeKey(tenant: row.tenant, label: label)).inserted {
                summary.customTypesToCreate.append("\(row.tenant): \(label)")
            }
        }
        for anomaly in outcome.anomalies {
            let example = ValueExample(tenant: anomaly.tenant, contactKey: anomaly.contactKey, column: anomaly.column,
                                       raw: anomaly.raw, detail: anomaly.detail)
            if anomaly.kind == .rejected, let reason = anomaly.rejectionReason {
                Self.record(example, in: &summary.rejectedByReason[reason.rawValue, default: CountWithExamples()])
            }
            Self.record(example, in: &summary.anomalies[anomaly.kind.rawValue, default: CountWithExamples()])
        }
    }

    private static func record(_ example: ValueExample, in entry: inout CountWithExamples) {
        entry.count += 1
        if entry.examples.count < examplesPerClass { entry.examples.append(example) }
    }
}
