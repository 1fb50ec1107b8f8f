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

    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try reportingErrors {
            let (database, steps) = try schemaSteps(mapping: mapping, conninfo: connection.db)
            let (applied, status) = try SchemaMigrator(connection: database).apply(steps)
            print(applied.isEmpty ? "schema: nothing to apply" : "schema: applied \(applied.joined(separator: ", "))")
            print(SchemaStatusReport.render(status))
        }
    }
}

struct SchemaStatus: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show which schema steps are applied, pending or drifted.")

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
    switch try mappingJob(path: mapping) {
    case ImportJob.name:
        return (database, try ImportJob(mapping: try ContactsCSVMapping.load(path: mapping), conninfo: conninfo).schemaSteps(using: database))
    default:
        return (database, try PhonesJob(mapping: try PhonesMapping.load(path: mapping), conninfo: conninfo).schemaSteps(using: database))
    }
}
