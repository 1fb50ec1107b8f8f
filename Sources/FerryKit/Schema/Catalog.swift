import Foundation

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
    /// The columns a restored row is written through, quoted, in table order: every column but the
    /// generated ones (PostgreSQL computes those). `table` is SQL text naming it.
    func writableColumns(_ table: String) throws -> [String] {
        try query(
            """
            SELECT quote_ident(attname) AS name FROM pg_attribute
            WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum
            """, [table]
        ).decoded("the columns of \(table)").map { try $0.required("name", as: String.self) }
    }

    /// The writable columns a deleted row of run `runId` is inserted back through: those its pre-image
    /// has. A column the application added since takes its default, not NULL; a column it dropped is
    /// left out. Empty when the run deleted no row of the table.
    func columnsOfDeletedPreImages(_ table: String, runId: Int64) throws -> [String] {
        try query(
            """
            WITH image AS (
                SELECT before FROM ferry.snapshot_rows WHERE run_id = $2 AND table_name = $1 AND action = 'delete' LIMIT 1
            )
            SELECT quote_ident(attname) AS name FROM pg_attribute
            WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
              AND attname IN (SELECT jsonb_object_keys(before) FROM image)
            ORDER BY attnum
            """, [table, String(runId)]
        ).decoded("the columns of the rows \(table) lost").map { try $0.required("name", as: String.self) }
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

    /// How many rows the planner expects `select` to return (EXPLAIN, nothing run): for progress and ETA
    /// where counting would cost a pass of its own.
    func plannerRowEstimate(_ select: String) throws -> Int? {
        struct Explained: Decodable {
            struct Plan: Decodable {
                let rows: Double
                enum CodingKeys: String, CodingKey { case rows = "Plan Rows" }
            }
            let plan: Plan
            enum CodingKeys: String, CodingKey { case plan = "Plan" }
        }
        guard let text = try query("EXPLAIN (FORMAT JSON) \(select)").scalar,
            let rows = try JSONDecoder().decode([Explained].self, from: Data(text.utf8)).first?.plan.rows
        else { return nil }
        return Int(rows.rounded())
    }
}

extension PostgresConnection {
    /// What one more row of a table takes on disk with its indexes, and how that was found: the table's
    /// own average when it holds enough rows to say, else the sum of its columns' and index keys' sizes
    /// (a variable-length value counted as 24 bytes) plus the tuple and index-entry overheads.
    func bytesPerNewRow(_ table: TableName) throws -> (bytes: Double, basis: String) {
        // Three statements: Citus plans a statement that reads a distributed table wholly differently,
        // and the catalog arithmetic must not ride along with the sample.
        let sampled = try query("SELECT count(*) FROM (SELECT 1 FROM \(table.quoted) LIMIT 1000) x")
            .value("a sample of \(table)", as: Int.self)
        // On Citus the coordinator's entry of a distributed table is empty: its size and row count are
        // its shards'.
        let size =
            try SnapshotTable.isDistributed(table.quoted, on: self)
            ? """
            SELECT citus_total_relation_size(to_regclass($1))::float8 AS bytes,
                   coalesce((SELECT sum(greatest(result::float8, 0)) FROM run_command_on_shards(
                       $1, $q$SELECT reltuples FROM pg_class WHERE oid = '%s'::regclass$q$) WHERE success), 0) AS estimated_rows
            """
            : """
            SELECT pg_total_relation_size(c.oid)::float8 AS bytes, greatest(c.reltuples, 0)::float8 AS estimated_rows
            FROM pg_class c WHERE c.oid = to_regclass($1)
            """
        if sampled >= 1000, let measured = try query(size, [table.quoted]).decoded("the size of \(table)").first {
            let bytes: Double = try measured.required("bytes")
            let rows: Double = try measured.required("estimated_rows")
            return (bytes / max(rows, Double(sampled)), "the table's own average row with its indexes")
        }
        let fromTypes = try query(
            """
            WITH widths AS (
                SELECT a.attnum, CASE WHEN t.typlen > 0 THEN t.typlen ELSE 24 END AS width
                FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped)
            SELECT (28 + (SELECT sum(width) FROM widths)
                       + (SELECT coalesce(sum(16 + (SELECT coalesce(sum(w.width), 8) FROM unnest(i.indkey::int2[]) k
                                                    JOIN widths w ON w.attnum = k)), 0)
                          FROM pg_index i WHERE i.indrelid = to_regclass($1)))::float8 AS from_types
            """, [table.quoted]
        ).value("the size of a row of \(table)", as: Double.self)
        return (fromTypes, "its column and index key sizes: too few rows to measure")
    }
}

extension PostgresConnection {
    /// Whether `column` of `table` is a uuid whose default draws a random one (`gen_random_uuid()`, or
    /// uuid-ossp's `uuid_generate_v4()`): a key ferry may then draw itself, the same way.
    func defaultsToRandomUUID(_ table: TableName, column: String) throws -> Bool {
        try query(
            """
            SELECT coalesce(bool_or(a.atttypid = 'uuid'::regtype
                       AND regexp_replace(pg_get_expr(d.adbin, d.adrelid), '^([a-z_]+\\.)?', '')
                           IN ('gen_random_uuid()', 'uuid_generate_v4()')), false)
            FROM pg_attribute a
            JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped
            """, [table.quoted, column]
        ).value("whether \(table).\(column) defaults to a random uuid", as: Bool.self)
    }
}
