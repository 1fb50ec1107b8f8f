/// What the command line needs of any job: the same plan, plan file, apply and resume for each.
public protocol RunnableJob: JobSchema {
    var name: String { get }
    var mappingFile: String { get }
    /// Where reports find tenant names (the mapping's `report: tenant_names:`).
    var tenantNames: TenantNameSource? { get }
    /// Whether a plan writes every anomaly to `RunSettings.anomalyFile`.
    var writesAnomalyList: Bool { get }
    /// Plans in a READ ONLY snapshot; with `planFile`, also writes the plan file `apply --plan` checks.
    func plan(_ settings: RunSettings, planFile: String?) throws -> PlanOutcome
    func apply(_ options: ApplyOptions, settings: RunSettings) throws -> ApplyOutcome
}

/// A plan as every command prints or writes it.
public struct PlanOutcome {
    /// The review report, as every format renders it (`--json`, `--report`).
    public var report: PlanReport
    /// The terminal summary (with or without colour).
    public let terminalText: (_ colour: Bool) -> String
    public let changesPending: Bool
    /// The target's constraints the plan predicts apply would break (empty for jobs whose checks only
    /// list what they leave alone).
    public let predictedViolations: [ConstraintCheck]
}

/// An apply's summary, for `--json` and the terminal.
public struct ApplyOutcome {
    public let summary: any Encodable & Sendable
    public let terminalText: (_ colour: Bool) -> String
    /// Non-zero when the run finished but the command must say so (4: an import rejected rows).
    public var exitCode: Int32 = 0
}

/// One registry line per job: the mapping's `job:` names it.
public enum JobRegistry {
    private static let tableJobs: [String: @Sendable (String, String) throws -> any RunnableJob] = [
        PhonesJob.name: { JobHandle(PhonesJob(mapping: try PhonesMapping.load(path: $0), conninfo: $1)) },
        PhonesInPlaceJob.name: {
            JobHandle(PhonesInPlaceJob(mapping: try PhonesMapping.load(path: $0), conninfo: $1))
        },
        CustomersJob.name: { JobHandle(CustomersJob(mapping: try CustomersMapping.load(path: $0), conninfo: $1)) },
        ServiceRequestsJob.name: {
            JobHandle(ServiceRequestsJob(mapping: try ServiceRequestsMapping.load(path: $0), conninfo: $1))
        },
    ]

    /// Jobs that read a file rather than the database, with the command that runs them (`ferry resume`
    /// continues their runs through the registry too).
    private static let fileJobs: [String: String] = [ImportJob.name: "ferry import FILE --mapping MAPPING"]

    /// The job a mapping file declares, for plan, apply and resume.
    public static func job(mapping path: String, conninfo: String) throws -> any RunnableJob {
        let name = try mappingJob(path: path)
        if let open = tableJobs[name] { return try open(path, conninfo) }
        if let command = fileJobs[name] {
            return FileJobHandle(name: name, mappingFile: path, command: command, conninfo: conninfo)
        }
        throw MappingError(
            file: path, line: nil,
            message: "job must be one of \((tableJobs.keys.sorted() + fileJobs.keys.sorted()).joined(separator: ", "))")
    }

    /// The jobs with a contract step (dropping what they migrated from), by `job:`.
    private static let contractSubjects: [String: @Sendable (String) throws -> any ContractSubject] = [
        PhonesJob.name: { PhonesContractSubject(mapping: try PhonesMapping.load(path: $0)) },
        CustomersJob.name: { CustomersContractSubject(mapping: try CustomersMapping.load(path: $0)) },
    ]

    /// Why a job without a contract step has none, where there is more to say than that.
    private static let noContractBecause: [String: String] = [
        PhonesInPlaceJob.name:
            "it normalizes the phone rows after the application dropped the legacy column: there is no legacy column left to drop",
        ImportJob.name: "it loads a file: there is no legacy column to drop",
    ]

    /// The contract step of the job a mapping file declares.
    public static func contractSubject(mapping path: String) throws -> any ContractSubject {
        let name = try mappingJob(path: path)
        guard let open = contractSubjects[name] else {
            let why = noContractBecause[name].map { ": \($0)" } ?? ""
            throw MappingError(
                file: path, line: nil,
                message:
                    "the \(name) job has no contract step\(why) (\(contractSubjects.keys.sorted().joined(separator: " and ")) have one)"
            )
        }
        return try open(path)
    }

