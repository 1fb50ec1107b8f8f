import Foundation

/// The phones contract: the mapping's legacy phone columns of contacts.
public struct PhonesContractSubject: ContractSubject {
    public let mapping: PhonesMapping

    public init(mapping: PhonesMapping) {
        self.mapping = mapping
    }

    public var job: String { PhonesJob.name }
    public var mappingFile: String { mapping.file }
    public var mappingSHA256: String { mapping.sha256 }
    public var table: TableName { mapping.source.table }
    public var legacyColumns: [String] { mapping.source.columns.map(\.name) }
    public var load: LoadSettings { mapping.load }
    public var rowNoun: String { "contact" }

    public var tenantColumn: String { mapping.source.tenantColumn }
    public var keyColumn: String { mapping.source.keyColumn }
    public var rowAlias: String { "s" }
    public var citusReads: TableName? { LegacyReads.table(of: job) }

    public func rows(changed: String, from joins: String, filter: String, sameTenant: (String) -> String) -> String {
        let source = mapping.source, phones = mapping.phoneNumbers
        func q(_ name: String) -> String { quoteIdentifier(name) }
        let region = source.regionColumn.map { "s.\(q($0))::text" } ?? "NULL::text"
        // The region as the apply found it: the row's own, else the lookup's (then the tenant map, the default).
        let lookup = PhonesSQL.regionLookup(source) { "s.\(quoteIdentifier($0))" }
        let values = source.columns.map { "s.\(q($0.name))::text" }
        return """
            SELECT s.\(q(source.tenantColumn))::text AS ferry_tenant, s.\(q(source.keyColumn))::text AS ferry_key,
                   \(region) AS region, \(lookup) AS region_lookup,
                   \(values.enumerated().map { "\($1) AS ferry_value_\($0)" }.joined(separator: ", ")),
                   (SELECT array_agg(p.\(q(phones.phoneNumber)) || '#' || \(phones.extensionDigits.map { "coalesce(p.\(q($0)), '')" } ?? "''"))
                    FROM \(phones.table.quoted) p
                    WHERE p.\(q(phones.tenant)) = s.\(q(source.tenantColumn)) AND p.\(q(phones.contactKey)) = s.\(q(source.keyColumn))\(sameTenant("p.\(q(phones.tenant))")))::text AS ferry_existing,
                   \(changed) AS ferry_changed
            FROM \(source.table.quoted) s\(joins)
            WHERE (\(values.map { "coalesce(\($0), '') <> ''" }.joined(separator: " OR "))) AND \(filter)
            ORDER BY 1, 2
            """
    }

    public func judge(_ row: Row) throws -> (verdict: LegacyValueVerdict, values: String) {
        let (region, origin) = try LegacyPhoneContact.region(of: row)
        let contact = LegacyPhoneContact(
            tenant: try row.required("ferry_tenant"), contactKey: try row.required("ferry_key"),
            region: region, regionOrigin: origin,
            values: try mapping.source.columns.indices.map { try row.optional("ferry_value_\($0)") })
        let verdict = mapping.transform.contractVerdict(
            contact, existing: Set(try row.optional("ferry_existing", as: [String].self) ?? []))
        return (verdict, contact.values.map { $0 ?? "" }.joined(separator: " | "))
    }
}
