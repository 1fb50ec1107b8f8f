import Foundation

extension PlanReport {
    /// The review report of an import (`ferry import [--dry-run] --report FILE`): the same model, and so
    /// the same renderers and JSON schema, as `ferry plan` for the other jobs; its kind says whether the
    /// import was a dry run or a run that wrote.
    public init(importSummary summary: ImportSummary, mapping: ContactsCSVMapping, generatedAt: Date = Date()) {
        schema = Self.schemaVersion
        let batchSize = mapping.load.batchSize
        let contacts = mapping.contacts.table.description
        header = Header(
            job: "import \(ImportJob.name)", mappingFile: summary.mappingFile, mappingSHA256: summary.mappingSHA256,
            database: summary.database, generatedAt: ISO8601DateFormatter().string(from: generatedAt),
            ferryVersion: FerryVersion.current,
            locks: [
                "advisory lock ferry:\(ImportJob.name) (session), so no second import runs at once",
                "ROW EXCLUSIVE on \(contacts), \(mapping.organizations.table), \(mapping.phoneNumbers.table) and \(mapping.typeDefinitions.table), one transaction per batch (lock_timeout \(mapping.load.lockTimeout.text), statement_timeout \(mapping.load.statementTimeout.text))",
                "FOR UPDATE on the \(contacts) rows a batch updates, for the length of that batch",
            ]
                + (summary.writers.map { writers in
                    writers > 1
                        ? [
                            "\(writers) writer sessions (--jobs), each its own transaction per batch; advisory transaction lock ferry:\(ImportJob.name) organizations while one of them creates organizations"
                        ] : []
                } ?? []),
            batches: summary.batches, batchSize: batchSize,
            estimatedApplySeconds: summary.elapsedSeconds > 0 ? summary.elapsedSeconds * 1.5 + 1 : nil,
            estimateBasis: String(
                format:
                    "an estimate: this dry run took %.1f s reading, transforming and classifying every row; writing adds about half again",
                summary.elapsedSeconds)
                + (summary.growthBasis.isEmpty ? "" : ". Growth: " + summary.growthBasis.joined(separator: "; ")),
            estimatedGrowthBytes: summary.estimatedGrowthBytes)
        tables = [
            TableCounts(
                table: contacts, insert: summary.inserted, update: summary.updated + summary.contactsDeactivated,
                delete: 0,
                unchanged: summary.unchanged + summary.skipped),
            TableCounts(
                table: mapping.phoneNumbers.table.description, insert: summary.phoneRowsToInsert, update: 0, delete: 0,
                unchanged: 0),
            TableCounts(
                table: mapping.organizations.table.description, insert: summary.organizationsToCreate, update: 0,
                delete: 0, unchanged: 0),
            TableCounts(
                table: mapping.typeDefinitions.table.description, insert: summary.customTypesToCreate, update: 0,
                delete: 0, unchanged: 0),
        ]
        header.kind = summary.dryRun ? .dryRun : .run
        header.runId = summary.runId
        tenants = summary.tenants.sorted { $0.key < $1.key }.map { TenantRow(tenant: $0.key, counts: $0.value) }
        tenantColumns =
            summary.dryRun
            ? ["rows", "to insert", "to update", "rejected", "unchanged or skipped"]
            : ["rows", "inserted", "updated", "rejected", "unchanged or skipped"]
        var classes = summary.rejectsByClass.map {
            AnomalyClass(name: "rejected: \($0.key)", count: $0.value.count, examples: $0.value.examples)
        }
        classes += summary.phoneAnomalies.map {
            AnomalyClass(
                name: "phones: \($0.key)", count: $0.value, examples: summary.phoneAnomalyExamples[$0.key] ?? [])
        }
        if !summary.ignoredColumns.isEmpty {
            classes.append(
                AnomalyClass(
                    name:
                        "columns no mapping alias matches (ignored): \(summary.ignoredColumns.joined(separator: ", "))",
                    count: summary.ignoredColumns.count, examples: []))
        }
        anomalies = classes.sorted { ($0.count, $1.name) > ($1.count, $0.name) }
        customTypesToCreate = []
        samples = summary.samples.map { sample in
            ContactSample(
                tenant: sample.tenant, contactKey: "line \(sample.line): \(sample.email)",
                legacyValues: ["full_name": sample.fullName], rows: sample.phones,
                classes: [sample.action] + sample.changed)
        }
        checks = []
        accounting = [
            Accounting(
                sourceTable: "\(summary.file) (rows after the header on line \(summary.headerLine))",
                read: summary.rowsRead, toLoad: summary.inserted + summary.updated, rejected: summary.rejected,
                skipped: summary.unchanged + summary.skipped, unchanged: summary.unchanged,
                skippedOnConflict: summary.skipped - summary.skippedOtherTenants, blankLines: summary.blankLines,
                addsUp: summary.addsUp)
        ]
        changesPending = summary.changes > 0
        statements = summary.applyStatements
    }
}
