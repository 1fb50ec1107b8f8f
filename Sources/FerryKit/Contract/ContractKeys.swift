import Foundation

/// A row as the contract step names it: tenant and key (a contact for phones, a project for customers).
public struct RowKey: Hashable, Comparable, Codable, Sendable, CustomStringConvertible {
    public let tenant: String
    public let key: String

    public init(tenant: String, key: String) {
        self.tenant = tenant
        self.key = key
    }

    public var description: String { "\(tenant)/\(key)" }

    public static func < (lhs: RowKey, rhs: RowKey) -> Bool { (lhs.tenant, lhs.key) < (rhs.tenant, rhs.key) }
}

/// A row whose legacy values are not (all) in the new model.
public struct UnmigratedValue: Codable, Equatable, Sendable {
    public let row: RowKey
    public let values: String
    public let reason: String
    /// Written since the last successful apply (and not by ferry): the apply never saw this value.
    public let changedSinceApply: Bool
}

/// The CSV files of the contract step: the list of unmigrated rows ferry writes, and the same shape read
/// back from `--accept-rejected`, where a DBA names exactly the rows whose legacy values may be lost.
/// `keyColumn` is the job's: contact_key (phones) or project_key (customers).
public enum ContractKeyFile {
    static func write(_ values: [UnmigratedValue], to path: String, keyColumn: String) throws {
        let writer = try CSVWriter(path: path)
        try writer.writeRow(["tenant", keyColumn, "reason", "legacy_values", "changed_since_apply"])
        for value in values {
            try writer.writeRow([
                value.row.tenant, value.row.key, value.reason, value.values, value.changedSinceApply ? "yes" : "no",
            ])
        }
        try writer.close()
    }

    /// Reads the rows a file names: a header with `tenant` and `keyColumn` columns (others ignored).
    static func read(_ path: String, keyColumn: String) throws -> Set<RowKey> {
        let reader = try CSVReader(path: path)
        var columns: (tenant: Int, key: Int)?
        var keys = Set<RowKey>()
        while let item = try reader.next() {
            guard case .record(let record) = item else { continue }
            let fields = try (0..<record.count).map { index in
                do { return try FieldText.decode(record[index], as: .utf8) } catch {
                    throw ContractFileError(
                        file: path, line: record.line, reason: "field \(index + 1) is not UTF-8 text")
                }
            }
            guard let known = columns else {
                let names = fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                guard let tenant = names.firstIndex(of: "tenant"), let key = names.firstIndex(of: keyColumn) else {
                    throw ContractFileError(
                        file: path, line: record.line,
                        reason:
                            "the header must name a tenant and a \(keyColumn) column (as the file `ferry contract` writes does)"
                    )
                }
                columns = (tenant, key)
                continue
            }
            guard fields.count > max(known.tenant, known.key) else {
                throw ContractFileError(
                    file: path, line: record.line,
                    reason: "the row has \(fields.count) fields; tenant and \(keyColumn) are missing")
            }
            keys.insert(RowKey(tenant: fields[known.tenant], key: fields[known.key]))
        }
        guard columns != nil else {
            throw ContractFileError(file: path, line: nil, reason: "the file is empty: no header row")
        }
        return keys
    }
}

public struct ContractFileError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int?
    public let reason: String
    public var description: String { line.map { "\(file):\($0): \(reason)" } ?? "\(file): \(reason)" }
}
