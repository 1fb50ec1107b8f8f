import Foundation
import Logging

/// One row of `ferry.runs`, with what its committed batches add up to.
public struct RunRecord: Codable, Equatable, Sendable {
    public let runId: Int64
    public let job: String
    public let mode: String
    /// What the run is now: a run recorded `running` whose process no longer holds the job's lock is
    /// `interrupted` (killed, or its machine lost), whatever the ledger last said.
    public let status: String
    public let mappingFile: String
    public let mappingSHA256: String
    public let toolVersion: String
    /// ISO 8601, UTC.
    public let startedAt: String
    public let finishedAt: String?
    /// Until it finished, or until now for a run still going.
    public let durationSeconds: Double
    public let databaseUser: String
    public let osUser: String?
    public let host: String?
    public let rollbackOf: Int64?
    /// The summary the run recorded when it ended (an empty object before that).
    public let counts: JSONValue
    /// The options the run was started with (batch size, pacing, timeouts), which `resume` reuses.
    public let options: JSONValue
    public let error: String?
    /// Every committed batch of the run, across resumes.
    public let batches: Int
    public let rowsInserted: Int
    public let rowsUpdated: Int
    public let rowsDeleted: Int
}

public struct RunEvent: Codable, Equatable, Sendable {
    /// ISO 8601, UTC.
    public let at: String
    public let kind: String
    public let detail: JSONValue
}

/// Where an unfinished run stopped: the last committed batch and its last key.
public struct ResumePoint: Equatable, Sendable {
    public let runId: Int64
    public let lastBatch: Int
    public let lastKey: [String]?
}

/// Reads and writes the run ledger. Statements that must commit with a batch take the batch's connection.
public struct RunLedger {
    let connection: PostgresConnection
    /// For a session of the ledger's own: opens another like it.
    private let reopen: (() throws -> PostgresConnection)?

    public init(connection: PostgresConnection) {
        self.connection = connection
        reopen = nil
    }

    /// A session of its own (`ferry ledger`), replaced when it is found lost between transactions (a DBA's
    /// pg_terminate_backend, a proxy's idle timeout): a long run writes to it only at its start and end,
    /// and its batches are already committed then.
    static func ownSession(conninfo: String) throws -> RunLedger {
        let open = { try PostgresConnection(conninfo: conninfo, applicationName: "ferry ledger") }
        return RunLedger(connection: try open(), reopen: open)
    }

    private init(connection: PostgresConnection, reopen: @escaping () throws -> PostgresConnection) {
        self.connection = connection
        self.reopen = reopen
    }

    /// One statement that only reads, on the ledger's session. Outside a transaction a session of its own
    /// that turns out lost is replaced and the statement sent again. Writes go through `write`.
    @discardableResult
    func query(_ sql: String, _ parameters: [String?] = []) throws -> QueryResult {
        let replaceable = reopen != nil && !connection.inTransaction
        do {
            return try connection.query(sql, parameters)
        } catch let error as PostgresError where replaceable && !connection.isConnected {
            try replaceSession(lostWith: error)
            return try connection.query(sql, parameters)
        }
    }

    private func replaceSession(lostWith error: PostgresError) throws {
        guard let reopen else { throw error }
        FerryLog.logger.warning(
            "the ledger's session was lost; opening another", metadata: ["error": "\(error.message)"])
        connection.takeOver(try reopen())
    }

    /// Runs `body`'s statements as one transaction (inside the caller's, if one is open). On a session of
    /// the ledger's own that turns out lost, the session is replaced and `body` sent again, unless it had
    /// committed: a session lost after its COMMIT reached the server and before the reply came back leaves
    /// the client unable to tell, so the transaction's id, taken before, is asked about on the new session.
    @discardableResult
    func write<T>(_ body: () throws -> T) throws -> T {
        if connection.inTransaction { return try body() }
        guard reopen != nil else { return try connection.transaction { try body() } }
        switch try writeOnce(body) {
        case .written(let value): return value
        case .lost(let error, let transaction, let valueIfCommitted):
            try replaceSession(lostWith: error)
            // Asked even when the COMMIT was not sent: a transaction still open on the lost backend
            // (a drop that sent nothing) would hold its locks against the write sent again.
            if let transaction, try LedgerTransaction(transaction).committed(on: connection),
                let valueIfCommitted
            {
                FerryLog.logger.warning(
                    "the ledger's write had committed before its session was lost (the reply went with it); not writing it again"
                )
                return valueIfCommitted
            }
            switch try writeOnce(body) {
            case .written(let value): return value
            case .lost(let error, _, _): throw error
            }
        }
    }

