import Foundation

/// Retries transient database errors (lost connection, serialization failure, deadlock, lock timeout)
/// with exponential backoff and jitter, a bounded number of times.
public struct RetryPolicy: Sendable {
    public var attempts = 5
    public var baseDelay = 0.2
    public var maxDelay = 10.0
    /// On Citus: transactions a lost session left prepared on the workers, resolved before a retry
    /// that may be waiting on their locks (set for a run once its database is known).
    var inDoubt: InDoubtTransactions?

    public init() {}

    public func run<T>(
        _ what: String, reconnect: () throws -> Void = {}, log: (String) -> Void = { _ in },
        _ body: () throws -> T
    ) throws -> T {
        var attempt = 1
        while true {
            do {
                return try body()
            } catch let error as PostgresError where error.isTransient && attempt < attempts {
                let delay = min(maxDelay, baseDelay * pow(2, Double(attempt - 1))) * Double.random(in: 0.5...1.5)
                log(
                    "\(what): \(error.message) [\(error.sqlState ?? "connection")]; retry \(attempt) of \(attempts - 1) in \(String(format: "%.1f", delay)) s"
                )
                Thread.sleep(forTimeInterval: delay)
                attempt += 1
                if error.isConnectionLoss || error.sqlState == "55P03" { inDoubt?.resolve(after: error, log: log) }
                try? reconnect()
            }
        }
    }
}

/// A batch whose write hit a foreign key: a row it read was deleted since (by the application, a
/// contact or a project). `write(true)` writes it once more, for the rows still there, and the log says
/// so; a second such error stops the run as any other.
func writtenAgainIfARowWentAway<T>(
    _ what: String, log: (String) -> Void, _ write: (_ again: Bool) throws -> T
) throws -> T {
    do {
        return try write(false)
    } catch let error as PostgresError where error.sqlState == "23503" {
        log(
            "\(what): a row it read was deleted since (\(error.detailInASentence)); writing it again for the rows still there"
        )
        return try write(true)
    }
}

/// A run stopped by errors that did not go away: nothing of the failed batch was committed.
public struct RunInterrupted: Error, CustomStringConvertible, Sendable {
    public let runId: Int64
    public let reason: String
    public let resumeCommand: String
    /// The signal that stopped the run, when one did (the process exits 128 + signal).
    public var signal: Int32? = nil
    /// A session of the run was lost for good (the retries found it gone), not stopped by a signal,
    /// a lock timeout or a lost lock.
    public var sessionLost = false

    public var description: String {
        "run \(runId) stopped: \(reason)\nEvery batch before this one is committed. Resume with: \(resumeCommand)"
    }
}
