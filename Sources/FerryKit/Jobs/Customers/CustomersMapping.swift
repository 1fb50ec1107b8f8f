import Foundation

/// `mappings/customers.yaml`: where projects, their customer contacts and the organizations are, how a
/// contact's role text becomes a contact-point role, and what happens to contacts without an organization.
public struct CustomersMapping: Sendable {
    public struct ProjectsTable: Sendable {
        public let table: TableName
        public let tenant, key, customer, customerOrganization: String
    }

    public struct ContactsTable: Sendable {
        public let table: TableName
        public let tenant, key, fullName, email, organization, role, contactType, isPrimary: String
    }

    public struct OrganizationsTable: Sendable {
        public let table: TableName
        public let tenant, key, name, type, emailDomain: String
    }

    public struct ContactPointsTable: Sendable {
        public let table: TableName
        public let tenant, id, project, contact, role, isPrimary, createdAt: String
    }

    public struct RoleRule: Equatable, Sendable {
        public let role: String
        /// Lower-cased words or phrases; a rule matches when one occurs as whole words in the role text.
        public let match: [String]
    }

    public enum OrganizationRule: String, CaseIterable, Sendable {
        case createFromEmailDomain = "create_from_email_domain"
        case createIndividual = "create_individual"
        case reject
    }

    public let file: String
    public let sha256: String
    public let projects: ProjectsTable
    public let contacts: ContactsTable
    public let organizations: OrganizationsTable
    public let contactPoints: ContactPointsTable
    public let customerContactTypes: [String]
    public let roleRules: [RoleRule]
    public let defaultRole: String
    public let withoutOrganization: [OrganizationRule]
    public let publicEmailDomains: Set<String>
    public let load: LoadSettings
    /// How reports name tenants (`report:`).
    public let report: ReportSettings
    public let isolation: TenantIsolation

    public init(file: String, text: String, sha256: String? = nil) throws {
        self.file = file
        let (root, _, sha256) = try MappingNode.openMapping(
            file: file, text: text, sha256: sha256, jobs: [CustomersJob.name], kind: "customers")
        self.sha256 = sha256

        let source = try root.requiredChild("source")
        let (projectsName, p) = try ColumnNames.table(
            source.child("projects"), "projects",
            [
                "tenant": "tenant", "key": "project_id", "customer": "customer_id",
                "customer_organization": "customer_organization_id",
            ])
        projects = ProjectsTable(
            table: projectsName, tenant: p["tenant"], key: p["key"], customer: p["customer"],
            customerOrganization: p["customer_organization"])
        let (contactsName, c) = try ColumnNames.table(
            source.child("contacts"), "contacts",
            [
                "tenant": "tenant", "key": "contact_name_id", "full_name": "full_name", "email": "email",
                "organization": "client_id",
                "role": "role", "contact_type": "contact_type", "is_primary": "is_primary_contact",
            ])
        contacts = ContactsTable(
            table: contactsName, tenant: c["tenant"], key: c["key"], fullName: c["full_name"], email: c["email"],
            organization: c["organization"], role: c["role"], contactType: c["contact_type"], isPrimary: c["is_primary"]
        )
        let (organizationsName, o) = try ColumnNames.table(
            source.child("organizations"), "clients",
            [
                "tenant": "tenant", "key": "client_id", "name": "client_name", "type": "organization_type",
                "email_domain": "email_domain",
            ])
        organizations = OrganizationsTable(
            table: organizationsName, tenant: o["tenant"], key: o["key"], name: o["name"], type: o["type"],
            emailDomain: o["email_domain"])
        customerContactTypes = try source.strings("customer_contact_types") ?? ["customer"]
        try source.rejectUnknownKeys()

        let target = root.child("target")
        let (pointsName, t) = try ColumnNames.table(
            target?.child("contact_points"), "project_contact_points",
            [
                "tenant": "tenant", "id": "project_contact_point_id", "project": "project_id",
                "contact": "contact_name_id",
                "role": "role", "is_primary": "is_primary", "created_at": "created_at",
            ])
        contactPoints = ContactPointsTable(
            table: pointsName, tenant: t["tenant"], id: t["id"], project: t["project"], contact: t["contact"],
            role: t["role"], isPrimary: t["is_primary"], createdAt: t["created_at"])
        try target?.rejectUnknownKeys()

        var rules: [RoleRule] = []
        var fallback = "general"
        if let rolesNode = root.child("roles") {
            guard let items = rolesNode.sequence else {
                throw rolesNode.error("roles must be a list of {role, match} and a final {default: ROLE}")
            }
            for item in items {
                if let role = try item.string("default") {
                    fallback = role
                } else {
                    guard let words = try item.strings("match"), !words.isEmpty else {
                        throw item.error("missing required key 'match'")
                    }
                    rules.append(
                        RoleRule(
                            role: try item.requiredString("role"),
                            match: words.map { Self.words(of: $0).joined(separator: " ") }))
                }
                try item.rejectUnknownKeys()
            }
        }
        roleRules = rules
        defaultRole = fallback

        let organizationsNode = root.child("organizations")
        let ruleNames =
            try organizationsNode?.strings("without_organization") ?? ["create_from_email_domain", "create_individual"]
        withoutOrganization = try ruleNames.map { name in
            guard let rule = OrganizationRule(rawValue: name) else {
                throw (organizationsNode?.child("without_organization") ?? root).error(
                    "'\(name)' is not one of \(OrganizationRule.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return rule
        }
        publicEmailDomains = Set(
            (try organizationsNode?.strings("public_email_domains") ?? [
                "gmail.com", "outlook.com", "yahoo.com", "hotmail.com",
            ])
            .map { $0.lowercased() })
        try organizationsNode?.rejectUnknownKeys()

        load = try LoadSettings(root)
        report = try ReportSettings(root)
        isolation = try TenantIsolation.parse(root)
        try root.rejectUnknownKeys()
    }

    /// Lower-cased words of a text: letters and digits, everything else separates.
    static func words(of text: String) -> [String] {
        text.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) }).map(String.init)
    }
}

extension CustomersMapping: JobMapping, MappingFileModel {}
