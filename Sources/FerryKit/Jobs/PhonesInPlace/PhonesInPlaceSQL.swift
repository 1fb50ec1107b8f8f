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
            number text NOT NULL, extension text, done boolean NOT NULL DEFAULT false
        ) ON COMMIT DELETE ROWS;
        CREATE TEMP TABLE IF NOT EXISTS \(q(Self.deleteTable)) (
            tenant \(tenantType) NOT NULL, row_id \(idType) NOT NULL, was text NOT NULL,
            done boolean NOT NULL DEFAULT false
        ) ON COMMIT DELETE ROWS
        """
    }

    var copyRewrites: String {
        "COPY \(q(Self.rewriteTable)) (tenant, row_id, was, number, extension) FROM STDIN"
    }
    var copyDeletions: String { "COPY \(q(Self.deleteTable)) (tenant, row_id, was) FROM STDIN" }

    /// Locks the rows still holding the value that was read, records their pre-images and marks them
    /// done; a row the application changed meanwhile is left alone. $1 run, $2 batch, $3 table.
    func snapshotRows(in table: String, action: String, snapshot: SnapshotTable) -> String {
        let same = "p.\(q(phones.tenant)) = r.tenant AND p.\(q(phones.id)) = r.row_id"
        return """
            WITH still AS (
                SELECT p.* FROM \(q(table)) r
                CROSS JOIN LATERAL (SELECT p.* FROM \(phones.table.quoted) p
                                    WHERE \(same) AND p.\(q(phones.phoneNumber)) = r.was OFFSET 0) p
                FOR UPDATE OF p
            ), snapshot AS (
                INSERT INTO ferry.snapshot_rows (run_id, batch_no, table_order, table_name, action, key, before)
                SELECT $1, $2, 2, $3, '\(action)', \(snapshot.keyObject(alias: "p")), to_jsonb(p) FROM still p
            )
            UPDATE \(q(table)) r SET done = true FROM still p WHERE \(same)
            """
    }

    var rewriteRows: String {
        let set =
            ["\(q(phones.phoneNumber)) = r.number"] + (phones.extensionDigits.map { ["\(q($0)) = r.extension"] } ?? [])
            + (phones.updatedAt.map { ["\(q($0)) = now()"] } ?? [])
        return """
            UPDATE \(phones.table.quoted) p SET \(set.joined(separator: ", "))
            FROM \(q(Self.rewriteTable)) r
            WHERE r.done AND p.\(q(phones.tenant)) = r.tenant AND p.\(q(phones.id)) = r.row_id
            """
    }

    var deleteRows: String {
        """
        DELETE FROM \(phones.table.quoted) p USING \(q(Self.deleteTable)) r
        WHERE r.done AND p.\(q(phones.tenant)) = r.tenant AND p.\(q(phones.id)) = r.row_id
        """
    }

    /// What apply runs, for the plan report's appendix.
    func applyStatements(types: SnapshotTable, phones table: SnapshotTable) -> [String] {
        phoneRows.createStagingTable(tenantType: tenantType, keyType: contactType) + [
            createSessionTables, "BEGIN",
            SessionSettings.setLocalTimeoutsForReport, copyRewrites, copyDeletions, phoneRows.copyIntoStaging,
            phoneRows.insertCustomTypes(snapshot: types),
            snapshotRows(in: Self.rewriteTable, action: "update", snapshot: table), rewriteRows,
            snapshotRows(in: Self.deleteTable, action: "delete", snapshot: table), deleteRows,
            phoneRows.mergePhoneRows(snapshot: table), LedgerRun.recordBatch(.key), "COMMIT",
        ]
    }
}
