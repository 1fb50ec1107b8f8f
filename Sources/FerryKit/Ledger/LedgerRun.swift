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
    /// $1 run, $2 batch, $3 first key or line, $4 last, $5 rows inserted, $6 rows updated.
    static func recordBatch(_ cursor: Cursor) -> String {
        """
        WITH batch AS (
            INSERT INTO ferry.batches (run_id, batch_no, first_key, last_key, rows_inserted, rows_updated)
            VALUES ($1, $2, $3::text[], $4::text[], $5, $6)
        )
        INSERT INTO ferry.events (run_id, kind, detail)
        VALUES ($1, 'batch committed', jsonb_build_object('batch', $2::int, 'first_\(cursor.rawValue)', $3::text[], 'last_\(cursor.rawValue)', $4::text[],
                                                          'rows_inserted', $5::int, 'rows_updated', $6::int))
        """
    }

    struct Context {
        let runId: Int64
        let resume: ResumePoint?
        /// The reader session, with the run's timeouts; `openReader` makes another after a lost connection.
        let reader: PostgresConnection
        let openReader: () throws -> PostgresConnection
        let timeouts: (lock: String, statement: String)
        let ledger: RunLedger
    }

    static func apply<Summary: Encodable>(
        job: String, mappingFile: String, mappingSHA256: String, load: PhonesMapping.Load, conninfo: String, options: ApplyOptions,
        preflight: (PostgresConnection) throws -> Void,
        body: (Context) throws -> Summary
    ) throws -> Summary {
        let lock = try RunLock(conninfo: conninfo, job: job, wait: options.wait)
        defer { withExtendedLifetime(lock) {} }
        let timeouts = ((options.lockTimeout ?? load.lockTimeout).text, (options.statementTimeout ?? load.statementTimeout).text)
        // The reader never queues behind the application's locks for longer than the writer would.
        let openReader = { () throws -> PostgresConnection in
            let reader = try PostgresConnection(conninfo: conninfo, applicationName: "ferry apply \(job) (read)")
            try reader.query("SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)", [timeouts.0, timeouts.1])
            return reader
        }
        let reader = try openReader()
        try preflight(reader)
        let ledger = RunLedger(connection: try PostgresConnection(conninfo: conninfo, applicationName: "ferry ledger"))
        try ledger.markDeadRunsInterrupted(job: job)
        let resume: ResumePoint?
        if let requested = options.resumeRunId {
            guard let record = try ledger.run(requested), record.job == job, record.mode == "apply" else {
                throw LedgerError("run \(requested) is not a \(job) apply run")
            }
            guard record.status == "interrupted" || record.status == "failed" else {
                throw LedgerError("run \(requested) is \(record.status); only an interrupted or failed run can be resumed")
            }
            guard record.mappingSHA256 == mappingSHA256 else {
                throw LedgerError("run \(requested) used another version of \(mappingFile) (sha256 \(record.mappingSHA256.prefix(12))…); start a new run instead")
            }
            resume = try ledger.resumePoint(runId: requested)
        } else {
            resume = try ledger.resumePoint(job: job, mode: "apply", mappingSHA256: mappingSHA256)
        }
        let runId: Int64
        if let resume {
            try ledger.resume(resume)
            runId = resume.runId
            options.log("resuming run \(runId) after batch \(resume.lastBatch)")
        } else {
            runId = try ledger.start(job: job, mode: "apply", mappingFile: mappingFile, mappingSHA256: mappingSHA256)
        }
        do {
            let summary = try body(Context(runId: runId, resume: resume, reader: reader, openReader: openReader, timeouts: timeouts, ledger: ledger))
            try ledger.finish(runId: runId, status: "succeeded", countsJSON: String(decoding: try JSONEncoder.sorted.encode(summary), as: UTF8.self))
            return summary
        } catch {
            let transient = (error as? PostgresError)?.isTransient ?? false
            try? ledger.finish(runId: runId, status: transient ? "interrupted" : "failed", error: String(describing: error))
            if transient {
                throw RunInterrupted(runId: runId, reason: String(describing: error), resumeCommand: "ferry apply \(mappingFile)   (or: ferry resume \(runId))")
            }
            throw error
        }
    }
}
