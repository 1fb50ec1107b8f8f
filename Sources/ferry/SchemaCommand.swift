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
            let job = PhonesJob(mapping: try PhonesMapping.load(path: mapping), conninfo: connection.db)
            let database = try PostgresConnection(conninfo: connection.db, applicationName: "ferry schema apply")
            let (applied, status) = try SchemaMigrator(connection: database).apply(try job.schemaSteps(using: database))
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
            let job = PhonesJob(mapping: try PhonesMapping.load(path: mapping), conninfo: connection.db)
            let database = try PostgresConnection(conninfo: connection.db, applicationName: "ferry schema status")
            print(SchemaStatusReport.render(try SchemaMigrator(connection: database).status(try job.schemaSteps(using: database))))
        }
    }
}
