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
    /// Rows holding a legacy value: tenant and key first, `changedSinceApply` last. $1 is the last apply's
    /// start xid, $2 (when not NULL) keeps only rows written from that xid on, $3 the xids of ferry's own
    /// batches (a row last written by ferry has not changed its legacy value).
    var legacyRows: String { get }
    /// A row's verdict and its legacy values as text.
    func judge(_ row: [String?]) -> (verdict: LegacyValueVerdict, values: String)
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

    public var legacyRows: String {
        let source = mapping.source, phones = mapping.phoneNumbers
        func q(_ name: String) -> String { quoteIdentifier(name) }
        let region = source.regionColumn.map { "s.\(q($0))::text" } ?? "NULL::text"
        let values = source.columns.map { "s.\(q($0.name))::text" }
        return """
            SELECT s.\(q(source.tenantColumn))::text, s.\(q(source.keyColumn))::text, \(region), \(values.joined(separator: ", ")),
                   (SELECT array_agg(p.\(q(phones.phoneNumber)) || '#' || \(phones.extensionDigits.map { "coalesce(p.\(q($0)), '')" } ?? "''"))
                    FROM \(phones.table.quoted) p
                    WHERE p.\(q(phones.tenant)) = s.\(q(source.tenantColumn)) AND p.\(q(phones.contactKey)) = s.\(q(source.keyColumn)))::text,
                   \(changedSinceApply("s"))
            FROM \(source.table.quoted) s
            WHERE (\(values.map { "coalesce(\($0), '') <> ''" }.joined(separator: " OR "))) AND \(writtenSince("s"))
            ORDER BY 1, 2
            """
    }

    public func judge(_ row: [String?]) -> (verdict: LegacyValueVerdict, values: String) {
        let count = mapping.source.columns.count
        let contact = LegacyPhoneContact(
            tenant: row[0] ?? "", contactKey: row[1] ?? "", region: row[2], values: Array(row[3..<(3 + count)]))
        let verdict = mapping.transform.contractVerdict(
            contact, existing: Set(row[3 + count].map(parseTextArray) ?? []))
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

    public var legacyRows: String {
        let p = mapping.projects, c = mapping.contacts, cp = mapping.contactPoints
        func q(_ name: String) -> String { quoteIdentifier(name) }
        return """
            SELECT x.\(q(p.tenant))::text, x.\(q(p.key))::text, x.\(q(p.customer))::text, x.\(q(p.customerOrganization))::text,
                   k.\(q(c.fullName))::text, k.\(q(c.contactType))::text, k.\(q(c.email))::text, k.\(q(c.organization))::text, k.\(q(c.role))::text,
                   EXISTS (SELECT 1 FROM \(cp.table.quoted) t WHERE t.\(q(cp.tenant)) = x.\(q(p.tenant))
                           AND t.\(q(cp.project)) = x.\(q(p.key)) AND t.\(q(cp.contact)) = x.\(q(p.customer))),
                   \(changedSinceApply("x"))
            FROM \(p.table.quoted) x
            LEFT JOIN \(c.table.quoted) k ON k.\(q(c.tenant)) = x.\(q(p.tenant)) AND k.\(q(c.key)) = x.\(q(p.customer))
            WHERE x.\(q(p.customer)) IS NOT NULL AND \(writtenSince("x"))
            ORDER BY 1, 2
            """
    }

    public func judge(_ row: [String?]) -> (verdict: LegacyValueVerdict, values: String) {
        let project = LegacyProjectCustomer(
            tenant: row[0] ?? "", projectKey: row[1] ?? "", contactKey: row[2] ?? "", customerOrganization: row[3],
            contactName: row[4] ?? "", contactType: row[5], email: row[6], organization: row[7],
            roleText: row[8], hasContactPoint: row[9] == "t")
        let values = "customer_id \(project.contactKey) (\(project.contactName))"
        if project.customerOrganization != nil, project.hasContactPoint { return (.migrated, values) }
        switch CustomerTransform(mapping: mapping).decide(project).action {
        case .rejected(let reason): return (.rejected(reason: reason), values)
        case .alreadyLinked, .link:
            return (.notMigrated(reason: "not linked yet: run `ferry apply \(mapping.file)`"), values)
        }
    }
}
