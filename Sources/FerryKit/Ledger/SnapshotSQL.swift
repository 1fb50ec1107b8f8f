/// A table a run writes to, resolved in the catalog: its fully qualified name as PostgreSQL quotes it,
/// and its primary key, which is how snapshots find rows again.
public struct SnapshotTable: Sendable {
    public let qualifiedName: String
    public let keyColumns: [(name: String, type: String)]
    /// Rows written are recorded with a hash of what was written, which rollback compares: on a Citus
    /// distributed table a row's xmin is its worker's transaction id, not the batch's.
    var hashesRows = false
    /// Whether an update's pre-image must hold the whole row (see `updatedColumns`): where rows are
    /// hashed, or where a BEFORE UPDATE row trigger may write columns the update itself does not name.
    var keepsWholeRows = false

    static let lookup = """
        SELECT format('%I.%I', n.nspname, c.relname) AS qualified_name, a.attname AS key_column,
               format_type(a.atttypid, a.atttypmod) AS key_type
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
        WHERE c.oid = to_regclass($1)
        ORDER BY array_position(i.indkey::int2[], a.attnum)
        """

    /// `name` is SQL text that names a table (quoted as needed); it is resolved, never spliced.
    public static func resolve(_ name: String, on connection: PostgresConnection) throws -> SnapshotTable {
        let rows = try connection.query(lookup, [name]).decoded("the primary key of \(name)", key: "key_column")
        guard let first = rows.first, let qualified = try first.optional("qualified_name", as: String.self) else {
            throw LedgerError(
                "table \(name) has no primary key (or does not exist): ferry needs one to snapshot and roll back its rows"
            )
        }
        var table = SnapshotTable(
            qualifiedName: qualified,
            keyColumns: try rows.map { (try $0.required("key_column"), try $0.required("key_type")) })
        table.hashesRows = try isDistributed(qualified, on: connection)
        table.keepsWholeRows =
            try table.hashesRows
            || RowTrigger.beforeRowTriggers(on: qualified, connection: connection).contains(where: \.onUpdate)
        return table
    }

    /// Whether `table` is a Citus distributed table (never on a database without the extension).
    static func isDistributed(_ table: String, on connection: PostgresConnection) throws -> Bool {
        guard try connection.citusVersion() != nil else { return false }
        return try connection.query(
            "SELECT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = to_regclass($1))", [table]
        ).value("whether \(table) is distributed", as: Bool.self)
    }

    /// The columns a pre-image fills in a snapshot row, in `preImage`'s order.
    static let preImageColumns = "before, before_xmin"

    /// A row's pre-image (`preImageColumns`): the row as JSON and, where xmin judges rows, its xmin as
    /// it was (see `LedgerSchema.restoredRowsStep`).
    func preImage(_ alias: String) -> String { "to_jsonb(\(alias)), \(xminAsItWas(alias))" }

    /// The pre-image of an update that writes only `columns` of row `alias`: those columns as they were.
    /// Rollback overwrites a row with what its pre-image holds and leaves its other columns as they
    /// are, which the update did not touch either: a copy of them would be built and stored for every
    /// row for nothing. (A deleted row comes back from its pre-image alone: it keeps the whole row.)
    /// The whole row where `keepsWholeRows`: a distributed rollback knows a row it restored by comparing
    /// the row with its whole pre-image, generated columns included (`DistributedRollback`), and a
    /// trigger may change more than the update names.
    func updatedColumns(_ columns: [String], of alias: String) -> String {
        keepsWholeRows ? "to_jsonb(\(alias))" : Self.jsonObject(columns, of: alias)
    }

    /// The row's xmin for `before_xmin`: none where rows are hashed instead (`hashesRows`).
    private func xminAsItWas(_ alias: String) -> String {
        hashesRows ? "NULL::bigint" : "\(alias).xmin::text::bigint"
    }

    /// A row's key and pre-image computed where the statement scans and locks it, as columns a CTE
    /// carries to the ledger's insert (`carriedKeyAndPreImage`) beside whatever else the scan reads
    /// (the row's ctid), none of which the pre-image must then leave out. `object`: what the pre-image
    /// holds (`updatedColumns`); nil, the whole row.
    func carryingKeyAndPreImage(_ alias: String, object: String? = nil) -> String {
        "\(keyObject(alias: alias)) AS ferry_key, \(object ?? "to_jsonb(\(alias))") AS ferry_before, \(xminAsItWas(alias)) AS ferry_before_xmin"
    }

    /// The key and pre-image (`key, ` + `preImageColumns`) a CTE row `alias` carries (see
    /// `carryingKeyAndPreImage`).
    static func carriedKeyAndPreImage(_ alias: String) -> String {
        "\(alias).ferry_key, \(alias).ferry_before, \(alias).ferry_before_xmin"
    }

    /// `jsonb_build_object('k1', alias.k1, ...)`: the key of a row as the snapshot stores it.
    func keyObject(alias: String) -> String { Self.jsonObject(keyColumns.map(\.name), of: alias) }