    private enum WriteOutcome<T> {
        case written(T)
        /// The session was lost (found lost at BEGIN, before the transaction had an id, when it was lost
        /// while idle); `valueIfCommitted` is what `body` returned when the COMMIT was the statement lost,
        /// so that the transaction may have committed.
        case lost(PostgresError, LedgerTransaction.Identity?, valueIfCommitted: T?)
    }

    /// `body` in a transaction, with the transaction's id and backend taken first.
    private func writeOnce<T>(_ body: () throws -> T) throws -> WriteOutcome<T> {
        var transaction: LedgerTransaction.Identity?
        var value: T?
        do {
            return .written(
                try connection.transaction {
                    transaction = try LedgerTransaction.identity(on: connection)
                    value = try body()
                    return value!
                })
        } catch let error as PostgresError where !connection.isConnected {
            return .lost(error, transaction, valueIfCommitted: value)
        }
    }

    /// Records a new run. `mappingFile` is stored as an absolute path, so `ferry resume` works from any folder.
    public func start(
        job: String, mode: String, mappingFile: String, mappingSHA256: String, rollbackOf: Int64? = nil,
        options: [String: String] = [:]
    ) throws -> Int64 {
        let id = try write {
            let id = try connection.query(
                """
                INSERT INTO ferry.runs (job, mode, status, mapping_file, mapping_sha256, tool_version, os_user, host, pid,
                                        rollback_of, start_xid, options)
                VALUES ($1, $2, 'running', $3, $4, $5, $6, $7, $8, $9, pg_current_xact_id()::text::bigint, $10::jsonb)
                RETURNING run_id
                """,
                [
                    job, mode, absolutePath(mappingFile), mappingSHA256, FerryVersion.current, Self.osUser,
                    ProcessInfo.processInfo.hostName, String(ProcessInfo.processInfo.processIdentifier),
                    rollbackOf.map(String.init), jsonObject(options),
                ]
            ).value("the run recorded", as: Int64.self)
            try event(runId: id, kind: "run started", detail: ["mode": mode, "mapping_sha256": mappingSHA256])
            return id
        }
        FerryLog.logger.info("run started", metadata: ["run": "\(id)", "job": "\(job)", "mode": "\(mode)"])
        return id
    }

    public func event(runId: Int64, kind: String, detail: [String: String] = [:]) throws {
        try write {
            try connection.query(
                "INSERT INTO ferry.events (run_id, kind, detail) VALUES ($1, $2, $3::jsonb)",
                [String(runId), kind, jsonObject(detail)])
        }
    }

    /// Marks a run resumed: running again, from this process.
    public func resume(_ point: ResumePoint) throws {
        try write {
            try connection.query(
                "UPDATE ferry.runs SET status = 'running', finished_at = NULL, error = NULL, pid = $2, host = $3 WHERE run_id = $1",
                [
                    String(point.runId), String(ProcessInfo.processInfo.processIdentifier),
                    ProcessInfo.processInfo.hostName,
                ])
            try event(
                runId: point.runId, kind: "run resumed",
                detail: [
                    "after_batch": String(point.lastBatch), "after_key": point.lastKey?.joined(separator: "/") ?? "",
                ])
        }
    }

