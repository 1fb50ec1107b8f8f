import ArgumentParser
import FerryKit

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply a job: write the normalized rows, batch by batch.",
        discussion: "Each batch is one transaction. Contacts that already have phone rows are skipped, so a re-run inserts nothing.")

    @Argument(help: "The job's mapping file, e.g. mappings/phones.yaml.")
    var mapping: String

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            var job = PhonesJob(mapping: try PhonesMapping.load(path: mapping), conninfo: connection.db)
            job.showProgress = !output.noProgress
            let summary = try job.apply()
            if output.json { try printJSON(summary) } else { print(PhonesTerminalReport.render(summary)) }
        }
    }
}
