import Foundation

/// What a command asks of an apply, the same for every table job; the ledger records what the operator set
/// (see `recorded`), and a resumed run keeps it.
public struct ApplyOptions: Sendable {
    /// Batch size, pauses, timeouts, the lock wait and the snapshot file: what the import takes too.
    public var pacing = RunPacing()
    /// Resume this run (by default the newest interrupted run of the job with the same mapping).
    public var resumeRunId: Int64?
    /// The approved plan: apply refuses, before the first batch, if the mapping or the data changed since.
    public var plan: PlanFile?
    /// The sha256 of the plan file's bytes, recorded with the run (the report a reviewer signed names it).
    public var planSHA256: String?
    /// Apply despite drift from the plan; every change is recorded in the ledger.
    public var allowDrift = false
    /// Only these tenants (`--tenant`; their text form); empty: every tenant.
    public var tenants: [String] = []
    /// Writer sessions, each taking whole tenants (`--jobs`; nil when not set: one, in key order).
    public var jobs: Int?
    public var writers: Int { jobs ?? 1 }
    public var retry = RetryPolicy()
    /// Where progress notes (retries, pauses) go.
    public var log: @Sendable (String) -> Void = FerryLog.note

    public init() {}
}

/// Batch numbers of a run, handed out to every writer of it.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int
    init(startingAfter value: Int = 0) { self.value = value }
    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}
