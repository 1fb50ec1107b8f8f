/// Every statement the in-place job runs: the phone table read contact by contact, rows rewritten
/// where they stand, further numbers added beside them. Identifiers from the mapping, quoted.
struct PhonesInPlaceSQL: Sendable {
    let mapping: PhonesMapping
    let tenantType: String
    let contactType: String
    let idType: String
    var engine = DatabaseEngine.postgres
    /// The writer of a parallel apply: on Citus each stages in its own tables.
    var writer = 0

    private var phones: PhonesMapping.PhoneNumbersTable { mapping.phoneNumbers }
    private func q(_ name: String) -> String { quoteIdentifier(name) }

    private func staging(_ name: String) -> StagingTable {
        .forEngine(engine, name: name, writer: writer)
    }

    var phoneRows: PhoneRowsSQL {
        PhoneRowsSQL(
            phones: phones, types: mapping.typeDefinitions, typesOrder: 1, phonesOrder: 2,
            staging: staging("stage_phones_in_place"))
    }
    /// The rows to rewrite (tenant, row, the value read, the number and extension to write).
    var rewrites: StagingTable { staging("stage_in_place_rewrites") }
    /// The rows to delete (tenant, row, the value read).
    var deletions: StagingTable { staging("stage_in_place_deletions") }
    /// On Citus, distributed tables (a batch is one tenant's: $4 names it); temporary ones elsewhere.
    var isDistributed: Bool { rewrites.isDistributed }

    /// One keyset page of contacts with their rows (parameters: `KeysetSource`). `oneTenant`:
    /// $4 names one tenant, said again as an equality so that Citus runs the page on that tenant's shard.
    func extractPage(oneTenant: Bool = false) -> String {
        let tenant = "p.\(q(phones.tenant))", contact = "p.\(q(phones.contactKey))"
        // The grouped columns as themselves (Citus then sees the lookup joined on the tenant), any
        // other column of the contact's rows through an aggregate.
        let lookup = PhonesSQL.regionLookup(mapping.source) { [phones] column in
            [phones.tenant, phones.contactKey].contains(column)
                ? "p.\(quoteIdentifier(column))" : "(array_agg(p.\(quoteIdentifier(column))))[1]"
        }
        let ext = { [phones] (alias: String) in
            phones.extensionDigits.map { "\(alias).\(quoteIdentifier($0))" } ?? "NULL::text"
        }
        // Most contacts have one row: it comes as plain columns (the min of one value is that value), and
        // only a contact with more has its rows as JSON, which costs ferry a decoder per contact. The JSON
        // is a subquery inside the CASE, run only for such a contact: an aggregate beside count(*) would be
        // built for every contact and thrown away.
        return """
            SELECT \(tenant)::text AS ferry_tenant, \(contact)::text AS ferry_key, \(lookup) AS region_lookup,
                   count(*) AS row_count, min(p.\(q(phones.id))::text) AS only_id,
                   min(p.\(q(phones.phoneNumber))) AS only_number, min(\(ext("p"))) AS only_ext,
                   CASE WHEN count(*) > 1 THEN (
                       SELECT json_agg(json_build_object('id', l.\(q(phones.id))::text, 'number', l.\(q(phones.phoneNumber)), 'ext', \(ext("l")))
                                       ORDER BY l.\(q(phones.displayOrder)), l.\(q(phones.id)))::text
                       FROM \(phones.table.quoted) l
                       WHERE l.\(q(phones.tenant)) = \(tenant) AND l.\(q(phones.contactKey)) = \(contact)) END AS rows
            FROM \(phones.table.quoted) p
            WHERE ($1::text IS NULL OR (\(tenant), \(contact)) > ($1::\(tenantType), $2::\(contactType)))
              AND ($4::text[] IS NULL OR \(tenant) = ANY ($4::text[]::\(tenantType)[]))\(oneTenant ? "\n              AND \(tenant) = ($4::text[])[1]::\(tenantType)" : "")
            GROUP BY \(tenant), \(contact)
            ORDER BY \(tenant), \(contact)
            LIMIT $3::bigint
            """
    }