    /// The job a mapping file declares, for its schema steps and `ferry doctor`.
    public static func schema(mapping path: String, conninfo: String) throws -> any JobSchema {
        if try mappingJob(path: path) == ImportJob.name {
            return ImportJob(mapping: try ContactsCSVMapping.load(path: path), conninfo: conninfo)
        }
        return try job(mapping: path, conninfo: conninfo)
    }
}

/// A job that reads a file: run by its own command; `ferry resume` continues its runs.
struct FileJobHandle: RunnableJob {
    let name: String
    let mappingFile: String
    let command: String
    let conninfo: String

    var tenantNames: TenantNameSource? { nil }
    var writesAnomalyList: Bool { false }

    private var readsAFile: MappingError {
        MappingError(
            file: mappingFile, line: nil,
            message: "the \(name) job reads a file: run it with `\(command)` (its plan is `\(command) --dry-run`)")
    }

    func schemaSteps(using connection: PostgresConnection) throws -> [SchemaStep] { throw readsAFile }
    func engine(using connection: PostgresConnection) throws -> DatabaseEngine { throw readsAFile }
    func expectations(using connection: PostgresConnection, forApply: Bool) throws -> [TableExpectation] {
        throw readsAFile
    }
    func plan(_ settings: RunSettings, planFile: String?) throws -> PlanOutcome { throw readsAFile }

    func apply(_ options: ApplyOptions, settings: RunSettings) throws -> ApplyOutcome {
        guard let runId = options.resumeRunId else { throw readsAFile }
        let summary = try ImportJob.resume(
            runId: runId, conninfo: conninfo, pacing: options.pacing, jobs: options.jobs,
            showProgress: settings.showProgress)
        return ApplyOutcome(
            summary: summary, terminalText: { _ in ImportTerminalReport.render(summary) },
            exitCode: summary.rejected > 0 ? 4 : 0)
    }
}

/// A table job behind the command line's interface, run by `JobRunner`.
struct JobHandle<Job: TableMigration>: RunnableJob {
    let job: Job
    init(_ job: Job) { self.job = job }

    var name: String { Job.name }
    var mappingFile: String { job.mappingFile }
    var tenantNames: TenantNameSource? { job.tenantNames }
    var writesAnomalyList: Bool { Job.writesAnomalyList }

    func schemaSteps(using connection: PostgresConnection) throws -> [SchemaStep] {
        try job.schemaSteps(using: connection)
    }
    func engine(using connection: PostgresConnection) throws -> DatabaseEngine { try job.engine(using: connection) }
    func expectations(using connection: PostgresConnection, forApply: Bool) throws -> [TableExpectation] {
        try job.expectations(using: connection, forApply: forApply)
    }

    func plan(_ settings: RunSettings, planFile: String?) throws -> PlanOutcome {
        let runner = JobRunner(job, settings: settings)
        var reference: PlanReport.PlanFileReference?
        let summary: Job.Summary
        if let planFile {
            let (file, planned) = try runner.planFile()
            reference = PlanReport.PlanFileReference(path: planFile, sha256: try file.write(to: planFile))
            summary = planned
        } else {
            summary = try runner.plan()
        }
        var report = job.planReport(summary)
        report.header.planFile = reference
        report.checksAreConstraints = Job.planChecksAreConstraints
        let connection = try PostgresConnection(conninfo: job.conninfo, applicationName: "ferry plan \(Job.name)")
        defer { connection.close() }
        try report.estimateGrowth(using: connection)
        return PlanOutcome(
            report: report, terminalText: { job.terminalText(summary, colour: $0) },
            changesPending: summary.changesPending,
            predictedViolations: Job.planChecksAreConstraints ? summary.checks.filter { $0.violations > 0 } : [])
    }

    func apply(_ options: ApplyOptions, settings: RunSettings) throws -> ApplyOutcome {
        let summary = try JobRunner(job, settings: settings).apply(options)
        return ApplyOutcome(summary: summary, terminalText: { job.terminalText(summary, colour: $0) })
    }
}

extension TableMigration {
    /// A plan with the default settings (for tests and library callers).
    func plan(_ settings: RunSettings = RunSettings()) throws -> Summary {
        try JobRunner(self, settings: settings).plan()
    }

    /// An apply with the default settings (for tests and library callers).
    func apply(_ options: ApplyOptions = ApplyOptions(), settings: RunSettings = RunSettings()) throws -> Summary {
        try JobRunner(self, settings: settings).apply(options)
    }
}
