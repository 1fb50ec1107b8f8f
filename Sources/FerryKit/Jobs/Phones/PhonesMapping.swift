import Foundation

/// What the phones job does with a contact that already has phone rows.
public enum ExistingRows: String, Sendable {
    /// Leave the contact alone.
    case skip
    /// A contact whose one row is exactly what a naive backfill wrote (the first legacy column's value
    /// trimmed, type work, the default, first) gets its normalized rows in that row's place; any other
    /// rows are the application's, left alone and listed.
    case replaceNaive = "replace_naive"
}

/// `mappings/phones.yaml`: where the legacy phones are, where the normalized rows go, and how to read them.
public struct PhonesMapping: Sendable {
    /// A region per tenant or per client, from another table or from a query: `join` pairs a source
    /// column with a column of the lookup, whose `column` holds the region (ISO 3166 code).
    public struct RegionLookup: Sendable {
        /// Where the regions are: a table (or view) by name, or the text of a SELECT the mapping gives
        /// (e.g. a client's default location), which runs as a subquery with the role's privileges.
        public enum Relation: Sendable {
            case table(TableName)
            case query(String)
        }
        public let relation: Relation
        public let join: [(source: String, lookup: String)]
        public let column: String

        /// The relation as a FROM item: the table's quoted name, or the query in parentheses.
        var fromItem: String {
            switch relation {
            case .table(let table): table.quoted
            case .query(let text): subquery(text)
            }
        }

        /// What `ferry doctor` checks: the table with the lookup's columns, or the query returning them.
        var expectation: TableExpectation {
            var expected: TableExpectation
            switch relation {
            case .table(let table): expected = TableExpectation(table, use: .read)
            case .query(let text):
                expected = TableExpectation(TableName(schema: nil, name: "source.region_lookup.query"), use: .read)
                expected.query = text
            }
            for name in join.map(\.lookup) + [column] { expected.column(name) }
            return expected
        }
    }

    public struct Source: Sendable {
        public let table: TableName
        public let tenantColumn: String
        public let keyColumn: String
        public let regionColumn: String?
        public let regionLookup: RegionLookup?
        /// In priority order: the first number of the first non-empty column is the default.
        public let columns: [PhoneSourceColumn]
        /// `created_at_column` / `updated_at_column`: the phone rows take the contact's own timestamps
        /// (as the application's backfill did: created from created_at, updated from updated_at, then
        /// created_at, then now()); without them, now().
        public var createdAtColumn: String? = nil
        public var updatedAtColumn: String? = nil
        /// `source.query`: the contacts are read from this SELECT (paged by its tenant and key, which
        /// must be unique in it: counted before it is read) instead of from `table`, which stays the
        /// table the phone rows belong to (their foreign key, the contract's legacy columns).
        public var query: String? = nil

        var timestampsFromSource: Bool { createdAtColumn != nil || updatedAtColumn != nil }

        /// How the engine pages it (and where the extract reads it: `KeysetSource.fromItem`).
        var keyset: KeysetSource {
            KeysetSource(table: table, tenantColumn: tenantColumn, keyColumn: keyColumn, noun: "contacts", query: query)
        }
    }

    /// The phone table. Columns ferry can do without are optional: a mapping says `extension: null` for
    /// an application table that has none (ferry then neither reads nor writes it).
    public struct PhoneNumbersTable: Sendable {
        public let table: TableName
        public let tenant, id, contactKey, phoneNumber: String
        public let extensionDigits, normalizedPhoneNumber: String?
        public let canonicalType, customType, isDefault, displayOrder: String
        public let createdAt, updatedAt: String?
    }

    public struct TypeDefinitionsTable: Sendable {
        public let table: TableName
        public let tenant, id, label, normalizedLabel: String
        public let createdAt, updatedAt: String?
    }

    public let file: String
    /// sha256 of the file's bytes: plans and runs record which mapping they used.
    public let sha256: String
    public let source: Source
    public let phoneNumbers: PhoneNumbersTable
    public let typeDefinitions: TypeDefinitionsTable
    public let defaultRegion: String
    public let labels: PhoneLabels
    /// Where extensions go: the extension column, or (when the table has none) the mapping's policy.
    public let extensions: ExtensionHandling
    /// `phones.region_by_tenant`: per tenant (lower-case text), the region when the row and the lookup give none.
    public let regionsByTenant: [String: String]
    /// `phones.region_ambiguous`: a number valid in its region and as a North American number.
    public let regionAmbiguity: RegionAmbiguity
    /// `phones.accept`: valid numbers only, or possible ones too.
    public let acceptance: NumberAcceptance
    /// `phones.existing_rows`: what happens to contacts that already have phone rows.
    public let existingRows: ExistingRows
    /// `job: phones-in-place`: the phone table is its own source (the legacy column is gone).
    public let inPlace: Bool
    public static let inPlaceJob = "phones-in-place"
    /// (in place) What happens to a row that holds no usable number.
    public let unusableRows: UnusableRows
    public let load: LoadSettings
    /// How reports name tenants (`report:`).
    public let report: ReportSettings
    /// Row-level security on the tables ferry creates.
    public let isolation: TenantIsolation

