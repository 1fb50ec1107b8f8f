import Foundation

/// The plan as a DBA reviews it: one model, rendered as terminal text, Markdown, JSON or HTML.
/// The JSON form is this struct; its schema is versioned by `schema` (docs/reports.md).
public struct PlanReport: Codable, Sendable {
    public static let schemaVersion = "ferry-report/1"

    /// What a report describes: only a plan and a dry run changed nothing.
    public enum Kind: String, Codable, Sendable {
        /// `ferry plan`: a READ ONLY transaction.
        case plan
        /// `ferry import --dry-run`: every row read and classified, nothing written.
        case dryRun = "dry run"
        /// A run that wrote (`runId` says which).
        case run
    }

    public struct Header: Codable, Sendable {
        public var kind: Kind = .plan
        /// The run the report describes, for `kind == .run`.
        public var runId: Int64? = nil
        public let job: String
        public let mappingFile: String
        public let mappingSHA256: String
        public let database: ConnectionInfo?
        public let generatedAt: String
        public let ferryVersion: String
        public let locks: [String]
        public let batches: Int
        public let batchSize: Int
        public let estimatedApplySeconds: Double?
        public var estimateBasis: String?
        /// ferry's own peak resident memory while it made this report (plan, dry run or run).
        public var peakResidentMegabytes: Double? = nil
        /// What the written rows take on disk with the table's indexes (measured on a sample load).
        public var estimatedGrowthBytes: Int? = nil
        /// The plan file written with this report (`plan --out`), which `apply --plan` checks.
        public var planFile: PlanFileReference? = nil
    }

    public struct PlanFileReference: Codable, Sendable {
        public let path: String
        public let sha256: String

        public init(path: String, sha256: String) {
            self.path = path
            self.sha256 = sha256
        }
    }

    public struct TableCounts: Codable, Sendable {
        public let table: String
        public let insert: Int
        public let update: Int
        public let delete: Int
        public let unchanged: Int
    }

    public struct TenantRow: Codable, Sendable {
        public let tenant: String
        /// The tenant's name, when the mapping says where names are (`report: tenant_names:`).
        public var name: String? = nil
        public let counts: TenantCounts

        /// "Acme (00000000-…-0001)", or the key alone.
        var label: String { name.map { "\($0) (\(tenant))" } ?? tenant }
    }

    public struct AnomalyClass: Codable, Sendable {
        public let name: String
        public let count: Int
        public let examples: [ValueExample]
    }

    /// `read = toLoad + rejected + skipped`; the optional parts say what "skipped" is made of for each job.
    public struct Accounting: Codable, Sendable {
        public let sourceTable: String
        public let read: Int
        public let toLoad: Int
        public let rejected: Int
        public let skipped: Int
        public var skippedNoValue: Int?
        public var skippedAlreadyHasPhones: Int?
        public var unchanged: Int?
        public var skippedOnConflict: Int?
        /// Blank lines of an input file: counted, outside `read`.
        public var blankLines: Int?
        public let addsUp: Bool

        /// "no value 3, already have phones 5": the parts of `skipped`, as every renderer prints them.
        var skippedParts: String {
            var parts: [String] = []
            if let skippedNoValue { parts.append("no value \(formatCount(skippedNoValue))") }
            if let skippedAlreadyHasPhones {
                parts.append("already have phones \(formatCount(skippedAlreadyHasPhones))")
            }
            if let unchanged { parts.append("unchanged \(formatCount(unchanged))") }
            if let skippedOnConflict {
                parts.append("existing, left by --on-conflict skip \(formatCount(skippedOnConflict))")
            }
            var text = parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")"
            if let blankLines { text += "; blank lines \(formatCount(blankLines)), counted apart" }
            return text
        }
    }

    public let schema: String
    public var header: Header
    public let tables: [TableCounts]
    public var tenants: [TenantRow]
    public let anomalies: [AnomalyClass]
    public let customTypesToCreate: [String]
    public let samples: [ContactSample]
    public let checks: [ConstraintCheck]
    public let accounting: [Accounting]
    public let changesPending: Bool
    /// Labels of the five per-tenant counts when a job's units are not contacts and phone rows.
    public var tenantColumns: [String]? = nil
    /// Every organization the run would create (customers job).
    public var organizationsToCreate: [String]? = nil
    /// Further lists a reviewer reads that are neither anomalies nor checks (service requests: the
    /// contacts that share an email, which the run leaves alone).
    public var listings: [Listing]? = nil
    /// Whether the checks are the target's own constraints, so that a violation makes the apply fail
    /// (the phones job); other jobs' checks describe what the apply would leave. Set by the runner.
    public var checksAreConstraints: Bool? = nil
    /// What one batch holds, when not contacts.
    public var batchUnit: String? = nil
    /// The SQL apply would run (once per session, then per batch), as the appendix a reviewer reads.
    public var statements: [String]? = nil

