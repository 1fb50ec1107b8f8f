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
        try reportingErrors {
            let runs = try RunLedger(connection: try PostgresConnection(conninfo: connection.db)).runs(limit: limit)
            if json { return try printJSON(runs) }
            print("run  job          mode      status       started                        finished                       mapping")
            for run in runs {
                print([String(run.runId).padded(4), run.job.padded(12), run.mode.padded(9), run.status.padded(12),
                       run.startedAt.padded(30), (run.finishedAt ?? "-").padded(30),
                       "\(run.mappingFile) (\(run.mappingSHA256.prefix(12))…)"].joined(separator: " "))
            }
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
        try reportingErrors {
            let ledger = RunLedger(connection: try PostgresConnection(conninfo: connection.db))
            guard let run = try ledger.run(runId) else { throw LedgerError("there is no run \(runId)") }
            let events = try ledger.events(runId)
            if json { return try printJSON(Detail(run: run, events: events)) }
            print("run \(run.runId): \(run.job) \(run.mode), \(run.status)")
            print("  mapping   \(run.mappingFile) (sha256 \(run.mappingSHA256))")
            print("  by        \(run.databaseUser) (OS user \(run.osUser ?? "?") on \(run.host ?? "?")), ferry \(run.toolVersion)")
            print("  started   \(run.startedAt)")
            print("  finished  \(run.finishedAt ?? "-")")
            if let of = run.rollbackOf { print("  rolls back run \(of)") }
            if let error = run.error { print("  error     \(error)") }
            print("  events")
            for event in events { print("    \(event.at)  \(event.kind)  \(event.detail)") }
        }
    }
}

struct RollbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Undo one run exactly: delete the rows it inserted, restore the rows it changed.",
        discussion: """
            Rows changed since the run (by the application) are conflicts: they are listed and left alone
            unless --force. The rollback is recorded as a run of its own; a run is rolled back once.
            """)

    @Argument(help: "The run id (see `ferry runs`).")
    var runId: Int64

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Show what rollback would do, changing nothing.")
    var dryRun = false

    @Flag(help: "Also undo rows changed since the run.")
    var force = false

    @Flag(help: "If the job is running, wait for it instead of exiting.")
    var wait = false

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            let report = try Rollback(conninfo: connection.db).run(runId, dryRun: dryRun, force: force, wait: wait)
            if json { return try printJSON(report) }
            print(dryRun ? "ferry rollback \(runId) --dry-run (nothing was changed)" : "ferry rollback \(runId) (run \(report.rollbackRunId ?? 0))")
            for table in report.tables {
                print("  \(table.table)")
                print("    \(dryRun ? "to undo" : "undone")\(String(repeating: " ", count: 30))\(dryRun ? table.unchanged : table.undone)")
                print("    changed since the run (conflicts)      \(table.changedSince)")
                print("    already gone                           \(table.alreadyGone)")
                if table.stillReferenced > 0 { print("    still referenced by newer rows          \(table.stillReferenced)") }
            }
            for conflict in report.conflicts.prefix(20) { print("  conflict: \(conflict)") }
            if !dryRun {
                print(report.complete ? "run \(runId) is rolled back." : "run \(runId) is partly rolled back: conflicts are left alone (use --force to undo them too).")
            }
            if !report.conflicts.isEmpty && !force { throw ExitCode(dryRun ? 0 : 3) }
        }
    }
}

struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Continue an interrupted apply from its last committed batch.")

    @Argument(help: "The run id (see `ferry runs`).")
    var runId: Int64

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var pacing: PacingOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            let database = try PostgresConnection(conninfo: connection.db)
            guard let record = try RunLedger(connection: database).run(runId) else { throw LedgerError("there is no run \(runId)") }
            if var job = try tableJob(mapping: record.mappingFile, conninfo: connection.db) {
                job.showProgress = !output.noProgress
                let (summary, text) = try job.applyAndReport(try pacing.options(resume: runId))
                return output.json ? try printJSON(summary) : print(text)
            }
            var job = PhonesJob(mapping: try PhonesMapping.load(path: record.mappingFile), conninfo: connection.db)
            job.showProgress = !output.noProgress
            let summary = try job.apply(try pacing.options(resume: runId))
            try output.print(summary)
        }
    }
}

struct Snapshots: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage rollback snapshots.", subcommands: [Prune.self])

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete snapshots of old runs (never the newest run of a job, unless --all). Pruned runs cannot be rolled back.")

        @Option(help: ArgumentHelp("Runs finished longer ago than this, e.g. 30d or 12h.", valueName: "age"))
        var olderThan: String

        @Flag(help: "Also prune the newest run of each job.")
        var all = false

        @OptionGroup var connection: ConnectionOptions

        func run() throws {
            try reportingErrors {
                guard let interval = intervalSetting(olderThan) else {
                    throw ValidationError("--older-than: '\(olderThan)' is not an age such as 30d, 12h or 90min")
                }
                let pruned = try RunLedger(connection: try PostgresConnection(conninfo: connection.db))
                    .pruneSnapshots(olderThan: interval, all: all)
                print(pruned.isEmpty ? "no snapshots to prune" : "pruned the snapshots of runs \(pruned.map(String.init).joined(separator: ", "))")
            }
        }
    }
}
