import Foundation
import Glibc
import Yams

/// A mapping-file problem, named by file and line so a DBA can find it.
public struct MappingError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int?
    public let message: String

    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}

/// A YAML mapping node that knows where it came from and which of its keys were read,
/// so that a misspelt key is an error instead of a silently ignored setting.
final class MappingNode {
    let file: String
    let path: String
    private let node: Node
    private var readKeys = Set<String>()

    init(file: String, text: String) throws {
        self.file = file
        self.path = ""
        do {
            guard let root = try Yams.compose(yaml: text) else {
                throw MappingError(file: file, line: nil, message: "the mapping file is empty")
            }
            self.node = root
        } catch let error as MappingError {
            throw error
        } catch let error as YamlError {
            throw Self.mappingError(error, file: file)
        } catch {
            throw MappingError(file: file, line: nil, message: "not valid YAML: \(error)")
        }
        guard node.mapping != nil else { throw self.error("the top level must be a mapping of keys") }
    }

    /// Yams's error with its line taken out of its text, where it has one.
    private static func mappingError(_ error: YamlError, file: String) -> MappingError {
        switch error {
        case .duplicatedKeysInMapping(let duplicates, let context):
            return MappingError(
                file: file, line: context.mark.line,
                message:
                    "duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in the mapping that starts here"
            )
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return MappingError(
                file: file, line: mark.line, message: "not valid YAML: \(problem) (column \(mark.column))")
        default:
            return MappingError(file: file, line: nil, message: "not valid YAML: \(error)")
        }
    }

    /// A scalar's text; a NUL (a YAML "\0" escape) would reach PostgreSQL inside a name.
    private func text(of scalar: Node, at owner: MappingNode) throws -> String? {
        guard let text = scalar.scalar?.string else { return nil }
        if text.utf8.contains(0) { throw owner.error("must not contain a NUL character") }
        return text
    }

    private init(file: String, path: String, node: Node) {
        self.file = file
        self.path = path
        self.node = node
    }

    var line: Int? { node.mark.map { $0.line } }

    func error(_ message: String) -> MappingError {
        MappingError(file: file, line: line, message: path.isEmpty ? message : "\(path): \(message)")
    }

    func child(_ key: String) -> MappingNode? {
        readKeys.insert(key)
        guard let value = node.mapping?[Node(key)], value != Node("~"), value.null == nil else { return nil }
        return MappingNode(file: file, path: path.isEmpty ? key : "\(path).\(key)", node: value)
    }

    func requiredChild(_ key: String) throws -> MappingNode {
        guard let value = child(key) else { throw error("missing required key '\(key)'") }
        return value
    }

    func string(_ key: String) throws -> String? {
        guard let value = child(key) else { return nil }
        guard let scalar = try text(of: value.node, at: value) else { throw value.error("must be a single value") }
        return scalar
    }

    func requiredString(_ key: String) throws -> String {
        guard let value = try string(key), !value.isEmpty else { throw error("missing required key '\(key)'") }
        return value
    }

    func int(_ key: String) throws -> Int? {
        guard let text = try string(key) else { return nil }
        guard let value = Int(text), value > 0 else {
            throw child(key)!.error("must be a positive whole number, not '\(text)'")
        }
        return value
    }

    var sequence: [MappingNode]? {
        node.sequence.map { items in
            items.enumerated().map { MappingNode(file: file, path: "\(path)[\($0.offset)]", node: $0.element) }
        }
    }

    /// A single string or a list of strings (`Mobile` or `[Mobile, Cell]`).
    func strings(_ key: String) throws -> [String]? {
        guard let value = child(key) else { return nil }
        if let scalar = try text(of: value.node, at: value) { return [scalar] }
        guard let items = value.node.sequence else { throw value.error("must be a name or a list of names") }
        return try items.map { item in
            guard let text = try text(of: item, at: value) else { throw value.error("must be a list of plain names") }
            return text
        }
    }

