/// Every statement the phones job runs, built from the mapping with every identifier quoted.
/// Values always travel as parameters or through COPY, never inside the statement text.
struct PhonesSQL {
    let mapping: PhonesMapping
    var engine = DatabaseEngine.postgres
    /// The writer of a parallel apply: on Citus each stages in its own table.
    var writer = 0
    /// The loader draws each new phone row's key (see `PhoneRowsSQL.stagedRowKeys`).
    var drawsPhoneRowKeys = false

    private var source: PhonesMapping.Source { mapping.source }
    private var phones: PhonesMapping.PhoneNumbersTable { mapping.phoneNumbers }
    private var types: PhonesMapping.TypeDefinitionsTable { mapping.typeDefinitions }
    private func q(_ name: String) -> String { quoteIdentifier(name) }

    // MARK: Extract

    /// One keyset page of legacy contacts (parameters: `KeysetSource`): region, one `value_N` per mapped
    /// column, and whether the contact already has phone rows.
    func extractPage(tenantType: String, keyType: String, oneTenant: Bool = false) -> String {
        let region = source.regionColumn.map { "s.\(q($0))::text" } ?? "NULL::text"
        let lookup = Self.regionLookup(source) { "s.\(quoteIdentifier($0))" }
        let values = source.columns.enumerated().map { "s.\(q($1.name))::text AS value_\($0)" }.joined(separator: ", ")
        let tenant = "s.\(q(source.tenantColumn))", key = "s.\(q(source.keyColumn))"
        // $4 names one tenant: said to every table read, Citus runs the statement on that tenant's shard.
        let only = "($4::text[])[1]::\(tenantType)"
        let sameTenant = oneTenant ? "\n                             AND p.\(q(phones.tenant)) = \(only)" : ""
        let thisTenant = oneTenant ? "\n              AND \(tenant) = \(only)" : ""
        // Only when the mapping takes the contact's timestamps: every column read costs every row.
        let timestamps =
            source.timestampsFromSource
            ? "\n                   "
                + "\(source.createdAtColumn.map { "s.\(q($0))::text" } ?? "NULL::text") AS source_created_at, "
                + "\(source.updatedAtColumn.map { "s.\(q($0))::text" } ?? "NULL::text") AS source_updated_at," : ""
        let contactsRows = "p.\(q(phones.tenant)) = \(tenant) AND p.\(q(phones.contactKey)) = \(key)\(sameTenant)"
        // replace_naive reads the contact's rows once for both of its answers, not once for each.
        let phoneRows =
            mapping.existingRows == .replaceNaive
            ? (
                columns: "ph.has_phones, ph.naive_row",
                join:
                    "\n            CROSS JOIN LATERAL (\(naiveRow(contactsRows, legacy: "btrim(s.\(q(source.columns[0].name)))"))) ph"
            )
            : (
                columns: """
                EXISTS (SELECT 1 FROM \(phones.table.quoted) p
                               WHERE \(contactsRows)) AS has_phones, NULL::text AS naive_row
                """,
                join: ""
            )
        return """
            SELECT \(tenant)::text AS ferry_tenant, \(key)::text AS ferry_key, \(region) AS region,\(timestamps)
                   \(lookup) AS region_lookup, \(values),
                   \(phoneRows.columns), \(engine.isCitus ? LegacyReads.hash(source.columns.map(\.name), alias: "s") : "NULL::text") AS ferry_legacy_hash
            FROM \(source.keyset.fromItem) s\(phoneRows.join)
            WHERE ($1::text IS NULL OR (\(tenant), \(key)) > ($1::\(tenantType), $2::\(keyType)))
              AND ($4::text[] IS NULL OR \(tenant) = ANY ($4::text[]::\(tenantType)[]))\(thisTenant)
            ORDER BY \(tenant), \(key)
            LIMIT $3::bigint
            """
    }

    /// The region `source.region_lookup` gives a row, as a scalar subquery (a lookup that matches two rows
    /// fails loudly instead of repeating the contact); `column` names a source column in the statement.
    static func regionLookup(_ source: PhonesMapping.Source, column: (String) -> String) -> String {
        source.regionLookup.map { l in
            "(SELECT r.\(quoteIdentifier(l.column))::text FROM \(l.fromItem) r WHERE "
                + l.join.map { "r.\(quoteIdentifier($0.lookup)) = \(column($0.source))" }.joined(separator: " AND ")
                + ")"
        } ?? "NULL::text"
    }

    /// Whether the contact has phone rows, and the key of its only row when that row is what a naive
    /// backfill wrote from the first legacy column (its value trimmed, type work, the default, first, no
    /// custom type, no extension); NULL for any other rows. The loader checks the same again under a row
    /// lock. `contactsRows` selects the contact's rows as `p`.
    private func naiveRow(_ contactsRows: String, legacy: String) -> String {
        """
        SELECT count(*) > 0 AS has_phones,
               CASE WHEN count(*) = 1 AND bool_and(\(naiveSignature(row: "p", legacy: legacy)))
                    THEN min(p.\(q(phones.id))::text) END AS naive_row
        FROM \(phones.table.quoted) p WHERE \(contactsRows)
        """
    }

