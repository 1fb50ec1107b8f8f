import Foundation

/// A schema-only copy of the tables a schema change touches, written before the first step runs, so a
/// DBA can see (and rebuild) what the tables looked like. pg_dump writes it when one that can dump this
/// server is installed; otherwise ferry's own catalog query does.
public struct SchemaSnapshot: Sendable {
    public enum Method: String, Sendable {
        case pgDump = "pg_dump"
        case catalog = "catalog query"
    }

    public let path: String
    public let method: Method
    public let tables: [String]

    /// Writes `DIRECTORY/schema-DATABASE-TIMESTAMP.sql` for the tables that exist (missing ones are skipped).
    /// `method` nil: pg_dump when available.
    public static func write(
        tables: [TableName], connection: PostgresConnection, conninfo: String,
        directory: String, method: Method? = nil, now: Date = Date()
    ) throws -> SchemaSnapshot {
        var qualified: [String] = []
        var patterns: [String] = []
        for table in tables {
            let row = try connection.query(
                """
                SELECT c.oid::regclass::text AS name, n.nspname AS schema, c.relname AS relation
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.oid = to_regclass($1)
                """, [table.quoted]
            ).decoded("table \(table)").first
            if let row, case let name = try row.required("name", as: String.self), !qualified.contains(name) {
                qualified.append(name)
                // pg_dump reads --table as a pattern: quoting each part makes *, ? and capitals literal.
                patterns.append(
                    [try row.required("schema", as: String.self), try row.required("relation", as: String.self)]
                        .map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
                        .joined(separator: "."))
            }
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let stamp = ISO8601DateFormatter.string(
            from: now, timeZone: TimeZone(identifier: "UTC")!,
            formatOptions: [.withYear, .withMonth, .withDay, .withTime, .withTimeZone])
        // A snapshot is never overwritten: two applies within one second get -2, -3, ….
        let base = (directory as NSString).appendingPathComponent("schema-\(connection.info.database)-\(stamp)")
        var path = base + ".sql"
        var attempt = 1
        while FileManager.default.fileExists(atPath: path) {
            attempt += 1
            path = "\(base)-\(attempt).sql"
        }
        let serverMajor = (Int(try connection.query("SHOW server_version_num").scalar ?? "") ?? 0) / 10000
        let pgDump = method == .catalog ? nil : findPgDump(serverMajor: serverMajor)
        if method == .pgDump, pgDump == nil {
            throw SchemaSnapshotError("no pg_dump for PostgreSQL \(serverMajor) is installed")
        }
        let header =
            "-- ferry schema snapshot of \(connection.info.database), \(ISO8601DateFormatter().string(from: now))\n"
            + "-- tables: \(qualified.isEmpty ? "none of the affected tables exist yet" : qualified.joined(separator: ", "))\n"
            + (try citusPlacement(of: qualified, connection: connection)).map { "-- citus: \($0)\n" }.joined()
        if let pgDump, !qualified.isEmpty {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: pgDump)
            // Each name is a pattern: its double quotes (from regclass text, where needed) make it literal.
            process.arguments =
                ["--schema-only", "--no-password", "--dbname=\(conninfo)"] + patterns.flatMap { ["--table", $0] }
            let output = try OutputFile(path: path)
            try output.write(header)
            let errors = Pipe()
            process.standardOutput = FileHandle(fileDescriptor: output.descriptor, closeOnDealloc: false)
            process.standardError = errors
            try process.run()
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw SchemaSnapshotError(
                    "pg_dump failed (exit \(process.terminationStatus)): \(message.trimmingCharacters(in: .whitespacesAndNewlines))"
                )
            }
            try output.commit()
            return SchemaSnapshot(path: path, method: .pgDump, tables: qualified)
        }
        var text = header
        for table in qualified { text += "\n" + (try catalogDefinition(of: table, connection: connection)) }
        try OutputFile.write(text, to: path)
        return SchemaSnapshot(path: path, method: .catalog, tables: qualified)
    }

    /// On Citus, how each table is placed: neither pg_dump nor the catalog definition says it, and
    /// rebuilding a table without it would leave it on the coordinator.
    static func citusPlacement(of tables: [String], connection: PostgresConnection) throws -> [String] {
        guard !tables.isEmpty, try connection.citusVersion() != nil else { return [] }
        return try connection.query(
            """
            SELECT t.name || CASE
                WHEN p.logicalrelid IS NULL THEN ' is local to the coordinator'
                WHEN p.partmethod = 'h' THEN format(' is distributed by %I (hash, colocation group %s, %s shards)',
                    column_to_column_name(p.logicalrelid, p.partkey), p.colocationid,
                    (SELECT count(*) FROM pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid))
                WHEN p.repmodel = 't' THEN ' is a reference table'
                ELSE ' is a Citus local table' END AS placement
            FROM unnest($1::text[]) WITH ORDINALITY t (name, position)
            LEFT JOIN pg_dist_partition p ON p.logicalrelid = t.name::regclass
            ORDER BY t.position
            """, [textArrayLiteral(tables)]
        ).decoded("the Citus placement of the snapshot's tables").map { try $0.required("placement") }
    }

    /// The pg_dump of the server's major version, or a newer one (pg_dump refuses older servers' dumps
    /// only the other way round).
    static func findPgDump(serverMajor: Int) -> String? {
        let installed = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap(Int.init).filter { $0 >= serverMajor }.sorted()
        for major in installed {
            let path = "/usr/lib/postgresql/\(major)/bin/pg_dump"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// CREATE TABLE with columns, defaults and generated columns, then constraints, indexes, row-level
    /// security with its policies, and triggers: what pg_dump --schema-only would say about the table.
    static func catalogDefinition(of table: String, connection: PostgresConnection) throws -> String {
        let columns = try connection.query(
            """
            SELECT format('    %I %s', a.attname, format_type(a.atttypid, a.atttypmod))
                   || CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED'
                           WHEN d.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid) ELSE '' END
                   || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END AS definition
            FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
            """, [table]
        ).decoded("the columns of \(table)").map { try $0.required("definition", as: String.self) }
        let rest = try connection.query(
            """
            SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s;', $1::regclass, conname, pg_get_constraintdef(oid)) AS definition FROM pg_constraint
            WHERE conrelid = $1::regclass
            UNION ALL
            (SELECT pg_get_indexdef(i.indexrelid) || ';' FROM pg_index i
             WHERE i.indrelid = $1::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1)
            UNION ALL
            SELECT format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY;', $1::regclass) FROM pg_class WHERE oid = $1::regclass AND relrowsecurity
            UNION ALL
            SELECT format('ALTER TABLE %s FORCE ROW LEVEL SECURITY;', $1::regclass) FROM pg_class WHERE oid = $1::regclass AND relforcerowsecurity
            UNION ALL
            (SELECT format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s;', p.polname, $1::regclass,
                           CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                           CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                           coalesce((SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', ')
                                     FROM unnest(p.polroles) r), 'PUBLIC'),
                           coalesce(' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')', ''),
                           coalesce(' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')', ''))
             FROM pg_policy p WHERE p.polrelid = $1::regclass ORDER BY p.polname)
            UNION ALL
            (SELECT pg_get_triggerdef(oid) || ';' FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY tgname)
            """, [table]
        ).decoded("the constraints, indexes, policies and triggers of \(table)").map {
            try $0.required("definition", as: String.self)
        }
        return "CREATE TABLE \(table) (\n" + columns.joined(separator: ",\n") + "\n);\n"
            + rest.map { $0 + "\n" }.joined()
    }
}

public struct SchemaSnapshotError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
