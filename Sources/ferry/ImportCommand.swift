import ArgumentParser
import FerryKit
import Foundation

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a contacts CSV file: upsert by tenant and email, phones normalized and merged.",
        discussion: """
            Every data row ends up inserted, updated, unchanged, skipped or rejected, and the summary shows \
            that these add up to the rows read. Rejected rows go to the reject file with their original line \
            number, the reason and their original fields. A file that is not valid CSV (an unbalanced quote, \
            say) is refused before anything is written. The import is a run: `ferry rollback RUN` undoes it.

            Exit codes: 0 every row loaded or unchanged; 4 finished, but some rows were rejected (see the \
            reject file); 2 (--dry-run --detailed-exitcode) changes pending; 1 error (nothing of the failing \
            batch was written), also a --plan refused because something changed since the plan.
            """)

    @Argument(help: "The CSV file.", completion: .file(extensions: ["csv", "tsv", "txt"]))
    var file: String

    @Option(help: ArgumentHelp("The CSV mapping file.", valueName: "file"))
    var mapping: String = "mappings/contacts-csv.yaml"

    @Option(
        help: ArgumentHelp(
            "Import only this tenant's rows (a UUID; repeatable); the others are skipped and counted. A file without a tenant column (or an empty tenant cell) goes to the one tenant given.",
            valueName: "uuid"))
    var tenant: [String] = []

    @Option(
        help: ArgumentHelp("The file's encoding: \(TextEncoding.names). A byte-order mark wins.", valueName: "name"),
        completion: .list(TextEncoding.allCases.map(\.rawValue)))
    var encoding: String?

    @Flag(help: "Read, check and classify every row, write the report and the reject file, and change nothing.")
    var dryRun = false

    @Option(
        help: ArgumentHelp(
            "With --dry-run: also write a plan file that `import FILE --plan` checks against (file bytes, options, data fingerprint).",
            valueName: "file"))
    var out: String?

    @Option(
        help: ArgumentHelp(
            "The approved dry run's plan file: refuse to write if the file, the options, the mapping or the data changed since.",
            valueName: "file"))
    var plan: String?

    @Flag(help: "With --plan: import even if things changed since the plan (the ledger records each change).")
    var allowDrift = false

    @Flag(help: "With --dry-run: exit 2 when changes are pending, 0 when there is nothing to do, 4 with rejected rows.")
    var detailedExitcode = false

    @Option(
        help: ArgumentHelp(
            "What happens to an existing contact whose values differ: update, skip or error (reject the row).",
            valueName: "action"),
        completion: .list(ImportOptions.OnConflict.allCases.map(\.rawValue)))
    var onConflict: String = "update"

    @Flag(help: "Set contacts of the file's tenants that the file does not contain inactive (never deleted).")
    var deactivateMissing = false

    @Option(help: ArgumentHelp("Where rejected rows go (default: FILE.rejects.csv).", valueName: "file"))
    var rejects: String?

    @Option(
        help: ArgumentHelp("Write the review report to this file (.md, .json, .html, else text).", valueName: "file"))
    var report: String?

    @Option(
        help: ArgumentHelp(
            "Writer sessions, each taking its share of the file's contacts by tenant and email (default 1; not with --deactivate-missing, not on Citus; a dry run uses one).",
            valueName: "N"))
    var jobs: Int?

    @OptionGroup var pacing: PacingOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if out != nil, !dryRun { throw ValidationError("--out writes a plan file: it goes with --dry-run") }
        if plan != nil, dryRun {
            throw ValidationError("--plan binds an import to a dry run's plan: not with --dry-run")
        }
        if allowDrift, plan == nil { throw ValidationError("--allow-drift goes with --plan") }
        _ = try WriterOptions.validated(jobs)
        if let reason = ImportOptions.writersRefused(jobs: jobs, deactivateMissing: deactivateMissing) {
            throw ValidationError(reason)
        }
        if pacing.snapshotFile != nil, dryRun {
            throw ValidationError("--snapshot-file: a dry run writes nothing, so it has no snapshot")
        }
    }

    func run() throws {
        try reportingErrors(json: output.json) {
            let job = try JobRegistry.fileImport(mapping: mapping, conninfo: connection.db)
            var options = ImportOptions()
            options.tenants = tenant
            if let encoding {
                guard let value = TextEncoding(name: encoding) else {
                    throw ValidationError("--encoding must be one of \(TextEncoding.names)")
                }
                options.encoding = value
            }
            guard let conflict = ImportOptions.OnConflict(rawValue: onConflict) else {
                throw ValidationError("--on-conflict must be update, skip or error")
            }
            options.onConflict = conflict
            options.dryRun = dryRun
            options.deactivateMissing = deactivateMissing
            options.rejectFile = rejects
            options.jobs = jobs
            options.pacing = try pacing.pacing()
            options.showProgress = output.showProgress
            options.plan = try plan.map(PlanFile.read)
            options.planSHA256 = plan.flatMap(PlanFile.sha256(of:))
            options.allowDrift = allowDrift
            // Beside a report file, every phone anomaly (the report shows a few examples per class).
            if let report, OutputFile.isFileOnDisk(report) {
                options.anomalyFile = PlanReport.anomalyListPath(forReport: report)
            }
            let outcome = try job.importFile(file, options, planFile: out)
            if output.json { try printJSON(outcome.summary) } else { output.printText(outcome.terminalText) }
            if let report { try writeReport(try outcome.report(), to: report, format: nil) }
            if let out { FerryLog.note("plan written to \(out)") }
            if let list = outcome.anomalyFile { FerryLog.note("every phone anomaly written to \(list)") }
            if outcome.rowsRejected > 0 { throw ExitCode(4) }
            if detailedExitcode, dryRun, outcome.changesPending { throw ExitCode(2) }
        }
    }
}

/// Renders a review report in the format its file name (or `--format`) asks for.
func writeReport(_ report: PlanReport, to path: String, format: String?) throws {
    let chosen: PlanReport.Format
    if let format {
        guard let value = PlanReport.Format(rawValue: format) else {
            throw ValidationError(
                "--format must be one of \(PlanReport.Format.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        chosen = value
    } else {
        chosen = PlanReport.Format(path: path)
    }
    try OutputFile.write(try report.render(chosen), to: path)
    FerryLog.note("report written to \(path) (\(chosen.rawValue))")
}
