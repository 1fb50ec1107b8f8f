import Foundation

/// A write on the ledger's own session, known by its transaction id and backend before its COMMIT is
/// sent, so that after the session is lost a new one can tell whether the COMMIT took effect
/// (`pg_xact_status`, which PostgreSQL provides for exactly this).
struct LedgerTransaction {
    struct Identity: Sendable {
        let xid: String
        let backendPID: Int
    }

    let identity: Identity
    /// How long a transaction still in progress is given to end by itself (its backend noticing that its
    /// client went away) before ferry ends it.
    static let patience: TimeInterval = 5

    init(_ identity: Identity) { self.identity = identity }

    static func identity(on connection: PostgresConnection) throws -> Identity {
        guard
            let row = try connection.query("SELECT pg_current_xact_id()::text AS xid, pg_backend_pid() AS pid")
                .decoded("the ledger's transaction").first
        else { throw LedgerError("the ledger's transaction has no id") }
        return Identity(xid: try row.required("xid"), backendPID: try row.required("pid"))
    }

    /// Whether the transaction committed. One still in progress belongs to a backend that has not noticed
    /// its client is gone (a network drop that sent nothing, so the COMMIT never arrived): after
    /// `patience` it is terminated, which settles the outcome either way.
    func committed(on connection: PostgresConnection) throws -> Bool {
        var deadline = Date().addingTimeInterval(Self.patience)
        var terminated = false
        while true {
            let status: String? = try connection.query(
                "SELECT pg_xact_status($1::xid8) AS status", [identity.xid]
            ).decoded("the ledger's transaction").first?.optional("status")
            switch status {
            case "committed": return true
            case "aborted": return false
            case "in progress" where Date() < deadline:
                Thread.sleep(forTimeInterval: 0.1)
            case "in progress" where !terminated:
                try terminate(on: connection)
                terminated = true
                deadline = Date().addingTimeInterval(Self.patience)
            default:
                throw LedgerError(
                    "cannot tell whether the ledger's transaction \(identity.xid) (backend \(identity.backendPID)) committed after its session was lost: PostgreSQL reports it \(status ?? "unknown"); end that backend (SELECT pg_terminate_backend(\(identity.backendPID))) and look at ferry.runs before running again"
                )
            }
        }
    }

    /// Ends the backend still holding the transaction open (only while it still holds this one).
    private func terminate(on connection: PostgresConnection) throws {
        let ended = try connection.query(
            """
            SELECT coalesce(bool_or(pg_terminate_backend(pid, 5000)), false) AS ended FROM pg_stat_activity
            WHERE pid = $1 AND backend_xid::text::bigint = $2::xid8::text::bigint % 4294967296
            """, [String(identity.backendPID), identity.xid]
        ).value("whether the ledger's lost backend ended", as: Bool.self)
        FerryLog.logger.warning(
            "the ledger's lost session still held its transaction open; \(ended ? "ended it" : "could not end it")",
            metadata: ["backend": "\(identity.backendPID)", "xid": "\(identity.xid)"])
    }
}
