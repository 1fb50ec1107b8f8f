/// `ferry runs` as a table, like `flyway info`: one line a run, numbers grouped, times to the second.
public enum RunsListing {
    public static func render(_ runs: [RunRecord]) -> String {
        let header = [
            "run", "job", "mode", "status", "started (UTC)", "duration", "inserted", "updated", "deleted",
            "rollback of", "mapping",
        ]
        let rows = runs.map { run -> [String] in
            [
                String(run.runId), run.job, run.mode, run.status.replacingOccurrences(of: "_", with: " "),
                run.startedAt.prefix(19).replacingOccurrences(of: "T", with: " "), duration(run.durationSeconds),
                formatCount(run.rowsInserted), formatCount(run.rowsUpdated), formatCount(run.rowsDeleted),
                run.rollbackOf.map(String.init) ?? "", run.mappingFile,
            ]
        }
        let numeric: Set<Int> = [0, 5, 6, 7, 8, 9]
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        // Exactly to the column's width (`padded` keeps a space after a label that fills it).
        func line(_ cells: [String]) -> String {
            cells.indices.map { column in
                let fill = String(repeating: " ", count: widths[column] - cells[column].count)
                return column == cells.count - 1
                    ? cells[column] : numeric.contains(column) ? fill + cells[column] : cells[column] + fill
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    /// 0.4 s, 12 s, 3 min 05 s, 2 h 01 min.
    public static func duration(_ seconds: Double) -> String {
        if seconds < 10 { return String(format: "%.1f s", seconds) }
        let whole = Int(seconds.rounded())
        if whole < 60 { return "\(whole) s" }
        if whole < 3600 { return "\(whole / 60) min \(String(format: "%02d", whole % 60)) s" }
        return "\(whole / 3600) h \(String(format: "%02d", whole % 3600 / 60)) min"
    }
}
