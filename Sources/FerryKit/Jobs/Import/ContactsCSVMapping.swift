import Foundation

/// `mappings/contacts-csv.yaml`: how a partner's contact file reads (dialect, encoding, header aliases,
/// phone columns) and where its rows go (contacts upserted by tenant and email, their phones merged).
public struct ContactsCSVMapping: Sendable {
    /// The fields a contact file can fill. `email` is the business key.
    public enum Field: String, CaseIterable, Sendable {
        case fullName = "full_name", email, organization, role, notes
    }

    public struct PhoneColumn: Sendable {
        public let headers: [String]
        public let type: PhoneType
    }

    public struct ContactsTable: Sendable {
        public let table: TableName
        public let tenant, key, fullName, email, organization, role, notes, inactive, updatedAt: String
    }

    public struct OrganizationsTable: Sendable {
        public let table: TableName
        public let tenant, key, name: String
    }

    public struct TenantsTable: Sendable {
        public let table: TableName
        public let key: String
    }

    public let file: String
    public let sha256: String
    public let dialect: CSVDialect
    /// How large one record may be before it is rejected unread (`file.max_fields`, `file.max_record_bytes`).
    public let limits: CSVLimits
    public let encoding: TextEncoding?
    /// Header aliases per field, as written in the mapping.
    public let fields: [Field: [String]]
    /// The header holding each row's tenant; nil when the tenant comes from `--tenant`.
    public let tenantHeaders: [String]?
    public let regionHeaders: [String]?
    public let phoneColumns: [PhoneColumn]
    public let defaultRegion: String
    /// Where extensions go (see `PhonesMapping.extensions`).
    public let extensions: ExtensionHandling
    /// `phones.region_ambiguous`, as for the phones job.
    public let regionAmbiguity: RegionAmbiguity
    /// `phones.accept`, as for the phones job.
    public let acceptance: NumberAcceptance
    public let labels: PhoneLabels
    /// Create an organization named in the file when the tenant has none by that name (else reject the row).
    public let createMissingOrganizations: Bool
    public let contacts: ContactsTable
    public let organizations: OrganizationsTable
    public let tenants: TenantsTable
    public let phoneNumbers: PhonesMapping.PhoneNumbersTable
    public let typeDefinitions: PhonesMapping.TypeDefinitionsTable
    public let load: LoadSettings
    /// How reports name tenants (`report:`).
    public let report: ReportSettings
    public let isolation: TenantIsolation

    public static let requiredFields: [Field] = [.fullName, .email]

