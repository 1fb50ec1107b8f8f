import Foundation

/// The import's summary as a DBA reads it after a nightly run: what came in, where every row went.
public enum ImportTerminalReport {
    public static func render(_ s: ImportSummary) -> String {
        var lines: [String] = []
        let db = s.database.map { " → \($0.place)" } ?? ""
        // On Citus a dry run stages the file's lines in ferry's distributed tables (emptied at its end).
        let dryRun = s.database?.engine == nil ? "nothing written" : "no application table written"
        lines.append("ferry import\(s.dryRun ? " (dry run: \(dryRun))" : "") \(s.file)\(db)")
        if let engine = s.database?.engine { lines.append("  engine: \(engine)") }
        lines.append(
            "  file: \(formatCount(s.fileBytes)) bytes, sha256 \(s.fileSHA256.prefix(16))…, \(s.encoding), header on line \(s.headerLine)"
                + (s.ignoredColumns.isEmpty ? "" : "; ignored columns: \(s.ignoredColumns.joined(separator: ", "))"))
        let verb = s.dryRun ? "would be " : ""
        lines.append(
            "  rows read \(formatCount(s.rowsRead)) = \(verb)inserted \(formatCount(s.inserted)) + \(verb)updated \(formatCount(s.updated))"
                + " + unchanged \(formatCount(s.unchanged)) + skipped \(formatCount(s.skipped)) + rejected \(formatCount(s.rejected))"
                + (s.addsUp ? "  ✓ adds up" : "  ✗ DOES NOT ADD UP")
                + (s.blankLines > 0 ? "  (blank lines: \(formatCount(s.blankLines)), counted apart)" : ""))
        if !s.tenantsSelected.isEmpty {
            lines.append(
                "  --tenant \(s.tenantsSelected.joined(separator: ", ")): \(formatCount(s.skippedOtherTenants)) row\(s.skippedOtherTenants == 1 ? "" : "s") of other tenants skipped (counted in skipped)"
            )
        }
        lines.append(
            "  phone rows \(s.dryRun ? "to insert" : "inserted") \(formatCount(s.phoneRowsToInsert)); organizations \(s.dryRun ? "to create" : "created") \(formatCount(s.organizationsToCreate)); "
                + "custom phone types \(formatCount(s.customTypesToCreate)); contacts \(s.dryRun ? "to deactivate" : "deactivated") \(formatCount(s.contactsDeactivated))"
        )
        if s.dryRun, let growth = s.estimatedGrowthBytes {
            lines.append(
                "  growth if imported: about \(formatBytes(growth)) of tables, indexes and snapshot rows; WAL about \(formatBytes(growth)) to \(formatBytes(growth * 2))"
            )
        }
        if !s.phoneAnomalies.isEmpty {
            lines.append(
                "  phones: "
                    + s.phoneAnomalies.sorted { $0.key < $1.key }.map { "\($0.key) \(formatCount($0.value))" }.joined(
                        separator: ", "))
        }
        if !s.rejectsByClass.isEmpty {
            lines.append("  rejected, by reason:")
            for (kind, entry) in s.rejectsByClass.sorted(by: { ($0.value.count, $1.key) > ($1.value.count, $0.key) }) {
                lines.append(
                    "    \(kind.padded(24))\(formatCount(entry.count).leftPadded(8))   e.g. \(entry.examples.first.map { "\($0.contactKey): \($0.detail)" } ?? "")"
                )
            }
        }
        if let reject = s.rejectFile {
            lines.append("  rejected lines: \(s.rejected == 0 ? "none (\(reject) has the header only)" : reject)")
        }
        if let earlier = s.resumed {
            lines.append(
                "  resumed: the run's first part committed \(earlier.batches) batch\(earlier.batches == 1 ? "" : "es") through line \(earlier.throughLine) (\(formatCount(earlier.inserted)) inserted, \(formatCount(earlier.updated)) updated); counted above"
            )
        }
        if let file = s.snapshotFile {
            lines.append(
                "  snapshot written to \(file.path) (\(formatCount(file.rows)) rows, sha256 \(file.sha256.prefix(12))…)"
            )
        }
        if let run = s.runId {
            let wrote =
                s.inserted + s.updated + s.contactsDeactivated + s.phoneRowsToInsert + s.organizationsToCreate
                + s.customTypesToCreate > 0
            lines.append(
                "  run \(run), \(s.batches) batch\(s.batches == 1 ? "" : "es")\(s.writers.map { $0 > 1 ? " by \($0) writer sessions" : "" } ?? ""), \(String(format: "%.1f", s.elapsedSeconds)) s, peak RSS \(Int(s.peakResidentMegabytes)) MB; "
                    + (wrote ? "undo with: ferry rollback \(run)" : "nothing was written, so there is nothing to undo"))
        } else {
            lines.append(String(format: "  %.1f s, peak RSS %d MB", s.elapsedSeconds, Int(s.peakResidentMegabytes)))
        }
        return lines.joined(separator: "\n")
    }
}