    public func finish(runId: Int64, status: String, countsJSON: String = "{}", error: String? = nil) throws {
        // The totals come from the committed batches, so a resumed run counts its earlier parts too.
        let totals = try write {
            let totals = try connection.query(
                """
                UPDATE ferry.runs SET status = $2, finished_at = now(), error = $4,
                       counts = $3::jsonb || jsonb_build_object('run_totals', (
                           SELECT jsonb_build_object('batches', count(*), 'rows_inserted', coalesce(sum(rows_inserted), 0),
                                                     'rows_updated', coalesce(sum(rows_updated), 0),
                                                     'rows_deleted', coalesce(sum(rows_deleted), 0))
                           FROM ferry.batches WHERE run_id = $1))
                WHERE run_id = $1
                RETURNING counts->'run_totals'->>'batches' AS batches, counts->'run_totals'->>'rows_inserted' AS rows_inserted,
                          counts->'run_totals'->>'rows_updated' AS rows_updated,
                          counts->'run_totals'->>'rows_deleted' AS rows_deleted,
                          round(extract(epoch FROM finished_at - started_at), 1)::text AS seconds
                """, [String(runId), status, countsJSON, error]
            ).decoded("the run's totals").first
            try event(
                runId: runId, kind: "run finished",
                detail: ["status": status].merging(error.map { ["error": $0] } ?? [:]) { $1 })
            return totals
        }
        // The totals come with the event, so a log pipeline has the run's outcome without asking the ledger.
        var fields: Logger.Metadata = ["run": "\(runId)", "status": "\(status)"]
        for name in ["batches", "rows_inserted", "rows_updated", "rows_deleted", "seconds"] {
            if let value: String = try totals?.optional(name) { fields[name] = "\(value)" }
        }
        if let error { fields["error"] = "\(error)" }
        FerryLog.logger.info("run finished", metadata: fields)
    }

    /// Runs left `running` by a process that died. Only call while holding the job's lock:
    /// then nobody else can be running it.
    public func markDeadRunsInterrupted(job: String) throws {
        try write {
            let dead = try connection.query(
                """
                UPDATE ferry.runs SET status = 'interrupted', finished_at = now(),
                       error = coalesce(error, 'the ferry process stopped without finishing the run')
                WHERE job = $1 AND status = 'running' RETURNING run_id
                """, [job]
            ).decoded("ferry.runs")
            for row in dead {
                try event(
                    runId: try row.required("run_id"), kind: "run found interrupted",
                    detail: ["by_pid": String(ProcessInfo.processInfo.processIdentifier)])
            }
        }
    }

    /// The newest interrupted apply of this job with the same mapping, if any.
    public func resumePoint(job: String, mode: String, mappingSHA256: String) throws -> ResumePoint? {
        let latest = try query(
            """
            SELECT run_id, status, mapping_sha256 FROM ferry.runs
            WHERE job = $1 AND mode = $2 ORDER BY run_id DESC LIMIT 1
            """, [job, mode]
        ).decoded("ferry.runs", key: "run_id").first
        guard let latest, try latest.required("status", as: String.self) == "interrupted",
            try latest.required("mapping_sha256", as: String.self) == mappingSHA256
        else { return nil }
        return try resumePoint(runId: try latest.required("run_id"))
    }

    public func resumePoint(runId: Int64) throws -> ResumePoint {
        let batch = try query(
            """
            SELECT batch_no, last_key FROM ferry.batches WHERE run_id = $1 ORDER BY batch_no DESC LIMIT 1
            """, [String(runId)]
        ).decoded("ferry.batches", key: "batch_no").first
        return ResumePoint(
            runId: runId, lastBatch: try batch?.required("batch_no") ?? 0, lastKey: try batch?.optional("last_key"))
    }

    /// The run `resume` asked for, refused unless it is this job's run in this mode and was interrupted or failed.
    func resumableRun(_ runId: Int64, job: String, mode: String) throws -> RunRecord {
        guard let found = try run(runId), found.job == job, found.mode == mode else {
            throw LedgerError("run \(runId) is not a \(job) \(mode) run")
        }
        guard found.status == "interrupted" || found.status == "failed" else {
            throw LedgerError("run \(runId) is \(found.status); only an interrupted or failed run can be resumed")
        }
        return found
    }

    public func run(_ runId: Int64) throws -> RunRecord? {
        try runs(where: "r.run_id = $1", [String(runId)]).first
    }

    public func runs(limit: Int = 50) throws -> [RunRecord] {
        try runs(where: "true ORDER BY r.run_id DESC LIMIT $1", [String(limit)])
    }

