/// The statements of the contract step and its rollback that every job shares. Identifiers are quoted;
/// values travel as parameters.
enum ContractSQL {
    /// The newest apply of the job that succeeded (rolled-back runs do not count): what "migrated" refers to.
    static let lastSuccessfulApply = """
        SELECT run_id, start_xid, finished_at::text FROM ferry.runs
        WHERE job = $1 AND mode = 'apply' AND status = 'succeeded' AND start_xid IS NOT NULL
        ORDER BY run_id DESC LIMIT 1
        """

    /// The transaction ids of ferry's own writes (32-bit, as xmin shows them), as a bigint[] parameter:
    /// every batch, and every rollback of a contract, which puts back the very values the contract had
    /// judged (a row it restored has not changed its legacy value).
    static let ferryWriteXids = """
        SELECT coalesce(array_agg(DISTINCT x % 4294967296), '{}')::text FROM (
            SELECT xid AS x FROM ferry.batches
            UNION ALL
            SELECT (detail->>'\(restoreXidDetail)')::bigint FROM ferry.events
            WHERE kind = 'rollback done' AND detail ? '\(restoreXidDetail)'
        ) ferry_writes
        """

    /// The event detail of a contract's rollback that names the transaction which put the values back.
    static let restoreXidDetail = "values_restored_xid"

    /// The contract run that dropped a column of the table, if one is in force.
    static let contractInForce = """
        SELECT r.run_id FROM ferry.runs r JOIN ferry.dropped_columns d USING (run_id)
        WHERE r.mode = 'contract' AND r.status = 'succeeded' AND d.table_name = $1 AND d.column_name = ANY ($2::text[])
        ORDER BY r.run_id DESC LIMIT 1
        """

    /// Records each dropped column's definition and what PostgreSQL drops with it (indexes, constraints),
    /// so a rollback rebuilds all of it. $1 run, $2 table, $3 columns.
    static let recordColumns = """
        INSERT INTO ferry.dropped_columns (run_id, table_name, column_name, column_type, not_null, default_expr, position, restore_statements)
        SELECT $1, $2::text, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attnum,
               ARRAY(SELECT pg_get_indexdef(dep.objid) FROM pg_depend dep JOIN pg_index i ON i.indexrelid = dep.objid
                     WHERE dep.classid = 'pg_class'::regclass AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum
                       AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid))
               || ARRAY(SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', $2::text, c.conname, pg_get_constraintdef(c.oid))
                        FROM pg_constraint c WHERE c.conrelid = a.attrelid AND a.attnum = ANY (c.conkey))
        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = $2::text::regclass AND a.attname = ANY ($3::text[]) AND a.attnum > 0 AND NOT a.attisdropped
        """

    /// Keeps every non-NULL legacy value by the row's primary key. $1 run, $2 table.
    static func recordValues(_ table: SnapshotTable, source: TableName, columns: [String]) -> String {
        let object =
            "jsonb_build_object("
            + columns.map { "\(sqlLiteral($0)), s.\(quoteIdentifier($0))" }.joined(separator: ", ") + ")"
        return """
            INSERT INTO ferry.dropped_values (run_id, table_name, key, "values")
            SELECT $1, $2, \(table.keyObject(alias: "s")), \(object)
            FROM \(source.quoted) s WHERE \(columns.map { "s.\(quoteIdentifier($0)) IS NOT NULL" }.joined(separator: " OR "))
            """
    }

    static func dropColumns(_ table: TableName, _ columns: [String]) -> String {
        "ALTER TABLE \(table.quoted) " + columns.map { "DROP COLUMN \(quoteIdentifier($0))" }.joined(separator: ", ")
    }

    // MARK: Rollback

    static let droppedColumns = """
        SELECT column_name, column_type, not_null, default_expr, restore_statements::text, table_name
        FROM ferry.dropped_columns WHERE run_id = $1 ORDER BY position
        """

    static let existingColumns = """
        SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = ANY ($2::text[]) AND attnum > 0 AND NOT attisdropped
        """

    /// Puts the kept values back into the re-added columns, matching rows by primary key; counted as
    /// `RestoreOutcome` reads it. `comparing`: each row is compared, beyond those columns, with the
    /// row before the statement (which the statement still sees), for what a trigger changed. $1 run,
    /// $2 (comparing) the re-added columns.
    static func restoreValues(_ table: SnapshotTable, columns: [String], comparing: Bool) -> String {
        let sameKey = table.keyColumns.map { "o.\(quoteIdentifier($0.name)) = t.\(quoteIdentifier($0.name))" }
            .joined(separator: " AND ")
        let changed = """
            (SELECT ARRAY(SELECT e.key FROM jsonb_each(to_jsonb(t)) e
                          WHERE e.key <> ALL ($2::text[]) AND e.value IS DISTINCT FROM o.before -> e.key)
             FROM (SELECT to_jsonb(o) AS before FROM \(table.qualifiedName) o WHERE \(sameKey)) o)
            """
        return """
            WITH restored AS (
                UPDATE \(table.qualifiedName) t SET \(columns.map { "\(quoteIdentifier($0)) = r.\(quoteIdentifier($0))" }.joined(separator: ", "))
                FROM ferry.dropped_values v, jsonb_populate_record(NULL::\(table.qualifiedName), v."values") r
                WHERE v.run_id = $1 AND \(table.keyMatch(table: "t", snapshot: "v"))
                RETURNING \(comparing ? changed : "'{}'::text[]") AS changed
            )
            \(RestoreOutcome.select(from: "restored"))
            """
    }
}
