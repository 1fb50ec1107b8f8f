import ArgumentParser
import FerryKit
import Foundation

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what `apply` would do, changing nothing.",
        discussion: "Runs the same extract and transform as apply inside a READ ONLY transaction.")

    @Argument(
        help: "The job's mapping file, e.g. mappings/phones.yaml.", completion: .file(extensions: ["yaml", "yml"]))
    var mapping: String

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var scope: ScopeOptions
    @OptionGroup var output: OutputOptions

    @Option(
        help: ArgumentHelp(
            "Also write a plan file that `apply --plan` checks against (mapping, data fingerprint).", valueName: "file")
    )
    var out: String?

    @Option(
        help: ArgumentHelp(
            "Write the review report to this file (format from the extension: .md, .json, .html, else text).",
            valueName: "file"))
    var report: String?

    @Option(
        help: ArgumentHelp(
            "The report's format when the extension does not say: terminal, markdown, json or html.",
            valueName: "format"),
        completion: .list(PlanReport.Format.allCases.map(\.rawValue)))
    var format: String?

    @Flag(help: "Exit 2 when changes are pending, 0 when there is nothing to do (1 is an error), like terraform.")
    var detailedExitcode = false

    func run() throws {
        try reportingErrors(json: output.json) {
            let job = try JobRegistry.job(mapping: mapping, conninfo: connection.db)
            var settings = scope.settings(output)
            // Beside a report file, every anomaly (the report shows a few examples per class).
            if let report, OutputFile.isFileOnDisk(report), job.writesAnomalyList {
                settings.anomalyFile = PlanReport.anomalyListPath(forReport: report)
            }
            var plan = try job.plan(settings, planFile: out)
            try plan.report.nameTenants(from: job.tenantNames, using: try PostgresConnection(conninfo: connection.db))
            // --json and --report x.json are one document: the report, whatever the job.
            if output.json {
                print(try plan.report.render(.json), terminator: "")
            } else {
                output.printText(plan.terminalText(output.useColour))
            }
            if let report { try writeReport(plan.report, to: report, format: format) }
            if let out { FerryLog.note("plan written to \(out)") }
            if let list = settings.anomalyFile {
                FerryLog.note("every anomaly written to \(list)")
            }
            try refuseIfViolationsArePredicted(plan.predictedViolations)
            if detailedExitcode && plan.changesPending { throw ExitCode(2) }
        }
    }

    /// A plan whose own checks find rows the target's constraints refuse is not a plan to approve:
    /// apply would stop at the first batch holding one. Exit 6, whatever the other flags.
    private func refuseIfViolationsArePredicted(_ violated: [ConstraintCheck]) throws {
        guard !violated.isEmpty else { return }
        let list = violated.map { "\($0.constraint): \(formatCount($0.violations))" }.joined(separator: "; ")
        FerryLog.logger.error(
            """
            the plan predicts rows that break the target's constraints (\(list)); apply would fail on them. \
            Fix the data or the mapping, then plan again.
            """)
        throw ExitCode(6)
    }
}

/// Which part of the data a run covers.
struct ScopeOptions: ParsableArguments {
    @Option(
        name: .customLong("tenant"),
        help: ArgumentHelp("Only this tenant (repeat for several; default: every tenant).", valueName: "id"))
    var tenants: [String] = []

    func settings(_ output: OutputOptions) -> RunSettings {
        var settings = RunSettings()
        settings.showProgress = output.showProgress
        settings.tenants = tenants
        return settings
    }
}
