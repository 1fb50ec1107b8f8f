/// What `ferry contract` checked, and what it did or why it refused.
public struct ContractReport: Codable, Sendable {
    public let job: String
    public let table: String
    public let columns: [String]
    /// What one row is: contact (phones), project (customers).
    public let rowNoun: String
    public var lastApplyRunId: Int64?
    public var lastApplyFinishedAt: String?
    /// Rows with a non-empty legacy value.
    public var checked = 0
    public var migrated = 0
    public var nothingToMigrate = 0
    public var unmigrated = 0
    /// Unmigrated rows written since the last successful apply.
    public var changedSinceApply = 0
    /// Unmigrated rows named by --accept-rejected.
    public var accepted = 0
    public var acceptedFile: String?
    public var unmigratedFile: String?
    public var examples: [UnmigratedValue] = []
    /// Each failed check, with what to do about it. Empty: the drop may go ahead.
    public var problems: [String] = []
    public var confirmed = false
    public var runId: Int64?
    public var dropped = false
    public var valuesKept = 0
    /// Rows written after the checks and re-checked under the table lock.
    public var rechecked = 0

    public var refused: Bool { !problems.isEmpty }
    public var addsUp: Bool { checked == migrated + nothingToMigrate + unmigrated }

    public func render() -> String {
        var lines = ["contract \(job): drop \(columns.map { "\(table).\($0)" }.joined(separator: ", "))"]
        func row(_ label: String, _ value: String) { lines.append("  " + label.padded(40) + value) }
        row(
            "last successful apply",
            lastApplyRunId.map { "run \($0), finished \(lastApplyFinishedAt ?? "?")" } ?? "none")
        row("\(rowNoun)s with a legacy value", formatCount(checked))
        row("  migrated", formatCount(migrated))
        row("  nothing to migrate (placeholder)", formatCount(nothingToMigrate))
        row("  not migrated", formatCount(unmigrated) + (unmigratedFile.map { " → \($0)" } ?? ""))
        if changedSinceApply > 0 { row("    of which changed since the apply", formatCount(changedSinceApply)) }
        if let acceptedFile { row("    accepted by --accept-rejected", "\(formatCount(accepted)) (\(acceptedFile))") }
        lines.append(
            "  " + (addsUp ? "✓ adds up" : "✗ does not add up")
                + ": \(formatCount(checked)) = \(formatCount(migrated)) + \(formatCount(nothingToMigrate)) + \(formatCount(unmigrated))"
        )
        for example in examples.prefix(10) {
            lines.append(
                "    \(example.row)  \(quotedRaw(example.values))  \(example.reason)\(example.changedSinceApply ? " (changed since the apply)" : "")"
            )
        }
        if rechecked > 0 {
            lines.append(
                "  re-checked under the table lock: \(formatCount(rechecked)) \(rowNoun)s written after the checks")
        }
        if refused {
            lines.append("refused: nothing was dropped")
            lines += problems.map { "  ✗ \($0)" }
        } else if dropped, let runId {
            // More than the rows checked above: a blank value has nothing to migrate but is kept all the same.
            lines.append(
                "dropped in run \(runId); the values of \(formatCount(valuesKept)) \(rowNoun)s kept in the ledger (every one not NULL, blank ones too)"
            )
            lines.append("  undo with: ferry rollback \(runId)   (re-adds the column with its values)")
        } else {
            lines.append("✓ every check passed; nothing dropped yet: run again with --confirm to drop")
        }
        return lines.joined(separator: "\n")
    }
}
