import ArgumentParser
import FerryKit

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what `apply` would do, changing nothing.",
        discussion: "Runs the same extract and transform as apply inside a READ ONLY transaction.")

    @Argument(help: "The job's mapping file, e.g. mappings/phones.yaml.")
    var mapping: String

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            var job = PhonesJob(mapping: try PhonesMapping.load(path: mapping), conninfo: connection.db)
            job.showProgress = !output.noProgress
            let summary = try job.plan()
            try output.print(summary)
        }
    }
}
