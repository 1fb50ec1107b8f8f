/// An enabled BEFORE row trigger on INSERT or UPDATE: a row a rollback puts back goes through it, and
/// it may change the row on the way (an `updated_at` set to now()).
struct RowTrigger: Equatable {
    let name: String
    /// `ENABLE ALWAYS`: it fires whatever the session's replication role.
    let always: Bool
    let onUpdate: Bool

    /// The table's triggers that fire for ferry's session (not internal ones such as foreign keys).
    static func beforeRowTriggers(on table: String, connection: PostgresConnection) throws -> [RowTrigger] {
        // tgtype bits: 1 row level, 2 before, 4 insert, 16 update.
        try connection.query(
            """
            SELECT tgname AS name, tgenabled = 'A' AS always, tgtype & 16 <> 0 AS on_update FROM pg_trigger
            WHERE tgrelid = to_regclass($1) AND NOT tgisinternal AND tgenabled IN ('O', 'A')
              AND tgtype & 3 = 3 AND tgtype & 20 <> 0
            ORDER BY tgname
            """, [table]
        ).decoded("the triggers of \(table)", key: "name").map {
            RowTrigger(
                name: try $0.required("name"), always: try $0.required("always"), onUpdate: try $0.required("on_update")
            )
        }
    }

    /// Disabled inside the caller's transaction; `enable` puts each back as it was before it commits.
    static func disable(_ triggers: [RowTrigger], on table: String, connection: PostgresConnection) throws {
        for trigger in triggers {
            try connection.execute(script: "ALTER TABLE \(table) DISABLE TRIGGER \(quoteIdentifier(trigger.name))")
        }
    }

    static func enable(_ triggers: [RowTrigger], on table: String, connection: PostgresConnection) throws {
        for trigger in triggers {
            try connection.execute(
                script:
                    "ALTER TABLE \(table) ENABLE \(trigger.always ? "ALWAYS " : "")TRIGGER \(quoteIdentifier(trigger.name))"
            )
        }
    }
}

extension RollbackTableReport {
    /// The table's BEFORE row triggers its restores go through, and whether they are disabled meanwhile.
    mutating func restores(through triggers: [RowTrigger], disabled: Bool) {
        beforeTriggers = triggers.map(\.name)
        triggersDisabled = disabled && !triggers.isEmpty
    }

    /// What the triggers did to the rows restored: nil, or the report's line for the rows they changed.
    mutating func note(_ outcome: RestoreOutcome, table: String) -> String? {
        restoredOtherwise = outcome.changed
        columnsChangedByTriggers = outcome.columns.sorted()
        let rows = outcome.changed
        guard rows > 0 else { return nil }
        return
            "\(table): \(rows) restored row\(rows == 1 ? "" : "s") differ\(rows == 1 ? "s" : "") from the pre-image in "
            + "\(columnsChangedByTriggers.joined(separator: ", ")): changed on the way back by trigger\(beforeTriggers.count == 1 ? "" : "s") "
            + "\(beforeTriggers.joined(separator: ", ")) (--disable-before-triggers restores exactly)"
    }
}

/// What one restoring statement did: rows put back, how many of them a trigger changed on the way,
/// and the columns it changed.
struct RestoreOutcome {
    var restored = 0
    var changed = 0
    var columns: Set<String> = []

    /// The statement's result, counted from CTE `cte` with a text[] column `changed` (the columns in
    /// which a row differs from what was put back; empty where nothing is compared).
    static func select(from cte: String) -> String {
        """
        SELECT count(*) AS restored, count(*) FILTER (WHERE cardinality(changed) > 0) AS changed,
               (SELECT string_agg(DISTINCT c, ',') FROM \(cte), unnest(changed) c) AS columns
        FROM \(cte)
        """
    }

    /// Runs `sql` (ending in `select(from:)`) and adds its counts to this outcome.
    mutating func add(
        _ purpose: String, _ sql: String, _ parameters: [String?], on connection: PostgresConnection
    )
        throws
    {
        guard let row = try connection.query(sql, parameters).decoded(purpose).first else {
            throw LedgerError("no count of \(purpose)")
        }
        restored += try row.required("restored", as: Int.self)
        changed += try row.required("changed", as: Int.self)
        if let names: String = try row.optional("columns") {
            columns.formUnion(names.split(separator: ",").map(String.init))
        }
    }
}
