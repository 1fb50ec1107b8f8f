/// The parts of the customers and service-requests apply reports that read alike.
enum TableJobTerminalText {
    static func row(_ label: String, _ value: Int) -> String { "  " + label.padded(44) + formatCount(value) }

    /// Each anomaly class, largest first, with two examples; `noun` names the row ("project", "request").
    static func anomalies(_ anomalies: [String: CountWithExamples], noun: String) -> [String] {
        anomalies.sorted { ($0.value.count, $1.key) > ($1.value.count, $0.key) }.flatMap { name, entry in
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