    /// A phone row `row` as the naive backfill wrote it from the value `legacy`.
    func naiveSignature(row p: String, legacy: String) -> String {
        "\(p).\(q(phones.canonicalType)) = 'work' AND \(p).\(q(phones.customType)) IS NULL AND \(p).\(q(phones.isDefault))"
            + " AND \(p).\(q(phones.displayOrder)) = 0 AND \(p).\(q(phones.phoneNumber)) = \(legacy)"
            + (phones.extensionDigits.map { " AND \(p).\(q($0)) IS NULL" } ?? "")
    }

    /// An estimate for progress and ETA: the planner's row count, or an exact count on a never-analyzed table.
    var estimatedSourceRows: String {
        """
        SELECT CASE WHEN c.reltuples > 0 THEN c.reltuples::bigint
                    ELSE (SELECT count(*) FROM \(source.table.quoted)) END
        FROM pg_class c WHERE c.oid = $1::regclass
        """
    }

    var existingCustomTypes: String {
        "SELECT \(q(types.tenant))::text AS tenant, \(q(types.normalizedLabel)) AS label FROM \(types.table.quoted)"
    }

    // MARK: Load

    /// (Citus) What each batch read of the legacy columns, for the contract.
    var legacyReads: LegacyReads { LegacyReads(job: PhonesJob.name, engine: engine, writer: writer) }

    var phoneRows: PhoneRowsSQL {
        PhoneRowsSQL(
            phones: phones, types: types, typesOrder: 1, phonesOrder: 2,
            // On Citus also for a table filled by this run: a tenant's shard, planned on statistics from when it
            // was empty, was scanned whole once per staged row (a nested loop) in the tenant's second batch.
            probeByIndex: mapping.existingRows == .replaceNaive || engine.isCitus,
            replacesNaiveRows: mapping.existingRows == .replaceNaive,
            timestampsFromSource: source.timestampsFromSource,
            stagedRowKeys: drawsPhoneRowKeys,
            staging: .forEngine(engine, name: "stage_phones", writer: writer),
            replacing: .forEngine(engine, name: "stage_phones_replace", writer: writer),
            contacts: (source.table, source.tenantColumn, source.keyColumn)
        )
    }

    /// The phone table's key type, as the replace table (`existing_rows: replace_naive`) holds it.
    func phoneKeyType(on connection: PostgresConnection) throws -> String {
        try connection.columnTypes(phones.table)[phones.id] ?? "uuid"
    }

    /// The tables each apply session stages its batches in (`idType`: `phoneKeyType`).
    func createSessionTables(tenantType: String, keyType: String, idType: String) -> [String] {
        phoneRows.createStagingTable(tenantType: tenantType, keyType: keyType)
            + legacyReads.create(tenantType: tenantType, keyType: keyType)
            + (mapping.existingRows == .replaceNaive
                ? phoneRows.createReplaceTable(tenantType: tenantType, keyType: keyType, idType: idType) : [])
    }

    /// What apply runs, in order: once per session, then for every batch in one transaction ($1 run,
    /// $2 batch, $3 the table's name for its snapshot rows; on Citus $4 or $1 the batch's tenant), as
    /// `PhonesLoader` runs them. For the plan report's appendix. `idType`: the phone table's key type.
    func applyStatements(
        types: SnapshotTable, phones: SnapshotTable, tenantType: String, keyType: String, idType: String
    ) -> [String] {
        let rows = phoneRows
        let replaces = mapping.existingRows == .replaceNaive
        var naiveRows: [String] = []
        if replaces {
            naiveRows.append(rows.copyIntoReplaceTable)
            if rows.replacing.isDistributed {
                let snapshot = rows.citusSnapshotNaiveRows(snapshot: phones, signature: naiveSignature)
                naiveRows += [snapshot.preImages, snapshot.markDone, rows.updateNaiveRows, rows.deleteNaiveRows]
                naiveRows += [rows.recordNaivePreImages(snapshot: phones)].compactMap { $0 }
            } else {
                naiveRows += [
                    rows.snapshotNaiveRows(snapshot: phones, signature: naiveSignature), rows.updateNaiveRows,
                    rows.deleteNaiveRows,
                ]
            }
            naiveRows.append(rows.insertPhoneRows(snapshot: phones, for: .replacing))
        }
        // On Citus the batch's reads of the legacy values, recorded for the contract (see `LegacyReads`).
        let reads: [String?] =
            legacyReads.isRecorded
            ? [
                legacyReads.forget(staged: rows.staging, keyColumn: "contact_key"), legacyReads.copyIntoStaging,
                legacyReads.record, legacyReads.staging.emptyBeforeCommit,
            ] : []
        let batch: [String?] =
            [
                "BEGIN", SessionSettings.setLocalBatchSettingsForReport, rows.copyIntoStaging,
                rows.insertCustomTypes(snapshot: types),
            ] + naiveRows + [rows.insertPhoneRows(snapshot: phones)] + reads
            + [LedgerRun.recordBatch(.key, withResult: true), rows.staging.emptyBeforeCommit]
            + (replaces ? [rows.replacing.emptyBeforeCommit] : []) + ["COMMIT"]
        return createSessionTables(tenantType: tenantType, keyType: keyType, idType: idType) + batch.compactMap { $0 }
    }

}
