import Foundation

/// What `ferry import FILE` needs of a job that loads a file; the mapping's `job:` names it
/// (`JobRegistry.fileImport`).
public protocol FileImportJob {
    /// Loads the file, or with `options.dryRun` classifies every line and writes nothing; with
    /// `planFile` (a dry run), also writes the plan file that `options.plan` checks later.
    func importFile(_ file: String, _ options: ImportOptions, planFile: String?) throws -> FileImportOutcome
}

/// An import as the command prints it and reports it.
public struct FileImportOutcome {
    /// For `--json`.
    public let summary: any Encodable & Sendable
    public let terminalText: String
    /// The review report (`--report`), with the tenants' names.
    public let report: () throws -> PlanReport
    /// Where every phone anomaly was written, when a report asked for it.
    public let anomalyFile: String?
    public let rowsRejected: Int
    public let changesPending: Bool
}

/// What `ferry export` needs of a job that writes a file.
public protocol FileExportJob {
    /// Writes the file; returns what to tell the operator, one line.
    func exportFile(_ options: ExportOptions) throws -> String
}

extension JobRegistry {
    /// The file-loading job a mapping file declares, for `ferry import FILE`.
    public static func fileImport(mapping path: String, conninfo: String) throws -> any FileImportJob {
        let name = try mappingJob(path: path)
        guard name == ImportJob.name else { throw notAFileJob(name, path: path, command: "import") }
        return ImportJob(mapping: try ContactsCSVMapping.load(path: path), conninfo: conninfo)
    }

    /// The job a mapping file declares, for `ferry export` (the shape of a file the import reads).
    public static func fileExport(mapping path: String, conninfo: String) throws -> any FileExportJob {
        let name = try mappingJob(path: path)
        guard name == ImportJob.name else { throw notAFileJob(name, path: path, command: "export") }
        return ExportJob(mapping: try ContactsCSVMapping.load(path: path), conninfo: conninfo)
    }

    private static func notAFileJob(_ name: String, path: String, command: String) -> MappingError {
        MappingError(
            file: path, line: nil,
            message:
                "`ferry \(command)` works with a \(ImportJob.name) mapping (a file's columns); the \(name) job migrates rows already in the database: run it with `ferry plan` and `ferry apply`"
        )
    }
}
