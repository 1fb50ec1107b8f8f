import Foundation

/// A contact as the contract step names it: tenant and key.
public struct ContactRef: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public let tenant: String
    public let contactKey: String

    public var description: String { "\(tenant)/\(contactKey)" }

    public static func < (lhs: ContactRef, rhs: ContactRef) -> Bool {
        (lhs.tenant, lhs.contactKey) < (rhs.tenant, rhs.contactKey)
    }
}

/// A contact whose legacy values are not (all) in the phone rows.
public struct UnmigratedValue: Codable, Equatable, Sendable {
    public let contact: ContactRef
    public let values: String
    public let reason: String
    /// Written since the last successful apply: the apply never saw this value.
    public let changedSinceApply: Bool
}

/// The CSV files of the contract step: the list of unmigrated contacts ferry writes, and the same shape
/// read back from `--accept-rejected`, where a DBA names exactly the contacts whose values may be lost.
public enum ContractKeyFile {
    static let header = ["tenant", "contact_key", "reason", "legacy_values", "changed_since_apply"]

    static func write(_ values: [UnmigratedValue], to path: String) throws {
        let writer = try CSVWriter(path: path)
        try writer.writeRow(header)
        for value in values {
            try writer.writeRow([value.contact.tenant, value.contact.contactKey, value.reason, value.values,
                                 value.changedSinceApply ? "yes" : "no"])
        }
        try writer.close()
    }

    /// Reads the contacts a file names: a header with `tenant` and `contact_key` columns (others ignored).
    static func read(_ path: String) throws -> Set<ContactRef> {
        let reader = try CSVReader(path: path)
        var columns: (tenant: Int, key: Int)?
        var refs = Set<ContactRef>()
        while let item = try reader.next() {
            guard case .record(let record) = item else { continue }
            let fields = try (0..<record.count).map { index in
                do { return try FieldText.decode(record[index], as: .utf8) } catch {
                    throw ContractFileError(file: path, line: record.line, reason: "field \(index + 1) is not UTF-8 text")
                }
            }
            guard let known = columns else {
                let names = fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                guard let tenant = names.firstIndex(of: "tenant"), let key = names.firstIndex(of: "contact_key") else {
                    throw ContractFileError(file: path, line: record.line,
                                            reason: "the header must name a tenant and a contact_key column (as the file `ferry contract` writes does)")
                }
                columns = (tenant, key)
                continue
            }
            guard fields.count > max(known.tenant, known.key) else {
                throw ContractFileError(file: path, line: record.line, reason: "the row has \(fields.count) fields; tenant and contact_key are missing")
            }
            refs.insert(ContactRef(tenant: fields[known.tenant], contactKey: fields[known.key]))
        }
        guard columns != nil else { throw ContractFileError(file: path, line: nil, reason: "the file is empty: no header row") }
        return refs
    }
}

public struct ContractFileError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int?
    public let reason: String
    public var description: String { line.map { "\(file):\($0): \(reason)" } ?? "\(file): \(reason)" }
}