    /// A titled list: the first entries of `total`.
    public struct Listing: Codable, Equatable, Sendable {
        public let title: String
        public let entries: [String]
        public let total: Int

        /// "… and 12 more" when the list holds fewer than `total`.
        var moreText: String? { total > entries.count ? "… and \(formatCount(total - entries.count)) more" : nil }
    }

    var tenantLabels: [String] {
        tenantColumns ?? ["contacts", "with numbers", "rows to insert", "values rejected", "skipped (have phones)"]
    }

    public enum Format: String, CaseIterable, Sendable {
        case terminal, markdown, json, html

        /// From a file name: .md, .json, .html; anything else is plain text.
        public init(path: String) {
            switch URL(fileURLWithPath: path).pathExtension.lowercased() {
            case "md", "markdown": self = .markdown
            case "json": self = .json
            case "html", "htm": self = .html
            default: self = .terminal
            }
        }
    }

    public func render(_ format: Format, colour: Bool = false) throws -> String {
        switch format {
        case .terminal: return PlanReportText.render(self, colour: colour)
        case .markdown: return PlanReportMarkdown.render(self)
        case .html: return PlanReportHTML.render(self)
        case .json:
            return String(decoding: try JSONEncoder.prettySorted.encode(self), as: UTF8.self) + "\n"
        }
    }

    /// A sample's "after" lines: the job's own description, or its phone rows.
    static func afterLines(_ sample: ContactSample, phoneRow: (ContactSample.Row) -> String) -> [String] {
        if let after = sample.after { return after }
        return sample.rows.isEmpty ? ["(no phone rows)"] : sample.rows.map(phoneRow)
    }

    /// Names the tenants from the table the mapping names; a tenant without a row there keeps its key.
    public mutating func nameTenants(from source: TenantNameSource?, using connection: PostgresConnection) throws {
        guard let source, !tenants.isEmpty else { return }
        let names = Dictionary(
            try connection.query(
                """
                SELECT \(quoteIdentifier(source.key))::text AS tenant, \(quoteIdentifier(source.name))::text AS name
                FROM \(source.table.quoted)
                WHERE \(quoteIdentifier(source.key))::text = ANY ($1::text[]) AND \(quoteIdentifier(source.name)) IS NOT NULL
                """, [textArrayLiteral(tenants.map(\.tenant))]
            ).decoded("tenant names", key: "tenant").map {
                (try $0.required("tenant", as: String.self), try $0.required("name", as: String.self))
            },
            uniquingKeysWith: { first, _ in first })
        for index in tenants.indices { tenants[index].name = names[tenants[index].tenant] }
    }

    /// The report's title: what it is, for which job.
    var title: String {
        switch header.kind {
        case .plan: return "ferry plan: \(header.job)"
        case .dryRun: return "ferry dry run: \(header.job)"
        case .run: return "ferry run \(header.runId.map(String.init) ?? "?"): \(header.job)"
        }
    }

    /// Whether and how the database was changed, said first in every format.
    var changeNote: String {
        switch header.kind {
        case .plan where header.database?.engine != nil:
            // Citus gives no snapshot across its workers: say what the numbers cannot promise.
            return
                "Nothing was changed: the plan ran in READ ONLY transactions. On Citus each worker answered as of its own moment (no snapshot spans the workers): rows the application wrote while the plan ran may be counted on one side of it in one check and on the other in the next."
        case .plan: return "Nothing was changed: the plan ran in a READ ONLY transaction."
        case .dryRun:
            return "Nothing was changed: this was a dry run, which reads and classifies every row and writes none."
        case .run:
            let run = header.runId.map(String.init) ?? "?"
            return changesPending
                ? "This run changed the database as counted below; `ferry rollback \(run)` undoes it."
                : "This run wrote nothing: every row was unchanged, skipped or rejected."
        }
    }

