import ArgumentParser
import FerryKit
import Foundation

struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the runs recorded in the ledger (newest first).")

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "How many runs to list.")
    var limit = 50

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        try reportingErrors(json: json) {
            let runs = try RunLedger(connection: try PostgresConnection(conninfo: connection.db)).runs(limit: limit)
            if json { return try printJSON(runs) }
            print(RunsListing.render(runs))
        }
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one run with its events.")

    @Argument(help: "The run id (see `ferry runs`).")
    var runId: Int64

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Print JSON.")
    var json = false

    struct Detail: Encodable {
        let run: RunRecord
        let events: [RunEvent]
    }

    func run() throws {
        try reportingErrors(json: json) {
            let ledger = RunLedger(connection: try PostgresConnection(conninfo: connection.db))
            guard let run = try ledger.run(runId) else { throw LedgerError("there is no run \(runId)") }
            let events = try ledger.events(runId)
            if json { return try printJSON(Detail(run: run, events: events)) }
            print("run \(run.runId): \(run.job) \(run.mode), \(run.status)")
            print("  mapping   \(run.mappingFile) (sha256 \(run.mappingSHA256))")
            print(
                "  by        \(run.databaseUser) (OS user \(run.osUser ?? "?") on \(run.host ?? "?")), ferry \(run.toolVersion)"
            )
            print("  started   \(run.startedAt)")
            print("  finished  \(run.finishedAt ?? "-") (\(RunsListing.duration(run.durationSeconds)))")
            print(
                "  batches   \(formatCount(run.batches)): rows inserted \(formatCount(run.rowsInserted)), updated \(formatCount(run.rowsUpdated)), deleted \(formatCount(run.rowsDeleted))"
            )
            if let of = run.rollbackOf { print("  rolls back run \(of)") }
            if let error = run.error { print("  error     \(error)") }
            print("  events")
            for event in events { print("    \(event.at)  \(event.kind)  \(event.detail.compactText)") }
        }
    }
}

struct RollbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Undo one run exactly: delete the rows it inserted, restore the rows it changed.",
        discussion: """
            Rows changed since the run (by the application) are conflicts: they are listed and left alone \
            unless --force. So are rows that rows left in place still reference, and a contact's default \
            phone row whose deletion would leave the contact with phones but no default. The rollback is \
            recorded as a run of its own; a run is rolled back once. On a terminal it shows what it will do \
            and asks; elsewhere it needs --yes. Rows a table's BEFORE triggers change on the way back (an \
            updated_at set to now()) are restored but reported as not exact, with exit code 3, unless \
            --disable-before-triggers.
            """)

    @Argument(help: "The run id (see `ferry runs`).")
    var runId: Int64

    @OptionGroup var connection: ConnectionOptions

    @Flag(
        help:
            "Do the rollback in a transaction that is then rolled back: exactly what it would do now, changing nothing (it holds the job's lock meanwhile)."
    )
    var dryRun = false

    @Flag(help: "Also undo rows changed since the run.")
    var force = false

    @Flag(
        help: """
            Restore rows exactly through a table's BEFORE INSERT or UPDATE row triggers (such as one that \
            sets updated_at): they are disabled while its rows are restored, inside the rollback's \
            transaction. Needs the table's owner; writes to the table wait until the rollback commits.
            """)
    var disableBeforeTriggers = false

    @Flag(help: "If the job is running, wait for it instead of exiting.")
    var wait = false

    @Flag(help: "Print JSON.")
    var json = false

    @Flag(help: "Do not ask for confirmation (required when not run from a terminal).")
    var yes = false

    func run() throws {
        try reportingErrors(json: json) {
            var rollback = Rollback(conninfo: connection.db)
            rollback.disablesBeforeTriggers = disableBeforeTriggers
            if !dryRun && !yes {
                // Show what will happen (the dry run: exact), then ask.
                let preview = try rollback.run(runId, dryRun: true, force: force, wait: wait)
                if !preview.nothingToUndo {
                    try confirm(
                        RollbackText.render(preview), question: "Roll back run \(runId)\(force ? " with --force" : "")?"
                    )
                }
            }
            let report = try rollback.run(runId, dryRun: dryRun, force: force, wait: wait)
            // The exit code is the same whatever the format: 3 when conflicts are (or would be) left, or
            // rows are (or would be) restored other than as they were.
            if json {
                try printJSON(report)
            } else {
                print(RollbackText.render(report))
            }
            if (!report.conflicts.isEmpty && !force) || !report.notRestoredExactly.isEmpty { throw ExitCode(3) }
        }
    }
}

struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue an interrupted apply from its last committed batch.")

    @Argument(help: "The run id (see `ferry runs`).")
    var runId: Int64

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var pacing: PacingOptions
    @OptionGroup var writers: WriterOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors(json: output.json) {
            let database = try PostgresConnection(conninfo: connection.db)
            guard let record = try RunLedger(connection: database).run(runId) else {
                throw LedgerError("there is no run \(runId)")
            }
            let job = try JobRegistry.job(mapping: record.mappingFile, conninfo: connection.db)
            var settings = RunSettings()
            settings.showProgress = output.showProgress
            var options = ApplyOptions()
            options.pacing = try pacing.pacing()
            options.resumeRunId = runId
            options.jobs = try writers.count()
            try output.print(try job.apply(options, settings: settings))
        }
    }
}

struct Snapshots: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage rollback snapshots.", subcommands: [Prune.self])

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Delete snapshots of old runs (never the newest run of a job, unless --all). Pruned runs cannot be rolled back."
        )

        @Option(help: ArgumentHelp("Runs finished longer ago than this, e.g. 30d or 12h.", valueName: "age"))
        var olderThan: String

        @Flag(help: "Also prune the newest run of each job.")
        var all = false

        @Flag(help: "List the runs whose snapshots would be pruned, changing nothing.")
        var dryRun = false

        @Flag(help: "Do not ask for confirmation (required when not run from a terminal).")
        var yes = false

        @OptionGroup var connection: ConnectionOptions

        func run() throws {
            try reportingErrors {
                guard let interval = intervalSetting(olderThan) else {
                    throw ValidationError("--older-than: '\(olderThan)' is not an age such as 30d, 12h or 90min")
                }
                let ledger = RunLedger(connection: try PostgresConnection(conninfo: connection.db))
                if !dryRun && !yes {
                    let candidates = try ledger.pruneSnapshots(olderThan: interval, all: all, dryRun: true)
                    guard !candidates.isEmpty else { return print("no snapshots to prune") }
                    try confirm(
                        candidates.map {
                            "  run \($0.runId)  \($0.job) \($0.mode), finished \($0.finishedAt), \(formatCount($0.snapshotRows)) snapshot rows"
                        }
                        .joined(separator: "\n"),
                        question: "Prune these snapshots? These runs can then no longer be rolled back.")
                }
                let pruned = try ledger.pruneSnapshots(olderThan: interval, all: all, dryRun: dryRun)
                guard !pruned.isEmpty else { return print("no snapshots to prune") }
                let list = pruned.map {
                    "  run \($0.runId)  \($0.job) \($0.mode), finished \($0.finishedAt), \(formatCount($0.snapshotRows)) snapshot rows"
                }
                if dryRun {
                    print(
                        "would prune the snapshots of \(pruned.count) run\(pruned.count == 1 ? "" : "s") (nothing was changed); "
                            + "\(pruned.count == 1 ? "it" : "they") could then no longer be rolled back:")
                } else {
                    print(
                        "pruned the snapshots of \(pruned.count) run\(pruned.count == 1 ? "" : "s"); "
                            + "\(pruned.count == 1 ? "it" : "they") can no longer be rolled back:")
                }
                print(list.joined(separator: "\n"))
            }
        }
    }
}

/// Asks on the terminal before a destructive step, showing what it will do; without a terminal the
/// command must say --yes (a cron job cannot answer, and must not proceed by default).
func confirm(_ preview: String, question: String) throws {
    guard isatty(STDIN_FILENO) == 1, isatty(STDERR_FILENO) == 1 else {
        throw ValidationError(
            "this changes the database: pass --yes to confirm when not running on a terminal (or --dry-run to see what it would do)"
        )
    }
    FileHandle.standardError.write(Data("\(preview)\n\(question) [y/N] ".utf8))
    let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
    guard answer == "y" || answer == "yes" else {
        FileHandle.standardError.write(Data("nothing was changed\n".utf8))
        throw ExitCode(1)
    }
}
