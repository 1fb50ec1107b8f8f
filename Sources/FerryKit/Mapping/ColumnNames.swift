import Foundation

/// A table's column names: the mapping may rename any of them, and may not invent new ones.
struct ColumnNames {
    private var names: [String: String?]

    /// `optional`: the roles a mapping may set to null (the table has no such column).
    init(_ node: MappingNode?, defaults: [String: String], optional: Set<String> = []) throws {
        names = defaults
        guard let node else { return }
        for (role, column) in try node.optionalStringPairs() {
            guard defaults[role] != nil else {
                throw node.error(
                    "unknown column role '\(role)' (known: \(defaults.keys.sorted().joined(separator: ", ")))")
            }
            if column == nil, !optional.contains(role) {
                throw node.error(
                    "column role '\(role)' cannot be null: ferry writes it (only \(optional.sorted().joined(separator: ", ")) may be absent here)"
                )
            }
            names[role] = column
        }
    }

    /// A column the table must have.
    subscript(role: String) -> String { names[role]!! }
    /// A column the mapping may declare absent (nil).
    func optional(_ role: String) -> String? { names[role] ?? nil }

    /// A mapping's `{table, schema, columns}` node: the table (default `defaultName`) and its column names.
    static func table(
        _ node: MappingNode?, _ defaultName: String, _ defaults: [String: String]
    ) throws -> (TableName, ColumnNames) {
        let name = TableName(schema: try node?.string("schema"), name: try node?.string("table") ?? defaultName)
        let columns = try ColumnNames(node?.child("columns"), defaults: defaults)
        try node?.rejectUnknownKeys()
        return (name, columns)
    }
}
