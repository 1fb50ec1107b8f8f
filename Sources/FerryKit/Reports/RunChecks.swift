/// What every job's summary shares: per-tenant volumes and the target's constraints checked.

/// Per-tenant volumes, for the DBA who asks "which customer does this hit?".
public struct TenantCounts: Codable, Equatable, Sendable {
    public var contactsScanned = 0
    public var contactsWithNumbers = 0
    public var rowsToInsert = 0
    public var valuesRejected = 0
    public var contactsSkippedExisting = 0
}

/// A constraint of the target tables, checked against the rows the plan would write.
public struct ConstraintCheck: Codable, Equatable, Sendable {
    public let constraint: String
    public var violations = 0
    public var examples: [String] = []
    /// Why the plan could not evaluate this constraint on the planned rows; nil when it did.
    public var notChecked: String?
    /// Why the planned rows cannot break this constraint, when the plan knows it from how it made them
    /// instead of counting (violations is then 0); nil when it counted.
    public var heldBecause: String?

    public init(
        constraint: String, violations: Int = 0, examples: [String] = [], notChecked: String? = nil,
        heldBecause: String? = nil
    ) {
        self.constraint = constraint
        self.violations = violations
        self.examples = examples
        self.notChecked = notChecked
        self.heldBecause = heldBecause
    }

    public enum Verdict: String, Sendable {
        case held = "✓", violated = "✗", notChecked = "–"
    }

    public var verdict: Verdict { notChecked != nil ? .notChecked : violations == 0 ? .held : .violated }

    /// What a report's violations column says instead of a count: "not checked: why" or "none by
    /// construction: why"; nil when the plan counted.
    public var explanationText: String? {
        notChecked.map { "not checked: \($0)" } ?? heldBecause.map { "none by construction: \($0)" }
    }
}
