/// A job that migrates rows already in the database (customers, service requests): what the command
/// line needs of it, whichever it is. The phones job and the CSV import have commands of their own.
public protocol TableJob: Sendable {
    var mappingFile: String { get }
    var showProgress: Bool { get set }
    func schemaSteps(using connection: PostgresConnection) throws -> [SchemaStep]
    func expectations(using connection: PostgresConnection, forApply: Bool) throws -> [TableExpectation]
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
