import Foundation

/// Batch delay and replica-lag pauses, between batches, on the loading thread. The lag is read on a
/// session of its own: the reader's belongs to the extract thread, and sharing it (libpq sessions are
/// not thread-safe) corrupted memory while a standby lagged.
final class ApplyPacing {
    /// Seconds between batches (`--batch-delay`).
    let batchDelay: Double?
    /// Seconds of replica lag above which the next batch waits (`--max-replica-lag`).
    let maxReplicaLag: Double?
    private let log: @Sendable (String) -> Void
    private let open: () throws -> PostgresConnection
    private var session: PostgresConnection?

    init(
        batchDelay: Double?, maxReplicaLag: Double?, log: @escaping @Sendable (String) -> Void,
        open: @escaping () throws -> PostgresConnection
    ) {
        self.batchDelay = batchDelay
        self.maxReplicaLag = maxReplicaLag
        self.log = log
        self.open = open
    }

    convenience init(
        _ pacing: RunPacing, log: @escaping @Sendable (String) -> Void, open: @escaping () throws -> PostgresConnection
    ) {
        self.init(batchDelay: pacing.batchDelay, maxReplicaLag: pacing.maxReplicaLag, log: log, open: open)
    }

    deinit { session?.close() }

    func beforeBatch(_ number: Int) throws {
        if let delay = batchDelay, delay > 0, number > 1 { Thread.sleep(forTimeInterval: delay) }
        guard let bound = maxReplicaLag else { return }
        if session == nil { session = try open() }
        guard let connection = session else { return }
        var announced = false
        while true {
            let lag = try connection.query(
                """
                SELECT coalesce(max(extract(epoch FROM greatest(replay_lag, write_lag, flush_lag))), 0)::float8 FROM pg_stat_replication
                """
            ).value("the replicas' lag", as: Double.self)
            if lag <= bound { return }
            if !announced {
                log(
                    String(format: "replica lag %.1f s exceeds %.1f s: pausing before batch %d", lag, bound, number))
                announced = true
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
    }
}
