/// Settings of ferry's sessions that must reach every node the session's statements run on.
enum SessionSettings {
    /// At connect: on Citus, a `SET LOCAL` reaches the workers only with this; elsewhere it is an unused
    /// placeholder setting.
    static let propagateLocalSettings = "SET citus.propagate_set_commands = 'local'"

    /// The settings of one batch transaction: its timeouts, and JIT off on every node. `SET LOCAL` rather
    /// than `set_config(…, true)`: on Citus a `set_config` stays on the coordinator, and a row lock held on
    /// a worker then made ferry wait for the statement timeout instead of the lock timeout. The session's
    /// own `SET jit = off` (at connect) does not reach the workers either, where compiling a batch's
    /// statement took longer than running it.
    static func setLocalBatchSettings(_ timeouts: (lock: String, statement: String)) -> String {
        batchSettings(lock: sqlLiteral(timeouts.lock), statement: sqlLiteral(timeouts.statement))
    }

    /// As the plan report's SQL appendix shows it: the values are the run's --lock-timeout and --statement-timeout.
    static let setLocalBatchSettingsForReport = batchSettings(lock: ":lock_timeout", statement: ":statement_timeout")

    /// `lock` and `statement` as SQL text: literals, or the report's placeholders.
    private static func batchSettings(lock: String, statement: String) -> String {
        "SET LOCAL lock_timeout = \(lock); SET LOCAL statement_timeout = \(statement); SET LOCAL jit = off"
    }
}
