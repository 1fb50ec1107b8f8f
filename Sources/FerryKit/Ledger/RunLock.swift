import Foundation

/// One runner per job and database: a session-level advisory lock held on a connection of its own,
/// so a reconnecting writer never drops it. PostgreSQL releases it when this session ends, even on kill -9.
public final class RunLock {
    /// The advisory lock namespace (first key) for ferry jobs.
    static let namespace: Int32 = 0x0F_E2_2F

    private let connection: PostgresConnection
    public let job: String
    /// Parallel writers confirm the lock from their own threads; the session is used by one at a time.
    private let confirming = NSLock()

    public init(conninfo: String, job: String, wait: Bool) throws {
        self.job = job
        connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry lock \(job)")
        if wait {
            try connection.query("SELECT pg_advisory_lock($1, hashtext($2))", [String(Self.namespace), job])
            return
        }
        let acquired = try connection.query(
            "SELECT pg_try_advisory_lock($1, hashtext($2))", [String(Self.namespace), job]
        ).value("the job's lock", as: Bool.self)
        if !acquired {
            throw LedgerError(try holderDescription())
        }
    }

    /// Before each batch: this session still holds the job's lock. A DBA's pg_terminate_backend, a proxy
    /// or a failover may end it, and PostgreSQL then releases the lock: a second run of the job could
    /// start beside this one, so this one stops.
    func confirmHeld() throws {
        try confirming.withLock {
            let held: Bool
            do {
                held = try connection.query(
                    """
                    SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                                     AND classid = $1::int::oid AND objid = hashtext($2)::oid AND objsubid = 2 AND granted)
                    """, [String(Self.namespace), job]
                ).value("whether the job's lock is held", as: Bool.self)
            } catch let error as PostgresError {
                // libpq's message for a lost connection runs over lines of advice: its first says it.
                throw LockLost(
                    job: job, reason: error.message.split(whereSeparator: \.isNewline).first.map(String.init) ?? "")
            }
            guard held else { throw LockLost(job: job, reason: "the lock is no longer held") }
        }
    }

    /// Gives the lock up now, not when the last holder of this object lets go of it: after a failed run a
    /// worker thread may hold it a little longer, and what runs next (an import resuming its own run, a
    /// caller's next command) must not find the job taken. Unlocks before closing: a closed session's
    /// locks go only when its backend has finished exiting, which a command started right after could race.
    func release() {
        confirming.withLock {
            guard connection.isConnected else { return connection.close() }
            _ = try? connection.query("SELECT pg_advisory_unlock_all()")
            connection.close()
        }
    }

    deinit { release() }

    private func holderDescription() throws -> String {
        let holder = try connection.query(
            """
            SELECT a.pid::text AS pid, a.usename::text AS user_name, a.backend_start::text AS since,
                   (SELECT run_id::text FROM ferry.runs WHERE job = $2 AND status = 'running' ORDER BY run_id DESC LIMIT 1) AS run_id
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.classid = $1::int::oid AND l.objid = hashtext($2)::oid AND l.objsubid = 2 AND l.granted
            LIMIT 1
            """, [String(Self.namespace), job]
        ).decoded("the lock's holder", key: "pid").first
        let run = try holder?.optional("run_id", as: String.self).map { "run \($0)" } ?? "a run"
        let who =
            try holder.map {
                "PostgreSQL pid \(try $0.required("pid", as: String.self)), user \(try $0.optional("user_name", as: String.self) ?? "?"), since \(try $0.required("since", as: String.self))"
            } ?? "another session"
        return "job '\(job)' is already running in this database: \(run) (\(who)). "
            + "Wait for it, or pass --wait to queue behind it."
    }
}

/// The session holding a job's lock ended during a run: the run stops, as interrupted (resumable).
struct LockLost: Error, CustomStringConvertible {
    let job: String
    let reason: String

    var description: String {
        "the session holding job '\(job)''s lock was lost (\(reason)): another run of the job could start beside this one, so this one stops"
    }
}
