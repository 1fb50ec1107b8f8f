import Foundation

/// The file cannot be imported at all (bad header, unknown tenant flag…): nothing was written.
public struct ImportFileError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int?
    public let reason: String
    public var description: String { line.map { "\(file):\($0): \(reason)" } ?? "\(file): \(reason)" }
}

/// Which column of this file feeds which field, found by the mapping's header aliases.
public struct ImportHeader: Sendable {
    public typealias Field = ContactsCSVMapping.Field
    public let line: Int
    public let names: [String]
    public let fieldIndex: [Field: Int]
    public let tenantIndex: Int?
    public let regionIndex: Int?
    /// Per mapping phone column, the file's column (nil when the file has none of its headers).
    public let phoneIndexes: [Int?]
    /// Columns no alias matched: reported, never guessed at.
    public let ignored: [String]

    /// Aliases match with case and spacing ignored: "E-Mail Address" ≠ "email", "Office  phone" = "office phone".
    static func normalized(_ header: String) -> String {
        header.unicodeScalars.filter { !$0.properties.isWhitespace && $0 != "\u{FEFF}" }.map(String.init).joined()
            .lowercased()
    }

    public static func resolve(
        _ record: CSVRecord, encoding: TextEncoding, mapping: ContactsCSVMapping, file: String,
        tenantFromFlag: Bool
    ) throws(ImportFileError) -> ImportHeader {
        var names: [String] = []
        for index in 0..<record.count {
            do {
                names.append(try FieldText.decode(record[index], as: encoding))
            } catch {
                throw ImportFileError(
                    file: file, line: record.line, reason: "header column \(index + 1): \(error.reason)")
            }
        }
        var positions: [String: Int] = [:]
        for (index, name) in names.enumerated() {
            let key = normalized(name)
            if key.isEmpty { continue }
            if let first = positions[key] {
                throw ImportFileError(
                    file: file, line: record.line,
                    reason:
                        "header '\(name)' appears twice (columns \(first + 1) and \(index + 1)); ferry will not guess which one to use"
                )
            }
            positions[key] = index
        }
        var used = Set<Int>()
        func find(_ aliases: [String], _ what: String) throws(ImportFileError) -> Int? {
            let hits = aliases.compactMap { positions[normalized($0)] }
            let unique = Set(hits)
            if unique.count > 1 {
                let columns = unique.sorted().map { "'\(names[$0])'" }.joined(separator: " and ")
                throw ImportFileError(
                    file: file, line: record.line, reason: "\(what): both \(columns) match its aliases; keep one")
            }
            if let hit = unique.first { used.insert(hit) }
            return unique.first
        }
        var fieldIndex: [Field: Int] = [:]
        var missing: [String] = []
        for field in Field.allCases {
            guard let aliases = mapping.fields[field] else { continue }
            if let index = try find(aliases, field.rawValue) {
                fieldIndex[field] = index
            } else if ContactsCSVMapping.requiredFields.contains(field) {
                missing.append("\(field.rawValue) (one of: \(aliases.joined(separator: ", ")))")
            }
        }
        var tenantIndex: Int?
        if let aliases = mapping.tenantHeaders {
            tenantIndex = try find(aliases, "tenant")
            if tenantIndex == nil, !tenantFromFlag {
                missing.append("tenant (one of: \(aliases.joined(separator: ", ")); or pass --tenant)")
            }
        } else if !tenantFromFlag {
            throw ImportFileError(file: file, line: nil, reason: "the mapping has no tenant header: pass --tenant")
        }
        if !missing.isEmpty {
            throw ImportFileError(
                file: file, line: record.line,
                reason:
                    "missing required header\(missing.count == 1 ? "" : "s"): \(missing.joined(separator: "; ")); the file has: \(names.map { "'\($0)'" }.joined(separator: ", "))"
            )
        }
        let regionIndex = try mapping.regionHeaders.flatMap { (aliases) throws(ImportFileError) in
            try find(aliases, "phone region")
        }
        var phoneIndexes: [Int?] = []
        for column in mapping.phoneColumns {
            phoneIndexes.append(try find(column.headers, "phone column \(column.headers[0])"))
        }
        let ignored = names.indices.filter { !used.contains($0) }.map { names[$0] }
        return ImportHeader(
            line: record.line, names: names, fieldIndex: fieldIndex, tenantIndex: tenantIndex,
            regionIndex: regionIndex, phoneIndexes: phoneIndexes, ignored: ignored)
    }
}

/// A row of the file as ferry will load it.
public struct ImportedContact: Equatable, Sendable {
    public let line: Int
    public let tenant: String
    /// The canonical email: trimmed, lower-case (for messages and reports).
    public let email: String
    /// The email trimmed, as the file writes it: the database lowercases it with its own lower(), the
    /// function of its index on the contacts' emails, so that both sides of every comparison agree
    /// whatever the database's character type (Swift's lowercasing and PostgreSQL's differ: 'İ',
    /// or any non-ASCII capital under LC_CTYPE C). With the tenant, the key that finds the contact.
    public let emailAsWritten: String
    public let fullName: String
    /// Absent (empty in the file) means "leave as it is": an import never erases a value.
    public let organization: String?
    public let role: String?
    public let notes: String?
    public let phones: PhoneContactOutcome
}

public enum ImportRowOutcome: Equatable, Sendable {
    case contact(ImportedContact)
    case rejected(line: Int, reason: String)
    /// The row belongs to a tenant `--tenant` did not select: skipped, and counted as such.
    case otherTenant(line: Int, tenant: String)

