/// The engine a job's tables live on. Everything that differs between one PostgreSQL server and
/// Citus is decided from this value, read from the catalog at connect.
public enum DatabaseEngine: Equatable, Sendable, CustomStringConvertible {
    /// One PostgreSQL server, or Citus with the job's source table local to the coordinator (then every
    /// table ferry reads and writes is local too, and nothing differs).
    case postgres
    /// Citus, with the job's source table hash-distributed on `distributionColumn`: the tables ferry
    /// creates are distributed the same way and colocated with `source`.
    case citus(version: String, source: TableName, distributionColumn: String)

    /// Reads the engine for a job whose rows come from `source`.
    public static func detect(source: TableName, on connection: PostgresConnection) throws -> DatabaseEngine {
        guard let version = try connection.citusVersion() else { return .postgres }
        let column = try connection.query(
            """
            SELECT column_to_column_name(logicalrelid, partkey) FROM pg_dist_partition
            WHERE logicalrelid = to_regclass($1) AND partmethod = 'h'
            """, [source.quoted]
        ).scalar
        guard let column else { return .postgres }
        return .citus(version: version, source: source, distributionColumn: column)
    }

    public var isCitus: Bool {
        if case .citus = self { return true }
        return false
    }

    /// For doctor and report headers.
    public var description: String {
        switch self {
        case .postgres: "PostgreSQL"
        case .citus(let version, let source, let column):
            "Citus \(version) (\(source) distributed by \(column))"
        }
    }

    /// After `CREATE TABLE table` in a schema step: on Citus, distributes it colocated with the source (before
    /// its foreign keys are added); nothing elsewhere. A PL/pgSQL statement, for the steps' DO blocks.
    func distribute(_ table: TableName, on column: String) -> String {
        guard case .citus(_, let source, _) = self else { return "" }
        return
            "PERFORM create_distributed_table(\(sqlLiteral(table.quoted)), \(sqlLiteral(column)), colocate_with => \(sqlLiteral(source.quoted)));"
    }

    /// The parts of a schema step's `CREATE TABLE table` that differ by engine, for its DO block: the
    /// foreign keys inline (",\n    FOREIGN KEY …", PostgreSQL: the text every earlier release wrote), or on
    /// Citus the distribution right after the table and then the keys, named (Citus takes a key between
    /// distributed tables only once both are distributed).
    func createdTable(
        _ table: TableName, tenantColumn: String, foreignKeys: [(name: String, definition: String)]
    ) -> (inlineKeys: String, afterTable: String) {
        guard isCitus else { return (foreignKeys.map { ",\n    " + $0.definition }.joined(), "") }
        let keys = foreignKeys.map {
            "\nALTER TABLE \(table.quoted) ADD CONSTRAINT \(quoteIdentifier($0.name)) \($0.definition);"
        }
        return ("", "\n" + distribute(table, on: tenantColumn) + keys.joined())
    }
}
