import ArgumentParser
import FerryKit

struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Create the normalized tables a job writes to (the expand step), and show what is applied.",
        subcommands: [SchemaApply.self, SchemaStatus.self])
}

struct SchemaApply: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Apply pending schema steps in order; each is recorded with its checksum in ferry.schema_steps.")

    @Argument(help: "The job's mapping file.")
    var mapping: String

    @Option(
        help: ArgumentHelp(
            "Where the schema-only snapshot of the affected tables goes, before any step runs.", valueName: "dir"))
    var snapshotDir = "ferry-snapshots"

    @Flag(help: "Write the snapshot with ferry's own catalog query even when pg_dump is installed.")
    var catalogSnapshot = false

    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try reportingErrors {
            let (database, steps) = try schemaSteps(mapping: mapping, conninfo: connection.db)
            let tables = try affectedTables(mapping: mapping, conninfo: connection.db, database: database)
            let (applied, status, snapshot) = try SchemaMigrator(connection: database).apply(steps) {
                try SchemaSnapshot.write(
                    tables: tables, connection: database, conninfo: connection.db, directory: snapshotDir,
                    method: catalogSnapshot ? .catalog : nil)
            }
            if let snapshot {
                print(
                    "schema snapshot (\(snapshot.method.rawValue)) of \(snapshot.tables.isEmpty ? "no existing table" : snapshot.tables.joined(separator: ", ")): \(snapshot.path)"
                )
            }
            print(applied.isEmpty ? "schema: nothing to apply" : "schema: applied \(applied.joined(separator: ", "))")
            print(SchemaStatusReport.render(status))
        }
    }
}

struct SchemaStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show which schema steps are applied, pending or drifted.")

    @Argument(help: "The job's mapping file.")
    var mapping: String

    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try reportingErrors {
            let (database, steps) = try schemaSteps(mapping: mapping, conninfo: connection.db)
            print(SchemaStatusReport.render(try SchemaMigrator(connection: database).status(steps)))
        }
    }
}

/// The schema steps a mapping's job needs, and the connection to apply or inspect them on.
private func schemaSteps(mapping: String, conninfo: String) throws -> (PostgresConnection, [SchemaStep]) {
    let database = try PostgresConnection(conninfo: conninfo, applicationName: "ferry schema")
    return (database, try JobRegistry.schema(mapping: mapping, conninfo: conninfo).schemaSteps(using: database))
}

/// The tables a mapping's schema steps create or reference (those outside ferry's own schema).
private func affectedTables(mapping: String, conninfo: String, database: PostgresConnection) throws -> [TableName] {
    try JobRegistry.schema(mapping: mapping, conninfo: conninfo).expectations(using: database, forApply: false)
        .filter { $0.query == nil }.map(\.table).filter { $0.schema != "ferry" }
}
