/// Checks that a database matches what a job's mapping expects: tables, columns and their types,
/// the keys and indexes the job relies on, the current role's privileges, row-level security that would
/// hide rows from it, and the job's schema steps. Each finding carries the SQL that would fix it.
public struct Doctor {
    let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// `steps` are checked as applied or not; `ownSteps` (the job's steps, whether checked or not) tell a
    /// column ferry adds from an application column the mapping names wrong.
    public func check(
        _ expectations: [TableExpectation], steps: [SchemaStep] = [], ownSteps: [SchemaStep] = [],
        mappingFile: String, engine: DatabaseEngine = .postgres
    ) throws -> [DoctorFinding] {
        var findings: [DoctorFinding] = []
        let role = try connection.query("SELECT current_user::text").scalar ?? "current_user"
        let quotedRole = quoteIdentifier(role)
        func error(_ problem: String, _ fix: String) {
            findings.append(DoctorFinding(severity: .error, problem: problem, fix: fix))
        }
        func warning(_ problem: String, _ fix: String) {
            findings.append(DoctorFinding(severity: .warning, problem: problem, fix: fix))
        }

        var missingBySteps: [(step: SchemaStep, tables: [String])] = []
        for expected in expectations {
            let table = expected.table
            if let query = expected.query {
                findings += try check(
                    query: query, named: table.description, returning: expected.columns.map(\.name),
                    mappingFile: mappingFile)
                continue
            }
            // to_regclass itself fails without USAGE on the schema: look at the schema first.
            if let schema = table.schema {
                let access = try connection.query(
                    """
                    SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS present,
                           EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AND has_schema_privilege($1, 'USAGE') AS usable
                    """, [schema]
                ).decoded("schema \(schema)")[0]
                if try access.required("present", as: Bool.self), try !access.required("usable", as: Bool.self) {
                    let problem = "role \(role) lacks USAGE on schema \(schema)"
                    if !findings.contains(where: { $0.problem == problem }) {
                        error(problem, "GRANT USAGE ON SCHEMA \(quoteIdentifier(schema)) TO \(quotedRole);")
                    }
                    continue
                }
            }
            guard
                try connection.query("SELECT to_regclass($1) IS NOT NULL", [table.quoted]).value(
                    "whether \(table) exists", as: Bool.self)
            else {
                if let step = expected.createdBy {
                    if let index = missingBySteps.firstIndex(where: { $0.step.name == step.name }) {
                        missingBySteps[index].tables.append(table.description)
                    } else {
                        missingBySteps.append((step, [table.description]))
                    }
                } else {
                    error(
                        "table \(table) does not exist (named in \(mappingFile))",
                        "name the application's table in \(mappingFile), or create it")
                }
                continue
            }
            let columns = try connection.columnTypes(table)
            for column in expected.columns {
                guard let actual = columns[column.name] else {
                    // DDL only for what ferry's own steps add; an application column is named wrong, not missing.
                    if let step = (steps + ownSteps).first(where: { Self.step($0, addsColumn: column.name) }) {
                        error(
                            "column \(table).\(column.name) does not exist (schema step \(step.name) adds it)",
                            "ferry schema apply \(mappingFile)\n-- which runs:\n"
                                + step.sql.trimmingCharacters(in: .whitespacesAndNewlines))
                    } else {
                        let guess =
                            Self.closest(to: column.name, among: Array(columns.keys)).map { " (did you mean \($0)?)" }
                            ?? ""
                        error(
                            "column \(table).\(column.name) does not exist (named in \(mappingFile))\(guess)",
                            "name the table's existing column in \(mappingFile)\(guess.isEmpty ? "" : ": \(Self.closest(to: column.name, among: Array(columns.keys))!)")"
                        )
                    }
                    continue
                }
                if let type = column.type, actual != type {
                    error(
                        "column \(table).\(column.name) is \(actual), expected \(type)",
                        "ALTER TABLE \(table.quoted) ALTER COLUMN \(quoteIdentifier(column.name)) TYPE \(type) USING \(quoteIdentifier(column.name))::\(type);"
                    )
                }
            }
            // A view has no keys of its own: the engine checks the declared key is unique when it reads it.
            let isView = try connection.isView(table)
            if expected.needsPrimaryKey, !isView,
                !(try connection.query(Self.hasPrimaryKey, [table.quoted]).value(
                    "the primary key of \(table)", as: Bool.self))
            {
                error(
                    "table \(table) has no primary key: rollback and resume find rows by it",
                    "ALTER TABLE \(table.quoted) ADD PRIMARY KEY (…);   -- the columns that identify a row")
            }
            let indexes = try connection.query(Self.indexes, [table.quoted]).decoded("the indexes of \(table)").map {
                (
                    columns: try $0.required("columns", as: [String].self),
                    unique: try $0.required("is_unique", as: Bool.self),
                    partial: try $0.required("is_partial", as: Bool.self)
                )
            }
            for key in expected.uniqueKeys where !isView {
                let wanted = Set(key.columns)
                let found = indexes.contains {
                    $0.unique && Set($0.columns) == wanted && $0.partial == (key.predicate != nil)
                }
                if !found {
                    let predicate = key.predicate.map { " WHERE \($0)" } ?? ""
                    (key.required ? error : warning)(
                        "table \(table) has no unique index on (\(key.columns.joined(separator: ", ")))\(predicate): \(key.reason ?? (key.required ? "the job's ON CONFLICT relies on it" : "it guards an invariant the job keeps"))",
                        "CREATE UNIQUE INDEX CONCURRENTLY ON \(table.quoted) (\(key.columns.map(quoteIdentifier).joined(separator: ", ")))\(predicate);"
                    )
                }
            }
            for leading in expected.indexes
            where !indexes.contains(where: { Array($0.columns.prefix(leading.count)) == leading && !$0.partial }) {
                warning(
                    "table \(table) has no index starting with (\(leading.joined(separator: ", "))): the job's lookups scan the table",
                    "CREATE INDEX CONCURRENTLY ON \(table.quoted) (\(leading.map(quoteIdentifier).joined(separator: ", ")));"
                )
            }
            let foreignKeys = try connection.query(Self.foreignKeys, [table.quoted]).decoded(
                "the foreign keys of \(table)"
            )
            .map { (Set(try $0.required("columns", as: [String].self)), try $0.required("target", as: String.self)) }
            for foreignKey in expected.foreignKeys {
                let target =
                    try connection.query("SELECT to_regclass($1)::text", [foreignKey.references.quoted]).scalar ?? ""
                if !foreignKeys.contains(where: { $0.0 == Set(foreignKey.columns) && $0.1 == target }) {
                    let columns = foreignKey.columns.map(quoteIdentifier).joined(separator: ", ")
                    let referenced = foreignKey.referencedColumns.map(quoteIdentifier).joined(separator: ", ")
                    warning(
                        "table \(table) has no foreign key (\(foreignKey.columns.joined(separator: ", "))) → \(foreignKey.references)",
                        "ALTER TABLE \(table.quoted) ADD FOREIGN KEY (\(columns)) REFERENCES \(foreignKey.references.quoted) (\(referenced)) NOT VALID;\n"
                            + "ALTER TABLE \(table.quoted) VALIDATE CONSTRAINT …;   -- the name PostgreSQL gave it")
                }
            }
            let privileges = expected.use == .write ? ["SELECT", "INSERT", "UPDATE", "DELETE"] : ["SELECT"]
            let missing = try privileges.filter {
                !(try connection.query("SELECT has_table_privilege($1, $2)", [table.quoted, $0]).value(
                    "privileges on \(table)", as: Bool.self))
            }
            if !missing.isEmpty {
                error(
                    "role \(role) lacks \(missing.joined(separator: ", ")) on \(table)",
                    "GRANT \(missing.joined(separator: ", ")) ON \(table.quoted) TO \(quotedRole);")
            }
            if missing.isEmpty,
                try connection.query("SELECT row_security_active($1::text::regclass)", [table.quoted]).value(
                    "row security on \(table)", as: Bool.self)
            {
                error(
                    "row-level security applies to role \(role) on \(table): ferry would see only one tenant's rows",
                    "ALTER ROLE \(quotedRole) BYPASSRLS;   -- or run ferry as the table's owner")
            }
            // Rows a rollback restores go back through these (ferry's own ledger is not restored; Citus:
            // not looked at, see Rollback).
            if expected.use == .write, table.schema != "ferry", !engine.isCitus {
                let triggers = try RowTrigger.beforeRowTriggers(on: table.quoted, connection: connection)
                if !triggers.isEmpty {
                    let one = triggers.count == 1
                    warning(
                        "table \(table) has BEFORE row trigger\(one ? "" : "s") \(triggers.map(\.name).joined(separator: ", ")): "
                            + "a rollback restores rows through \(one ? "it" : "them") (and reports the rows \(one ? "it changes" : "they change"))",
                        "ferry rollback RUN --disable-before-triggers   -- restores exactly; needs the table's owner")
                }
            }
        }

        if engine.isCitus, expectations.contains(where: { $0.use == .write }),
            try InDoubtTransactions.mayResolve(on: connection) == false
        {
            warning(
                "role \(role) may not call recover_prepared_transactions(): a transaction that a session lost during Citus's two-phase commit leaves prepared on the workers keeps its rows locked until Citus's daemon resolves it (citus.recover_2pc_interval), and a run waiting on them may stop as interrupted",
                "GRANT EXECUTE ON FUNCTION \(InDoubtTransactions.function) TO \(quotedRole);")
        }
        if case .citus(_, let source, _) = engine {
            // The ledger stays on the coordinator: ferry reads it apart from the job's tables.
            for expected in expectations
            where try expected.table.schema != "ferry" && expected.query == nil
                && connection.query("SELECT to_regclass($1) IS NOT NULL", [expected.table.quoted]).value(
                    "whether \(expected.table) exists", as: Bool.self)
            {
                guard try !connection.isView(expected.table),
                    let problem = try Self.citusPlacementProblem(expected.table, source: source, on: connection)
                else { continue }
                error(
                    "table \(expected.table) \(problem): ferry joins it with \(source) on the tenant",
                    "SELECT create_distributed_table(\(sqlLiteral(expected.table.quoted)), '<its tenant column>', colocate_with => \(sqlLiteral(source.quoted)));"
                )
            }
        }

        // A missing table ferry creates: one finding per schema step, with the step's SQL once.
        var reportedSteps = Set<String>()
        for (step, tables) in missingBySteps {
            reportedSteps.insert(step.name)
            let plural =
                tables.count == 1
                ? "table \(tables[0]) does not exist" : "tables \(tables.joined(separator: ", ")) do not exist"
            error(
                "\(plural) (schema step \(step.name)); run `ferry schema apply \(mappingFile)` first",
                "ferry schema apply \(mappingFile)\n-- which runs:\n"
                    + step.sql.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let canReadStepRecords =
            try connection.query(
                """
                SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'ferry') THEN true
                            WHEN NOT has_schema_privilege('ferry', 'USAGE') THEN false
                            WHEN to_regclass('ferry.schema_steps') IS NULL THEN true
                            ELSE has_table_privilege('ferry.schema_steps', 'SELECT') END
                """
            ).value("access to ferry.schema_steps", as: Bool.self)
        if !steps.isEmpty, !canReadStepRecords {
            error(
                "role \(role) cannot read ferry.schema_steps, so the schema steps cannot be checked",
                "GRANT USAGE ON SCHEMA ferry TO \(quotedRole); GRANT SELECT ON ferry.schema_steps TO \(quotedRole);")
        } else if !steps.isEmpty {
            for status in try SchemaMigrator(connection: connection).status(steps)
            where !reportedSteps.contains(status.step.name) {
                switch status.state {
                case .applied: break
                case .pending where status.step.onlySpeedsUpRuns:
                    warning(
                        "schema step \(status.step.name) is not applied: runs work without it, only slower",
                        "ferry schema apply \(mappingFile)")
                case .pending:
                    error("schema step \(status.step.name) is not applied", "ferry schema apply \(mappingFile)")
                case .drifted(let recorded):
                    warning(
                        "schema step \(status.step.name) changed since it was applied (recorded sha256 \(recorded.prefix(12))…, now \(status.step.checksum.prefix(12))…); ferry never re-runs it",
                        "review the difference; apply the change by hand if it is wanted (ferry schema status \(mappingFile))"
                    )
                }
            }
        }
        return findings
    }

    /// A query the mapping gives (`name` says where): it must run for this role, and return `columns`.
    /// It runs with LIMIT 0, so only its planning costs anything; its own error is quoted.
    private func check(
        query: String, named name: String, returning columns: [String], mappingFile: String
    ) throws
        -> [DoctorFinding]
    {
        let returned: [String]
        do {
            returned = try connection.keepingTransactionUsable {
                try connection.query("SELECT * FROM (\n\(query)\n) ferry_query LIMIT 0").columns
            }
        } catch let failure as PostgresError where !failure.isTransient {
            return [
                DoctorFinding(
                    severity: .error, problem: "\(name) in \(mappingFile) does not run: \(failure.message)",
                    fix: "correct the query: ferry runs it as a subquery, SELECT … FROM (<query>) r")
            ]
        }
        let missing = columns.filter { !returned.contains($0) }
        guard !missing.isEmpty else { return [] }
        return [
            DoctorFinding(
                severity: .error,
                problem:
                    "\(name) in \(mappingFile) returns no column \(missing.joined(separator: ", ")) (it returns \(returned.joined(separator: ", ")))",
                fix:
                    "name the query's columns in the mapping, or give them those names in its SELECT list (… AS \(missing[0]))"
            )
        ]
    }

    /// On Citus, what keeps `table` from joining `source` on the worker that holds both: nil when it is
    /// distributed colocated with it, or a reference table (a copy on every node).
    static func citusPlacementProblem(
        _ table: TableName, source: TableName, on connection: PostgresConnection
    ) throws -> String? {
        let placement = try connection.query(
            """
            SELECT t.partmethod::text AS method, t.repmodel::text AS replication,
                   t.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = to_regclass($2)) AS colocated
            FROM pg_dist_partition t WHERE t.logicalrelid = to_regclass($1)
            """, [table.quoted, source.quoted]
        ).decoded("Citus placement of \(table)").first
        guard let placement else { return "is local to the coordinator while \(source) is distributed" }
        switch (
            try placement.required("method", as: String.self), try placement.required("replication", as: String.self)
        ) {
        case ("n", "t"): return nil
        case ("h", _):
            return try placement.optional("colocated", as: Bool.self) == true
                ? nil : "is distributed but not colocated with \(source)"
        default: return "is local to the coordinator while \(source) is distributed"
        }
    }

    /// Whether a step's SQL adds this column (`ADD COLUMN [IF NOT EXISTS] name`, quoted or not).
    static func step(_ step: SchemaStep, addsColumn name: String) -> Bool {
        let sql = step.sql.lowercased()
        let spellings = [quoteIdentifier(name).lowercased(), name.lowercased()]
        return spellings.contains { spelling in
            sql.contains("add column if not exists \(spelling) ") || sql.contains("add column \(spelling) ")
        }
    }

    /// The existing name nearest to a mistyped one: at most a third of its letters off (edit distance).
    static func closest(to name: String, among candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance($0.lowercased(), name.lowercased())) }
            .filter { $0.1 <= max(1, name.count / 3) }
        return scored.min { ($0.1, $0.0) < ($1.1, $1.0) }?.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty else { return b.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    static let hasPrimaryKey =
        "SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = to_regclass($1) AND indisprimary)"

    /// Each index: its key columns in order, unique, partial.
    static let indexes = """
        SELECT coalesce((SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum)::text, '{}') AS columns,
               i.indisunique AS is_unique, i.indpred IS NOT NULL AS is_partial
        FROM pg_index i WHERE i.indrelid = to_regclass($1)
        """

    /// Each foreign key: its columns and the table it references.
    static let foreignKeys = """
        SELECT (SELECT array_agg(a.attname) FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey))::text AS columns,
               c.confrelid::regclass::text AS target
        FROM pg_constraint c WHERE c.conrelid = to_regclass($1) AND c.contype = 'f'
        """
}

extension Array where Element == DoctorFinding {
    /// Throws the errors as a preflight failure; hands the warnings to `warn`.
    public func requireNoErrors(warn: (String) -> Void = { _ in }) throws {
        for finding in self where finding.severity == .warning { warn("warning: " + finding.text) }
        let errors = filter { $0.severity == .error }
        if !errors.isEmpty { throw PreflightError(problems: errors.map(\.briefText)) }
    }
}
