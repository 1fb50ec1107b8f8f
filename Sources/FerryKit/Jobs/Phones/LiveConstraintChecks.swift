/// Checks the rows a phones plan would write against the target table's constraints as the catalog
/// lists them now (unique indexes, foreign keys, CHECK constraints, the application's own included),
/// on live data, before anything is written. The rows go into a temporary table on a second session
/// that shares the plan's snapshot, so memory stays flat and the answer is the plan's.
final class LiveConstraintChecks {
    private let connection: PostgresConnection
    private let source: PhonesMapping.Source
    private let phones: PhonesMapping.PhoneNumbersTable
    private let types: PhonesMapping.TypeDefinitionsTable
    private var encoder = CopyTextEncoder()
    /// The columns of the planned table after `dropColumnsNoCheckReads`.
    private var plannedColumns = Set<String>()
    /// The phone table's unique indexes, read once: which of them are checked decides both the columns
    /// the planned table keeps and the checks `results` runs.
    private var uniqueIndexes: [UniqueIndex] = []
    /// On Citus: the planned rows (a temporary table) meet distributed tables only in uncorrelated
    /// subqueries, which Citus plans; and no snapshot spans the workers (the report says so, see
    /// `PlanReport.changeNote`).
    private let distributed: Bool

    private struct UniqueIndex {
        let name: String
        let oid: String
        let columns: [String]
        let predicate: String?
        let indexesAnExpression: Bool
    }
    static let planned = "ferry_planned_phones"
    /// A temporary copy of the phone table with its indexes and CHECKs: one batch is loaded into it, timed.
    static let sample = "ferry_sample_load"
    /// Live naive rows the planned rows replace (existing_rows: replace_naive): not compared with them.
    static let replaced = "ferry_planned_replaced"
    /// On Citus, a copy of the custom type definitions, which the planned rows are resolved against.
    static let plannedTypes = "ferry_planned_types"
    private static let maximumExamples = 5