    /// `jsonb_build_object('c1', alias.c1, ...)`.
    private static func jsonObject(_ columns: [String], of alias: String) -> String {
        "jsonb_build_object("
            + columns.map { "'\($0.replacingOccurrences(of: "'", with: "''"))', \(alias).\(quoteIdentifier($0))" }
            .joined(separator: ", ") + ")"
    }

    /// Keys as `keyObject` writes them, given as one JSON array in parameter $`parameter`, as rows of a
    /// FROM item named `alias` with the key's columns (how keys read from the coordinator's ledger reach
    /// a statement that Citus runs on a worker).
    func keyRecordset(parameter: Int, alias: String) -> String {
        "jsonb_to_recordset($\(parameter)::jsonb) AS \(alias)("
            + keyColumns.map { "\(quoteIdentifier($0.name)) \($0.type)" }.joined(separator: ", ") + ")"
    }

    /// Matches a table row (alias `t`) to a snapshot row (alias `s`) by key.
    func keyMatch(table t: String, snapshot s: String) -> String {
        keyColumns.map {
            "\(t).\(quoteIdentifier($0.name)) = (\(s).key ->> '\($0.name.replacingOccurrences(of: "'", with: "''"))')::\($0.type)"
        }
        .joined(separator: " AND ")
    }

    /// The alias of the table a writing statement returns rows from (`INSERT INTO t AS ferry_written`), so
    /// that the row's hash can name the whole row: Citus sends a statement to a worker with the table
    /// renamed to its shard, where the table's own name no longer names the row.
    static let written = "ferry_written"

    /// The RETURNING list a snapshot needs: the key columns, plus `extra` columns (and the row's hash).
    /// The statement names its target `written`.
    func returning(_ extra: [String] = []) -> String {
        (keyColumns.map { quoteIdentifier($0.name) }
            + extra.filter { name in !keyColumns.contains { $0.name == name } }.map(quoteIdentifier)
            + (hashesRows ? ["\(Self.rowHash(Self.written)) AS ferry_row_hash"] : [])).joined(separator: ", ")
    }

    /// The hash rollback compares with a row as it is now: md5 of the row's text form.
    static func rowHash(_ row: String) -> String { "md5(\(row)::text)" }

    /// A data-modifying CTE that records the keys of CTE `source` as inserted by run $1, batch $2.
    /// What was written needs no copy: the batch's xid (ferry.batches.xid) tells whether a row changed
    /// since, or where xmin cannot (`hashesRows`), the hash of what was written.
    func recordInserts(from source: String, tableOrder: Int, tableNameParameter: String) -> String {
        """
        INSERT INTO ferry.snapshot_rows (run_id, batch_no, table_order, table_name, action, key\(hashesRows ? ", after_hash" : ""))
        SELECT $1, $2, \(tableOrder), \(tableNameParameter), 'insert', \(keyObject(alias: "r"))\(hashesRows ? ", r.ferry_row_hash" : "")
        FROM \(source) r
        """
    }

    // MARK: Updates and deletes

    /// Where a batch's pre-images go before its UPDATE or DELETE: the ledger, or for a hashed table a
    /// session table they wait in until `recordPreImages` gives each the hash of the row as written.
    var preImageTable: String { hashesRows ? Self.pendingPreImages : "ferry.snapshot_rows" }

    static let pendingPreImages = "ferry_pending_pre_images"

    /// Once per session: the table `preImageTable` names for a hashed table (temporary, so local to
    /// the coordinator on Citus, which the ledger is too).
    static let createPendingPreImages =
        "CREATE TEMP TABLE IF NOT EXISTS \(pendingPreImages) (LIKE ferry.snapshot_rows) ON COMMIT DELETE ROWS"

    /// After the batch's UPDATE of a hashed table: its pending pre-images move to the ledger, each with
    /// the hash of its row as the batch left it (`written`: a SELECT of `key` (as `keyObject`) and
    /// `ferry_row_hash` that covers the rows updated). Citus takes no row hash in an UPDATE's RETURNING;
    /// a SELECT of the same rows, still locked by this transaction, sees what the UPDATE wrote. $1 the
    /// table's qualified name, $2 free for `written`. nil for a table judged by xmin.
    func recordPreImages(written: String) -> String? {
        guard hashesRows else { return nil }
        return """
            WITH pending AS (
                DELETE FROM \(Self.pendingPreImages) WHERE table_name = $1 RETURNING *
            )
            INSERT INTO ferry.snapshot_rows (run_id, batch_no, table_order, table_name, action, key, before, after_hash)
            SELECT p.run_id, p.batch_no, p.table_order, p.table_name, p.action, p.key, p.before, w.ferry_row_hash
            FROM pending p LEFT JOIN (\(written)) w ON w.key = p.key
            """
    }
}

extension PostgresConnection {
    /// A batch's UPDATE or DELETE of `table` with its pre-images: `preImages` ($1 run, $2 batch, $3 table,
    /// $4 the tenant on Citus) locks and records them, `change` ($1 the tenant on Citus) writes the same
    /// rows, and `record` ($1 table, $2 tenant), where the table is judged by hash, moves the pre-images
    /// to the ledger with each updated row's hash. Returns the rows changed.
    func changeRows(
        _ table: SnapshotTable, preImages: String, change: String, record: String?, run: String, batch: String,
        tenant: [String]
    ) throws -> Int {
        try query(preImages, [run, batch, table.qualifiedName] + tenant)
        let changed = try query(change, tenant).affectedRows
        if let record { try query(record, [table.qualifiedName] + tenant) }
        return changed
    }
}
