import ArgumentParser
import FerryKit
import Foundation

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check that the database matches what a mapping expects, and print the SQL that fixes each problem.",
        discussion: """
            Checks the tables and columns the mapping names and their types, the primary keys, unique keys and \
            indexes the job relies on, the current role's privileges, row-level security that would hide rows \
            from it, and the job's schema steps (pending or changed since applied). Errors stop a job before its \
            first batch (every job runs these checks); warnings do not. Exit 0 when there is no error, 1 otherwise.
            """)

    @Argument(help: "The job's mapping file.")
    var mapping: String

    @Flag(help: "Check what a read-only plan (or import --dry-run) needs, instead of what apply needs.")
    var forPlan = false

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Print the findings as JSON.")
    var json = false

    func run() throws {
        try reportingErrors(json: json) {
            let database = try PostgresConnection(conninfo: connection.db, applicationName: "ferry doctor")
            let job = try JobRegistry.schema(mapping: mapping, conninfo: connection.db)
            let expectations = try job.expectations(using: database, forApply: !forPlan)
            // Steps are typed after the live key columns; when those are missing, the expectations say so.
            let steps = (try? job.schemaSteps(using: database)) ?? []
            let engine = try job.engine(using: database)
            let findings = try Doctor(connection: database).check(
                expectations, steps: forPlan ? [] : steps, ownSteps: steps, mappingFile: mapping, engine: engine)
            if json {
                try printJSON(findings)
            } else {
                let info = database.info
                print(
                    "ferry doctor \(mapping): \(info.place) (checks for \(forPlan ? "plan" : "apply"))"
                )
                print("  engine: \(engine)")
                for finding in findings {
                    print("  \(finding.severity == .error ? "✗ error" : "! warning"): \(finding.text)")
                }
                let errors = findings.filter { $0.severity == .error }.count
                print(
                    findings.isEmpty
                        ? "✓ no problems found"
                        : "\(errors) error\(errors == 1 ? "" : "s"), \(findings.count - errors) warning\(findings.count - errors == 1 ? "" : "s")"
                )
            }
            if findings.contains(where: { $0.severity == .error }) { throw ExitCode(1) }
        }
    }
}
