/// A problem found before any row is touched: missing tables, columns, or a schema step not applied.
public struct PreflightError: Error, CustomStringConvertible, Sendable {
    public let problems: [String]
    public var description: String {
        "ferry cannot start:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}