    /// `snapshot` is the plan's exported snapshot (pg_export_snapshot).
    init(conninfo: String, snapshot: String, mapping: PhonesMapping) throws {
        source = mapping.source
        phones = mapping.phoneNumbers
        types = mapping.typeDefinitions
        connection = try PostgresConnection(
            conninfo: conninfo, applicationName: "ferry plan phones (constraint checks)")
        distributed = try DatabaseEngine.detect(source: mapping.source.table, on: connection).isCitus
        // A READ ONLY transaction may write temporary tables but not create them: create first.
        if distributed {
            try connection.execute(
                script: "CREATE TEMP TABLE \(Self.plannedTypes) (LIKE \(types.table.quoted) INCLUDING DEFAULTS)")
        }
        try connection.execute(
            script: """
                CREATE TEMP TABLE \(Self.planned) (LIKE \(phones.table.quoted) INCLUDING DEFAULTS INCLUDING GENERATED);
                ALTER TABLE \(Self.planned) ADD COLUMN ferry_custom_label text, ADD COLUMN ferry_new_custom_type boolean NOT NULL DEFAULT false,
                    ADD COLUMN ferry_contact_has_several boolean NOT NULL;
                CREATE TEMP TABLE \(Self.replaced) (row_id text PRIMARY KEY);
                CREATE TEMP TABLE \(Self.sample) (LIKE \(phones.table.quoted) INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING INDEXES INCLUDING CONSTRAINTS);
                """)
        uniqueIndexes = try connection.query(
            """
            SELECT i.indexrelid::regclass::text AS name, i.indexrelid::oid::text AS oid,
                   array(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o)
                         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o)::text AS columns,
                   pg_get_expr(i.indpred, i.indrelid) AS predicate, 0 = ANY (i.indkey::int2[]) AS on_expression
            FROM pg_index i WHERE i.indrelid = to_regclass($1) AND i.indisunique
            ORDER BY 1
            """, [phones.table.quoted]
        ).decoded("the phone table's unique indexes", key: "name").map {
            UniqueIndex(
                name: try $0.required("name"), oid: try $0.required("oid"), columns: try $0.required("columns"),
                predicate: try $0.optional("predicate"), indexesAnExpression: try $0.required("on_expression"))
        }
        try dropColumnsNoCheckReads()
        try acceptNulls()
        try connection.execute(script: "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try connection.query("SET TRANSACTION SNAPSHOT \(sqlLiteral(snapshot))")
    }

    deinit { connection.close() }

    /// The columns ferry fills in a planned row.
    private var filledColumns: [String] {
        [phones.tenant, phones.contactKey, phones.phoneNumber] + [phones.extensionDigits].compactMap { $0 }
            + [phones.canonicalType, phones.customType, phones.isDefault, phones.displayOrder]
    }

    /// The columns whose value a planned row has: ferry's, and the one PostgreSQL computes from its number.
    /// A unique index is checked when it reads only these.
    private var providedColumns: [String] { filledColumns + [phones.normalizedPhoneNumber].compactMap { $0 } }

    /// Of a constraint's columns, those the planned rows have no value for; empty when it can be checked.
    private func unwritten(_ columns: [String]) -> [String] {
        let provided = Set(providedColumns)
        return columns.filter { !provided.contains($0) }
    }

    private func isChecked(_ index: UniqueIndex) -> Bool {
        !index.indexesAnExpression && unwritten(index.columns).isEmpty
    }

    /// Drops from the planned table the columns that no check reads: every copied row would otherwise
    /// evaluate their defaults and generated expressions (ids, timestamps; a third of the COPY's time on
    /// the sample schema). Kept: ferry's columns, those of every CHECK constraint, those a checked unique
    /// index reads (its predicate included), and those a kept generated column is computed from.
    private func dropColumnsNoCheckReads() throws {
        let unread = try connection.query(
            """
            WITH columns AS (
                SELECT a.attnum, a.attname FROM pg_attribute a
                WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
            ), checked_unique_indexes AS (
                SELECT unnest($3::oid[]) AS indexrelid
            ), read AS (
                SELECT attnum FROM columns WHERE attname = ANY ($2::text[])
                UNION SELECT unnest(conkey) FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'c'
                UNION SELECT d.refobjsubid FROM pg_depend d JOIN checked_unique_indexes u ON d.objid = u.indexrelid
                      WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                        AND d.refobjid = to_regclass($1) AND d.refobjsubid > 0
            ), needed AS (
                SELECT attnum FROM read
                UNION SELECT d.refobjsubid FROM pg_depend d JOIN read r ON d.objsubid = r.attnum
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = to_regclass($1)
                        AND d.refclassid = 'pg_class'::regclass AND d.refobjid = to_regclass($1) AND d.refobjsubid > 0
            )
            SELECT attname AS name FROM columns WHERE attnum NOT IN (SELECT attnum FROM needed) ORDER BY attnum
            """,
            [
                phones.table.quoted, textArrayLiteral(filledColumns),
                textArrayLiteral(uniqueIndexes.filter(isChecked).map(\.oid)),
            ]
        ).decoded("columns no check reads").map { try $0.required("name", as: String.self) }
        guard !unread.isEmpty else { return }
        try connection.execute(
            script: "ALTER TABLE \(Self.planned) " + unread.map { "DROP COLUMN \(q($0))" }.joined(separator: ", "))
    }

    /// LIKE copies NOT NULL; without it a planned NULL is counted by `results` instead of failing the COPY.
    /// Also notes the columns the planned table kept: inside the plan's snapshot, which predates the
    /// table, the catalog would not show them.
    private func acceptNulls() throws {
        let columns = try connection.query(
            """
            SELECT attname AS name, attnotnull AS not_null FROM pg_attribute
            WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum
            """, [Self.planned]
        ).decoded("the planned rows' columns", key: "name").map {
            (name: try $0.required("name", as: String.self), notNull: try $0.required("not_null", as: Bool.self))
        }
        plannedColumns = Set(columns.map(\.name))
        let notNull = columns.filter(\.notNull).map(\.name)
        guard !notNull.isEmpty else { return }
        try connection.execute(
            script: "ALTER TABLE \(Self.planned) "
                + notNull.map { "ALTER COLUMN \(q($0)) DROP NOT NULL" }.joined(separator: ", "))
    }

    private func q(_ name: String) -> String { quoteIdentifier(name) }

    /// Adds one batch's planned rows, and the naive rows they replace.
    func add(_ outcomes: [PhoneContactOutcome]) throws {
        let replaced = outcomes.compactMap(\.replacesRow)
        if !replaced.isEmpty {
            encoder.removeAll()
            for row in replaced { encoder.appendRow([row]) }
            _ = try connection.copyIn("COPY \(Self.replaced) (row_id) FROM STDIN") { write in
                try encoder.bytes.withUnsafeBytes { try write($0) }
            }
        }
        try add(outcomes.map(\.rows))
    }

    /// Adds one batch's planned rows, one array per contact.
    private func add(_ rowsPerContact: [[PhoneRowDraft]]) throws {
        encoder.removeAll()
        let hasExtensionColumn = phones.extensionDigits != nil
        // One array reused for every row: this runs once per planned row.
        var fields: [String?] = []
        fields.reserveCapacity(9)
        for rows in rowsPerContact {
            let several = rows.count > 1 ? "t" : "f"
            for row in rows {
                fields.removeAll(keepingCapacity: true)
                fields.append(row.tenant)
                fields.append(row.contactKey)
                fields.append(row.e164)
                if hasExtensionColumn { fields.append(row.extensionDigits) }
                fields.append(row.type.canonical?.rawValue)
                fields.append(row.type.customLabel.map(normalizePhoneLabel))
                fields.append(row.isDefault ? "t" : "f")
                fields.append(String(row.displayOrder))
                fields.append(several)
                encoder.appendRow(fields)
            }
        }
        guard !encoder.bytes.isEmpty else { return }
        _ = try connection.copyIn(
            """
            COPY \(Self.planned) (\(q(phones.tenant)), \(q(phones.contactKey)), \(q(phones.phoneNumber)),\(phones.extensionDigits.map { " " + q($0) + "," } ?? "")
                                  \(q(phones.canonicalType)), ferry_custom_label, \(q(phones.isDefault)), \(q(phones.displayOrder)),
                                  ferry_contact_has_several) FROM STDIN
            """
        ) { write in try encoder.bytes.withUnsafeBytes { try write($0) } }
    }

    /// Rows per second for loading one batch of the planned rows into the sample table (after `results`,
    /// which resolves their custom types); nil when there is nothing to load or the rows break a CHECK.
    func sampleLoad(rows: Int) throws -> (rate: Double, rows: Int, bytesPerRow: Double)? {
        let columns = filledColumns.map(q).joined(separator: ", ")
        let sizeQuery = "SELECT pg_total_relation_size('\(Self.sample)'::regclass)"
        let emptySize = try connection.query(sizeQuery).value("a size", as: Double.self)
        try connection.execute(script: "SAVEPOINT ferry_sample_load")
        let started = ContinuousClock.now
        do {
            let loaded = try connection.query(
                "INSERT INTO \(Self.sample) (\(columns)) SELECT \(columns) FROM \(Self.planned) LIMIT $1",
                [String(rows)]
            ).affectedRows
            let elapsed = ContinuousClock.now - started
            // What the rows take with the table's indexes: the basis of the growth estimate.
            let loadedSize = try connection.query(sizeQuery).value("a size", as: Double.self)
            try connection.execute(script: "ROLLBACK TO SAVEPOINT ferry_sample_load")
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            return loaded > 0 && seconds > 0
                ? (Double(loaded) / seconds, loaded, max(0, loadedSize - emptySize) / Double(loaded)) : nil
        } catch is PostgresError {
            try connection.execute(script: "ROLLBACK TO SAVEPOINT ferry_sample_load")
            return nil
        }
    }

    /// One check per unique index, foreign key and CHECK constraint of the phone table.
    func results() throws -> [ConstraintCheck] {
        // Custom types: the existing definition's id, or a stand-in for one the apply will create first.
        // On Citus against a local copy: a correlated subquery may not reach a distributed table.
        if distributed {
            try connection.execute(script: "INSERT INTO \(Self.plannedTypes) SELECT * FROM \(types.table.quoted)")
        }
        let typeDefinitions = distributed ? Self.plannedTypes : types.table.quoted
        try connection.query(
            """
            UPDATE \(Self.planned) p SET \(q(phones.customType)) = coalesce(
                (SELECT t.\(q(types.id)) FROM \(typeDefinitions) t WHERE t.\(q(types.tenant)) = p.\(q(phones.tenant))
                 AND t.\(q(types.normalizedLabel)) = p.ferry_custom_label), gen_random_uuid()),
                ferry_new_custom_type = NOT EXISTS (SELECT 1 FROM \(typeDefinitions) t WHERE t.\(q(types.tenant)) = p.\(q(phones.tenant))
                 AND t.\(q(types.normalizedLabel)) = p.ferry_custom_label)
            WHERE p.ferry_custom_label IS NOT NULL
            """)
        let example =
            "p.\(q(phones.tenant))::text || '/' || p.\(q(phones.contactKey))::text || ' ' || p.\(q(phones.phoneNumber))"
        var checks: [ConstraintCheck] = []
        func check(_ name: String, _ offending: String) throws {
            let row = try connection.query(
                """
                SELECT count(*) AS violations, coalesce((array_agg(e ORDER BY e))[1:\(Self.maximumExamples)]::text, '{}') AS examples
                FROM (\(offending)) o(e)
                """
            ).decoded("the rows breaking \(name)").first
            var result = ConstraintCheck(constraint: name)
            result.violations = try row?.required("violations") ?? 0
            result.examples = try row?.required("examples") ?? []
            checks.append(result)
        }
        // A constraint the planned rows cannot answer is listed with the reason, so the report never
        // implies a check it did not make.
        func notChecked(_ name: String, readingUnwritten columns: [String]) {
            let source =
                columns.count == 1
                ? "which ferry does not write (the insert takes its default)"
                : "which ferry does not write (the insert takes their defaults)"
            checks.append(
                ConstraintCheck(constraint: name, notChecked: "it reads \(columns.joined(separator: ", ")), \(source)"))
        }
        // Unique indexes on columns the plan fills (ids come from defaults): duplicates among the planned
        // rows, and planned rows that equal a live one. NULLs are distinct, as PostgreSQL treats them.
        for index in uniqueIndexes {
            let columns = index.columns
            let name = "unique index \(index.name) (\(columns.joined(separator: ", "))), live"
            if index.indexesAnExpression {
                checks.append(
                    ConstraintCheck(
                        constraint: "unique index \(index.name), live",
                        notChecked: "it indexes an expression, which ferry does not evaluate on the planned rows"))
                continue
            }
            let unwrittenColumns = unwritten(columns)
            guard unwrittenColumns.isEmpty else {
                notChecked(name, readingUnwritten: unwrittenColumns)
                continue
            }
            let list = columns.map(q).joined(separator: ", ")
            let filter = (columns.map { "\(q($0)) IS NOT NULL" } + (index.predicate.map { ["(\($0))"] } ?? [])).joined(
                separator: " AND ")
            // Two planned rows equal on an index that includes the source key belong to one contact, and
            // only a contact with several planned rows has two: grouping those few instead of every
            // planned row saves most of the check.
            let sharing =
                columns.contains(phones.tenant) && columns.contains(phones.contactKey)
                ? " AND ferry_contact_has_several" : ""
            try check(
                name,
                """
                SELECT \(example) FROM \(Self.planned) p
                WHERE \(filter) AND ((\(list)) IN (SELECT \(list) FROM \(Self.planned) WHERE \(filter)\(sharing) GROUP BY \(list) HAVING count(*) > 1)
                   OR (\(list)) IN (SELECT \(list) FROM \(phones.table.quoted) WHERE \(filter)
                                     AND \(q(phones.id))::text NOT IN (SELECT row_id FROM \(Self.replaced))))
                """)
        }
        // Foreign keys: planned rows whose reference does not exist (a custom type the apply creates first is not one).
        for foreignKey in try connection.query(
            """
            SELECT c.conname AS name, c.confrelid::regclass::text AS target,
                   array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o)::text AS columns,
                   array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o)::text AS referenced,
                   c.confrelid = to_regclass($2) AS to_source
            FROM pg_constraint c WHERE c.conrelid = to_regclass($1) AND c.contype = 'f' ORDER BY 1
            """, [phones.table.quoted, source.table.quoted]
        ).decoded("the phone table's foreign keys", key: "name") {
            let name: String = try foreignKey.required("name")
            let columns: [String] = try foreignKey.required("columns"),
                referenced: [String] = try foreignKey.required("referenced")
            let target: String = try foreignKey.required("target")
            let unwrittenColumns = unwritten(columns)
            guard unwrittenColumns.isEmpty else {
                notChecked("foreign key \(name) → \(target), live", readingUnwritten: unwrittenColumns)
                continue
            }
            // The key ferry writes into these columns is the key of a source row the plan read in this
            // snapshot: every planned row has its referenced row, and anti-joining them all would only
            // confirm it, with a pass over every planned row. A change before the apply is drift, which the
            // plan file refuses, and PostgreSQL still enforces the key then. Not so for rows read from a
            // query (`source.query`): its keys need not be the table's.
            let sourceKey = [(phones.tenant, source.tenantColumn), (phones.contactKey, source.keyColumn)]
            let pairs = Array(zip(columns, referenced))
            if self.source.query == nil, try foreignKey.required("to_source", as: Bool.self),
                pairs.count == sourceKey.count,
                sourceKey.allSatisfy({ key in pairs.contains { $0 == key.0 && $1 == key.1 } })
            {
                checks.append(
                    ConstraintCheck(
                        constraint: "foreign key \(name) → \(target), live",
                        heldBecause:
                            "each planned row's (\(columns.joined(separator: ", "))) is the key of the \(target) row it was read from, in the plan's snapshot"
                    ))
                continue
            }
            let match = zip(columns, referenced).map { "r.\(q($1)) = p.\(q($0))" }.joined(separator: " AND ")
            let present = columns.map { "p.\(q($0)) IS NOT NULL" }.joined(separator: " AND ")
            let newTypes = columns.contains(phones.customType) ? " AND NOT p.ferry_new_custom_type" : ""
            // On Citus uncorrelated (the referenced keys are NOT NULL and every planned one is present,
            // so NOT IN says what NOT EXISTS says).
            let missing =
                distributed
                ? "(\(columns.map { "p.\(q($0))" }.joined(separator: ", "))) NOT IN (SELECT \(referenced.map { "r.\(q($0))" }.joined(separator: ", ")) FROM \(target) r)"
                : "NOT EXISTS (SELECT 1 FROM \(target) r WHERE \(match))"
            try check(
                "foreign key \(name) → \(target), live",
                """
                SELECT \(example) FROM \(Self.planned) p
                WHERE \(present)\(newTypes) AND \(missing)
                """)
        }
        // Row by row rules, counted in one pass over the planned rows rather than a pass each: each NOT
        // NULL column's NULLs, every row for a NOT NULL column ferry does not fill and
        // PostgreSQL gives no value (no default, identity or expression), and the rows for which a CHECK
        // constraint, the application's own included, is false.
        var rowRules: [(constraint: String, offending: String)] = []
        let notNull = try connection.query(
            """
            SELECT attname AS name, atthasdef OR attidentity <> '' OR attgenerated <> '' AS has_value FROM pg_attribute
            WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attnotnull ORDER BY attnum
            """, [phones.table.quoted]
        ).decoded("the phone table's NOT NULL columns", key: "name").map {
            (name: try $0.required("name", as: String.self), hasValue: try $0.required("has_value", as: Bool.self))
        }
        for column in notNull where plannedColumns.contains(column.name) {
            rowRules.append(("not null \(column.name), live", "p.\(q(column.name)) IS NULL"))
        }
        for column in notNull where !column.hasValue && !plannedColumns.contains(column.name) {
            rowRules.append(("not null \(column.name): ferry does not fill it and it has no default, live", "true"))
        }
        for constraint in try connection.query(
            """
            SELECT conname AS name, pg_get_expr(conbin, conrelid) AS expression FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'c' ORDER BY 1
            """, [phones.table.quoted]
        ).decoded("the phone table's CHECK constraints", key: "name") {
            let expression: String = try constraint.required("expression")
            rowRules.append(
                (
                    "check \(try constraint.required("name", as: String.self)): \(expression), live",
                    "(\(expression)) IS FALSE"
                ))
        }
        if !rowRules.isEmpty {
            let counted = try connection.query(
                "SELECT "
                    + rowRules.enumerated().map { offset, rule in
                        let offending = "FILTER (WHERE \(rule.offending))"
                        return
                            "count(*) \(offending) AS violations_\(offset), coalesce((array_agg(\(example) ORDER BY \(example)) \(offending))[1:\(Self.maximumExamples)]::text, '{}') AS examples_\(offset)"
                    }.joined(separator: ", ") + " FROM \(Self.planned) p"
            ).decoded("the planned rows against the row rules")[0]
            for (offset, rule) in rowRules.enumerated() {
                checks.append(
                    ConstraintCheck(
                        constraint: rule.constraint, violations: try counted.required("violations_\(offset)"),
                        examples: try counted.required("examples_\(offset)")))
            }
        }
        for exclusion in try connection.query(
            """
            SELECT conname AS name FROM pg_constraint WHERE conrelid = to_regclass($1) AND contype = 'x' ORDER BY 1
            """, [phones.table.quoted]
        ).decoded("the phone table's exclusion constraints", key: "name") {
            checks.append(
                ConstraintCheck(
                    constraint: "exclusion constraint \(try exclusion.required("name", as: String.self)), live",
                    notChecked: "ferry does not evaluate exclusion operators on the planned rows"))
        }
        return checks
    }
}
