import ArgumentParser
import FerryKit
import Foundation

@main
struct Ferry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "Migrates legacy contact data inside PostgreSQL: plan it, review it, apply it.",
        discussion: """
            Connection: --db takes a libpq connection string or URI. Without it, the PG* environment \
            variables and ~/.pgpass apply, exactly as for psql. Passwords are never printed.

            Exit codes: 0 success; 1 error; 2 plan --detailed-exitcode: changes pending; 3 rollback left conflicts; 4 import finished with rejected rows; 5 contract refused by its checks.
            """,
        version: FerryVersion.current,
        subcommands: [Plan.self, Apply.self, Resume.self, Runs.self, Show.self, RollbackCommand.self, Snapshots.self, SchemaCommand.self,
                      Contract.self, DoctorCommand.self, Import.self, Export.self]
    )
}

/// Options every command that talks to a database shares.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("libpq connection string or URI (default: PG* variables and ~/.pgpass).",
                                            valueName: "conninfo"))
    var db: String = ""
}

struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Do not draw the progress line (it is drawn only on a terminal anyway).")
    var noProgress = false

    @Flag(name: .long, help: "Print the summary as JSON instead of text.")
    var json = false
}

/// Runs a command body, printing ferry's own errors plainly (file, line, row, reason) and exiting 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

extension OutputOptions {
    func print(_ summary: PhonesSummary) throws {
        if json { try printJSON(summary) } else { Swift.print(PhonesTerminalReport.render(summary)) }
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

