import Foundation

/// How a writing run paces itself on a live database, the same for every writing job, the CSV import
/// included: batch size, pauses, timeouts, waiting for the job's lock, the snapshot file.
public struct RunPacing: Sendable {
    public var batchSize: Int?
    /// Pause between batches, to leave room for the application (seconds; nil when not set).
    public var batchDelay: Double?
    /// Pause while a streaming standby's replay lag exceeds this many seconds.
    public var maxReplicaLag: Double?
    public var lockTimeout: DurationSetting?
    public var statementTimeout: DurationSetting?
    /// Queue behind a running apply of the same job instead of exiting at once.
    public var wait = false
    /// Also write the run's snapshot to this file (gzip, with FILE.sha256 beside it).
    public var snapshotFile: String?

    public init() {}

    /// The lock and statement timeouts a batch runs with: these options', else the mapping's `load`.
    func timeouts(_ load: LoadSettings) -> (lock: String, statement: String) {
        ((lockTimeout ?? load.lockTimeout).text, (statementTimeout ?? load.statementTimeout).text)
    }
}

/// Options a run records in the ledger (what the operator set; defaults come from the mapping, which
/// resume checks is unchanged) and a resumed run takes back.
protocol RecordedOptions {
    /// As the ledger records them, by option name (`batch_size`).
    var recorded: [String: String] { get }
    /// Takes back one recorded option; false for a name these options do not have.
    mutating func takeBack(_ name: String, _ value: String) -> Bool
}

extension RecordedOptions {
    /// These options on top of a run's recorded ones: what this command sets wins (and is returned as
    /// overridden when it differs), the rest comes from the run.
    func resuming(recorded: JSONValue) -> (Self, overridden: [String: (was: String, now: String)]) {
        var options = self
        var overridden: [String: (was: String, now: String)] = [:]
        let mine = self.recorded
        for (name, value) in recorded.stringObject {
            if let now = mine[name] {
                if now != value { overridden[name] = (value, now) }
                continue
            }
            _ = options.takeBack(name, value)
        }
        for (name, now) in mine where recorded.stringObject[name] == nil { overridden[name] = ("its default", now) }
        return (options, overridden)
    }
}

extension RunPacing: RecordedOptions {
    var recorded: [String: String] {
        var values: [String: String] = [:]
        if let batchSize { values["batch_size"] = String(batchSize) }
        if let batchDelay { values["batch_delay"] = DurationSetting.seconds(batchDelay) }
        if let maxReplicaLag { values["max_replica_lag"] = DurationSetting.seconds(maxReplicaLag) }
        if let lockTimeout { values["lock_timeout"] = lockTimeout.text }
        if let statementTimeout { values["statement_timeout"] = statementTimeout.text }
        if let snapshotFile { values["snapshot_file"] = snapshotFile }
        return values
    }

    mutating func takeBack(_ name: String, _ value: String) -> Bool {
        switch name {
        case "batch_size": batchSize = Int(value)
        case "batch_delay": batchDelay = DurationSetting(value)?.seconds
        case "max_replica_lag": maxReplicaLag = DurationSetting(value)?.seconds
        case "lock_timeout": lockTimeout = DurationSetting(value)
        case "statement_timeout": statementTimeout = DurationSetting(value)
        case "snapshot_file": snapshotFile = value
        default: return false
        }
        return true
    }
}