    public init(file: String, text: String, sha256: String? = nil) throws {
        self.file = file
        let (root, _, sha256) = try MappingNode.openMapping(
            file: file, text: text, sha256: sha256, jobs: ["contacts-csv"], kind: "CSV contacts")
        self.sha256 = sha256

        let fileNode = root.child("file")
        func singleByte(_ key: String, _ fallback: String) throws -> UInt8 {
            let text = try fileNode?.string(key) ?? fallback
            let value = text == "\\t" ? "\t" : text
            guard value.utf8.count == 1, let byte = value.utf8.first, byte != 0x0A, byte != 0x0D else {
                throw (fileNode?.child(key) ?? root).error(
                    "\(key) must be one ASCII character (\\t for tab), not '\(text)'")
            }
            return byte
        }
        dialect = CSVDialect(delimiter: try singleByte("delimiter", ","), quote: try singleByte("quote", "\""))
        if let name = try fileNode?.string("encoding") {
            guard let value = TextEncoding(name: name) else {
                throw fileNode!.child("encoding")!.error("encoding '\(name)' is not one of \(TextEncoding.names)")
            }
            encoding = value
        } else {
            encoding = nil
        }
        var limits = CSVLimits()
        func positive(_ key: String) throws -> Int? {
            guard let value = try fileNode?.int(key) else { return nil }
            guard value > 0 else { throw fileNode!.child(key)!.error("\(key) must be a positive number, not \(value)") }
            return value
        }
        limits.maxFieldsPerRecord = try positive("max_fields") ?? limits.maxFieldsPerRecord
        limits.maxRecordBytes = try positive("max_record_bytes") ?? limits.maxRecordBytes
        self.limits = limits
        try fileNode?.rejectUnknownKeys()

        let fieldsNode = try root.requiredChild("fields")
        var fields: [Field: [String]] = [:]
        for field in Field.allCases {
            if let headers = try fieldsNode.strings(field.rawValue), !headers.isEmpty { fields[field] = headers }
        }
        for field in Self.requiredFields where fields[field] == nil {
            throw fieldsNode.error("missing required field '\(field.rawValue)' (its header aliases)")
        }
        try fieldsNode.rejectUnknownKeys()
        self.fields = fields
        let tenantNode = root.child("tenant")
        tenantHeaders = try tenantNode?.strings("header")
        try tenantNode?.rejectUnknownKeys()

        let phonesNode = try root.requiredChild("phones")
        defaultRegion = try PhonesMapping.defaultRegion(phonesNode)
        labels = try PhonesMapping.labels(phonesNode)
        let extensionPolicy = try phonesNode.string("extension_without_column")
        regionAmbiguity = try PhonesMapping.regionAmbiguity(phonesNode)
        acceptance = try PhonesMapping.acceptance(phonesNode)
        regionHeaders = try phonesNode.strings("region_header")
        var phoneColumns: [PhoneColumn] = []
        for node in phonesNode.child("columns")?.sequence ?? [] {
            guard let headers = try node.strings("headers"), !headers.isEmpty else {
                throw node.error("missing required key 'headers'")
            }
            phoneColumns.append(PhoneColumn(headers: headers, type: .canonical(try PhonesMapping.canonicalType(node))))
            try node.rejectUnknownKeys()
        }
        self.phoneColumns = phoneColumns
        try phonesNode.rejectUnknownKeys()

        let organizationsNode = root.child("organizations")
        createMissingOrganizations = try organizationsNode?.bool("create_missing") ?? false
        try organizationsNode?.rejectUnknownKeys()

        let targetNode = root.child("target")
        let schema = try targetNode?.string("schema")
        let contactsNode = targetNode?.child("contacts")
        let contactColumns = try ColumnNames(
            contactsNode?.child("columns"),
            defaults: [
                "tenant": "tenant", "key": "contact_name_id", "full_name": "full_name", "email": "email",
                "organization": "client_id", "role": "role", "notes": "notes", "inactive": "is_inactive",
                "updated_at": "updated_at",
            ])
        contacts = ContactsTable(
            table: TableName(schema: schema, name: try contactsNode?.string("table") ?? "contacts"),
            tenant: contactColumns["tenant"], key: contactColumns["key"], fullName: contactColumns["full_name"],
            email: contactColumns["email"], organization: contactColumns["organization"], role: contactColumns["role"],
            notes: contactColumns["notes"], inactive: contactColumns["inactive"],
            updatedAt: contactColumns["updated_at"])
        try contactsNode?.rejectUnknownKeys()
        let organizationsTableNode = targetNode?.child("organizations")
        let organizationColumns = try ColumnNames(
            organizationsTableNode?.child("columns"),
            defaults: [
                "tenant": "tenant", "key": "client_id", "name": "client_name",
            ])
        organizations = OrganizationsTable(
            table: TableName(schema: schema, name: try organizationsTableNode?.string("table") ?? "clients"),
            tenant: organizationColumns["tenant"], key: organizationColumns["key"], name: organizationColumns["name"])
        try organizationsTableNode?.rejectUnknownKeys()
        let tenantsNode = targetNode?.child("tenants")
        let tenantColumns = try ColumnNames(tenantsNode?.child("columns"), defaults: ["key": "tenant"])
        tenants = TenantsTable(
            table: TableName(schema: schema, name: try tenantsNode?.string("table") ?? "tenants"),
            key: tenantColumns["key"])
        try tenantsNode?.rejectUnknownKeys()
        (phoneNumbers, typeDefinitions) = try PhonesMapping.phoneTargets(targetNode)
        extensions = try PhonesMapping.extensionHandling(extensionPolicy, in: phonesNode, table: phoneNumbers)
        try targetNode?.rejectUnknownKeys()

        load = try LoadSettings(root)
        report = try ReportSettings(root)
        isolation = try TenantIsolation.parse(root)
        try root.rejectUnknownKeys()
    }

}

extension ContactsCSVMapping: JobMapping, MappingFileModel {}
