import ArgumentParser
import FerryKit
import Foundation
import Logging

@main
struct Ferry: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ferry",
        abstract: "Migrates legacy contact data inside PostgreSQL: plan it, review it, apply it.",
        discussion: """
            Connection: --db takes a libpq connection string or URI. Without it, the PG* environment \
            variables and ~/.pgpass apply, exactly as for psql. Passwords are never printed.

            Exit codes: 0 success; 1 error (also an invalid option value); 2 plan --detailed-exitcode: \
            changes pending; 3 rollback left (or, with --dry-run, would leave) conflicts; 4 import finished \
            with rejected rows; 5 contract refused by its checks; 6 the phones plan predicts rows that break \
            the phone table's constraints; 64 usage error (unknown option, missing argument). The exit code is the \
            same with --json.

            Shell completion: `ferry --generate-completion-script bash|zsh|fish` prints a script that \
            completes commands, options and their values (see docs/operations.md).
            """,
        version: FerryVersion.current,
        subcommands: [
            Plan.self, Apply.self, Resume.self, Runs.self, Show.self, RollbackCommand.self, Snapshots.self,
            SchemaCommand.self,
            Contract.self, DoctorCommand.self, Import.self, Export.self,
        ]
    )

    /// `ferry --version` says more than the static version ArgumentParser would print: the commit, the
    /// libraries loaded and the server the PG* variables reach.
    static func main() {
        if CommandLine.arguments.dropFirst() == ["--version"] {
            print(VersionReport.text())
            return
        }
        configureProcess(CommandLine.arguments)
        main(nil)
    }

    /// Logging and the password prompt, set before parsing so that every command (and a parse error)
    /// behaves the same way; the flags themselves are declared in OutputOptions and ConnectionOptions,
    /// which document and validate them.
    static func configureProcess(_ arguments: [String]) {
        let format: FerryLogHandler.Format
        if let index = arguments.firstIndex(of: "--log-format"), index + 1 < arguments.count,
            let chosen = FerryLogHandler.Format(rawValue: arguments[index + 1])
        {
            format = chosen
        } else if let inline = arguments.first(where: { $0.hasPrefix("--log-format=") }),
            let chosen = FerryLogHandler.Format(rawValue: String(inline.dropFirst("--log-format=".count)))
        {
            format = chosen
        } else {
            format = .text
        }
        // -W is declared in ConnectionOptions; the prompt must be armed before the first session opens.
        PostgresConnection.PasswordPrompt.forced = arguments.contains("-W") || arguments.contains("--password")
        let quiet = arguments.contains("-q") || arguments.contains("--quiet")
        let verbose = arguments.contains("-v") || arguments.contains("--verbose")
        // JSON is for machines: every event (runs, batches) unless --quiet; text shows notes, and batches with -v.
        let level: Logger.Level = quiet ? .error : (verbose || format == .json) ? .info : .notice
        LoggingSystem.bootstrap { _ in FerryLogHandler(format: format, level: level) }
    }
}

/// Options every command that talks to a database shares.
struct ConnectionOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "libpq connection string or URI (default: PG* variables and ~/.pgpass).",
            valueName: "conninfo"))
    var db: String = ""

    @Flag(
        name: [.customShort("W"), .customLong("password")],
        help:
            "Ask for the password on the terminal before connecting (as psql -W); without it ferry asks only when the server wants one."
    )
    var askPassword = false
}

struct OutputOptions: ParsableArguments {
    enum ColourChoice: String, ExpressibleByArgument, CaseIterable {
        case auto, always, never
    }

    @Flag(name: .long, help: "Do not draw the progress line (it is drawn only on a terminal anyway).")
    var noProgress = false

    @Flag(name: .long, help: "Print the summary as JSON instead of text.")
    var json = false

    @Option(
        name: .customLong("color"),
        help: ArgumentHelp(
            "Colour in text output: auto (on a terminal, unless NO_COLOR is set), always or never.",
            valueName: "when"))
    var colour: ColourChoice = .auto

    @Flag(
        name: .shortAndLong, help: "Print nothing but errors (and --json output): for cron. The exit code still tells.")
    var quiet = false

    @Flag(name: .shortAndLong, help: "Also note every committed batch on stderr.")
    var verbose = false

    @Option(
        help: ArgumentHelp(
            "How events (runs, batches, retries, pauses, errors) are written to stderr: text, or json (one object per line).",
            valueName: "format"),
        completion: .list(FerryLogHandler.Format.allCases.map(\.rawValue)))
    var logFormat: FerryLogHandler.Format = .text

    /// Whether text output gets ANSI colour: NO_COLOR (any non-empty value) turns the automatic choice off.
    var useColour: Bool {
        switch colour {
        case .always: return true
        case .never: return false
        case .auto:
            return isatty(STDOUT_FILENO) == 1 && (ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
        }
    }

    var showProgress: Bool { !noProgress && !quiet }

    /// The human summary on stdout, unless --quiet; --json output is always printed.
    func printText(_ text: String) {
        if !quiet { Swift.print(text) }
    }
}

/// Runs a command body, printing ferry's own errors plainly (file, line, row, reason) and exiting 1.
/// With `json`, standard output also gets `{"error": {"message": …, "exitCode": 1}}`, so a script that
/// reads stdout sees the failure instead of nothing.
func reportingErrors(json: Bool = false, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ExitCode {
        throw error
    } catch {
        // Stopped by SIGINT or SIGTERM: the shell's code for the signal, as for any interrupted command.
        let signal = (error as? RunInterrupted)?.signal ?? (error as? Cancelled)?.signal
        if let signal {
            FerryLog.logger.error("\(error)")
            if json {
                try? printJSON(["error": CommandError(message: String(describing: error), exitCode: 128 + signal)])
            }
            throw ExitCode(128 + signal)
        }
        FerryLog.logger.error("\(error)")
        if json { try? printJSON(["error": CommandError(message: String(describing: error), exitCode: 1)]) }
        throw ExitCode(1)
    }
}

struct CommandError: Encodable {
    let message: String
    let exitCode: Int32
}

extension OutputOptions {
    func print(_ outcome: ApplyOutcome) throws {
        if json { try printJSON(outcome.summary) } else { printText(outcome.terminalText(useColour)) }
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

extension FerryLogHandler.Format: ExpressibleByArgument {}
