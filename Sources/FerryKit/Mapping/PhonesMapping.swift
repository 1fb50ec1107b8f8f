import Foundation

/// `mappings/phones.yaml`: where the legacy phones are, where the normalized rows go, and how to read them.
public struct PhonesMapping: Sendable {
    public struct Source: Sendable {
        public let table: TableName
        public let tenantColumn: String
        public let keyColumn: String
        public let regionColumn: String?
        /// In priority order: the first number of the first non-empty column is the default.
        public let columns: [PhoneSourceColumn]
    }

    public struct PhoneNumbersTable: Sendable {
        public let table: TableName
        public let tenant, id, contactKey, phoneNumber, extensionDigits, normalizedPhoneNumber: String
        public let canonicalType, customType, isDefault, displayOrder, createdAt, updatedAt: String
    }

    public struct TypeDefinitionsTable: Sendable {
        public let table: TableName
        public let tenant, id, label, normalizedLabel, createdAt, updatedAt: String
    }

    public let file: String
    /// sha256 of the file's bytes: plans and runs record which mapping they used.
    public let sha256: String
    public let source: Source
    public let phoneNumbers: PhoneNumbersTable
    public let typeDefinitions: TypeDefinitionsTable
    public let defaultRegion: String
    public let labels: PhoneLabels
    public let load: LoadSettings
    /// How reports name tenants (`report:`).
    public let report: ReportSettings
    /// Row-level security on the tables ferry creates.
    public let isolation: TenantIsolation

    public var transform: PhoneTransform {
        PhoneTransform(columns: source.columns, defaultRegion: defaultRegion, labels: labels)
    }

    public static func load(path: String) throws -> PhonesMapping {
        let (text, sha256) = try readMappingFile(path)
        return try PhonesMapping(file: path, text: text, sha256: sha256)
    }

    public init(file: String, text: String, sha256: String? = nil) throws {
        self.file = file
        self.sha256 = sha256 ?? SHA256.hash(data: Data(text.utf8)).hexString
        let root = try MappingNode(file: file, text: text)
        let job = try root.requiredString("job")
        guard job == "phones" else { throw root.error("job must be 'phones' in a phones mapping, not '\(job)'") }
        _ = try root.string("description")

        let sourceNode = try root.requiredChild("source")
        var columns: [PhoneSourceColumn] = []
        guard let columnNodes = try sourceNode.requiredChild("columns").sequence, !columnNodes.isEmpty else {
            throw sourceNode.error("columns must list at least one phone column")
        }
        for node in columnNodes {
            let name = try node.requiredString("column")
            let type = try Self.canonicalType(node)
            try node.rejectUnknownKeys()
            columns.append(PhoneSourceColumn(name: name, type: .canonical(type)))
        }
        source = Source(
            table: TableName(
                schema: try sourceNode.string("schema"), name: try sourceNode.string("table") ?? "contacts"),
            tenantColumn: try sourceNode.string("tenant_column") ?? "tenant",
            keyColumn: try sourceNode.string("key_column") ?? "contact_name_id",
            regionColumn: try sourceNode.string("region_column"),
            columns: columns)
        try sourceNode.rejectUnknownKeys()

        let targetNode = root.child("target")
        (phoneNumbers, typeDefinitions) = try Self.phoneTargets(targetNode)
        try targetNode?.rejectUnknownKeys()

        let phonesNode = try root.requiredChild("phones")
        defaultRegion = try Self.defaultRegion(phonesNode)
        labels = try Self.labels(phonesNode)
        try phonesNode.rejectUnknownKeys()

        load = try LoadSettings(root)
        report = try ReportSettings(root)
        isolation = try TenantIsolation.parse(root)
        try root.rejectUnknownKeys()
    }

    // MARK: Parts other mappings share

