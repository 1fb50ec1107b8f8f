import Foundation

/// A problem found before any row is touched: missing tables, columns, or a schema step not applied.
public struct PreflightError: Error, CustomStringConvertible, Sendable {
    public let problems: [String]
    public var description: String {
        "ferry cannot start:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}

/// The phones backfill: extract legacy contacts → transform phones → a sink.
/// `plan` and `apply` share everything up to the sink.
public struct PhonesJob {
    public let mapping: PhonesMapping
    public let conninfo: String
    public var showProgress = true

    public init(mapping: PhonesMapping, conninfo: String) {
        self.mapping = mapping
        self.conninfo = conninfo
    }

    /// The schema steps of this job, typed after the live source table.
    public func schemaSteps(using connection: PostgresConnection) throws -> [SchemaStep] {
        let types = try keyTypes(connection)
        return PhonesSchema.steps(for: mapping, tenantType: types.tenant, keyType: types.key)
    }

    /// Reads and transforms everything in one READ ONLY snapshot, writes nothing.
    public func plan() throws -> PhonesSummary {
        let reader = try PostgresConnection(conninfo: conninfo, applicationName: "ferry plan phones")
        try reader.execute(script: "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        defer { _ = try? reader.execute(script: "ROLLBACK") }
        return try run(mode: .plan, reader: reader) { _ in nil }
    }

    /// Writes the phone rows, one transaction per batch.
    public func apply() throws -> PhonesSummary {
        let reader = try PostgresConnection(conninfo: conninfo, applicationName: "ferry apply phones (read)")
        let writer = try PostgresConnection(conninfo: conninfo, applicationName: "ferry apply phones")
        let types = try keyTypes(reader)
        let loader = try PhonesLoader(connection: writer, sql: PhonesSQL(mapping: mapping), mapping: mapping,
                                      tenantType: types.tenant, keyType: types.key)
        var applied = PhonesSummary.Applied()
        var summary = try run(mode: .apply, reader: reader) { batch in
            let result = try loader.load(batch)
            applied.rowsInserted += result.rowsInserted
            applied.contactsInserted += result.contactsInserted
            applied.customTypesCreated += result.customTypesCreated
            applied.batchesCommitted += 1
            let contactsStaged = batch.outcomes.filter { !$0.rows.isEmpty }.count
            applied.contactsSkippedAtLoad += contactsStaged - result.contactsInserted
            return applied
        }
        summary.applied = applied
        return summary
    }

    // MARK: The shared run

    private func run(mode: PhonesSummary.Mode, reader: PostgresConnection,
                     sink: (PhonesBatch) throws -> PhonesSummary.Applied?) throws -> PhonesSummary {
        let started = Date()
        try preflight(reader)
        let sql = PhonesSQL(mapping: mapping)
        var summary = PhonesSummary(mode: mode, mappingFile: mapping.file, mappingSHA256: mapping.sha256)
        summary.database = reader.info
        let existingTypes = Set(try reader.query(sql.existingCustomTypes).rows.map {
            PhonesSummaryBuilder.customTypeKey(tenant: $0[0] ?? "", label: $0[1] ?? "")
        })
        var builder = PhonesSummaryBuilder(summary: summary, existingCustomTypes: existingTypes)
        let estimate = Int(try reader.query(sql.estimatedSourceRows, [mapping.source.table.quoted]).scalar ?? "")
        let progress = ProgressLine(label: "\(mode.rawValue) phones", total: estimate,
                                    enabled: showProgress && isatty(STDERR_FILENO) == 1)

        let extractor = PhonesExtractor(connection: reader, sql: sql, pageSize: mapping.load.batchSize)
        let transform = mapping.transform
        let batchCounter = Counter()
        try BatchPipeline.run(extract: { try extractor.nextPage() }, transform: { (contacts: [LegacyPhoneContact]) in
            PhonesBatch(number: batchCounter.next(), outcomes: parallelMap(contacts, transform.transform),
                        firstKey: "\(contacts[0].tenant)/\(contacts[0].contactKey)",
                        lastKey: "\(contacts[contacts.count - 1].tenant)/\(contacts[contacts.count - 1].contactKey)")
        }, consume: { (batch: PhonesBatch) in
            _ = try sink(batch)
            for outcome in batch.outcomes { builder.add(outcome) }
            progress.update(done: builder.summary.contactsScanned)
        })
        progress.finish()
        summary = builder.summary
        summary.elapsedSeconds = Date().timeIntervalSince(started)
        summary.peakResidentMegabytes = peakResidentMegabytes()
        return summary
    }

    private func keyTypes(_ connection: PostgresConnection) throws -> (tenant: String, key: String) {
        let columns = try tableColumns(connection, mapping.source.table)
        guard let tenant = columns[mapping.source.tenantColumn], let key = columns[mapping.source.keyColumn] else {
            try preflight(connection)
            throw PreflightError(problems: ["cannot read the key columns of \(mapping.source.table)"])
        }
        return (tenant, key)
    }

    private func tableColumns(_ connection: PostgresConnection, _ table: TableName) throws -> [String: String] {
        var columns: [String: String] = [:]
        for row in try connection.query(PhonesSQL.tableColumns, [table.quoted]).rows {
            columns[row[0] ?? ""] = row[1] ?? ""
        }
        return columns
    }

    /// Checks that every table and column the mapping names exists, before the first batch.
    func preflight(_ connection: PostgresConnection) throws {
        var problems: [String] = []
        func require(_ table: TableName, _ names: [String], hint: String) throws {
            let columns = try tableColumns(connection, table)
            if columns.isEmpty {
                problems.append("table \(table) does not exist\(hint)")
                return
            }
            for name in names where columns[name] == nil {
                problems.append("column \(table).\(name) does not exist (named in \(mapping.file))")
            }
        }
        let source = mapping.source
        try require(source.table, [source.tenantColumn, source.keyColumn] + source.columns.map(\.name)
                    + (source.regionColumn.map { [$0] } ?? []), hint: " (source table in \(mapping.file))")
        let phones = mapping.phoneNumbers
        let hint = "; run `ferry schema apply \(mapping.file)` first"
        try require(phones.table, [phones.tenant, phones.contactKey, phones.phoneNumber, phones.extensionDigits,
                                   phones.canonicalType, phones.customType, phones.isDefault, phones.displayOrder], hint: hint)
        let types = mapping.typeDefinitions
        try require(types.table, [types.tenant, types.id, types.label, types.normalizedLabel], hint: hint)
        if !problems.isEmpty { throw PreflightError(problems: problems) }
    }
}

/// The process's peak resident set size so far, in MB (Linux reports ru_maxrss in KiB).
func peakResidentMegabytes() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// Numbers batches from the producer thread.
final class Counter: @unchecked Sendable {
    private var value = 0
    func next() -> Int { value += 1; return value }
}
