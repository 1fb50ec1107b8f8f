/// What `ferry schema` and `ferry doctor` need of any job: its schema steps, and what it expects of the database.
public protocol JobSchema: Sendable {
    func schemaSteps(using connection: PostgresConnection) throws -> [SchemaStep]
    func expectations(using connection: PostgresConnection, forApply: Bool) throws -> [TableExpectation]
    /// The engine the job's source table lives on.
    func engine(using connection: PostgresConnection) throws -> DatabaseEngine
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