    /// What a reviewer reads first: what changes, how much is rejected, how long, which locks, and
    /// whether the constraints hold.
    var summaryLines: [String] {
        let inserted = tables.map(\.insert).reduce(0, +), updated = tables.map(\.update).reduce(0, +)
        let deleted = tables.map(\.delete).reduce(0, +)
        let touched = tables.filter { $0.insert + $0.update + $0.delete > 0 }.count
        let verb = header.kind == .run ? "changed" : "changes"
        var lines = [
            changesPending || inserted + updated + deleted > 0
                ? "\(verb): \(formatCount(inserted)) rows inserted, \(formatCount(updated)) updated, \(formatCount(deleted)) deleted in \(touched) table\(touched == 1 ? "" : "s")"
                : "\(verb): none"
        ]
        let read = accounting.map(\.read).reduce(0, +), rejected = accounting.map(\.rejected).reduce(0, +)
        let share = read > 0 ? String(format: "%.1f%%", Double(rejected) * 100 / Double(read)) : "0%"
        lines.append(
            "rejected: \(formatCount(rejected)) of \(formatCount(read)) read (\(share))"
                + (accounting.allSatisfy(\.addsUp) ? ", every one accounted for" : ", THE COUNTS DO NOT ADD UP"))
        if header.kind != .run {
            lines.append(
                "duration: "
                    + (header.estimatedApplySeconds.map { "about \(formatDuration($0)) (the basis is below)" }
                        ?? "no estimate"))
        }
        if let growth = header.estimatedGrowthBytes {
            // Inserts log about what they write; full-page images after a checkpoint can double it.
            lines.append(
                "growth: about \(formatBytes(growth)) of table and indexes; WAL about \(formatBytes(growth)) to \(formatBytes(growth * 2))"
            )
        }
        lines.append("locks: " + Self.lockSummary(header.locks))
        let violated = checks.filter { $0.violations > 0 }.count,
            unchecked = checks.filter { $0.notChecked != nil }.count
        lines.append(
            checks.isEmpty
                ? "constraint checks: none for this job"
                : violated > 0
                    ? "constraint checks: \(violated) VIOLATED of \(checks.count) "
                        + (checksAreConstraints == true ? "(apply would fail)" : "(see below)")
                    : "constraint checks: \(checks.count - unchecked) held\(unchecked > 0 ? ", \(unchecked) not checked (see below)" : "")"
        )
        return lines
    }

    /// "4 (advisory lock ferry:phones (session), and 3 more listed below)": each lock's text leads with
    /// what it locks, up to its first comma; the reason after it is for the full list.
    static func lockSummary(_ locks: [String]) -> String {
        guard let first = locks.first else { return "none" }
        let lead = first.range(of: ", ").map { String(first[..<$0.lowerBound]) } ?? first
        let more = locks.count > 1 ? ", and \(locks.count - 1) more listed below" : ""
        return "\(locks.count) (\(lead)\(more))"
    }

    /// The block a reviewer fills in; it names what the signature approves.
    var signOffLines: [String] {
        let binding =
            header.planFile.map { "plan file \($0.path), sha256 \($0.sha256) (apply --plan refuses anything else)" }
            ?? "no plan file: this report binds no apply (write one with plan --out)"
        return [
            "approves: \(binding)", "mapping sha256: \(header.mappingSHA256)", "reviewed by: ______________________",
            "date: ______________",
        ]
    }

    var estimateText: String {
        guard let seconds = header.estimatedApplySeconds else { return "no estimate" }
        return "about \(formatDuration(seconds)) (\(header.estimateBasis ?? "an estimate"))"
    }

    var batchesText: String {
        "\(formatCount(header.batches)) batch\(header.batches == 1 ? "" : "es") of \(formatCount(header.batchSize)) \(batchUnit ?? "contacts"), one transaction each"
    }

    var databaseText: String {
        header.database?.placeAndServer ?? "-"
    }
}

/// 1.2 MB, 340 kB: for estimates.
func formatBytes(_ bytes: Int) -> String {
    let value = Double(bytes)
    if value >= 1e9 { return String(format: "%.1f GB", value / 1e9) }
    if value >= 1e6 { return String(format: "%.1f MB", value / 1e6) }
    return String(format: "%.0f kB", value / 1e3)
}

extension PlanReport {
    /// Where `ferry plan --report FILE` writes every anomaly: FILE.anomalies.csv beside the report.
    public static func anomalyListPath(forReport report: String) -> String {
        URL(fileURLWithPath: report).deletingPathExtension().path + ".anomalies.csv"
    }
}
