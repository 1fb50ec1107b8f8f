/// Every statement the in-place job runs: the phone table read contact by contact, rows rewritten
/// where they stand, further numbers added beside them. Identifiers from the mapping, quoted.
struct PhonesInPlaceSQL: Sendable {
    let mapping: PhonesMapping
    let tenantType: String
    let contactType: String
    let idType: String

    private var phones: PhonesMapping.PhoneNumbersTable { mapping.phoneNumbers }
    private func q(_ name: String) -> String { quoteIdentifier(name) }

    var phoneRows: PhoneRowsSQL {
        PhoneRowsSQL(phones: phones, types: mapping.typeDefinitions, typesOrder: 1, phonesOrder: 2)
    }

    /// One keyset page of contacts with their rows as JSON (parameters: `KeysetSource`).
    var extractPage: String {
        let tenant = "p.\(q(phones.tenant))", contact = "p.\(q(phones.contactKey))"
        let lookup = PhonesSQL.regionLookup(mapping.source) { "(array_agg(p.\(quoteIdentifier($0))))[1]" }
        let ext = phones.extensionDigits.map { "p.\(q($0))" } ?? "NULL::text"
        return """
            SELECT \(tenant)::text AS ferry_tenant, \(contact)::text AS ferry_key, \(lookup) AS region_lookup,
                   json_agg(json_build_object('id', p.\(q(phones.id))::text, 'number', p.\(q(phones.phoneNumber)), 'ext', \(ext))
                            ORDER BY p.\(q(phones.displayOrder)), p.\(q(phones.id)))::text AS rows
            FROM \(phones.table.quoted) p
            WHERE ($1::text IS NULL OR (\(tenant), \(contact)) > ($1::\(tenantType), $2::\(contactType)))
              AND ($4::text[] IS NULL OR \(tenant) = ANY ($4::text[]::\(tenantType)[]))
            GROUP BY \(tenant), \(contact)
            ORDER BY \(tenant), \(contact)
            LIMIT $3::bigint
            """
    }

    static let rewriteTable = "ferry_inplace_rewrite"
    static let deleteTable = "ferry_inplace_delete"

    var createSessionTables: String {
        """
        CREATE TEMP TABLE IF NOT EXISTS \(q(Self.rewriteTable)) (
            tenant \(tenantType) NOT NULL, row_id \(idType) NOT NULL, was text NOT NULL,
            number text NOT NULL, extension text
        ) ON COMMIT DELETE ROWS;
        CREATE TEMP TABLE IF NOT EXISTS \(q(Self.deleteTable)) (
            tenant \(tenantType) NOT NULL, row_id \(idType) NOT NULL, was text NOT NULL
        ) ON COMMIT DELETE ROWS
        """
    }

    var copyRewrites: String {
        "COPY \(q(Self.rewriteTable)) (tenant, row_id, was, number, extension) FROM STDIN"
    }
    var copyDeletions: String { "COPY \(q(Self.deleteTable)) (tenant, row_id, was) FROM STDIN" }

    /// Rewrites the rows still holding the value that was read: each is locked, its pre-image recorded,
    /// and its number (and extension) written, in one statement; a row the application changed meanwhile
    /// is left alone. Returns the rows rewritten. $1 run, $2 batch, $3 table.
    func rewriteRows(snapshot: SnapshotTable) -> String {
        let set =
            ["\(q(phones.phoneNumber)) = r.number"] + (phones.extensionDigits.map { ["\(q($0)) = r.extension"] } ?? [])
            + (phones.updatedAt.map { ["\(q($0)) = now()"] } ?? [])
        return write(
            Self.rewriteTable, action: "update", snapshot: snapshot,
            """
            UPDATE \(phones.table.quoted) p SET \(set.joined(separator: ", "))
                FROM still s JOIN \(q(Self.rewriteTable)) r ON \(same("s"))
                WHERE p.\(q(phones.tenant)) = s.\(q(phones.tenant)) AND p.\(q(phones.id)) = s.\(q(phones.id))
                RETURNING 1
            """)
    }

    /// Deletes the unusable rows still as read (`unusable_rows: delete`), pre-images recorded first.
    func deleteRows(snapshot: SnapshotTable) -> String {
        write(
            Self.deleteTable, action: "delete", snapshot: snapshot,
            """
            DELETE FROM \(phones.table.quoted) p USING still s
                WHERE p.\(q(phones.tenant)) = s.\(q(phones.tenant)) AND p.\(q(phones.id)) = s.\(q(phones.id))
                RETURNING 1
            """)
    }

    /// `p` (or `alias`) is the row a staged change `r` names.
    private func same(_ alias: String) -> String {
        "\(alias).\(q(phones.tenant)) = r.tenant AND \(alias).\(q(phones.id)) = r.row_id"
    }

    /// The rows of `table` still holding the value that was read, locked (`still`), their pre-images
    /// recorded, then `change` (which reads `still`); its count of rows is the result.
    private func write(_ table: String, action: String, snapshot: SnapshotTable, _ change: String) -> String {
        """
        WITH still AS (
            SELECT p.* FROM \(q(table)) r
            CROSS JOIN LATERAL (SELECT p.* FROM \(phones.table.quoted) p
                                WHERE \(same("p")) AND p.\(q(phones.phoneNumber)) = r.was OFFSET 0) p
            FOR UPDATE OF p
        ), snapshot AS (
            INSERT INTO ferry.snapshot_rows (run_id, batch_no, table_order, table_name, action, key, before)
            SELECT $1, $2, 2, $3, '\(action)', \(snapshot.keyObject(alias: "p")), to_jsonb(p) FROM still p
        ), changed AS (
            \(change)
        )
        SELECT count(*) AS rows FROM changed
        """
    }

    /// What apply runs, for the plan report's appendix.
    func applyStatements(types: SnapshotTable, phones table: SnapshotTable) -> [String] {
        phoneRows.createStagingTable(tenantType: tenantType, keyType: contactType) + [
            createSessionTables, "BEGIN",
            SessionSettings.setLocalTimeoutsForReport, copyRewrites, copyDeletions, phoneRows.copyIntoStaging,
            phoneRows.insertCustomTypes(snapshot: types),
            rewriteRows(snapshot: table), deleteRows(snapshot: table),
            phoneRows.mergePhoneRows(snapshot: table), LedgerRun.recordBatch(.key), "COMMIT",
        ]
    }
}
