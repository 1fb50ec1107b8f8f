import Foundation

/// What every writing job does around its batches: take the job's lock, check the database, continue the
/// run `options.resumeRunId` names or an interrupted run of the same mapping, or start one, and record how
/// the run ended (interrupted runs print the command that resumes them).
enum LedgerRun {
    /// What a batch's cursor holds, as its event names it.
    enum Cursor: String {
        /// The table jobs: source keys.
        case key
        /// The CSV import: file lines.
        case line
    }

    /// A batch's cursor and counts, committed with its rows.
    /// $1 run, $2 batch, $3 first key or line, $4 last, $5 rows inserted, $6 rows updated, $7 rows deleted;
    /// `withResult`: $8 the loader's whole result (JSON), which its event keeps for `committedResult`.
    static func recordBatch(_ cursor: Cursor, withResult: Bool = false) -> String {
        """
        WITH batch AS (
            INSERT INTO ferry.batches (run_id, batch_no, first_key, last_key, rows_inserted, rows_updated, rows_deleted)
            VALUES ($1, $2, $3::text[], $4::text[], $5, $6, $7)
        )
        INSERT INTO ferry.events (run_id, kind, detail)
        VALUES ($1, 'batch committed', jsonb_build_object('batch', $2::int, 'first_\(cursor.rawValue)', $3::text[], 'last_\(cursor.rawValue)', $4::text[],
                                                          'rows_inserted', $5::int, 'rows_updated', $6::int, 'rows_deleted', $7::int\(withResult ? ", 'result', $8::jsonb" : "")))
        """
    }

    /// The result a table job's batch recorded with `recordBatch(.key, withResult: true)`, if it committed.
    /// $1 run, $2 batch.
    static let committedResult = """
        SELECT detail->'result' AS result FROM ferry.events
        WHERE run_id = $1 AND kind = 'batch committed' AND (detail->>'batch')::int = $2
        """

    struct Context {
        let runId: Int64
        let resume: ResumePoint?
        /// The options in force: the command's, or for a resumed run the ones it was started with, with
        /// what the command overrides on top.
        let options: ApplyOptions
        /// The reader session, with the run's timeouts; `openReader` makes another after a lost connection.
        let reader: PostgresConnection
        let openReader: () throws -> PostgresConnection
        let timeouts: (lock: String, statement: String)
        let ledger: RunLedger
        let conninfo: String
        let job: String
        /// Confirms, before each batch, that the run still holds its job's lock (see `RunLock.confirmHeld`).
        let confirmLock: () throws -> Void
        /// Which writer of a parallel apply (`--jobs`) this context is for (0: the only one, or the first):
        /// sessions that must not share a table name it by this.
        var writer = 0

        /// After a lost connection: `connection` (the run's `reader`, or a parallel writer's own) gets a new
        /// reader session with the run's timeouts, in place, so that whoever holds it (the steps after the
        /// last batch too) reads through a live one.
        func reopenReader(_ connection: PostgresConnection) throws -> PostgresConnection {
            connection.takeOver(try openReader())
            return connection
        }

        /// A session for the pacing checks between batches (each thread owns its sessions).
        func openPacingSession() throws -> PostgresConnection {
            try PostgresConnection(conninfo: conninfo, applicationName: "ferry apply \(job) (pacing)")
        }
    }