    public func events(_ runId: Int64) throws -> [RunEvent] {
        try query(
            """
            SELECT event_id, \(Self.iso8601("at")) AS at, kind, detail::text AS detail FROM ferry.events WHERE run_id = $1 ORDER BY event_id
            """, [String(runId)]
        ).decoded("ferry.events", key: "event_id").map { row in
            RunEvent(
                at: try row.required("at"), kind: try row.required("kind"),
                detail: JSONValue(parsing: try row.required("detail")))
        }
    }

    /// A timestamptz column as ISO 8601 in UTC, to the millisecond.
    static func iso8601(_ column: String) -> String {
        "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    }

    private func runs(where condition: String, _ parameters: [String?]) throws -> [RunRecord] {
        // Say what to do rather than "relation ferry.runs does not exist" (or a privilege error from to_regclass).
        let present =
            try query(
                """
                SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'ferry' AND c.relname = 'runs')
                """
            ).value("whether ferry.runs exists", as: Bool.self)
        guard present else {
            throw LedgerError(
                "this database has no ferry ledger (ferry.runs): no run was recorded here yet; `ferry schema apply MAPPING` creates it"
            )
        }
        // A run recorded `running` is really running only while a session holds its job's lock.
        return try query(
            """
            SELECT r.run_id, r.job, r.mode,
                   CASE WHEN r.status = 'running' AND NOT EXISTS (
                            SELECT 1 FROM pg_locks l
                            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                              AND l.classid = \(RunLock.namespace)::oid AND l.objid = hashtext(r.job)::oid)
                        THEN 'interrupted' ELSE r.status END AS status,
                   r.mapping_file, r.mapping_sha256, r.tool_version, \(Self.iso8601("r.started_at")) AS started_at,
                   \(Self.iso8601("r.finished_at")) AS finished_at,
                   extract(epoch FROM coalesce(r.finished_at, now()) - r.started_at)::float8 AS duration,
                   r.db_user, r.os_user, r.host, r.rollback_of, r.counts::text AS counts, r.options::text AS options, r.error,
                   b.batches, b.inserted, b.updated, b.deleted
            FROM ferry.runs r
            CROSS JOIN LATERAL (SELECT count(*), coalesce(sum(rows_inserted), 0), coalesce(sum(rows_updated), 0),
                                       coalesce(sum(rows_deleted), 0)
                                FROM ferry.batches WHERE run_id = r.run_id) b (batches, inserted, updated, deleted)
            WHERE \(condition)
            """, parameters
        ).decoded("ferry.runs", key: "run_id").map { row in
            RunRecord(
                runId: try row.required("run_id"), job: try row.required("job"), mode: try row.required("mode"),
                status: try row.required("status"), mappingFile: try row.required("mapping_file"),
                mappingSHA256: try row.required("mapping_sha256"), toolVersion: try row.required("tool_version"),
                startedAt: try row.required("started_at"), finishedAt: try row.optional("finished_at"),
                durationSeconds: try row.required("duration"), databaseUser: try row.required("db_user"),
                osUser: try row.optional("os_user"), host: try row.optional("host"),
                rollbackOf: try row.optional("rollback_of"),
                counts: JSONValue(parsing: try row.required("counts")),
                options: JSONValue(parsing: try row.required("options")),
                error: try row.optional("error"), batches: try row.required("batches"),
                rowsInserted: try row.required("inserted"),
                rowsUpdated: try row.required("updated"), rowsDeleted: try row.required("deleted"))
        }
    }

    static var osUser: String { ProcessInfo.processInfo.environment["USER"] ?? NSUserName() }
}

public struct LedgerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// `path` made absolute against the current folder.
func absolutePath(_ path: String) -> String {
    path.hasPrefix("/") ? path : URL(fileURLWithPath: path).standardizedFileURL.path
}

/// A JSON object of strings, for event details.
func jsonObject(_ values: [String: String]) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: values, options: [.sortedKeys])) ?? Data("{}".utf8)
    return String(decoding: data, as: UTF8.self)
}

