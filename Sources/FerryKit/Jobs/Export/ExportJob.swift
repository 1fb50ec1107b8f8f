import Foundation

public struct ExportOptions: Sendable {
    public enum Phones: String, CaseIterable, Sendable {
        /// One row per contact, its default phone in the mapping's column for that phone's type.
        case `default`
        /// One row per phone: contact key, number, extension, type, default flag, display order.
        case all
    }

    public var phones = Phones.default
    public var tenant: String?
    public var includeInactive = false
    /// nil or "-" is standard output.
    public var output: String?

    public init() {}
}

public struct ExportSummary: Codable, Sendable {
    public var rows = 0
    public var contactsWithoutEmail = 0
    public var output: String
}

/// `ferry export`: contacts (and their phones) as RFC 4180 CSV in the shape the mapping reads, so the
/// file imports back with no changes. Streams with COPY TO STDOUT: memory does not grow with the table.
public struct ExportJob: Sendable {
    public let mapping: ContactsCSVMapping
    public let conninfo: String

    public init(mapping: ContactsCSVMapping, conninfo: String) {
        self.mapping = mapping
        self.conninfo = conninfo
    }

    public func run(_ options: ExportOptions) throws -> ExportSummary {
        let connection = try PostgresConnection(conninfo: conninfo, applicationName: "ferry export")
        var tenantLiteral: String?
        if let tenant = options.tenant {
            guard let uuid = UUID(uuidString: tenant) else { throw LedgerError("--tenant '\(tenant)' is not a UUID") }
            tenantLiteral = sqlLiteral(uuid.uuidString.lowercased())
        }
        let writer = try CSVWriter(path: options.output, dialect: mapping.dialect)
        var summary = ExportSummary(output: options.output ?? "-")
        let columns = outputColumns(options.phones)
        try writer.writeRow(columns.map(\.header))
        try connection.execute(script: "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        defer { _ = try? connection.execute(script: "ROLLBACK") }
        try connection.copyOut(copyStatement(options, tenant: tenantLiteral)) { line in
            var cells: [String?] = []
            var start = 0
            for index in 0...line.count where index == line.count || line[index] == 0x09 {
                let field = UnsafeRawBufferPointer(rebasing: line[start..<index])
                cells.append(
                    field.elementsEqual([0x5C, 0x4E])
                        ? nil : String(decoding: CopyTextDecoder.field(field), as: UTF8.self))
                start = index + 1
            }
            if cells[columns.firstIndex { $0.role == .email }!] == nil { summary.contactsWithoutEmail += 1 }
            try writer.writeRow(
                zip(columns, cells).map { column, cell in
                    column.role == .text || column.role == .email ? cell.map(FormulaGuard.guarded) : cell
                })
            summary.rows += 1
        }
        try writer.close()
        return summary
    }

    private enum Role { case text, email, exact }

    private struct OutputColumn {
        let header: String
        let role: Role
    }

    private func outputColumns(_ phones: ExportOptions.Phones) -> [OutputColumn] {
        let tenant = OutputColumn(header: mapping.tenantHeaders?.first ?? "tenant", role: .exact)
        let email = OutputColumn(header: mapping.fields[.email]![0], role: .email)
        switch phones {
        case .default:
            let fields = ContactsCSVMapping.Field.allCases.compactMap { field in
                mapping.fields[field].map { OutputColumn(header: $0[0], role: field == .email ? .email : .text) }
            }
            return [tenant] + fields + mapping.phoneColumns.map { OutputColumn(header: $0.headers[0], role: .exact) }
        case .all:
            return [tenant, email]
                + ["phone_number", "extension", "type", "is_default", "display_order"].map {
                    OutputColumn(header: $0, role: .exact)
                }
        }
    }

    private func copyStatement(_ options: ExportOptions, tenant: String?) -> String {
        func q(_ name: String) -> String { quoteIdentifier(name) }
        let c = mapping.contacts, o = mapping.organizations, p = mapping.phoneNumbers, t = mapping.typeDefinitions
        var conditions: [String] = []
        if let tenant { conditions.append("c.\(q(c.tenant)) = \(tenant)") }
        if !options.includeInactive { conditions.append("NOT c.\(q(c.inactive))") }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let phoneJoin = """
            JOIN \(p.table.quoted) p ON p.\(q(p.tenant)) = c.\(q(c.tenant)) AND p.\(q(p.contactKey)) = c.\(q(c.key))
            LEFT JOIN \(t.table.quoted) t ON t.\(q(t.tenant)) = p.\(q(p.tenant)) AND t.\(q(t.id)) = p.\(q(p.customType))
            """
        // "+15551234567 ext. 12": the import reads the extension back the same way.
        let number =
            "p.\(q(p.phoneNumber))" + (p.extensionDigits.map { " || coalesce(' ext. ' || p.\(q($0)), '')" } ?? "")
        switch options.phones {
        case .default:
            let fieldColumns: [ContactsCSVMapping.Field: String] = [
                .fullName: "c.\(q(c.fullName))", .email: "c.\(q(c.email))", .organization: "o.\(q(o.name))",
                .role: "c.\(q(c.role))", .notes: "c.\(q(c.notes))",
            ]
            let fields = ContactsCSVMapping.Field.allCases.filter { mapping.fields[$0] != nil }.map {
                fieldColumns[$0]!
            }
            // The default phone goes to the column for its type, else to the first phone column.
            let types = mapping.phoneColumns.map { $0.type.canonical?.rawValue ?? "" }
            let phoneCells = mapping.phoneColumns.indices.map { index -> String in
                let matches =
                    index == 0
                    ? "(d.kind = \(sqlLiteral(types[0])) OR d.kind IS NULL OR d.kind NOT IN (\(types.map(sqlLiteral).joined(separator: ", "))))"
                    : "d.kind = \(sqlLiteral(types[index]))"
                return "CASE WHEN \(matches) THEN d.number END"
            }
            return """
                COPY (
                    SELECT c.\(q(c.tenant))::text, \((fields + phoneCells).joined(separator: ", "))
                    FROM \(c.table.quoted) c
                    LEFT JOIN \(o.table.quoted) o ON o.\(q(o.tenant)) = c.\(q(c.tenant)) AND o.\(q(o.key)) = c.\(q(c.organization))
                    LEFT JOIN LATERAL (SELECT \(number) AS number, p.\(q(p.canonicalType)) AS kind
                                       FROM \(p.table.quoted) p
                                       WHERE p.\(q(p.tenant)) = c.\(q(c.tenant)) AND p.\(q(p.contactKey)) = c.\(q(c.key)) AND p.\(q(p.isDefault))
                                       LIMIT 1) d ON true
                    \(filter)
                    ORDER BY c.\(q(c.tenant)), lower(c.\(q(c.email))), c.\(q(c.key))
                ) TO STDOUT
                """
        case .all:
            return """
                COPY (
                    SELECT c.\(q(c.tenant))::text, c.\(q(c.email)), p.\(q(p.phoneNumber)), \(p.extensionDigits.map { "p." + q($0) } ?? "NULL::text"),
                           coalesce(p.\(q(p.canonicalType)), t.\(q(t.label))), p.\(q(p.isDefault))::text, p.\(q(p.displayOrder))::text
                    FROM \(c.table.quoted) c
                    \(phoneJoin)
                    \(filter)
                    ORDER BY c.\(q(c.tenant)), lower(c.\(q(c.email))), c.\(q(c.key)), p.\(q(p.displayOrder))
                ) TO STDOUT
                """
        }
    }
}

extension ExportJob: FileExportJob {
    public func exportFile(_ options: ExportOptions) throws -> String {
        let summary = try run(options)
        let without =
            summary.contactsWithoutEmail > 0
            ? "; \(formatCount(summary.contactsWithoutEmail)) without an email (they cannot be imported back)" : ""
        return "exported \(formatCount(summary.rows)) rows to \(summary.output)\(without)"
    }
}