    static func apply<Summary: Encodable>(
        job: String, mappingFile: String, mappingSHA256: String, load: LoadSettings, conninfo: String,
        options given: ApplyOptions,
        preflight: (PostgresConnection) throws -> Void,
        body: (Context) throws -> Summary
    ) throws -> Summary {
        let lock = try RunLock(conninfo: conninfo, job: job, wait: given.pacing.wait)
        defer { lock.release() }
        var effectiveTimeouts = given.pacing.timeouts(load)
        // The reader never queues behind the application's locks for longer than the writer would.
        let openReader = { () throws -> PostgresConnection in
            let reader = try PostgresConnection(conninfo: conninfo, applicationName: "ferry apply \(job) (read)")
            try reader.query(
                "SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)",
                [effectiveTimeouts.lock, effectiveTimeouts.statement])
            return reader
        }
        let reader = try openReader()
        try preflight(reader)
        let ledger = try openLedger(job: job, conninfo: conninfo)
        var resume: ResumePoint?
        var record: RunRecord?
        if let requested = given.resumeRunId {
            let found = try ledger.resumableRun(requested, job: job, mode: "apply")
            guard found.mappingSHA256 == mappingSHA256 else {
                throw LedgerError(
                    "run \(requested) used another version of \(mappingFile) (sha256 \(found.mappingSHA256.prefix(12))…, "
                        + "now \(mappingSHA256.prefix(12))…): the mapping changed since the run; restore it, or start a new run"
                )
            }
            resume = try ledger.resumePoint(runId: requested)
            record = found
        } else {
            resume = try ledger.resumePoint(job: job, mode: "apply", mappingSHA256: mappingSHA256)
            record = try resume.flatMap { try ledger.run($0.runId) }
        }
        var options = given
        let runId: Int64
        if let resume {
            let (resumed, overridden) = given.resuming(recorded: record?.options ?? .object([:]))
            // One writer resumes after the last batch in key order; several, each tenant after its own
            // last batch. A run cannot change between the two: rows would be skipped or read twice.
            if let change = overridden["jobs"], (Int(change.was) ?? 1 > 1) != (Int(change.now) ?? 1 > 1) {
                throw LedgerError(
                    "run \(resume.runId) was started with --jobs \(Int(change.was) ?? 1): resume it with --jobs \(Int(change.was) ?? 1 > 1 ? "2 or more" : "1")"
                )
            }
            options = resumed
            try ledger.resume(resume)
            runId = resume.runId
            for (name, change) in overridden.sorted(by: { $0.key < $1.key }) {
                try ledger.event(
                    runId: runId, kind: "option overridden on resume",
                    detail: ["option": name, "was": change.was, "now": change.now])
                options.log(
                    "resuming run \(runId): --\(name.replacingOccurrences(of: "_", with: "-")) \(change.now) (the run was started with \(change.was))"
                )
            }
            options.log(
                "resuming run \(runId) after batch \(resume.lastBatch)" + ApplyOptions.keptNote(options.recorded))
            let resumedTimeouts = options.pacing.timeouts(load)
            if resumedTimeouts != effectiveTimeouts {
                effectiveTimeouts = resumedTimeouts
                try reader.query(
                    "SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)",
                    [effectiveTimeouts.lock, effectiveTimeouts.statement])
            }
        } else {
            runId = try ledger.start(
                job: job, mode: "apply", mappingFile: mappingFile, mappingSHA256: mappingSHA256, options: given.recorded
            )
        }
        options.retry.inDoubt = try InDoubtTransactions.on(reader, conninfo: conninfo)
        return try recording(
            runId: runId, ledger: ledger, resumeCommand: "ferry apply \(mappingFile)   (or: ferry resume \(runId))"
        ) {
            try body(
                Context(
                    runId: runId, resume: resume, options: options, reader: reader, openReader: openReader,
                    timeouts: effectiveTimeouts, ledger: ledger, conninfo: conninfo, job: job,
                    confirmLock: lock.confirmHeld))
        }
    }

    /// The ledger for a writing run of `job` (under the job's lock, after the database was checked):
    /// runs of the job whose session died without a word are marked interrupted first.
    static func openLedger(job: String, conninfo: String) throws -> RunLedger {
        let ledger = try RunLedger.ownSession(conninfo: conninfo)
        try ledger.markDeadRunsInterrupted(job: job)
        return ledger
    }

    /// Runs `body` as run `runId` and records how it ended: succeeded with its summary; interrupted by
    /// a lost connection, a lock timeout or a stop signal (a run to continue: the error becomes
    /// `RunInterrupted`, naming `resumeCommand`); otherwise failed.
    static func recording<Summary: Encodable>(
        runId: Int64, ledger: RunLedger, resumeCommand: String, body: () throws -> Summary
    ) throws -> Summary {
        do {
            let summary = try body()
            try ledger.finish(
                runId: runId, status: "succeeded",
                countsJSON: String(decoding: try JSONEncoder.sorted.encode(summary), as: UTF8.self))
            return summary
        } catch {
            let cancelled = error as? Cancelled
            let transient =
                cancelled != nil || error is LockLost || ((error as? PostgresError)?.isTransient ?? false)
            try? ledger.finish(
                runId: runId, status: transient ? "interrupted" : "failed", error: String(describing: error))
            guard transient else { throw error }
            throw RunInterrupted(
                runId: runId, reason: String(describing: error), resumeCommand: resumeCommand,
                signal: cancelled?.signal, sessionLost: (error as? PostgresError)?.isConnectionLoss ?? false)
        }
    }
}

extension ApplyOptions {
    /// " with its options: --a x --b y" for a resumed run's note, from options as `recorded` names them
    /// (nothing when there are none).
    static func keptNote(_ recorded: [String: String]) -> String {
        recorded.isEmpty
            ? ""
            : " with its options: "
                + recorded.sorted { $0.key < $1.key }
                .map { "--\($0.key.replacingOccurrences(of: "_", with: "-")) \($0.value)" }.joined(separator: " ")
    }
}

extension ApplyOptions: RecordedOptions {
    /// The options the operator set, as the ledger records them for `ferry resume`.
    var recorded: [String: String] {
        var values = pacing.recorded
        if !tenants.isEmpty { values["tenants"] = tenants.joined(separator: ",") }
        if let jobs { values["jobs"] = String(jobs) }
        return values
    }

    mutating func takeBack(_ name: String, _ value: String) -> Bool {
        switch name {
        case "tenants": tenants = value.split(separator: ",").map(String.init)
        case "jobs": jobs = Int(value)
        default: return pacing.takeBack(name, value)
        }
        return true
    }
}

extension JSONValue {
    /// An object's string members (the ledger's option and detail objects hold strings).
    var stringObject: [String: String] {
        guard case .object(let object) = self else { return [:] }
        return object.compactMapValues { if case .string(let text) = $0 { return text } else { return nil } }
    }
}
