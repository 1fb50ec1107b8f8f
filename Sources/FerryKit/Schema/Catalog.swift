extension PostgresConnection {
    /// A table's columns and their SQL types, as format_type prints them; empty when the table is missing.
    /// Jobs type their staging tables and new columns after these, and the doctor checks them.
    func columnTypes(_ table: TableName) throws -> [String: String] {
        var columns: [String: String] = [:]
        for row in try query(
            """
            SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
            FROM pg_attribute a
            WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """, [table.quoted]
        ).decoded("the columns of \(table)", key: "name") {
            columns[try row.required("name")] = try row.required("type", as: String.self)
        }
        return columns
    }
}

extension PostgresConnection {
    /// The installed Citus extension's version, nil without one (then Citus's catalog tables are not there
    /// to name).
    func citusVersion() throws -> String? {
        try query("SELECT extversion FROM pg_extension WHERE extname = 'citus'").scalar
    }

    /// Whether a relation is a view or a materialized view (no keys, no xmin of its own).
    func isView(_ table: TableName) throws -> Bool {
        try query("SELECT relkind IN ('v', 'm') FROM pg_class WHERE oid = to_regclass($1)", [table.quoted]).scalar
            == "t"
    }
}
