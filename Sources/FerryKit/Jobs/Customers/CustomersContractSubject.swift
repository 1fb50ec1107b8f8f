import Foundation

/// The customers contract: projects.customer_id, once every project with a customer contact has the
/// organization as customer and the contact as a contact point.
public struct CustomersContractSubject: ContractSubject {
    public let mapping: CustomersMapping

    public init(mapping: CustomersMapping) {
        self.mapping = mapping
    }

    public var job: String { CustomersJob.name }
    public var mappingFile: String { mapping.file }
    public var mappingSHA256: String { mapping.sha256 }
    public var table: TableName { mapping.projects.table }
    public var legacyColumns: [String] { [mapping.projects.customer] }
    public var load: LoadSettings { mapping.load }
    public var rowNoun: String { "project" }
    public var tenantColumn: String { mapping.projects.tenant }
    public var keyColumn: String { mapping.projects.key }
    public var rowAlias: String { "x" }
    public var citusReads: TableName? { LegacyReads.table(of: job) }

    public func rows(changed: String, from joins: String, filter: String, sameTenant: (String) -> String) -> String {
        let p = mapping.projects, c = mapping.contacts, cp = mapping.contactPoints
        func q(_ name: String) -> String { quoteIdentifier(name) }
        return """
            SELECT x.\(q(p.tenant))::text AS ferry_tenant, x.\(q(p.key))::text AS ferry_key,
                   x.\(q(p.customer))::text AS customer, x.\(q(p.customerOrganization))::text AS customer_organization,
                   k.\(q(c.fullName))::text AS full_name, k.\(q(c.contactType))::text AS contact_type, k.\(q(c.email))::text AS email,
                   k.\(q(c.organization))::text AS organization, k.\(q(c.role))::text AS role,
                   EXISTS (SELECT 1 FROM \(cp.table.quoted) t WHERE t.\(q(cp.tenant)) = x.\(q(p.tenant))
                           AND t.\(q(cp.project)) = x.\(q(p.key)) AND t.\(q(cp.contact)) = x.\(q(p.customer))\(sameTenant("t.\(q(cp.tenant))"))) AS has_contact_point,
                   \(changed) AS ferry_changed
            FROM \(p.table.quoted) x
            LEFT JOIN \(c.table.quoted) k ON k.\(q(c.tenant)) = x.\(q(p.tenant)) AND k.\(q(c.key)) = x.\(q(p.customer))\(sameTenant("k.\(q(c.tenant))"))\(joins)
            WHERE x.\(q(p.customer)) IS NOT NULL AND \(filter)
            ORDER BY 1, 2
            """
    }

    public func judge(_ row: Row) throws -> (verdict: LegacyValueVerdict, values: String) {
        // A customer contact that no longer exists (the LEFT JOIN found none) has no name: "" says so.
        let project = LegacyProjectCustomer(
            tenant: try row.required("ferry_tenant"), projectKey: try row.required("ferry_key"),
            contactKey: try row.required("customer"), customerOrganization: try row.optional("customer_organization"),
            contactName: try row.optional("full_name") ?? "", contactType: try row.optional("contact_type"),
            email: try row.optional("email"), organization: try row.optional("organization"),
            roleText: try row.optional("role"), hasContactPoint: try row.required("has_contact_point"))
        let values = "customer_id \(project.contactKey) (\(project.contactName))"
        if project.customerOrganization != nil, project.hasContactPoint { return (.migrated, values) }
        switch CustomerTransform(mapping: mapping).decide(project).action {
        case .rejected(let reason): return (.rejected(reason: reason), values)
        case .alreadyLinked, .link:
            return (.notMigrated(reason: "not linked yet: run `ferry apply \(mapping.file)`"), values)
        }
    }
}