    public var transform: PhoneTransform {
        PhoneTransform(
            columns: source.columns, defaultRegion: defaultRegion, labels: labels, extensions: extensions,
            regionsByTenant: regionsByTenant, regionAmbiguity: regionAmbiguity, acceptance: acceptance)
    }

    public init(file: String, text: String, sha256: String? = nil) throws {
        self.file = file
        let (root, job, sha256) = try MappingNode.openMapping(
            file: file, text: text, sha256: sha256, jobs: ["phones", Self.inPlaceJob], kind: "phones")
        self.sha256 = sha256
        inPlace = job == Self.inPlaceJob

        let targetNode = root.child("target")
        (phoneNumbers, typeDefinitions) = try Self.phoneTargets(targetNode)
        try targetNode?.rejectUnknownKeys()

        if inPlace {
            // The legacy column is gone: the phone table is its own source, read contact by contact.
            let sourceNode = root.child("source")
            source = Source(
                table: phoneNumbers.table, tenantColumn: phoneNumbers.tenant, keyColumn: phoneNumbers.contactKey,
                regionColumn: nil, regionLookup: try Self.regionLookup(sourceNode?.child("region_lookup")),
                columns: [PhoneSourceColumn(name: phoneNumbers.phoneNumber, type: .canonical(.work))])
            try sourceNode?.rejectUnknownKeys()
        } else {
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
                regionLookup: try Self.regionLookup(sourceNode.child("region_lookup")),
                columns: columns,
                createdAtColumn: try sourceNode.string("created_at_column"),
                updatedAtColumn: try sourceNode.string("updated_at_column"),
                query: try Self.subqueryText(sourceNode, "the tenant, key and phone columns"))
            for (key, target) in [
                ("created_at_column", phoneNumbers.createdAt), ("updated_at_column", phoneNumbers.updatedAt),
            ]
            where target == nil {
                if let node = sourceNode.child(key) {
                    throw node.error(
                        "the phone table is declared without that timestamp column (target.phone_numbers.columns): there is nothing to fill"
                    )
                }
            }
            try sourceNode.rejectUnknownKeys()
        }

