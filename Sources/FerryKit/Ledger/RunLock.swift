/// One runner per job and database: a session-level advisory lock held on a connection of its own,
/// so a reconnecting writer never drops it. PostgreSQL releases it when this session ends, even on kill -9.
public final class RunLock {
    /// The advisory lock namespace (first key) for ferry jobs.
    static let namespace: Int32 = 0x0F_E2_2F

    private let connection: PostgresConnection
    public let job: String

    public init(conninfo: String, job: String, wait: Bool) throws {
        self.job = job
        connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry lock \(job)")
        if wait {
            try connection.query("SELECT pg_advisory_lock($1, hashtext($2))", [String(Self.namespace), job])
            return
        }
        let acquired =
            try connection.query("SELECT pg_try_advisory_lock($1, hashtext($2))", [String(Self.namespace), job]).scalar
            == "t"
        if !acquired {
            throw LedgerError(try holderDescription())
        }
    }

    /// Unlocks before closing: a closed session's locks go only when its backend has finished exiting,
    /// which a command started right after this one could race.
    deinit {
        _ = try? connection.query("SELECT pg_advisory_unlock_all()")
        connection.close()
    }

    private func holderDescription() throws -> String {
        let holder = try connection.query(
            """
            SELECT a.pid::text, a.usename::text, a.application_name, a.backend_start::text,
                   (SELECT run_id::text FROM ferry.runs WHERE job = $2 AND status = 'running' ORDER BY run_id DESC LIMIT 1)
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.classid = $1::int::oid AND l.objid = hashtext($2)::oid AND l.objsubid = 2 AND l.granted
            LIMIT 1
            """, [String(Self.namespace), job]
        ).rows.first
        let run = holder?[4].map { "run \($0)" } ?? "a run"
        let who =
            holder.map { "PostgreSQL pid \($0[0] ?? "?"), user \($0[1] ?? "?"), since \($0[3] ?? "?")" }
            ?? "another session"
        return "job '\(job)' is already running in this database: \(run) (\(who)). "
            + "Wait for it, or pass --wait to queue behind it."
    }
}
