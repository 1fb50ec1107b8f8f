import Foundation

/// What an in-place run found and would do (plan) or did (apply). Every row read is unchanged (already
/// in stored form), rewritten, or unusable (kept or deleted as the mapping says): the counts add up.
public struct PhonesInPlaceSummary: MigrationSummary, Codable {
    public struct Applied: AppliedCounts, Equatable {
        public init() {}
        public var rowsRewritten = 0
        public var rowsAdded = 0
        public var rowsDeleted = 0
        public var customTypesCreated = 0
        /// Rows the application changed between the read and the write: left as they were.
        public var rowsChangedMeanwhile = 0
        public var batchesCommitted = 0
    }

    public let mode: RunMode
    public let mappingFile: String
    public let mappingSHA256: String
    public var database: ConnectionInfo?
    public var contactsRead = 0
    public var rowsRead = 0
    public var rowsUnchanged = 0
    public var rowsToRewrite = 0
    public var rowsToAdd = 0
    public var rowsUnusable = 0
    public var rowsToDelete = 0
    public var anomalies: [String: CountWithExamples] = [:]
    public var rejectedByReason: [String: CountWithExamples] = [:]
    public var contactsByRegion: [String: Int] = [:]
    public var tenants: [String: TenantCounts] = [:]
    public var checks: [ConstraintCheck] = []
    public var applied: Applied?
    public var runId: Int64?
    public var elapsedSeconds = 0.0
    public var peakResidentMegabytes = 0.0
    public var applyStatements: [String]? = nil
    public var snapshotFile: SnapshotFile.Written?

    public var changesPending: Bool { rowsToRewrite + rowsToAdd + rowsToDelete > 0 }
    public var accountingAddsUp: Bool { rowsRead == rowsUnchanged + rowsToRewrite + rowsUnusable }

    init(mode: RunMode, mapping: PhonesMapping) {
        self.mode = mode
        mappingFile = mapping.file
        mappingSHA256 = mapping.sha256
    }
}

struct PhonesInPlaceSummaryBuilder: SummaryBuilding {
    private(set) var summary: PhonesInPlaceSummary

    init(summary: PhonesInPlaceSummary) { self.summary = summary }

    mutating func add(_ decision: InPlaceDecision, of contact: PhoneRowsOfContact) {
        summary.contactsRead += 1
        summary.rowsRead += contact.rows.count
        summary.rowsUnchanged += decision.unchanged
        summary.rowsToRewrite += decision.rewrites.count
        summary.rowsToAdd += decision.additions.count
        summary.rowsUnusable += decision.unusable
        summary.rowsToDelete += decision.deletions.count
        summary.contactsByRegion["\(decision.region) (\(decision.regionOrigin.rawValue))", default: 0] += 1
        var tenant = summary.tenants[contact.tenant] ?? TenantCounts()
        tenant.contactsScanned += 1
        tenant.rowsToInsert += decision.additions.count
        tenant.valuesRejected += decision.unusable
        if !decision.rewrites.isEmpty { tenant.contactsWithNumbers += 1 }
        summary.tenants[contact.tenant] = tenant
        for anomaly in decision.anomalies {
            let example = ValueExample(
                tenant: anomaly.tenant, contactKey: anomaly.contactKey, column: anomaly.column, raw: anomaly.raw,
                detail: anomaly.detail)
            if anomaly.kind == .rejected, let reason = anomaly.rejectionReason {
                PhonesSummaryBuilder.record(
                    example, in: &summary.rejectedByReason[reason.rawValue, default: CountWithExamples()])
            }
            PhonesSummaryBuilder.record(
                example, in: &summary.anomalies[anomaly.kind.rawValue, default: CountWithExamples()])
        }
    }

    mutating func finish() -> PhonesInPlaceSummary { summary }
}

