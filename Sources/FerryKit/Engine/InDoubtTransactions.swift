import Foundation

/// Transactions Citus left prepared on its workers. Citus commits a transaction that wrote on several
/// workers in two phases; a coordinator session lost between them (terminated, its client gone) leaves
/// the transaction prepared on the workers, holding its rows' locks, until Citus's maintenance daemon
/// resolves it (once every `citus.recover_2pc_interval`, a minute by default): longer than a batch's
/// retries wait. So before retrying a write that lost its session or timed out on a lock, ferry asks
/// Citus to resolve them at once with the function the daemon runs, when the role may call it.
struct InDoubtTransactions: Sendable {
    let conninfo: String
    /// Whether the role may run `recover_prepared_transactions()` (Citus revokes it from PUBLIC).
    let permitted: Bool

    static let function = "pg_catalog.recover_prepared_transactions()"

    /// nil on a database without Citus: there a lost session's transaction is simply rolled back.
    static func on(_ connection: PostgresConnection, conninfo: String) throws -> InDoubtTransactions? {
        try mayResolve(on: connection).map { InDoubtTransactions(conninfo: conninfo, permitted: $0) }
    }

    /// Whether the session's role may run the recovery function; nil without Citus.
    static func mayResolve(on connection: PostgresConnection) throws -> Bool? {
        let row = try connection.query(
            """
            SELECT to_regprocedure($1) IS NOT NULL AS citus,
                   CASE WHEN to_regprocedure($1) IS NOT NULL
                        THEN has_function_privilege(to_regprocedure($1), 'EXECUTE') ELSE false END AS permitted
            """, [function]
        ).decoded("Citus's recovery function").first
        guard let row, try row.required("citus", as: Bool.self) else { return nil }
        return try row.required("permitted", as: Bool.self)
    }

    /// After `error` (a lost session or a lock timeout), before the retry. Never throws: the retry
    /// goes on either way, and its own error says what stopped it.
    func resolve(after error: PostgresError, log: (String) -> Void) {
        guard permitted else {
            if error.isConnectionLoss {
                log(
                    "on Citus a lost session can leave its transaction prepared on the workers, holding its rows until Citus resolves it (within citus.recover_2pc_interval); ferry may not call recover_prepared_transactions() to resolve it now (GRANT EXECUTE ON FUNCTION \(Self.function) lets it)"
                )
            }
            return
        }
        do {
            let connection = try PostgresConnection(
                conninfo: conninfo, applicationName: "ferry (prepared transactions)")
            defer { connection.close() }
            let resolved = try connection.query("SELECT \(Self.function) AS resolved").value(
                "transactions resolved", as: Int.self)
            if resolved > 0 {
                log(
                    "Citus resolved \(resolved) transaction\(resolved == 1 ? "" : "s") left prepared on its workers (recover_prepared_transactions())"
                )
            }
        } catch {
            log("could not ask Citus to resolve the transactions left prepared on its workers: \(error)")
        }
    }
}
