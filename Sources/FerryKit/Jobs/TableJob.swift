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
    /// Where reports find tenant names (the mapping's `report: tenant_names:`).
    var tenantNames: TenantNameSource? { get }
    /// The plan, as the report every format renders.
    func planReport() throws -> PlanReport
    /// Applies the job; returns the summary (for --json) and its terminal text.
    func applyAndReport(_ options: ApplyOptions) throws -> (summary: any Encodable & Sendable, text: String)
}

extension CustomersJob: TableJob {
    public var mappingFile: String { mapping.file }
    public var tenantNames: TenantNameSource? { mapping.report.tenantNames }
    public func planReport() throws -> PlanReport { PlanReport(customersSummary: try plan(), mapping: mapping) }
    public func applyAndReport(_ options: ApplyOptions) throws -> (summary: any Encodable & Sendable, text: String) {
        let summary = try apply(options)
        return (summary, CustomersTerminalReport.render(summary))
    }
}

extension ServiceRequestsJob: TableJob {
    public var mappingFile: String { mapping.file }
    public var tenantNames: TenantNameSource? { mapping.report.tenantNames }
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
    case ServiceRequestsJob.name:
        return ServiceRequestsJob(mapping: try ServiceRequestsMapping.load(path: path), conninfo: conninfo)
    default: return nil
    }
}

/// The SQL types of the keys a table job joins on, read from the catalog: the tenant, the rows it
/// migrates (projects, service requests), contacts and organizations.
struct TableJobKeyTypes: Sendable {
    let tenant: String
    let row: String
    let contact: String
    let organization: String

    static func read(
        _ connection: PostgresConnection, rows: TableName, tenant: String, key: String, contacts: TableName,
        contactKey: String,
        organizations: TableName, organizationKey: String, mappingFile: String
    ) throws -> TableJobKeyTypes {
        let rowColumns = try connection.columnTypes(rows)
        guard let tenantType = rowColumns[tenant], let rowType = rowColumns[key],
            let contactType = try connection.columnTypes(contacts)[contactKey],
            let organizationType = try connection.columnTypes(organizations)[organizationKey]
        else {
            throw PreflightError(problems: [
                "cannot read the key columns of \(rows), \(contacts) and \(organizations) (named in \(mappingFile))"
            ])
        }
        return TableJobKeyTypes(tenant: tenantType, row: rowType, contact: contactType, organization: organizationType)
    }
}
