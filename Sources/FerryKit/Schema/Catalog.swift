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
        try query(
            "SELECT coalesce((SELECT relkind IN ('v', 'm') FROM pg_class WHERE oid = to_regclass($1)), false)",
            [table.quoted]
        ).value("whether \(table) is a view", as: Bool.self)
    }
}

extension PostgresConnection {
    /// What one more row of a table takes on disk with its indexes, and how that was found: the table's
    /// own average when it holds enough rows to say, else the sum of its columns' and index keys' sizes
    /// (a variable-length value counted as 24 bytes) plus the tuple and index-entry overheads.
    func bytesPerNewRow(_ table: TableName) throws -> (bytes: Double, basis: String) {
        let row = try query(
            """
            WITH rel AS (SELECT to_regclass($1) AS oid),
            sized AS (
                SELECT pg_total_relation_size(rel.oid)::float8 AS bytes,
                       (SELECT count(*) FROM (SELECT 1 FROM \(table.quoted) LIMIT 1000) x)::int AS sampled,
                       greatest(c.reltuples, 0)::float8 AS estimated_rows
                FROM rel JOIN pg_class c ON c.oid = rel.oid),
            widths AS (
                SELECT a.attnum, CASE WHEN t.typlen > 0 THEN t.typlen ELSE 24 END AS width
                FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid JOIN pg_type t ON t.oid = a.atttypid
                WHERE a.attnum > 0 AND NOT a.attisdropped)
            SELECT CASE WHEN s.sampled >= 1000 THEN s.bytes / greatest(s.estimated_rows, s.sampled) END AS measured,
                   28 + (SELECT sum(width) FROM widths)
                      + (SELECT coalesce(sum(16 + (SELECT coalesce(sum(w.width), 8) FROM unnest(i.indkey::int2[]) k
                                                   JOIN widths w ON w.attnum = k)), 0)
                         FROM rel JOIN pg_index i ON i.indrelid = rel.oid) AS from_types
            FROM sized s
            """, [table.quoted]
        ).decoded("the size of a row of \(table)")[0]
        if let measured: Double = try row.optional("measured") {
            return (measured, "the table's own average row with its indexes")
        }
        return (
            try row.required("from_types"), "its column and index key sizes: too few rows to measure"
        )
    }
}
