/// What `ferry apply` prints for the customers job: what was done, the checks on the data after, accounting.
public enum CustomersTerminalReport {
    public static func render(_ summary: CustomersSummary) -> String {
        var lines = ["customers \(summary.mode.rawValue)\(summary.runId.map { ", run \($0)" } ?? "")"]
        var counts: [(label: String, value: Int)] = []
        func row(_ label: String, _ value: Int) { counts.append((label, value)) }
        row("projects read (customer is a contact)", summary.projectsRead)
        row("  linked to an organization", summary.projectsToLink)
        row("  rejected (left unchanged)", summary.projectsRejected)
        row("  already linked", summary.projectsAlreadyLinked)
        if let applied = summary.applied {
            row("organizations created", applied.organizationsCreated)
            row("contacts updated (organization, primary)", applied.contactsUpdated)
            row("projects updated (customer_organization_id)", applied.projectsUpdated)
            row("contact points inserted", applied.contactPointsInserted)
            if applied.projectsGoneSinceRead > 0 {
                row("skipped: a row it needs was deleted", applied.projectsGoneSinceRead)
            }
            if applied.contactPointsNotInserted > 0 {
                row("contact points another writer added first", applied.contactPointsNotInserted)
            }
            row("batches committed", applied.batchesCommitted)
        }
        lines += TableJobTerminalText.counts(counts, anomalies: summary.anomalies, noun: "project")
        lines += TableJobTerminalText.checks(summary.checks)
        lines.append("Accounting")
        let gone = summary.applied?.projectsGoneSinceRead ?? 0
        lines.append(
            "  read \(formatCount(summary.projectsRead)) = linked \(formatCount(summary.projectsToLink)) + rejected "
                + "\(formatCount(summary.projectsRejected)) + already linked \(formatCount(summary.projectsAlreadyLinked))  "
                + (summary.accountingAddsUp ? "✓ adds up" : "✗ DOES NOT ADD UP")
                + (gone > 0 ? " (of the linked, \(formatCount(gone)) deleted since read, left out)" : ""))
        lines.append(
            TableJobTerminalText.resources(
                elapsed: summary.elapsedSeconds, peakMegabytes: summary.peakResidentMegabytes))
        return lines.joined(separator: "\n")
    }
}
