import ArgumentParser
import FerryKit
import Foundation

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply a job: write the normalized rows, batch by batch.",
        discussion: """
            The job is the mapping's `job:`. Each batch is one transaction that \
            also records its snapshot (for rollback) and its cursor (for resume). A re-run writes nothing twice: \
            contacts that already have phone rows, projects already linked, requests already migrated are left as \
            they are. If an earlier run of the same mapping was interrupted, apply continues it from its last \
            committed batch. Every job first checks the database as `ferry doctor` does.
            """)

    @Argument(
        help: "The job's mapping file, e.g. mappings/phones.yaml.", completion: .file(extensions: ["yaml", "yml"]))
    var mapping: String

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var scope: ScopeOptions
    @OptionGroup var pacing: PacingOptions
    @OptionGroup var writers: WriterOptions
    @OptionGroup var output: OutputOptions

    @Option(
        help: ArgumentHelp(
            "The approved plan file: refuse to write if the mapping or the data changed since.", valueName: "file"))
    var plan: String?

    @Flag(help: "With --plan: apply even if things changed since the plan (the ledger records each change).")
    var allowDrift = false

    func run() throws {
        try reportingErrors(json: output.json) {
            let job = try JobRegistry.job(mapping: mapping, conninfo: connection.db)
            var options = ApplyOptions()
            options.pacing = try pacing.pacing()
            options.jobs = try writers.count()
            options.plan = try plan.map(PlanFile.read)
            options.planSHA256 = plan.flatMap(PlanFile.sha256(of:))
            options.allowDrift = allowDrift
            try output.print(try job.apply(options, settings: scope.settings(output)))
        }
    }
}

/// How many sessions write (the table jobs; the import has its own --jobs, dividing the file by contact).
struct WriterOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Writer sessions, each taking whole tenants, or slices of a tenant's rows where the job allows it (default 1: one session, in key order).",
            valueName: "N"))
    var jobs: Int?

    func count() throws -> Int? { try Self.validated(jobs) }

    static func validated(_ jobs: Int?) throws -> Int? {
        guard let jobs else { return nil }
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 64") }
        return jobs
    }
}

/// How a writing job paces itself on a live database.
struct PacingOptions: ParsableArguments {
    @Option(help: "Contacts per batch (default: the mapping's load.batch_size, else 5000).")
    var batchSize: Int?

    @Option(help: ArgumentHelp("Pause between batches, e.g. 200ms or 1s.", valueName: "duration"))
    var batchDelay: String?

    @Option(help: ArgumentHelp("Pause while a streaming standby lags more than this, e.g. 5s.", valueName: "duration"))
    var maxReplicaLag: String?

    @Option(help: ArgumentHelp("lock_timeout for each batch (default: the mapping's, else 2s).", valueName: "duration"))
    var lockTimeout: String?

    @Option(
        help: ArgumentHelp(
            "statement_timeout for each batch (default: the mapping's, else 5min).", valueName: "duration"))
    var statementTimeout: String?

    @Flag(help: "If another apply of this job is running, wait for it instead of exiting.")
    var wait = false

    @Option(
        help: ArgumentHelp(
            "Also write the run's snapshot to this file (gzip; FILE.sha256 beside it).", valueName: "path"))
    var snapshotFile: String?

    func pacing() throws -> RunPacing {
        var options = RunPacing()
        if let batchSize {
            guard batchSize > 0 else { throw ValidationError("--batch-size must be a positive number") }
            options.batchSize = batchSize
        }
        if let batchDelay { options.batchDelay = try seconds(batchDelay, "--batch-delay") }
        if let maxReplicaLag { options.maxReplicaLag = try seconds(maxReplicaLag, "--max-replica-lag") }
        if let lockTimeout {
            guard let value = DurationSetting(lockTimeout) else {
                throw ValidationError("--lock-timeout: '\(lockTimeout)' is not a duration such as 2s")
            }
            options.lockTimeout = value
        }
        if let statementTimeout {
            guard let value = DurationSetting(statementTimeout) else {
                throw ValidationError("--statement-timeout: '\(statementTimeout)' is not a duration such as 5min")
            }
            options.statementTimeout = value
        }
        options.wait = wait
        options.snapshotFile = snapshotFile
        return options
    }

    private func seconds(_ text: String, _ flag: String) throws -> Double {
        guard let setting = DurationSetting(text) else {
            throw ValidationError("\(flag): '\(text)' is not a duration such as 500ms or 2s")
        }
        return setting.seconds
    }
}