    /// `target.phone_numbers` and `target.type_definitions`, with their column renames.
    static func phoneTargets(_ targetNode: MappingNode?) throws -> (PhoneNumbersTable, TypeDefinitionsTable) {
        let targetSchema = try targetNode?.string("schema")
        let phoneNode = targetNode?.child("phone_numbers")
        let phoneColumns = try ColumnNames(
            phoneNode?.child("columns"),
            defaults: [
                "tenant": "tenant", "id": "contact_phone_number_id", "contact_key": "contact_name_id",
                "phone_number": "phone_number", "extension": "extension",
                "normalized_phone_number": "normalized_phone_number",
                "canonical_type": "canonical_type", "custom_type": "custom_phone_type_id", "is_default": "is_default",
                "display_order": "display_order", "created_at": "created_at", "updated_at": "updated_at",
            ])
        let phoneNumbers = PhoneNumbersTable(
            table: TableName(schema: targetSchema, name: try phoneNode?.string("table") ?? "contact_phone_numbers"),
            tenant: phoneColumns["tenant"], id: phoneColumns["id"], contactKey: phoneColumns["contact_key"],
            phoneNumber: phoneColumns["phone_number"], extensionDigits: phoneColumns["extension"],
            normalizedPhoneNumber: phoneColumns["normalized_phone_number"],
            canonicalType: phoneColumns["canonical_type"],
            customType: phoneColumns["custom_type"], isDefault: phoneColumns["is_default"],
            displayOrder: phoneColumns["display_order"], createdAt: phoneColumns["created_at"],
            updatedAt: phoneColumns["updated_at"])
        try phoneNode?.rejectUnknownKeys()
        let typeNode = targetNode?.child("type_definitions")
        let typeColumns = try ColumnNames(
            typeNode?.child("columns"),
            defaults: [
                "tenant": "tenant", "id": "contact_phone_type_id", "label": "label",
                "normalized_label": "normalized_label",
                "created_at": "created_at", "updated_at": "updated_at",
            ])
        let typeDefinitions = TypeDefinitionsTable(
            table: TableName(
                schema: targetSchema, name: try typeNode?.string("table") ?? "contact_phone_type_definitions"),
            tenant: typeColumns["tenant"], id: typeColumns["id"], label: typeColumns["label"],
            normalizedLabel: typeColumns["normalized_label"], createdAt: typeColumns["created_at"],
            updatedAt: typeColumns["updated_at"])
        try typeNode?.rejectUnknownKeys()
        return (phoneNumbers, typeDefinitions)
    }

    /// `phones.default_region` (checked against libphonenumber's regions).
    static func defaultRegion(_ phonesNode: MappingNode) throws -> String {
        let region = try phonesNode.requiredString("default_region").uppercased()
        guard PhoneNumberParser.isSupportedRegion(region) else {
            throw phonesNode.error(
                "default_region '\(region)' is not a region libphonenumber knows (use ISO codes like US, DE, GB)")
        }
        return region
    }

    /// `phones.labels`: extra annotation words on top of the standard dictionary.
    static func labels(_ phonesNode: MappingNode) throws -> PhoneLabels {
        var extraLabels: [String: PhoneLabels.Meaning] = [:]
        if let labelNode = phonesNode.child("labels") {
            for (word, meaning) in try labelNode.stringPairs() {
                switch meaning.lowercased() {
                case "generic": extraLabels[word] = .generic
                case "extension": extraLabels[word] = .localExtension
                default: extraLabels[word] = .type(PhoneType(label: meaning))
                }
            }
        }
        return PhoneLabels.standard.adding(extraLabels)
    }

    static func canonicalType(_ node: MappingNode) throws -> CanonicalPhoneType {
        let typeText = try node.requiredString("type")
        guard let type = CanonicalPhoneType(rawValue: typeText) else {
            let allowed = CanonicalPhoneType.allCases.map(\.rawValue).joined(separator: ", ")
            throw node.error("type '\(typeText)' is not one of \(allowed)")
        }
        return type
    }
}

/// A table's column names: the mapping may rename any of them, and may not invent new ones.
struct ColumnNames {
    private var names: [String: String]

    init(_ node: MappingNode?, defaults: [String: String]) throws {
        names = defaults
        guard let node else { return }
        for (role, column) in try node.stringPairs() {
            guard defaults[role] != nil else {
                throw node.error(
                    "unknown column role '\(role)' (known: \(defaults.keys.sorted().joined(separator: ", ")))")
            }
            names[role] = column
        }
    }

    subscript(role: String) -> String { names[role]! }

    /// A mapping's `{table, schema, columns}` node: the table (default `defaultName`) and its column names.
    static func table(
        _ node: MappingNode?, _ defaultName: String, _ defaults: [String: String]
    ) throws -> (TableName, ColumnNames) {
        let name = TableName(schema: try node?.string("schema"), name: try node?.string("table") ?? defaultName)
        let columns = try ColumnNames(node?.child("columns"), defaults: defaults)
        try node?.rejectUnknownKeys()
        return (name, columns)
    }
}
