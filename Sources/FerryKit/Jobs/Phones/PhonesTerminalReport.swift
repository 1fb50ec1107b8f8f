/// The phones summary as plain text for a terminal or a log.
public enum PhonesTerminalReport {
    public static func render(_ summary: PhonesSummary, colour: Bool = false) -> String {
        var lines: [String] = []
        func heading(_ text: String) -> String { colour ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
        let title = summary.mode == .plan ? "ferry plan: phones (nothing was changed)" : "ferry apply: phones"
        lines.append(title)
        lines.append("  mapping   \(summary.mappingFile) (sha256 \(summary.mappingSHA256.prefix(12))…)")
        if let db = summary.database {
            lines.append("  database  \(db.placeAndServer)")
        }
        lines.append("")
        lines.append(heading("Contacts"))
        lines.append(countRow("scanned", summary.contactsScanned))
        lines.append(countRow("with numbers", summary.contactsWithNumbers))
        lines.append(countRow("without a usable number", summary.contactsWithoutNumbers))
        lines.append(countRow("skipped, already have phone rows", summary.contactsSkippedExisting))
        if summary.naiveRowsToReplace + summary.naiveRowsToDelete > 0 {
            lines.append(countRow("naive rows replaced in place", summary.naiveRowsToReplace))
            lines.append(countRow("naive rows deleted (no usable number)", summary.naiveRowsToDelete))
        }
        // Only worth a section when the region is not simply the default for everyone.
        if summary.contactsByRegion.keys.contains(where: { !$0.hasSuffix("(default)") }) {
            lines.append("")
            lines.append(heading("Contacts with values, by region (where the region came from)"))
            for (region, count) in summary.contactsByRegion.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }) {
                lines.append(countRow(region, count))
            }
        }
        lines.append("")
        let verb = summary.mode == .plan ? "to insert" : "transformed"
        lines.append(heading("Phone rows \(verb)"))
        lines.append(countRow("total", summary.rowsToInsert))
        for type in CanonicalPhoneType.allCases.map(\.rawValue) + ["custom"] {
            if let count = summary.rowsByType[type] { lines.append(countRow("  \(type)", count)) }
        }
        lines.append(countRow("defaults (one per contact)", summary.defaults))
        lines.append(countRow("custom types to create", summary.customTypesToCreate.count))
        for label in summary.customTypesToCreate.prefix(10) { lines.append("      \(label)") }
        if let applied = summary.applied {
            lines.append("")
            lines.append(
                heading(
                    "Done in the database" + (summary.runId.map { " (run \($0)" } ?? "")
                        + (summary.resumedAfterBatch.map { ", resumed after batch \($0))" }
                            ?? (summary.runId == nil ? "" : ")"))))
            lines.append(countRow("phone rows inserted", applied.rowsInserted))
            if applied.naiveRowsReplaced + applied.naiveRowsDeleted > 0 {
                lines.append(countRow("naive rows replaced in place", applied.naiveRowsReplaced))
                lines.append(countRow("naive rows deleted (no usable number)", applied.naiveRowsDeleted))
            }
            lines.append(countRow("contacts given phones", applied.contactsInserted))
            lines.append(countRow("custom types created", applied.customTypesCreated))
            lines.append(countRow("batches committed", applied.batchesCommitted))
            if let file = summary.snapshotFile {
                lines.append(
                    "  snapshot file \(file.path) (\(formatCount(file.rows)) rows, sha256 \(file.sha256.prefix(12))…, see \(file.path).sha256)"
                )
            }
            if applied.sourceRowsChangedDuringRun > 0 {
                lines.append(
                    countRow(
                        "source rows changed by others during the run (a re-run picks them up)",
                        applied.sourceRowsChangedDuringRun))
            }
            if applied.contactsSkippedAtLoad > 0 {
                lines.append(
                    countRow("skipped at load: got phones, or deleted", applied.contactsSkippedAtLoad))
            }
        }
        if !summary.rejectedByReason.isEmpty {
            lines.append("")
            lines.append(heading("Values rejected (left as they are in the legacy column)"))
            for (reason, entry) in summary.rejectedByReason.sorted(by: {
                $0.value.count > $1.value.count || ($0.value.count == $1.value.count && $0.key < $1.key)
            }) {
                lines.append(countRow(reason, entry.count))
                for example in entry.examples.prefix(3) {
                    lines.append(
                        "      \(example.tenant)/\(example.contactKey) \(example.column): \(quotedRaw(example.raw))\(example.occurrencesText)"
                    )
                }
            }
        }
        let otherAnomalies = summary.anomalies.filter { $0.key != PhoneAnomalyClass.rejected.rawValue }
        if !otherAnomalies.isEmpty {
            lines.append("")
            lines.append(heading("Anomalies"))
            for (kind, entry) in otherAnomalies.sorted(by: { $0.key < $1.key }) {
                lines.append(countRow(kind, entry.count))
                for example in entry.examples.prefix(2) {
                    lines.append(
                        "      \(example.tenant)/\(example.contactKey) \(quotedRaw(example.raw)) → \(example.detail)\(example.occurrencesText)"
                    )
                }
            }
        }
        let values = summary.values
        lines.append("")
        lines.append(heading("Accounting (values of mapped columns)"))
        lines.append(
            "  read \(formatCount(values.read)) = loaded \(formatCount(values.loaded)) + rejected \(formatCount(values.rejected))"
                + " + skipped \(formatCount(values.skipped)) (no value \(formatCount(values.skippedEmpty)),"
                + " contact already has phones \(formatCount(values.skippedExistingPhones)))"
                + (summary.accountingAddsUp
                    ? (colour ? "  \u{1B}[32m✓ adds up\u{1B}[0m" : "  ✓ adds up")
                    : (colour ? "  \u{1B}[31m✗ DOES NOT ADD UP\u{1B}[0m" : "  ✗ DOES NOT ADD UP")))
        lines.append(
            "  elapsed \(formatDuration(summary.elapsedSeconds)) (\(String(format: "%.1f", summary.elapsedSeconds)) s),"
                + " peak memory \(String(format: "%.0f", summary.peakResidentMegabytes)) MB")
        return lines.joined(separator: "\n")
    }
}
