/// What `ferry apply` prints for the service-requests job.
public enum ServiceRequestsTerminalReport {
    public static func render(_ summary: ServiceRequestsSummary) -> String {
        var lines = ["service-requests \(summary.mode.rawValue)\(summary.runId.map { ", run \($0)" } ?? "")"]
        var counts: [(label: String, value: Int)] = []
        func row(_ label: String, _ value: Int) { counts.append((label, value)) }
        row("requests read", summary.requestsRead)
        row("  updated", summary.requestsToUpdate)
        row("  rejected (left unchanged)", summary.requestsRejected)
        row("  unchanged (already migrated)", summary.requestsUnchanged)
        if let applied = summary.applied {
            row("contacts created on first sight", applied.contactsCreated)
            row("requests written", applied.requestsUpdated)
            row("batches committed", applied.batchesCommitted)
        }
        lines += TableJobTerminalText.counts(counts, anomalies: summary.anomalies, noun: "request")
        if !summary.duplicateContacts.isEmpty {
            lines.append(
                "\(ServiceRequestsSummary.duplicateContactsTitle): \(formatCount(summary.duplicateContacts.count))")
            for entry in summary.duplicateContacts.prefix(10) { lines.append("  \(entry)") }
            if summary.duplicateContacts.count > 10 {
                lines.append(
                    "  … and \(formatCount(summary.duplicateContacts.count - 10)) more (a plan report lists the first 50)")
            }
        }
        if let constraint = summary.statusConstraint { lines.append("Status constraint: \(constraint)") }
        lines += TableJobTerminalText.checks(summary.checks)
        lines.append("Accounting")
        lines.append(
            "  read \(formatCount(summary.requestsRead)) = updated \(formatCount(summary.requestsToUpdate)) + rejected "
                + "\(formatCount(summary.requestsRejected)) + unchanged \(formatCount(summary.requestsUnchanged))  "
                + (summary.accountingAddsUp ? "✓ adds up" : "✗ DOES NOT ADD UP"))
        lines.append(
            TableJobTerminalText.resources(
                elapsed: summary.elapsedSeconds, peakMegabytes: summary.peakResidentMegabytes))
        return lines.joined(separator: "\n")
    }
}
