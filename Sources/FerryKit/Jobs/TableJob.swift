/// What `ferry schema` and `ferry doctor` need of any job: its schema steps, and what it expects of the database.
public protocol JobSchema: Sendable {
    func schemaSteps(using connection: PostgresConnection) throws -> [SchemaStep]
    func expectations(using connection: PostgresConnection, forApply: Bool) throws -> [TableExpectation]
}

extension PhonesJob: JobSchema {}
extension ImportJob: JobSchema {}

/// The job a mapping file declares, for its schema and checks.
public func jobSchema(mapping path: String, conninfo: String) throws -> any JobSchema {
    if let job = try tableJob(mapping: path, conninfo: conninfo) { return job }
    switch try mappingJob(path: path) {
    case ImportJob.name: return ImportJob(mapping: try ContactsCSVMapping.load(path: path), conninfo: conninfo)
    default: return PhonesJob(mapping: try PhonesMapping.load(path: path), conninfo: conninfo)
    }
}

/// A job that migrates rows already in the database (customers, service requests): what the command
/// line needs of it, whichever it is. The phones job and the CSV import have commands of their own.
public protocol TableJob: JobSchema {
    var mappingFile: String { get }
    var showProgress: Bool { get set }
    /// The plan, as the report every format renders.
    func planReport() throws -> PlanReport
    /// Applies the job; returns the summary (for --json) and its terminal text.
    func applyAndReport(_ options: ApplyOptions) throws -> (summary: any Encodable & Sendable, text: String)
}

extension CustomersJob: TableJob {
    public var mappingFile: String { mapping.file }
    public func planReport() throws -> PlanReport { PlanReport(customersSummary: try plan(), mapping: mapping) }
    public func applyAndReport(_ options: ApplyOptions) throws -> (summary: any Encodable & Sendable, text: String) {
        let summary = try apply(options)
        return (summary, CustomersTerminalReport.render(summary))
    }
}

extension ServiceRequestsJob: TableJob {
    public var mappingFile: String { mapping.file }
    public func planReport() throws -> PlanReport { PlanReport(serviceRequestsSummary: try plan(), mapping: mapping) }
    public func applyAndReport(_ options: ApplyOptions) throws -> (summary: any Encodable & Sendable, text: String) {
        let summary = try apply(options)
        return (summary, ServiceRequestsTerminalReport.render(summary))
    }
}

/// The table job a mapping file declares, or nil for the phones job and the CSV import.
public func tableJob(mapping path: String, conninfo: String) throws -> (any TableJob)? {
    switch try mappingJob(path: path) {
    case CustomersJob.name: return CustomersJob(mapping: try CustomersMapping.load(path: path), conninfo: conninfo)
    case ServiceRequestsJob.name: return ServiceRequestsJob(mapping: try ServiceRequestsMapping.load(path: path), conninfo: conninfo)
    default: return nil
    }
}
