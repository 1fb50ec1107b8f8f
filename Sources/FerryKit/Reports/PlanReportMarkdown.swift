/// The plan report as Markdown, for a ticket or a pull request.
enum PlanReportMarkdown {
    static func render(_ report: PlanReport) -> String {
        let header = report.header
        var out = "# \(report.title)\n\n\(report.changeNote)\n\n"
        out += report.summaryLines.map { "> \(cell($0))  \n" }.joined() + "\n"
        out += "| | |\n|---|---|\n"
        out += "| mapping | `\(cell(header.mappingFile))` (sha256 `\(header.mappingSHA256)`) |\n"
        out += "| database | \(cell(report.databaseText)) |\n"
        out += "| generated | \(header.generatedAt) by ferry \(header.ferryVersion) |\n"
        out += "| apply | \(report.batchesText) |\n"
        out += "| duration | \(cell(report.estimateText)) |\n"
        out += "| locks | \(header.locks.map(cell).joined(separator: "<br>")) |\n\n"
        out += "## Tables\n\n| table | insert | update | delete | unchanged |\n|---|---:|---:|---:|---:|\n"
        for table in report.tables {
            out +=
                "| `\(cell(table.table))` | \(formatCount(table.insert)) | \(formatCount(table.update)) | \(formatCount(table.delete)) | \(formatCount(table.unchanged)) |\n"
        }
        out +=
            "\n## Tenants\n\n| tenant | " + report.tenantLabels.joined(separator: " | ")
            + " |\n|---|---:|---:|---:|---:|---:|\n"
        for row in report.tenants {
            let c = row.counts
            out +=
                "| \(row.name.map { "\(cell($0)) " } ?? "")`\(cell(row.tenant))` | \(formatCount(c.contactsScanned)) | \(formatCount(c.contactsWithNumbers)) | \(formatCount(c.rowsToInsert)) | \(formatCount(c.valuesRejected)) | \(formatCount(c.contactsSkippedExisting)) |\n"
        }
        out += "\n## Anomalies\n\n| class | count | examples |\n|---|---:|---|\n"
        for anomaly in report.anomalies {
            let examples = anomaly.examples.prefix(3).map {
                "`\(cell($0.contactKey))` \(cell(quotedRaw($0.raw))) → \(cell($0.detail))\($0.occurrencesText)"
            }
            out += "| \(cell(anomaly.name)) | \(formatCount(anomaly.count)) | \(examples.joined(separator: "<br>")) |\n"
        }
        if let organizations = report.organizationsToCreate, !organizations.isEmpty {
            out +=
                "\n## Organizations to create (\(formatCount(organizations.count)))\n\n"
                + organizations.map { "- \(cell($0))\n" }.joined()
        }
        for listing in report.listings ?? [] {
            out +=
                "\n## \(cell(listing.title)) (\(formatCount(listing.total)))\n\n"
                + listing.entries.map { "- \(cell($0))\n" }.joined() + (listing.moreText.map { "- \($0)\n" } ?? "")
        }
        if !report.customTypesToCreate.isEmpty {
            out +=
                "\n## Custom phone types to create\n\n" + report.customTypesToCreate.map { "- \(cell($0))\n" }.joined()
        }
        out += "\n## Samples, before → after\n\n| contact | why | before | after |\n|---|---|---|---|\n"
        for sample in report.samples {
            let before = sample.legacyValues.sorted { $0.key < $1.key }.map {
                "\($0.key): \(cell(shownValue($0.value)))"
            }
            let after = PlanReport.afterLines(sample) {
                "\($0.phoneNumber)\($0.extensionDigits.map { " ext. \($0)" } ?? "") \($0.type)\($0.isDefault ? " **default**" : "")"
            }.map(cell)
            out +=
                "| `\(cell(sample.tenant))/\(cell(sample.contactKey))` | \(cell(sample.classes.joined(separator: ", "))) | \(before.joined(separator: "<br>")) | \(after.joined(separator: "<br>")) |\n"
        }
        out += "\n## Constraint checks\n\n| constraint | violations |\n|---|---:|\n"
        for check in report.checks {
            out += "| \(cell(check.constraint)) | \(check.explanationText.map(cell) ?? String(check.violations)) |\n"
        }
        out += "\n## Accounting\n\n"
        for entry in report.accounting {
            out +=
                "`\(cell(entry.sourceTable))`: read \(formatCount(entry.read)) = to load \(formatCount(entry.toLoad)) + rejected \(formatCount(entry.rejected)) + skipped \(formatCount(entry.skipped))\(entry.skippedParts) — \(entry.addsUp ? "adds up ✓" : "**DOES NOT ADD UP**")\n"
        }
        if let statements = report.statements {
            out += "\n## Appendix: the SQL apply runs (once per session, then per batch)\n\n"
            out += statements.map { "```sql\n\($0)\n```\n" }.joined(separator: "\n")
        }
        out += "\n## Sign-off\n\n" + report.signOffLines.map { "- \(cell($0))\n" }.joined()
        return out
    }

    /// Text safe inside a Markdown table cell.
    static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}
