/// `ferry rollback`'s terminal text: what was (or would be) undone per table, the conflicts, and a last
/// line that says exactly what state the run is in now.
public enum RollbackText {
    public static func render(_ report: RollbackReport) -> String {
        let run = report.runId
        if report.nothingToUndo {
            return "run \(run) wrote no rows: there is nothing to undo (nothing was changed)."
        }
        var lines = [
            report.dryRun
                ? "ferry rollback \(run) --dry-run (nothing was changed)"
                : "ferry rollback \(run) (recorded as run \(report.rollbackRunId.map(String.init) ?? "?"))"
        ]
        func row(_ label: String, _ value: Int) {
            lines.append("    " + label.padded(40) + formatCount(value).leftPadded(12))
        }
        for table in report.tables {
            lines.append("  \(table.table)")
            row(report.dryRun ? "to undo" : "undone", report.dryRun ? table.unchanged : table.undone)
            row("changed since the run (conflicts)", table.changedSince)
            row("already gone", table.alreadyGone)
            if table.stillReferenced > 0 { row("still referenced by newer rows", table.stillReferenced) }
            if table.keptForInvariant > 0 { row("kept: a contact would lose its default", table.keptForInvariant) }
            if table.cannotGoBack > 0 { row("cannot go back (conflicts, below)", table.cannotGoBack) }
            if table.restoredOtherwise > 0 { row("restored, but changed by triggers", table.restoredOtherwise) }
            if table.triggersDisabled {
                lines.append(
                    "    BEFORE triggers disabled while restoring: \(table.beforeTriggers.joined(separator: ", "))")
            }
        }
        for conflict in report.conflicts.prefix(20) { lines.append("  conflict: \(conflict)") }
        if report.conflicts.count > 20 { lines.append("  … and \(report.conflicts.count - 20) more") }
        for table in report.notRestoredExactly { lines.append("  not exact: \(table)") }
        let leaveConflicts = !report.conflicts.isEmpty && !report.force
        if report.dryRun {
            lines.append(
                leaveConflicts
                    ? "a rollback would leave \(report.conflicts.count) conflict\(report.conflicts.count == 1 ? "" : "s") alone (--force undoes them too)."
                    : report.notRestoredExactly.isEmpty
                        ? "a rollback would undo run \(run) completely."
                        : "a rollback would undo run \(run), but not exactly: triggers would change restored rows (above)."
            )
        } else {
            lines.append(
                !report.complete
                    ? "run \(run) is partially rolled back: conflicts are left alone (use --force to undo them too)."
                    : report.notRestoredExactly.isEmpty
                        ? "run \(run) is rolled back."
                        : "run \(run) is rolled back, but not exactly: triggers changed restored rows (above).")
        }
        return lines.joined(separator: "\n")
    }
}
