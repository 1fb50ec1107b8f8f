import ArgumentParser
import FerryKit
import Foundation

struct Contract: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The contract step: drop a job's legacy columns, once every value in them is proven migrated.",
        discussion: """
            The phones job drops the mapping's legacy phone columns (contacts.phone_number); the customers job drops \
            projects.customer_id. Without --confirm it only checks and reports. It refuses (exit 5, nothing dropped) \
            unless every row's non-empty legacy value is migrated, or is named in --accept-rejected FILE (the exact \
            list ferry writes of the rows that are not), and no value written since the last successful apply is \
            unmigrated. The table lock is taken with a short lock_timeout and retried; rows written during the checks \
            are checked again under the lock. The dropped values are kept in the ledger: `ferry rollback RUN_ID` \
            re-adds the columns with them.
            """)

    @Argument(help: "The job's mapping file, e.g. mappings/phones.yaml.")
    var mapping: String

    @Flag(help: "Drop the columns when every check passes (without it: check and report only).")
    var confirm = false

    @Option(
        help: ArgumentHelp(
            "CSV naming exactly the unmigrated rows whose values may be dropped (tenant and contact_key or project_key columns).",
            valueName: "file"))
    var acceptRejected: String?

    @Option(
        help: ArgumentHelp(
            "Where to write the list of unmigrated rows (default: ferry-contract-JOB-unmigrated.csv).",
            valueName: "file"))
    var unmigratedOut: String?

    @Option(
        help: ArgumentHelp(
            "lock_timeout for taking the table lock (default: the mapping's, else 2s).", valueName: "duration"))
    var lockTimeout: String?

    @Flag(help: "If an apply of this job is running, wait for it instead of exiting.")
    var wait = false

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        try reportingErrors(json: json) {
            let subject = try JobRegistry.contractSubject(mapping: mapping)
            var options = ContractOptions()
            options.confirm = confirm
            options.acceptRejectedFile = acceptRejected
            options.unmigratedFile = unmigratedOut
            options.wait = wait
            if let lockTimeout {
                guard let value = DurationSetting(lockTimeout) else {
                    throw ValidationError("--lock-timeout: '\(lockTimeout)' is not a duration such as 500ms or 2s")
                }
                options.lockTimeout = value
            }
            let report = try FerryKit.Contract(subject: subject, conninfo: connection.db).run(options)
            if json { try printJSON(report) } else { print(report.render()) }
            if report.refused { throw ExitCode(5) }
        }
    }
}