extension PlanReport {
    init(inPlaceSummary summary: PhonesInPlaceSummary, mapping: PhonesMapping, generatedAt: Date = Date()) {
        schema = Self.schemaVersion
        let batchSize = mapping.load.batchSize
        let phones = mapping.phoneNumbers.table
        header = Header(
            job: PhonesMapping.inPlaceJob, mappingFile: summary.mappingFile, mappingSHA256: summary.mappingSHA256,
            database: summary.database, generatedAt: ISO8601DateFormatter().string(from: generatedAt),
            ferryVersion: FerryVersion.current,
            locks: [
                "advisory lock ferry:\(PhonesMapping.inPlaceJob) (session), so no second apply of this job runs at once",
                "ROW EXCLUSIVE on \(phones) and \(mapping.typeDefinitions.table), one transaction per batch (lock_timeout \(mapping.load.lockTimeout.text), statement_timeout \(mapping.load.statementTimeout.text))",
                "FOR UPDATE on the \(phones) rows a batch rewrites or deletes, for the length of that batch",
            ],
            batches: (summary.contactsRead + batchSize - 1) / batchSize, batchSize: batchSize,
            estimatedApplySeconds: summary.elapsedSeconds * 3 + 1,
            estimateBasis: String(
                format: "an estimate: this plan took %.1f s to read and decide; writing takes about twice that again",
                summary.elapsedSeconds))
        tables = [
            TableCounts(
                table: phones.description, insert: summary.rowsToAdd, update: summary.rowsToRewrite,
                delete: summary.rowsToDelete,
                unchanged: summary.rowsUnchanged + summary.rowsUnusable - summary.rowsToDelete)
        ]
        tenants = summary.tenants.sorted { $0.key < $1.key }.map { TenantRow(tenant: $0.key, counts: $0.value) }
        anomalies = summary.anomalies.map {
            AnomalyClass(name: $0.key, count: $0.value.count, examples: $0.value.examples)
        }
        .sorted { ($0.count, $1.name) > ($1.count, $0.name) }
        customTypesToCreate = []
        samples = []
        checks = summary.checks
        var accounting = Accounting(
            sourceTable: "\(phones) (its own rows: the legacy column is gone)", read: summary.rowsRead,
            toLoad: summary.rowsToRewrite, rejected: summary.rowsUnusable, skipped: summary.rowsUnchanged,
            addsUp: summary.accountingAddsUp)
        accounting.unchanged = summary.rowsUnchanged
        self.accounting = [accounting]
        changesPending = summary.changesPending
        statements = summary.applyStatements
        tenantColumns = ["contacts", "rewritten", "rows to add", "unusable", "skipped"]
        batchUnit = "contacts"
    }
}

enum PhonesInPlaceTerminalReport {
    static func render(_ summary: PhonesInPlaceSummary, colour: Bool) -> String {
        func heading(_ text: String) -> String { colour ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
        var lines = [
            summary.mode == .plan
                ? "ferry plan: \(PhonesMapping.inPlaceJob) (nothing was changed)"
                : "ferry apply: \(PhonesMapping.inPlaceJob)",
            "  mapping   \(summary.mappingFile) (sha256 \(summary.mappingSHA256.prefix(12))…)",
        ]
        if let db = summary.database { lines.append("  database  \(db.placeAndServer)") }
        lines += [
            "",
            heading("Phone rows, normalized where they stand"),
            countRow("contacts read", summary.contactsRead), countRow("rows read", summary.rowsRead),
            countRow("already in stored form, unchanged", summary.rowsUnchanged),
            countRow(
                summary.mode == .plan ? "to rewrite in place" : "rewritten in place (planned)", summary.rowsToRewrite),
            countRow("further numbers to add beside them", summary.rowsToAdd),
            countRow("unusable, left as they are", summary.rowsUnusable - summary.rowsToDelete),
            countRow("unusable, deleted (unusable_rows: delete)", summary.rowsToDelete),
        ]
        if !summary.rejectedByReason.isEmpty {
            lines += ["", heading("Unusable values")]
            for (reason, entry) in summary.rejectedByReason.sorted(by: { $0.value.count > $1.value.count }) {
                lines.append(countRow(reason, entry.count))
                for example in entry.examples.prefix(3) {
                    lines.append("      \(example.tenant)/\(example.contactKey): \"\(example.raw)\"")
                }
            }
        }
        if summary.contactsByRegion.keys.contains(where: { !$0.hasSuffix("(default)") }) {
            lines += ["", heading("Contacts by region (where the region came from)")]
            for (region, count) in summary.contactsByRegion.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }) {
                lines.append(countRow(region, count))
            }
        }
        if let applied = summary.applied {
            lines += [
                "", heading("Done in the database" + (summary.runId.map { " (run \($0))" } ?? "")),
                countRow("rows rewritten", applied.rowsRewritten), countRow("rows added", applied.rowsAdded),
                countRow("rows deleted", applied.rowsDeleted),
                countRow("custom types created", applied.customTypesCreated),
                countRow("rows changed by others meanwhile, left alone", applied.rowsChangedMeanwhile),
                countRow("batches committed", applied.batchesCommitted),
            ]
            if let file = summary.snapshotFile {
                lines.append("  snapshot written to \(file.path) (\(formatCount(file.rows)) rows)")
            }
            if let run = summary.runId { lines.append("  undo with: ferry rollback \(run)") }
        }
        lines += [
            "",
            "Accounting: rows read \(formatCount(summary.rowsRead)) = unchanged \(formatCount(summary.rowsUnchanged)) + rewritten \(formatCount(summary.rowsToRewrite)) + unusable \(formatCount(summary.rowsUnusable))  "
                + (summary.accountingAddsUp ? "✓ adds up" : "✗ DOES NOT ADD UP"),
        ]
        return lines.joined(separator: "\n")
    }
}