        let phonesNode = try root.requiredChild("phones")
        defaultRegion = try Self.defaultRegion(phonesNode)
        labels = try Self.labels(phonesNode)
        extensions = try Self.extensionHandling(
            try phonesNode.string("extension_without_column"), in: phonesNode, table: phoneNumbers)
        regionsByTenant = try Self.regionsByTenant(phonesNode.child("region_by_tenant"))
        regionAmbiguity = try Self.regionAmbiguity(phonesNode)
        acceptance = try Self.acceptance(phonesNode)
        let existing = try phonesNode.string("existing_rows") ?? ExistingRows.skip.rawValue
        guard let existingRows = ExistingRows(rawValue: existing) else {
            throw phonesNode.child("existing_rows")!.error("must be skip or replace_naive, not '\(existing)'")
        }
        self.existingRows = existingRows
        let unusable = try phonesNode.string("unusable_rows") ?? UnusableRows.keep.rawValue
        guard let unusableRows = UnusableRows(rawValue: unusable) else {
            throw phonesNode.child("unusable_rows")!.error("must be keep or delete, not '\(unusable)'")
        }
        if !inPlace, phonesNode.child("unusable_rows") != nil {
            throw phonesNode.child("unusable_rows")!.error(
                "applies to job \(Self.inPlaceJob) only (the phones job never deletes a legacy value)")
        }
        self.unusableRows = unusableRows
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
            ], optional: ["extension", "normalized_phone_number", "created_at", "updated_at"])
        let phoneNumbers = PhoneNumbersTable(
            table: TableName(schema: targetSchema, name: try phoneNode?.string("table") ?? "contact_phone_numbers"),
            tenant: phoneColumns["tenant"], id: phoneColumns["id"], contactKey: phoneColumns["contact_key"],
            phoneNumber: phoneColumns["phone_number"], extensionDigits: phoneColumns.optional("extension"),
            normalizedPhoneNumber: phoneColumns.optional("normalized_phone_number"),
            canonicalType: phoneColumns["canonical_type"],
            customType: phoneColumns["custom_type"], isDefault: phoneColumns["is_default"],
            displayOrder: phoneColumns["display_order"], createdAt: phoneColumns.optional("created_at"),
            updatedAt: phoneColumns.optional("updated_at"))
        try phoneNode?.rejectUnknownKeys()
        let typeNode = targetNode?.child("type_definitions")
        let typeColumns = try ColumnNames(
            typeNode?.child("columns"),
            defaults: [
                "tenant": "tenant", "id": "contact_phone_type_id", "label": "label",
                "normalized_label": "normalized_label",
                "created_at": "created_at", "updated_at": "updated_at",
            ], optional: ["created_at", "updated_at"])
        let typeDefinitions = TypeDefinitionsTable(
            table: TableName(
                schema: targetSchema, name: try typeNode?.string("table") ?? "contact_phone_type_definitions"),
            tenant: typeColumns["tenant"], id: typeColumns["id"], label: typeColumns["label"],
            normalizedLabel: typeColumns["normalized_label"], createdAt: typeColumns.optional("created_at"),
            updatedAt: typeColumns.optional("updated_at"))
        try typeNode?.rejectUnknownKeys()
        return (phoneNumbers, typeDefinitions)
    }

    /// `phones.accept` (default valid).
    static func acceptance(_ phonesNode: MappingNode) throws -> NumberAcceptance {
        let policy = try phonesNode.string("accept") ?? NumberAcceptance.valid.rawValue
        guard let acceptance = NumberAcceptance(rawValue: policy) else {
            throw phonesNode.child("accept")!.error("must be valid or possible, not '\(policy)'")
        }
        return acceptance
    }

    /// `phones.region_ambiguous` (default reject).
    static func regionAmbiguity(_ phonesNode: MappingNode) throws -> RegionAmbiguity {
        let policy = try phonesNode.string("region_ambiguous") ?? RegionAmbiguity.reject.rawValue
        guard let ambiguity = RegionAmbiguity(rawValue: policy) else {
            throw phonesNode.child("region_ambiguous")!.error("must be reject or load, not '\(policy)'")
        }
        return ambiguity
    }

    /// `phones.extension_without_column`: only for a phone table declared without an extension column.
    static func extensionHandling(
        _ policy: String?, in phonesNode: MappingNode, table: PhoneNumbersTable
    ) throws -> ExtensionHandling {
        guard table.extensionDigits == nil else {
            if policy != nil {
                throw phonesNode.child("extension_without_column")!.error(
                    "applies only when target.phone_numbers.columns.extension is null (the table has no extension column)"
                )
            }
            return .column
        }
        guard let policy else { return .reject }
        guard let handling = ExtensionHandling(rawValue: policy), handling != .column else {
            throw phonesNode.child("extension_without_column")!.error("must be reject or rfc3966, not '\(policy)'")
        }
        return handling
    }

    static func regionLookup(_ node: MappingNode?) throws -> RegionLookup? {
        guard let node else { return nil }
        let joinNode = try node.requiredChild("join")
        let join = try joinNode.stringPairs().map { (source: $0.0, lookup: $0.1) }
        guard !join.isEmpty else { throw joinNode.error("must pair at least one source column with a lookup column") }
        let relation: RegionLookup.Relation
        switch (try node.string("table"), try subqueryText(node, "the join columns and the region")) {
        case (let table?, nil): relation = .table(TableName(schema: try node.string("schema"), name: table))
        case (nil, let query?):
            guard node.child("schema") == nil else { throw node.error("schema goes with table, not with query") }
            relation = .query(query)
        case (_?, _?): throw node.error("names both a table and a query: give one")
        case (nil, nil):
            throw node.error("needs a table (with join and column) or a query (a SELECT with those columns)")
        }
        let lookup = RegionLookup(relation: relation, join: join, column: try node.requiredString("column"))
        try node.rejectUnknownKeys()
        return lookup
    }

    /// `node.query`: the text of a SELECT that runs as a subquery (nil when absent). Its own terminator
    /// would end the subquery: it is dropped. `returning` says what it must return, for the error.
    static func subqueryText(_ node: MappingNode, _ returning: String) throws -> String? {
        guard let query = try node.string("query") else { return nil }
        var text = query.trimmingCharacters(in: .whitespacesAndNewlines)
        while text.hasSuffix(";") { text = String(text.dropLast()).trimmingCharacters(in: .whitespacesAndNewlines) }
        guard !text.isEmpty else { throw node.error("query is empty: give a SELECT returning \(returning)") }
        return text
    }

    static func regionsByTenant(_ node: MappingNode?) throws -> [String: String] {
        guard let node else { return [:] }
        var regions: [String: String] = [:]
        for (tenant, value) in try node.stringPairs() {
            let region = value.uppercased()
            guard PhoneNumberParser.isSupportedRegion(region) else {
                throw node.error("'\(value)' for tenant \(tenant) is not a region libphonenumber knows")
            }
            regions[tenant.lowercased()] = region
        }
        return regions
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

extension PhonesMapping: JobMapping, MappingFileModel {}