/// Reads PostgreSQL's text form of a text[] ({a,"b c"}) into strings.
func parseTextArray(_ text: String) -> [String] {
    var values: [String] = []
    var current = ""
    var quoted = false
    var escaped = false
    for character in text.dropFirst().dropLast() {
        if escaped { current.append(character); escaped = false; continue }
        switch character {
        case "\\" where quoted: escaped = true
        case "\"": quoted.toggle()
        case "," where !quoted: values.append(current); current = ""
        default: current.append(character)
        }
    }
    if !text.isEmpty, text != "{}" { values.append(current) }
    return values
}

/// PostgreSQL's text form of a text[] for a parameter.
func textArrayLiteral(_ values: [String]) -> String {
    "{"
        + values.map {
            "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        .joined(separator: ",") + "}"
}

extension RunLedger {
    /// Whether the ledger has `ferry.restored_rows` (`LedgerSchema.restoredRowsStep`).
    func recordsRestoredRows() throws -> Bool {
        try query("SELECT to_regclass('ferry.restored_rows') IS NOT NULL AS present")
            .value("whether ferry.restored_rows exists", as: Bool.self)
    }

    /// A run whose snapshots a prune removes (or would remove): it can no longer be rolled back.
    public struct PrunedRun: Codable, Equatable, Sendable {
        public let runId: Int64
        public let job: String
        public let mode: String
        public let finishedAt: String
        public let snapshotRows: Int
    }

    /// Deletes snapshot rows of runs finished before `olderThan` ago, keeping the newest run of each job
    /// (so the last apply can always be undone) unless `all`, and the records of restored rows that no
    /// snapshot row left needs. Returns the runs pruned (or, with `dryRun`, those that would be).
    public func pruneSnapshots(olderThan interval: String, all: Bool, dryRun: Bool = false) throws -> [PrunedRun] {
        let candidates = try connection.query(
            """
            SELECT r.run_id, r.job, r.mode, \(Self.iso8601("r.finished_at")) AS finished_at,
                   (SELECT count(*) FROM ferry.snapshot_rows s WHERE s.run_id = r.run_id) AS snapshot_rows
            FROM ferry.runs r
            WHERE r.finished_at < now() - $1::interval
              AND ($2 OR r.run_id <> (SELECT max(r2.run_id) FROM ferry.runs r2 WHERE r2.job = r.job AND r2.mode <> 'rollback'))
              AND EXISTS (SELECT 1 FROM ferry.snapshot_rows s WHERE s.run_id = r.run_id)
            ORDER BY r.run_id
            """, [interval, all ? "true" : "false"]
        ).decoded("ferry.runs to prune", key: "run_id").map { row in
            PrunedRun(
                runId: try row.required("run_id"), job: try row.required("job"), mode: try row.required("mode"),
                finishedAt: try row.required("finished_at"), snapshotRows: try row.required("snapshot_rows"))
        }
        guard !dryRun else { return candidates }
        try connection.transaction {
            for run in candidates {
                try connection.query("DELETE FROM ferry.snapshot_rows WHERE run_id = $1", [String(run.runId)])
                try event(
                    runId: run.runId, kind: "snapshot pruned",
                    detail: ["older_than": interval, "rows": String(run.snapshotRows)])
            }
            // A restored row's record only serves rollbacks of runs that still have a snapshot row for it.
            if try recordsRestoredRows() {
                try connection.query(
                    """
                    DELETE FROM ferry.restored_rows r
                    WHERE NOT EXISTS (SELECT 1 FROM ferry.snapshot_rows s WHERE s.table_name = r.table_name AND s.key = r.key)
                    """)
            }
        }
        return candidates
    }
}

/// "30d", "12h", "90min" → a PostgreSQL interval ("30 days").
public func intervalSetting(_ text: String) -> String? {
    let digits = text.prefix(while: \.isNumber)
    guard let value = Int(digits), value >= 0 else { return nil }
    switch text.dropFirst(digits.count).lowercased() {
    case "d", "day", "days": return "\(value) days"
    case "h", "hour", "hours": return "\(value) hours"
    case "min", "m", "minutes": return "\(value) minutes"
    case "s", "sec", "seconds": return "\(value) seconds"
    default: return nil
    }
}
