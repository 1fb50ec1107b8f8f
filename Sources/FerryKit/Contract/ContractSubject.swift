/// What a job's contract step drops, and how it judges one row's legacy value: the rest (checks,
/// refusal, the drop under a bounded lock, kept values, rollback) is the same for every job.
public protocol ContractSubject: Sendable {
    var job: String { get }
    var mappingFile: String { get }
    var mappingSHA256: String { get }
    var table: TableName { get }
    var legacyColumns: [String] { get }
    var load: LoadSettings { get }
    /// What one row is ("contact", "project"): the key files' column is `<noun>_key`.
    var rowNoun: String { get }
    /// The source's tenant and key columns, and the alias `rows` gives the source row.
    var tenantColumn: String { get }
    var keyColumn: String { get }
    var rowAlias: String { get }
    /// Rows holding a legacy value, with `ferry_tenant`, `ferry_key` and `ferry_changed` (`changed`: the
    /// row changed since the apply), `joins` added to the source row, `filter` ANDed to the row's
    /// conditions, and `sameTenant` naming the filtered tenant for another table's column (nothing when
    /// all tenants are read). See `legacyRows` and `citusLegacyRows`.
    func rows(changed: String, from joins: String, filter: String, sameTenant: (String) -> String) -> String
    /// (Citus) Where the job's applies record what they read (`LegacyReads`); nil where the job records
    /// no reads: the contract is refused there.
    var citusReads: TableName? { get }
    /// A row's verdict and its legacy values as text.
    func judge(_ row: Row) throws -> (verdict: LegacyValueVerdict, values: String)
}

extension ContractSubject {
    /// The rows judged by xmin. $1 is the last apply's start xid, $2 (when not NULL) keeps only rows
    /// written from that xid on, $3 the xids of ferry's own batches (a row last written by ferry has not
    /// changed its legacy value).
    public var legacyRows: String {
        rows(changed: changedSinceApply(rowAlias), from: "", filter: writtenSince(rowAlias), sameTenant: { _ in "" })
    }

    /// On Citus (a row's xmin is its worker's): the same rows of one tenant ($2, of type `tenantType`,
    /// named so that Citus reads that tenant's shard), with `ferry_changed` judged against what the
    /// job's successful applies (runs $1) read. nil where the job records no reads.
    public func citusLegacyRows(tenantType: String) -> String? {
        guard citusReads != nil else { return nil }
        let citus = LegacyReads.ContractFilter(
            job: job, columns: legacyColumns, alias: rowAlias, tenantColumn: tenantColumn, keyColumn: keyColumn,
            tenantType: tenantType)
        return rows(changed: citus.changed, from: citus.join, filter: citus.filter, sameTenant: citus.sameTenant)
    }
}

/// `xmin` newer than the last apply's start, and not written by one of ferry's batches.
func changedSinceApply(_ alias: String) -> String {
    "(\(alias).xmin::text::bigint >= $1::bigint % 4294967296 AND \(alias).xmin::text::bigint <> ALL ($3::bigint[]))"
}

func writtenSince(_ alias: String) -> String {
    "($2::bigint IS NULL OR \(alias).xmin::text::bigint >= $2::bigint % 4294967296)"
}

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
