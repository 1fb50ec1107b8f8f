/// The plan report as plain text, with colour on a terminal.
enum PlanReportText {
    static func render(_ report: PlanReport, colour: Bool) -> String {
        func bold(_ text: String) -> String { colour ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
        func good(_ text: String) -> String { colour ? "\u{1B}[32m\(text)\u{1B}[0m" : text }
        func bad(_ text: String) -> String { colour ? "\u{1B}[31m\(text)\u{1B}[0m" : text }
        var lines: [String] = []
        let header = report.header
        lines.append(bold(report.title))
        lines.append("  \(report.changeNote)")
        for line in report.summaryLines { lines.append("  │ " + line) }
        lines.append("  mapping    \(header.mappingFile) (sha256 \(header.mappingSHA256))")
        lines.append("  database   \(report.databaseText)")
        lines.append("  generated  \(header.generatedAt) by ferry \(header.ferryVersion)")
        lines.append("  apply      \(report.batchesText); \(report.estimateText)")
        for lock in header.locks { lines.append("  lock       \(lock)") }
        lines.append("")
        lines += numberTable(
            bold, title: "Tables", labels: ["insert", "update", "delete", "unchanged"],
            rows: report.tables.map { ($0.table, [$0.insert, $0.update, $0.delete, $0.unchanged]) })
        lines.append("")
        lines += numberTable(
            bold, title: "Tenants", labels: report.tenantLabels,
            rows: report.tenants.map { row in
                (
                    row.label,
                    [
                        row.counts.contactsScanned, row.counts.contactsWithNumbers, row.counts.rowsToInsert,
                        row.counts.valuesRejected, row.counts.contactsSkippedExisting,
                    ]
                )
            })
        lines.append("")
        lines.append(bold("Anomalies"))
        let anomalyWidth = max(44, (report.anomalies.map(\.name.count).max() ?? 0) + 2)
        for anomaly in report.anomalies {
            lines.append("  " + anomaly.name.padded(anomalyWidth) + formatCount(anomaly.count).leftPadded(9))
            for example in anomaly.examples.prefix(3) {
                lines.append(
                    "      \(example.tenant)/\(example.contactKey) \(example.column) \(quotedRaw(example.raw)) → \(example.detail)\(example.occurrencesText)"
                )
            }
        }
        if let organizations = report.organizationsToCreate, !organizations.isEmpty {
            lines.append("")
            lines.append(bold("Organizations to create (\(formatCount(organizations.count)))"))
            for organization in organizations { lines.append("  \(organization)") }
        }
        for listing in report.listings ?? [] {
            lines.append("")
            lines.append(bold("\(listing.title) (\(formatCount(listing.total)))"))
            for entry in listing.entries { lines.append("  \(entry)") }
            if let more = listing.moreText { lines.append("  \(more)") }
        }
        if !report.customTypesToCreate.isEmpty {
            lines.append("")
            lines.append(bold("Custom phone types to create"))
            for label in report.customTypesToCreate { lines.append("  \(label)") }
        }
        lines.append("")
        lines.append(bold("Samples, before → after"))
        for sample in report.samples {
            let legacy = sample.legacyValues.sorted { $0.key < $1.key }.map {
                "\($0.key)=\(shownValue($0.value))"
            }.joined(separator: " ")
            lines.append("  \(sample.tenant)/\(sample.contactKey) [\(sample.classes.joined(separator: ", "))]")
            lines.append("    before  \(legacy)")
            let after = PlanReport.afterLines(sample) { row in
                "\(row.phoneNumber)\(row.extensionDigits.map { " ext. \($0)" } ?? "") \(row.type)\(row.isDefault ? " default" : "") #\(row.displayOrder)"
            }
            for line in after { lines.append("    after   \(line)") }
        }
        lines.append("")
        lines.append(bold("Constraint checks (on the rows to write, before writing)"))
        for check in report.checks {
            let verdict = check.verdict,
                mark =
                    verdict == .held
                    ? good(verdict.rawValue) : verdict == .violated ? bad(verdict.rawValue) : verdict.rawValue
            lines.append(
                "  \(mark) \(check.constraint): \(check.explanationText ?? "\(formatCount(check.violations)) violations")"
                    + (check.examples.isEmpty ? "" : " e.g. \(check.examples.joined(separator: ", "))"))
        }
        lines.append("")
        lines.append(bold("Accounting"))
        for entry in report.accounting {
            lines.append(
                "  \(entry.sourceTable): read \(formatCount(entry.read)) = to load \(formatCount(entry.toLoad)) + rejected "
                    + "\(formatCount(entry.rejected)) + skipped \(formatCount(entry.skipped))\(entry.skippedParts)  "
                    + (entry.addsUp ? good("✓ adds up") : bad("✗ DOES NOT ADD UP")))
        }
        if let statements = report.statements {
            lines.append("")
            lines.append(bold("Appendix: the SQL apply runs (once per session, then per batch)"))
            for statement in statements {
                lines.append(statement.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
            }
        }
        lines.append("")
        lines.append(bold("Sign-off"))
        for line in report.signOffLines { lines.append("  " + line) }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A titled table of counts: names left-aligned, each column as wide as its label (never cut) or its
    /// widest number, so the labels stand over their numbers whatever the names' lengths.
    private static func numberTable(
        _ bold: (String) -> String, title: String, labels: [String], rows: [(name: String, counts: [Int])]
    ) -> [String] {
        let cells = rows.map { $0.counts.map(formatCount) }
        let widths = labels.indices.map { column in
            max(labels[column].count, cells.map { $0[column].count }.max() ?? 0) + 2
        }
        let nameWidth = max(38, (rows.map(\.name.count).max() ?? 0) + 2)
        return [bold(title.padded(nameWidth + 2)) + zip(labels, widths).map { $0.leftPadded($1) }.joined()]
            + zip(rows, cells).map { row, cells in
                "  " + row.name.padded(nameWidth) + zip(cells, widths).map { $0.leftPadded($1) }.joined()
            }
    }
}

/// A terminal report's "label  count" line: the label in 45 columns, the count right-aligned in 9 more.
func countRow(_ label: String, _ value: Int) -> String { "  " + label.padded(45) + formatCount(value).leftPadded(9) }

/// A legacy value as reports show it: quoted, or a bare NULL, which no quoted text can be mistaken for.
func shownValue(_ value: String?) -> String { value.map(quotedRaw) ?? "NULL" }

func quotedRaw(_ raw: String) -> String {
    "\"" + raw.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r") + "\""
}

extension String {
    /// The text and at least one space, left-aligned in `width` columns.
    public func padded(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }

    func leftPadded(_ width: Int) -> String {
        count >= width ? " " + self : String(repeating: " ", count: width - count) + self
    }
}
