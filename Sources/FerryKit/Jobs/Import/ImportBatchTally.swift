import Foundation

/// What one batch of an import decided, line by line summed up. An apply records it in the batch's own
/// transaction, so a resumed run knows exactly what its first part did (rejects with their reasons
/// included) and starts after the last committed line instead of classifying those lines again.
struct ImportBatchTally: Codable, Equatable, Sendable {
    struct Reject: Codable, Equatable, Sendable {
        let line: Int
        let reason: String
        /// nil when the line was rejected before its tenant was read.
        let tenant: String?
    }

    var batch = 0
    /// Under `--jobs N`, the writer session whose share of the file's lines the batch holds (nil: the one
    /// session of a run without --jobs). Its lines are then only those of that share.
    var partition: Int?
    var lastLine = 0
    var rows = 0
    var inserted = 0
    var updated = 0
    var unchanged = 0
    /// Both kinds of skipped line: an existing contact left alone (`--on-conflict skip`) and a row of a
    /// tenant `--tenant` did not select (also in `otherTenants`).
    var skipped = 0
    var otherTenants = 0
    var rejects: [Reject] = []
    /// Per tenant, the lines that were not rejected (rejects are counted where they are replayed).
    var tenants: [String: TenantCounts] = [:]
    var phoneRows = 0
    /// Per anomaly class of the phones of lines written: how many, with a few distinct examples.
    var phoneAnomalies: [String: CountWithExamples] = [:]
    var organizationsCreated = 0
    var customTypesCreated = 0
    var contactsDeactivated = 0
    /// The `--deactivate-missing` batch (after the file's last line).
    var deactivation = false
    var samples: [ImportSummary.Sample] = []

    /// Sums up a batch: the transform's outcome for each record and the database's decision for each
    /// contact. `samplesWanted`: how many more before → after samples the summary still takes.
    init(
        batch: Int, records: [CSVRecord], outcomes: [ImportRowOutcome], decided: ImportBatchResult,
        samplesWanted: Int
    ) throws {
        self.batch = batch
        lastLine = records.last?.line ?? 0
        rows = records.count
        organizationsCreated = decided.organizationsCreated
        customTypesCreated = decided.customTypesCreated
        let decisions = Dictionary(uniqueKeysWithValues: decided.lines.map { ($0.line, $0) })
        for outcome in outcomes {
            switch outcome {
            case .rejected(let line, let reason):
                rejects.append(Reject(line: line, reason: reason, tenant: nil))
            case .otherTenant:
                skipped += 1
                otherTenants += 1
            case .contact(let contact):
                guard let decision = decisions[contact.line] else {
                    throw LedgerError("line \(contact.line) got no decision from the database")
                }
                count(decision, of: contact, samplesWanted: samplesWanted)
            }
        }
    }

    /// The `--deactivate-missing` batch.
    init(batch: Int, contactsDeactivated: Int) {
        self.batch = batch
        self.contactsDeactivated = contactsDeactivated
        deactivation = true
    }

    private mutating func count(_ decision: ImportLineResult, of contact: ImportedContact, samplesWanted: Int) {
        switch decision.action {
        case .insert: inserted += 1
        case .update: updated += 1
        case .unchanged: unchanged += 1
        case .skip: skipped += 1
        case .reject:
            rejects.append(
                Reject(
                    line: decision.line, reason: decision.reason ?? "rejected by the database", tenant: contact.tenant))
            return
        }
        tenants[contact.tenant, default: TenantCounts()].count(decision.action)
        if decision.action.writes {
            phoneRows += decision.phoneRows
            for anomaly in contact.phones.anomalies {
                phoneAnomalies[anomaly.importClass, default: CountWithExamples()].add(
                    ValueExample(
                        tenant: contact.tenant, contactKey: "line \(contact.line): \(contact.email)",
                        column: anomaly.column, raw: anomaly.raw, detail: anomaly.detail))
            }
        }
        if samples.count < samplesWanted, decision.action != .unchanged {
            samples.append(
                ImportSummary.Sample(
                    line: contact.line, action: decision.action.rawValue, tenant: contact.tenant, email: contact.email,
                    fullName: contact.fullName, changed: decision.changed,
                    phones: contact.phones.rows.map {
                        ContactSample.Row(
                            phoneNumber: $0.e164, extensionDigits: $0.extensionDigits,
                            type: $0.type.description, isDefault: $0.isDefault, displayOrder: $0.displayOrder)
                    }))
        }
    }
}

extension ImportSummary {
    /// Adds a batch's counts, except its rows and rejects: those are counted line by line as the file
    /// is read (`reject(_:record:)`), where the rejected line's own fields are at hand.
    mutating func add(_ tally: ImportBatchTally) {
        inserted += tally.inserted
        updated += tally.updated
        unchanged += tally.unchanged
        skipped += tally.skipped
        skippedOtherTenants += tally.otherTenants
        for (tenant, counts) in tally.tenants { tenants[tenant, default: TenantCounts()].add(counts) }
        phoneRowsToInsert += tally.phoneRows
        for (name, counted) in tally.phoneAnomalies {
            var merged = CountWithExamples(count: phoneAnomalies[name] ?? 0, examples: phoneAnomalyExamples[name] ?? [])
            merged.merge(counted)
            (phoneAnomalies[name], phoneAnomalyExamples[name]) = (merged.count, merged.examples)
        }
        organizationsToCreate += tally.organizationsCreated
        customTypesToCreate += tally.customTypesCreated
        contactsDeactivated += tally.contactsDeactivated
        samples.append(contentsOf: tally.samples.prefix(max(0, 10 - samples.count)))
    }
}

extension TenantCounts {
    mutating func add(_ other: TenantCounts) {
        contactsScanned += other.contactsScanned
        contactsWithNumbers += other.contactsWithNumbers
        rowsToInsert += other.rowsToInsert
        valuesRejected += other.valuesRejected
        contactsSkippedExisting += other.contactsSkippedExisting
    }
}

extension PhoneAnomaly {
    /// The class an import counts a phone anomaly under.
    var importClass: String {
        rejectionReason == .emptyToken ? "no number in the cell (n/a, -, …)" : kind.rawValue
    }
}