    func bool(_ key: String) throws -> Bool? {
        guard let text = try string(key) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw child(key)!.error("must be true or false, not '\(text)'")
        }
    }

    /// A mapping of names to names or to null (`extension: null`: the table has no such column).
    func optionalStringPairs() throws -> [(String, String?)] {
        guard let mapping = node.mapping else { throw error("must be a mapping of names") }
        return try mapping.map { key, value in
            guard let keyText = try text(of: key, at: self) else {
                throw error("entries must be plain 'name: value' pairs")
            }
            if value.null != nil || value == Node("~") { return (keyText, nil) }
            guard let valueText = try text(of: value, at: self) else {
                throw error("entries must be plain 'name: value' pairs")
            }
            return (keyText, valueText)
        }
    }

    /// A mapping of plain strings, e.g. a column-name table or a label dictionary.
    func stringPairs() throws -> [(String, String)] {
        guard let mapping = node.mapping else { throw error("must be a mapping of names") }
        return try mapping.map { key, value in
            guard let keyText = try text(of: key, at: self), let valueText = try text(of: value, at: self) else {
                throw error("entries must be plain 'name: value' pairs")
            }
            return (keyText, valueText)
        }
    }

    /// Fails on keys that no reader asked for.
    func rejectUnknownKeys() throws {
        guard let mapping = node.mapping else { return }
        for (key, _) in mapping {
            guard let name = key.string else { continue }
            if !readKeys.contains(name) {
                let known = readKeys.sorted().joined(separator: ", ")
                throw MappingError(
                    file: file, line: key.mark?.line,
                    message: "unknown key '\(path.isEmpty ? name : "\(path).\(name)")' (known here: \(known))")
            }
        }
    }
}

/// A job's mapping type, built from a mapping file's text.
public protocol MappingFileModel {
    init(file: String, text: String, sha256: String?) throws
}

extension MappingFileModel {
    /// Reads the file (UTF-8 checked; the SHA-256 of its bytes kept) and builds the mapping.
    public static func load(path: String) throws -> Self {
        let (text, sha256) = try readMappingFile(path)
        return try Self(file: path, text: text, sha256: sha256)
    }
}

extension MappingNode {
    /// How every job's mapping begins: the YAML root of its text, `job:` checked against the jobs this
    /// kind of mapping serves, `description:` (free text) read, and the text's SHA-256 when the caller
    /// did not hash the file's bytes.
    static func openMapping(
        file: String, text: String, sha256: String?, jobs: [String], kind: String
    ) throws -> (root: MappingNode, job: String, sha256: String) {
        let root = try MappingNode(file: file, text: text)
        let job = try root.requiredString("job")
        guard jobs.contains(job) else {
            let names = jobs.map { "'\($0)'" }.joined(separator: " or ")
            throw root.error("job must be \(names) in a \(kind) mapping, not '\(job)'")
        }
        _ = try root.string("description")
        return (root, job, sha256 ?? SHA256.hash(data: Data(text.utf8)).hexString)
    }
}

/// A mapping file's text and the sha256 of its bytes (plans and runs record which mapping they used).
func readMappingFile(_ path: String) throws -> (text: String, sha256: String) {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw MappingError(file: path, line: nil, message: "cannot read the mapping file: \(fileErrorReason(path))")
    }
    if let invalid = firstInvalidUTF8(data) {
        throw MappingError(
            file: path, line: invalid.line,
            message:
                "the mapping file is not UTF-8: byte 0x\(String(format: "%02X", invalid.byte)) at offset \(invalid.offset) (column \(invalid.column))"
        )
    }
    if let nul = data.firstIndex(of: 0) {
        let line = data[..<nul].filter { $0 == 0x0A }.count + 1
        throw MappingError(
            file: path, line: line, message: "the mapping file holds a NUL byte at offset \(nul - data.startIndex)")
    }
    return (String(decoding: data, as: UTF8.self), SHA256.hash(data: data).hexString)
}

/// Why a file cannot be read, in the system's words ("No such file or directory").
func fileErrorReason(_ path: String) -> String {
    let descriptor = open(path, O_RDONLY)
    if descriptor >= 0 {
        defer { close(descriptor) }
        var info = stat()
        if fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFDIR { return "it is a directory" }
        return "it could not be read"
    }
    return String(cString: strerror(errno))
}

