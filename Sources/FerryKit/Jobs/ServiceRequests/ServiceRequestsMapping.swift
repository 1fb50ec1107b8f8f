import Foundation

/// `mappings/service-requests.yaml`: the requests and their actor email columns, the contacts and
/// organizations they resolve to, and the table that maps legacy statuses to the new set.
public struct ServiceRequestsMapping: Sendable {
    public struct RequestsTable: Sendable {
        public let table: TableName
        public let tenant, key, submittedByEmail, assignedToEmail, status, createdAt: String
        public let submittedByContact, assignedToContact, fleetCompany, supplierCompany: String
    }

    public struct ContactsTable: Sendable {
        public let table: TableName
        public let tenant, key, fullName, email, organization, contactType, firstSeenAt: String
    }

    public struct OrganizationsTable: Sendable {
        public let table: TableName
        public let tenant, key: String
    }

    /// The statuses a request may have after the migration.
    public static let newStatuses = ["new", "acknowledged", "in_progress", "completed", "declined"]

    public let file: String
    public let sha256: String
    public let requests: RequestsTable
    public let contacts: ContactsTable
    public let organizations: OrganizationsTable
    public let emergentContactType: String
    /// Legacy status, lower-cased and trimmed → new status.
    public let statuses: [String: String]
    /// Add CHECK (status IN the new set) at the end of an apply that leaves no other status.
    public let statusConstraint: Bool
    public let load: LoadSettings
    /// How reports name tenants (`report:`).
    public let report: ReportSettings
    public let isolation: TenantIsolation

    public init(file: String, text: String, sha256: String? = nil) throws {
        self.file = file
        let (root, _, sha256) = try MappingNode.openMapping(
            file: file, text: text, sha256: sha256, jobs: [ServiceRequestsJob.name], kind: "service requests")
        self.sha256 = sha256

        let source = try root.requiredChild("source")
        let (requestsName, r) = try ColumnNames.table(
            source.child("requests"), "service_requests",
            [
                "tenant": "tenant", "key": "request_id", "submitted_by_email": "submitted_by_email",
                "assigned_to_email": "assigned_to_email",
                "status": "status", "created_at": "created_at", "submitted_by_contact": "submitted_by_contact_id",
                "assigned_to_contact": "assigned_to_contact_id", "fleet_company": "fleet_company_id",
                "supplier_company": "supplier_company_id",
            ])
        requests = RequestsTable(
            table: requestsName, tenant: r["tenant"], key: r["key"], submittedByEmail: r["submitted_by_email"],
            assignedToEmail: r["assigned_to_email"], status: r["status"], createdAt: r["created_at"],
            submittedByContact: r["submitted_by_contact"], assignedToContact: r["assigned_to_contact"],
            fleetCompany: r["fleet_company"], supplierCompany: r["supplier_company"])
        let (contactsName, c) = try ColumnNames.table(
            source.child("contacts"), "contacts",
            [
                "tenant": "tenant", "key": "contact_name_id", "full_name": "full_name", "email": "email",
                "organization": "client_id",
                "contact_type": "contact_type", "first_seen_at": "first_seen_at",
            ])
        contacts = ContactsTable(
            table: contactsName, tenant: c["tenant"], key: c["key"], fullName: c["full_name"], email: c["email"],
            organization: c["organization"], contactType: c["contact_type"], firstSeenAt: c["first_seen_at"])
        let (organizationsName, o) = try ColumnNames.table(
            source.child("organizations"), "clients", ["tenant": "tenant", "key": "client_id"])
        organizations = OrganizationsTable(table: organizationsName, tenant: o["tenant"], key: o["key"])
        try source.rejectUnknownKeys()

        let emergent = root.child("emergent_contacts")
        emergentContactType = try emergent?.string("contact_type") ?? "external"
        try emergent?.rejectUnknownKeys()

        let statusNode = try root.requiredChild("statuses")
        var statuses: [String: String] = [:]
        for (legacy, new) in try statusNode.stringPairs() {
            guard Self.newStatuses.contains(new) else {
                throw statusNode.error(
                    "'\(legacy): \(new)': \(new) is not one of \(Self.newStatuses.joined(separator: ", "))")
            }
            statuses[Self.statusKey(legacy)] = new
        }
        self.statuses = statuses
        statusConstraint = try root.bool("status_constraint") ?? false
        load = try LoadSettings(root)
        report = try ReportSettings(root)
        isolation = try TenantIsolation.parse(root)
        try root.rejectUnknownKeys()
    }

    /// How a legacy status is looked up: trimmed, lower-cased.
    static func statusKey(_ value: String) -> String { value.trimmingWhitespace().lowercased() }
}

extension ServiceRequestsMapping: JobMapping, MappingFileModel {}