    var createSessionTables: [String] {
        phoneRows.createStagingTable(tenantType: tenantType, keyType: contactType)
            + rewrites.create(
                columns:
                    "tenant \(tenantType) NOT NULL, row_id \(idType) NOT NULL, was text NOT NULL, number text NOT NULL, extension text"
            )
            + deletions.create(columns: "tenant \(tenantType) NOT NULL, row_id \(idType) NOT NULL, was text NOT NULL")
            + [SnapshotTable.createPendingPreImages]
    }

    var copyRewrites: String {
        "COPY \(rewrites.quoted) (tenant, row_id, was, number, extension) FROM STDIN"
    }
    var copyDeletions: String { "COPY \(deletions.quoted) (tenant, row_id, was) FROM STDIN" }

    /// Before a batch on Citus commits: its staged rows go ($1 the tenant).
    var emptyBeforeCommit: [String] {
        [rewrites.emptyBeforeCommit, deletions.emptyBeforeCommit, phoneRows.staging.emptyBeforeCommit].compactMap { $0 }
    }

    /// What a rewrite writes: each column with its new value.
    private var rewrite: [(column: String, value: String)] {
        [(phones.phoneNumber, "r.number")] + (phones.extensionDigits.map { [($0, "r.extension")] } ?? [])
            + (phones.updatedAt.map { [($0, "now()")] } ?? [])
    }
    private var newValues: String { rewrite.map { "\(q($0.column)) = \($0.value)" }.joined(separator: ", ") }

    /// Rewrites the rows still holding the value that was read: each is locked, its pre-image recorded,
    /// and its number (and extension) written, in one statement; a row the application changed meanwhile
    /// is left alone. Returns the rows rewritten. $1 run, $2 batch, $3 table. (On Citus: `citusRewrite`.)
    func rewriteRows(snapshot: SnapshotTable) -> String {
        let set = newValues
        return write(
            rewrites.quoted, action: "update", snapshot: snapshot,
            preImage: snapshot.updatedColumns(rewrite.map(\.column), of: "p"),
            """
            UPDATE \(phones.table.quoted) p SET \(set)
                FROM still s JOIN \(rewrites.quoted) r ON \(same("s"))
                WHERE p.\(q(phones.tenant)) = s.\(q(phones.tenant)) AND p.\(q(phones.id)) = s.\(q(phones.id))
                RETURNING 1
            """)
    }