/// Where the first byte that is not UTF-8 stands: its offset, line and column (both from 1).
func firstInvalidUTF8(_ data: Data) -> (offset: Int, line: Int, column: Int, byte: UInt8)? {
    let bytes = [UInt8](data)
    var parser = Unicode.UTF8.ForwardParser()
    var iterator = bytes.makeIterator()
    var offset = 0, line = 1, lineStart = 0
    while true {
        switch parser.parseScalar(from: &iterator) {
        case .valid(let scalar):
            if scalar.count == 1, scalar.first == 0x0A { line += 1; lineStart = offset + 1 }
            offset += scalar.count
        case .error:
            return (offset, line, offset - lineStart + 1, bytes[offset])
        case .emptyInput:
            return nil
        }
    }
}

/// The `job:` a mapping file declares, so a command can load it with the right model.
public func mappingJob(path: String) throws -> String {
    try MappingNode(file: path, text: try readMappingFile(path).text).requiredString("job")
}

/// A table named in a mapping file, always quoted when it reaches SQL.
public struct TableName: Equatable, Sendable, CustomStringConvertible {
    public let schema: String?
    public let name: String

    public init(schema: String?, name: String) {
        self.schema = schema
        self.name = name
    }

    public var quoted: String {
        if let schema { return quoteIdentifier(schema) + "." + quoteIdentifier(name) }
        return quoteIdentifier(name)
    }

    /// For regclass lookups and messages.
    public var description: String { schema.map { "\($0).\(name)" } ?? name }
}

/// How every writing job loads: rows per batch (one transaction each) and the timeouts of each batch.
public struct LoadSettings: Sendable {
    public let batchSize: Int
    public let lockTimeout: DurationSetting
    public let statementTimeout: DurationSetting

    init(batchSize: Int, lockTimeout: DurationSetting, statementTimeout: DurationSetting) {
        self.batchSize = batchSize
        self.lockTimeout = lockTimeout
        self.statementTimeout = statementTimeout
    }

    /// The mapping's `load:` section; what it leaves out is 5,000 rows, lock_timeout 2s, statement_timeout 5min.
    init(_ root: MappingNode) throws {
        let loadNode = root.child("load")
        func duration(_ key: String, _ fallback: String) throws -> DurationSetting {
            let text = try loadNode?.string(key) ?? fallback
            guard let value = DurationSetting(text) else {
                throw (loadNode?.child(key) ?? root).error("'\(text)' is not a duration such as 500ms, 2s or 5min")
            }
            return value
        }
        batchSize = try loadNode?.int("batch_size") ?? 5000
        lockTimeout = try duration("lock_timeout", "2s")
        statementTimeout = try duration("statement_timeout", "5min")
        try loadNode?.rejectUnknownKeys()
    }
}

/// Where reports find a tenant's name (`report: tenant_names: {table, key, name}`), so a reviewer reads
/// "Acme" instead of a UUID.
public struct TenantNameSource: Sendable {
    public let table: TableName
    public let key: String
    public let name: String
}

/// The mapping's `report:` section.
public struct ReportSettings: Sendable {
    public let tenantNames: TenantNameSource?

    init(_ root: MappingNode) throws {
        let reportNode = root.child("report")
        if let names = reportNode?.child("tenant_names") {
            tenantNames = TenantNameSource(
                table: TableName(schema: try names.string("schema"), name: try names.requiredString("table")),
                key: try names.requiredString("key"), name: try names.requiredString("name"))
            try names.rejectUnknownKeys()
        } else {
            tenantNames = nil
        }
        try reportNode?.rejectUnknownKeys()
    }
}

/// A PostgreSQL duration setting such as "2s", "500ms" or "5min", checked before it is sent.
public struct DurationSetting: Equatable, Sendable {
    public let text: String

    /// The duration in seconds, for ferry's own pauses (a bare number counts as seconds here; ferry
    /// passes timeouts to PostgreSQL as their text, where a bare number is milliseconds).
    public var seconds: Double {
        let value = Double(text.prefix(while: \.isNumber)) ?? 0
        switch text.drop(while: \.isNumber) {
        case "ms": return value / 1000
        case "min": return value * 60
        case "h": return value * 3600
        default: return value
        }
    }

    /// Seconds as the shortest exact setting: 0.2 → "200ms", 5 → "5s".
    public static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value))s" : "\(Int((value * 1000).rounded()))ms"
    }

    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix(while: \.isNumber)
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)
        guard !digits.isEmpty, ["", "ms", "s", "min", "h"].contains(unit) else { return nil }
        self.text = digits + unit
    }
}