    public var line: Int {
        switch self {
        case .contact(let contact): return contact.line
        case .rejected(let line, _), .otherTenant(let line, _): return line
        }
    }
}

/// One CSV record → a contact to upsert, or the reason the row is rejected. Pure: no database.
public struct ContactImportTransform: Sendable {
    public let header: ImportHeader
    public let encoding: TextEncoding
    /// `--tenant`, lower-case: with a tenant column, the tenants whose rows are imported (the others are
    /// skipped); without one, or for an empty cell, the one tenant every row goes to.
    public let selectedTenants: [String]
    public let phones: PhoneTransform

    public init(header: ImportHeader, encoding: TextEncoding, selectedTenants: [String], mapping: ContactsCSVMapping) {
        self.header = header
        self.encoding = encoding
        self.selectedTenants = selectedTenants.map { $0.lowercased() }
        let columns = zip(mapping.phoneColumns, header.phoneIndexes).map { column, index in
            PhoneSourceColumn(name: index.map { header.names[$0] } ?? column.headers[0], type: column.type)
        }
        phones = PhoneTransform(
            columns: columns, defaultRegion: mapping.defaultRegion, labels: mapping.labels,
            extensions: mapping.extensions, regionAmbiguity: mapping.regionAmbiguity, acceptance: mapping.acceptance)
    }

    public func transform(_ record: CSVRecord) -> ImportRowOutcome {
        let line = record.line
        func reject(_ reason: String) -> ImportRowOutcome { .rejected(line: line, reason: reason) }
        if let oversized = record.oversized {
            return reject(
                "record too large: \(oversized); its fields were not kept (limits: the mapping's file.max_fields and file.max_record_bytes)"
            )
        }
        guard record.count == header.names.count else {
            return reject(
                "wrong number of fields: has \(record.count) field\(record.count == 1 ? "" : "s"), the header has \(header.names.count)"
            )
        }
        var text: [String] = []
        text.reserveCapacity(record.count)
        for index in 0..<record.count {
            do {
                text.append(try FieldText.decode(record[index], as: encoding))
            } catch {
                return reject("invalid text: column '\(header.names[index])' \(error.reason)")
            }
        }
        // Free text exported by ferry carries the formula guard's ' : it comes off again here.
        func value(_ field: ImportHeader.Field) -> String? {
            header.fieldIndex[field].map { FormulaGuard.unguarded(text[$0]) }.flatMap { $0.isEmpty ? nil : $0 }
        }

        let onlyTenant = selectedTenants.count == 1 ? selectedTenants[0] : ""
        var tenant = header.tenantIndex.map { text[$0].trimmingWhitespace() } ?? onlyTenant
        if tenant.isEmpty { tenant = onlyTenant }
        guard let canonical = canonicalUUID(tenant) else {
            return reject(
                tenant.isEmpty
                    ? "invalid tenant: tenant is empty"
                        + (selectedTenants.count > 1 ? " (several --tenant given, so none is assumed)" : "")
                    : "invalid tenant: '\(tenant)' is not a UUID")
        }
        tenant = canonical
        if !selectedTenants.isEmpty, !selectedTenants.contains(tenant) {
            return .otherTenant(line: line, tenant: tenant)
        }

        let email: String
        let given = value(.email) ?? ""
        switch EmailAddress.canonical(given) {
        case .success(let canonical): email = canonical
        case .failure(let rejection):
            return reject("invalid email: " + rejection.reason + (value(.email).map { ": '\($0)'" } ?? ""))
        }
        guard let fullName = value(.fullName), !fullName.trimmingWhitespace().isEmpty else {
            return reject("missing full_name: full_name is empty")
        }

        let region = header.regionIndex.map { text[$0] }
        let phoneValues = header.phoneIndexes.map { index in index.map { text[$0] } }
        let outcome = phones.transform(
            LegacyPhoneContact(tenant: tenant, contactKey: email, region: region, values: phoneValues))
        // A value that is not a phone would be lost if the contact loaded without it: the row goes back whole.
        // "n/a", "-", "keine" hold no number: the contact loads without a phone from that cell.
        if let bad = outcome.anomalies.first(where: {
            ($0.kind == .rejected || $0.kind == .fragmentRejected) && $0.rejectionReason != .emptyToken
        }) {
            return reject("invalid phone: column '\(bad.column)': '\(bad.raw)' is not a phone number (\(bad.detail))")
        }
        return .contact(
            ImportedContact(
                line: line, tenant: tenant, email: email, emailAsWritten: given.trimmingWhitespace(),
                fullName: fullName,
                organization: value(.organization), role: value(.role), notes: value(.notes),
                phones: outcome))
    }
}

/// A UUID in its 36-character form, lower-case; nil for anything else (PostgreSQL's uuid reads more
/// forms, but a file's tenant column is written this way). Read byte by byte: Foundation's parser goes
/// through sscanf on every line of a file (and reads " " + 35 characters as another UUID).
func canonicalUUID(_ text: String) -> String? {
    var bytes = Array(text.utf8)
    guard bytes.count == 36 else { return nil }
    for (index, byte) in bytes.enumerated() {
        switch index {
        case 8, 13, 18, 23:
            guard byte == UInt8(ascii: "-") else { return nil }
        default:
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"): break
            case UInt8(ascii: "A")...UInt8(ascii: "F"): bytes[index] = byte | 0x20
            default: return nil
            }
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
