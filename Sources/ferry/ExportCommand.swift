import ArgumentParser
import FerryKit
import Foundation

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export contacts with their phones as CSV (RFC 4180, UTF-8, header row) in the mapping's shape.",
        discussion: """
            --phones default writes one row per contact with its default phone; --phones all writes one row \
            per phone. Free-text cells that a spreadsheet would run as a formula get a leading '; phone \
            columns stay exact E.164. Exporting and importing the same file back changes nothing.
            """)

    @Option(help: ArgumentHelp("The CSV mapping file.", valueName: "file"))
    var mapping: String = "mappings/contacts-csv.yaml"

    @Option(
        name: [.short, .customLong("output")],
        help: ArgumentHelp("Write to this file (default: standard output).", valueName: "file"))
    var output: String?

    @Option(
        help: ArgumentHelp("default (one row per contact) or all (one row per phone).", valueName: "which"),
        completion: .list(["default", "all"]))
    var phones: String = "default"

    @Option(help: ArgumentHelp("Only this tenant's contacts.", valueName: "uuid"))
    var tenant: String?

    @Flag(help: "Also export inactive contacts.")
    var includeInactive = false

    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        try reportingErrors {
            var options = ExportOptions()
            guard let which = ExportOptions.Phones(rawValue: phones) else {
                throw ValidationError("--phones must be default or all")
            }
            options.phones = which
            options.tenant = tenant
            options.includeInactive = includeInactive
            options.output = output
            let job = try JobRegistry.fileExport(mapping: mapping, conninfo: connection.db)
            FerryLog.note(try job.exportFile(options))
        }
    }
}
