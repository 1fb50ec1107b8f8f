/// The parts of the customers and service-requests apply reports that read alike.
enum TableJobTerminalText {
    /// The counts, then each anomaly class (largest first, with two examples; `noun` names the row,
    /// "project" or "request"): every label padded to the longest, every number right-aligned.
    static func counts(
        _ rows: [(label: String, value: Int)], anomalies: [String: CountWithExamples], noun: String
    ) -> [String] {
        let classes = anomalies.sorted { ($0.value.count, $1.key) > ($1.value.count, $0.key) }
        let labelWidth = ((rows.map(\.label) + classes.map(\.key)).map(\.count).max() ?? 0) + 1
        let numberWidth =
            ((rows.map(\.value) + classes.map(\.value.count)).map { formatCount($0).count }.max() ?? 0) + 1
        func row(_ label: String, _ value: Int) -> String {
            "  " + label.padded(labelWidth) + formatCount(value).leftPadded(numberWidth)
        }
        return rows.map { row($0.label, $0.value) }
            + classes.flatMap { name, entry in
                [row(name, entry.count)]
                    + entry.examples.prefix(2).map {
                        "      \($0.tenant)/\(noun) \($0.contactKey) \(quotedRaw($0.raw)) → \($0.detail)\($0.occurrencesText)"
                    }
            }
    }

    static func checks(_ checks: [ConstraintCheck]) -> [String] {
        ["Checks"]
            + checks.map {
                "  \($0.verdict.rawValue) \($0.constraint): \($0.explanationText ?? formatCount($0.violations))"
            }
    }

    static func resources(elapsed: Double, peakMegabytes: Double) -> String {
        String(format: "  elapsed %.1f s, peak memory %.0f MB", elapsed, peakMegabytes)
    }
}
