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
            if var job = try tableJob(mapping: mapping, conninfo: connection.db) {
                job.showProgress = output.showProgress
                return try planTableJob(job)
            }
            var job = PhonesJob(mapping: try PhonesMapping.load(path: mapping), conninfo: connection.db)
            job.showProgress = output.showProgress
            // Beside a report file, every anomaly (the report shows a few examples per class).
            if let report, OutputFile.isFileOnDisk(report) {
                job.anomalyFile = PlanReport.anomalyListPath(forReport: report)
            }
            let summary: PhonesSummary
            var planFile: PlanReport.PlanFileReference?
            if let out {
                let plan = try job.planFile()
                planFile = PlanReport.PlanFileReference(path: out, sha256: try plan.write(to: out))
                summary = plan.summary
            } else {
                summary = try job.plan()
            }
            // --json and --report x.json are one document: the report, whatever the job.
            var planReport = PlanReport(summary: summary, mapping: job.mapping)
            planReport.header.planFile = planFile
            try planReport.nameTenants(
                from: job.mapping.report.tenantNames, using: try PostgresConnection(conninfo: connection.db))
            if output.json { print(try planReport.render(.json), terminator: "") } else { try output.print(summary) }
            if let report { try writeReport(planReport, to: report, format: format) }
            if let out { FerryLog.note("plan written to \(out)") }
            if let list = job.anomalyFile { FerryLog.note("every anomaly written to \(list)") }
            try refuseIfViolationsArePredicted(summary.checks)
            if detailedExitcode && summary.rowsToInsert > 0 { throw ExitCode(2) }
        }
    }

    private func planTableJob(_ job: any TableJob) throws {
        guard out == nil else { throw ValidationError("--out: plan files bind apply for the phones job only so far") }
        var planReport = try job.planReport()
        try planReport.nameTenants(from: job.tenantNames, using: try PostgresConnection(conninfo: connection.db))
        if output.json {
            print(try planReport.render(.json), terminator: "")
        } else {
            output.printText(try planReport.render(.terminal, colour: output.useColour))
        }
        if let report { try writeReport(planReport, to: report, format: format) }
        // The table jobs' checks describe what they will leave alone (listed, not merged), not constraints
        // their apply would fail on; only the phones plan's checks are the target's constraints.
        if detailedExitcode && planReport.changesPending { throw ExitCode(2) }
    }

    /// A plan whose own checks find rows the target's constraints refuse is not a plan to approve:
    /// apply would stop at the first batch holding one. Exit 6, whatever the other flags.
    private func refuseIfViolationsArePredicted(_ checks: [ConstraintCheck]) throws {
        let violated = checks.filter { $0.violations > 0 }
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
