import Foundation

/// The database session of one job's batch loader, used by one thread. It holds what every keyset
/// loader does the same way: its session tables made when it opens and again after a lost connection,
/// and each batch written in one transaction under the run's timeouts that also records the batch's
/// cursor and counts in the ledger, so a batch is committed with its cursor or not at all.
final class LoaderSession {
    let runId: Int64
    private(set) var connection: PostgresConnection
    private let conninfo: String
    private let applicationName: String
    private let timeouts: (lock: String, statement: String)
    private let makeSessionTables: (PostgresConnection) throws -> Void
    private let log: @Sendable (String) -> Void

    /// `makeSessionTables`: the loader's staging tables, made on every new session (temporary tables
    /// go with the session that made them).
    init(run: LedgerRun.Context, makeSessionTables: @escaping (PostgresConnection) throws -> Void) throws {
        runId = run.runId
        conninfo = run.conninfo
        applicationName = "ferry apply \(run.job)"
        timeouts = run.timeouts
        self.makeSessionTables = makeSessionTables
        log = run.options.log
        connection = try Self.open(conninfo, applicationName, makeSessionTables)
    }

    private static func open(
        _ conninfo: String, _ applicationName: String, _ makeSessionTables: (PostgresConnection) throws -> Void
    ) throws -> PostgresConnection {
        let connection = try PostgresConnection(conninfo: conninfo, applicationName: applicationName)
        try makeSessionTables(connection)
        return connection
    }

    /// Whether the session was replaced after a lost connection since the last batch committed: the
    /// batch being retried may have committed just before the connection went, its reply lost with it.
    private var replacedSinceLastCommit = false

    /// After a lost connection: a new session with its own session tables.
    func reconnect() throws {
        connection.close()
        replacedSinceLastCommit = true
        connection = try Self.open(conninfo, applicationName, makeSessionTables)
    }

    /// Writes `batch` in one transaction: `write`'s statements, then the batch's cursor and counts,
    /// then `emptiedBeforeCommit` (statements that empty staging tables, taking `tenant` as their parameters).
    func commit<Record, Decision, Result: BatchWrites>(
        _ batch: MigrationBatch<Record, Decision>, emptiedBeforeCommit: [String] = [], tenant: [String] = [],
        _ write: () throws -> Result
    ) throws -> Result {
        if replacedSinceLastCommit, let committed = try committedResult(of: batch, as: Result.self) {
            replacedSinceLastCommit = false
            log(
                "batch \(batch.number) was committed before its session was lost (the reply went with it); not writing it again"
            )
            return committed
        }
        let result = try connection.transaction {
            try connection.execute(script: SessionSettings.setLocalBatchSettings(timeouts))
            let result = try write()
            try connection.query(
                LedgerRun.recordBatch(.key, withResult: true),
                [
                    String(runId), String(batch.number), textArrayLiteral(batch.firstKey),
                    textArrayLiteral(batch.lastKey), String(result.rowsInserted), String(result.rowsUpdated),
                    String(result.rowsDeleted), String(decoding: try JSONEncoder().encode(result), as: UTF8.self),
                ])
            for statement in emptiedBeforeCommit { try connection.query(statement, tenant) }
            return result
        }
        replacedSinceLastCommit = false
        return result
    }

    /// What `batch` recorded when it committed, or nil when it did not.
    private func committedResult<Record, Decision, Result: BatchWrites>(
        of batch: MigrationBatch<Record, Decision>, as: Result.Type
    ) throws -> Result? {
        guard
            let json = try connection.query(LedgerRun.committedResult, [String(runId), String(batch.number)]).scalar
        else { return nil }
        return try JSONDecoder().decode(Result.self, from: Data(json.utf8))
    }
}