    /// Deletes the unusable rows still as read (`unusable_rows: delete`), pre-images recorded first.
    func deleteRows(snapshot: SnapshotTable) -> String {
        write(
            deletions.quoted, action: "delete", snapshot: snapshot,
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
    /// `preImage`: what each pre-image keeps (`SnapshotTable.updatedColumns`); nil, the whole row.
    private func write(
        _ table: String, action: String, snapshot: SnapshotTable, preImage: String? = nil, _ change: String
    ) -> String {
        """
        WITH still AS (
            SELECT p.* FROM \(table) r
            CROSS JOIN LATERAL (SELECT p.\(q(phones.tenant)), p.\(q(phones.id)), \(snapshot.carryingKeyAndPreImage("p", object: preImage))
                                FROM \(phones.table.quoted) p
                                WHERE \(same("p")) AND p.\(q(phones.phoneNumber)) = r.was
                                FOR UPDATE OF p) p
        ), snapshot AS (
            INSERT INTO ferry.snapshot_rows (run_id, batch_no, table_order, table_name, action, key, \(SnapshotTable.preImageColumns))
            SELECT $1, $2, 2, $3, '\(action)', \(SnapshotTable.carriedKeyAndPreImage("p")) FROM still p
        ), changed AS (
            \(change)
        )
        SELECT count(*) AS rows FROM changed
        """
    }

    /// On Citus a statement may not both read the distributed phone table and write the coordinator's
    /// ledger, and no row hash goes in an UPDATE's RETURNING: the same rewrite in four statements, all
    /// on the batch's tenant. The pre-images (locked) wait in the session's pending table ($1 run,
    /// $2 batch, $3 table, $4 tenant); the UPDATE ($1 tenant) writes the rows still holding the value
    /// read; then the pre-images move to the ledger with the hash of each row as written ($1 table,
    /// $2 tenant).
    func citusRewrite(snapshot: SnapshotTable) -> (preImages: String, update: String, record: String?) {
        let still = { (tenant: Int) in
            """
            p.\(self.q(self.phones.tenant)) = $\(tenant) AND r.tenant = $\(tenant) AND \(self.same("p"))
            """
        }
        return (
            """
            INSERT INTO \(snapshot.preImageTable) (run_id, batch_no, table_order, table_name, action, key, \(SnapshotTable.preImageColumns))
            SELECT $1, $2, 2, $3, 'update', \(snapshot.keyObject(alias: "p")), \(snapshot.preImage("p"))
            FROM \(phones.table.quoted) p JOIN \(rewrites.quoted) r ON \(still(4)) AND p.\(q(phones.phoneNumber)) = r.was
            FOR UPDATE OF p
            """,
            """
            UPDATE \(phones.table.quoted) p SET \(newValues) FROM \(rewrites.quoted) r
            WHERE \(still(1)) AND p.\(q(phones.phoneNumber)) = r.was
            """,
            snapshot.recordPreImages(
                written: """
                    SELECT \(snapshot.keyObject(alias: "p")) AS key, \(SnapshotTable.rowHash("p")) AS ferry_row_hash
                    FROM \(phones.table.quoted) p JOIN \(rewrites.quoted) r ON \(still(2))
                    """)
        )
    }

    /// The deletions on Citus, as `citusRewrite`: pre-images straight into the ledger (a deleted row
    /// has nothing to hash) with $1 run, $2 batch, $3 table, $4 tenant; then the DELETE, $1 tenant.
    func citusDelete(snapshot: SnapshotTable) -> (preImages: String, delete: String) {
        let still = { (tenant: Int) in
            "p.\(self.q(self.phones.tenant)) = $\(tenant) AND r.tenant = $\(tenant) AND \(self.same("p")) AND p.\(self.q(self.phones.phoneNumber)) = r.was"
        }
        return (
            """
            INSERT INTO ferry.snapshot_rows (run_id, batch_no, table_order, table_name, action, key, \(SnapshotTable.preImageColumns))
            SELECT $1, $2, 2, $3, 'delete', \(snapshot.keyObject(alias: "p")), \(snapshot.preImage("p"))
            FROM \(phones.table.quoted) p JOIN \(deletions.quoted) r ON \(still(4))
            FOR UPDATE OF p
            """,
            "DELETE FROM \(phones.table.quoted) p USING \(deletions.quoted) r WHERE \(still(1))"
        )
    }

    /// What apply runs, for the plan report's appendix.
    func applyStatements(types: SnapshotTable, phones table: SnapshotTable) -> [String] {
        let writes: [String]
        if isDistributed {
            let rewrite = citusRewrite(snapshot: table), delete = citusDelete(snapshot: table)
            writes =
                [rewrite.preImages, rewrite.update] + [rewrite.record].compactMap { $0 } + [
                    delete.preImages, delete.delete,
                ]
        } else {
            writes = [rewriteRows(snapshot: table), deleteRows(snapshot: table)]
        }
        return createSessionTables + [
            "BEGIN", SessionSettings.setLocalBatchSettingsForReport, copyRewrites, copyDeletions,
            phoneRows.copyIntoStaging,
            phoneRows.insertCustomTypes(snapshot: types),
        ] + writes + [phoneRows.mergePhoneRows(snapshot: table), LedgerRun.recordBatch(.key, withResult: true)] + emptyBeforeCommit
            + ["COMMIT"]
    }
}
