import Foundation

/// The phones job's plan report: its summary and mapping as the report a reviewer reads.
extension PlanReport {
    public init(summary: PhonesSummary, mapping: PhonesMapping, generatedAt: Date = Date()) {
        schema = Self.schemaVersion
        let batchSize = mapping.load.batchSize
        let phones = mapping.phoneNumbers.table.description
        let types = mapping.typeDefinitions.table.description
        header = Header(
            job: "phones", mappingFile: summary.mappingFile, mappingSHA256: summary.mappingSHA256,
            database: summary.database,
            generatedAt: ISO8601DateFormatter().string(from: generatedAt), ferryVersion: FerryVersion.current,
            locks: [
                "advisory lock ferry:phones (session), so no second apply of this job runs at once",
                "ROW EXCLUSIVE on \(phones) and \(types), one transaction per batch (lock_timeout \(mapping.load.lockTimeout.text), statement_timeout \(mapping.load.statementTimeout.text))",
                "FOR KEY SHARE on the \(mapping.source.table) rows a batch references (foreign key checks)",
                "no lock on \(mapping.source.table) beyond reading it; the legacy column is not changed",
            ],
            batches: (summary.contactsScanned + batchSize - 1) / batchSize, batchSize: batchSize,
            estimatedApplySeconds: summary.estimatedApplySeconds, estimateBasis: summary.estimateBasis,
            peakResidentMegabytes: summary.peakResidentMegabytes, estimatedGrowthBytes: summary.estimatedGrowthBytes)
        tables = [
            TableCounts(
                table: phones, insert: summary.rowsToInsert, update: 0, delete: 0,
                unchanged: summary.targetRowsExisting[phones] ?? 0),
            TableCounts(
                table: types, insert: summary.customTypesToCreate.count, update: 0, delete: 0,
                unchanged: summary.targetRowsExisting[types] ?? 0),
            TableCounts(
                table: mapping.source.table.description, insert: 0, update: 0, delete: 0,
                unchanged: summary.contactsScanned),
        ]
        tenants = summary.tenants.sorted { $0.key < $1.key }.map { TenantRow(tenant: $0.key, counts: $0.value) }
        var classes = summary.rejectedByReason.map {
            AnomalyClass(name: "rejected: \($0.key)", count: $0.value.count, examples: $0.value.examples)
        }
        classes += summary.anomalies.filter { $0.key != PhoneAnomalyClass.rejected.rawValue }
            .map { AnomalyClass(name: $0.key, count: $0.value.count, examples: $0.value.examples) }
        anomalies = classes.sorted { ($0.count, $1.name) > ($1.count, $0.name) }
        customTypesToCreate = summary.customTypesToCreate
        samples = summary.samples
        checks = summary.checks
        let values = summary.values
        accounting = [
            Accounting(
                sourceTable: mapping.source.table.description, read: values.read, toLoad: values.loaded,
                rejected: values.rejected, skipped: values.skipped, skippedNoValue: values.skippedEmpty,
                skippedAlreadyHasPhones: values.skippedExistingPhones, addsUp: summary.accountingAddsUp)
        ]
        changesPending = summary.rowsToInsert > 0 || !summary.customTypesToCreate.isEmpty
        statements = summary.applyStatements
    }
}
