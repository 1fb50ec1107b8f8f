/// Writing normalized phone rows from a staging table: shared by the phones backfill and the CSV
/// import. Every identifier comes from a mapping and is quoted; values arrive through COPY.
struct PhoneRowsSQL {
    let phones: PhonesMapping.PhoneNumbersTable
    let types: PhonesMapping.TypeDefinitionsTable
    /// Where the two tables sit in a run's snapshot order (rollback undoes higher orders first).
    let typesOrder: Int
    let phonesOrder: Int
    /// Probe the phone table's (tenant, contact) index per staged row instead of letting the planner
    /// hash the table: worth it when the table is full before the run (naive rows being replaced).
    var probeByIndex = false
    /// Batches stage naive rows to replace (`existing_rows: replace_naive`) in `replacing`: a contact
    /// staged there is written by the replacement alone, never by the insert for contacts without phones.
    var replacesNaiveRows = false
    /// The staged rows carry their contact's timestamps (the mapping's `created_at_column`/`updated_at_column`).
    var timestampsFromSource = false
    /// The staged rows carry the key of the phone row each becomes (`row_key`), drawn by the loader as the
    /// column's default would draw it (see `drawsRowKeys`).
    var stagedRowKeys = false

    /// Whether a job's loader draws the keys of the phone rows it writes: on Citus, where the key is a uuid
    /// that defaults to a random one. Citus runs an INSERT … SELECT that evaluates a volatile default by
    /// pulling the selected rows to the coordinator and pushing them back; with the key staged, a batch's
    /// insert runs on its tenant's worker. Elsewhere the column's own default draws the key.
    static func drawsRowKeys(
        _ phones: PhonesMapping.PhoneNumbersTable, engine: DatabaseEngine, on connection: PostgresConnection
    ) throws -> Bool {
        try engine.isCitus && connection.defaultsToRandomUUID(phones.table, column: phones.id)
    }
    /// Where batches are staged (see `StagingTable`).
    var staging = StagingTable.temporary(Self.stagingTable)
    /// Where a batch's naive rows to replace wait (`existing_rows: replace_naive`), staged alike.
    var replacing = StagingTable.temporary(Self.replaceTable)
    /// Where the contacts are (the source's table or view, its tenant and key columns): a batch that
    /// found one deleted since it was read inserts again only for those still there.
    var contacts: (table: TableName, tenant: String, key: String)?

    private func q(_ name: String) -> String { quoteIdentifier(name) }

    static let stagingTable = "ferry_phone_stage"

    /// "Exactly one default per contact with phones", for rollback to keep (see `RollbackInvariant`).
    static func defaultPerContact(
        _ phones: PhonesMapping.PhoneNumbersTable, on connection: PostgresConnection
    ) throws -> RollbackInvariant {
        RollbackInvariant(
            table: try SnapshotTable.resolve(phones.table.quoted, on: connection).qualifiedName,
            group: [phones.tenant, phones.contactKey], flag: phones.isDefault)
    }

    /// Which staged rows a statement writes. A contact the same transaction just created has no phones
    /// to compare with: checking anyway made the planner hash the whole phone table every batch.
    enum StagedContacts {
        /// Contacts created in this batch (the import's inserts): written without a lookup.
        case new
        /// Contacts that existed before the batch (the backfill's, the import's updates).
        case existing
        /// Contacts whose naive row this batch rewrote: their further numbers, beside it.
        case replacing
    }

    /// The columns of one normalized number as a batch stages it (here and in the import's lines).
    static let stagedNumberColumns = """
        phone_number text NOT NULL,
        extension text,
        canonical_type text,
        custom_label text,
        custom_normalized text,
        is_default boolean NOT NULL,
        display_order integer NOT NULL
        """

    func createStagingTable(tenantType: String, keyType: String) -> [String] {
        staging.create(
            columns: """
                seq integer NOT NULL,
                tenant \(tenantType) NOT NULL,
                contact_key \(keyType) NOT NULL,
                \(Self.stagedNumberColumns),
                contact_is_new boolean NOT NULL DEFAULT false,
                created_at timestamptz,
                updated_at timestamptz\(stagedRowKeys ? ",\n    row_key uuid" : "")
                """)
    }

    var copyIntoStaging: String {
        "COPY \(staging.quoted) (seq, tenant, contact_key, phone_number, extension, canonical_type, custom_label, custom_normalized, is_default, display_order\(timestampsFromSource ? ", created_at, updated_at" : "")\(stagedRowKeys ? ", row_key" : "")) FROM STDIN"
    }

    /// The batch's tenant, by default $4 (after the snapshot's run, batch and table): see `StagingTable.sameTenant`.
    private func oneTenant(_ column: String, _ parameter: Int = 4) -> String { staging.sameTenant(column, parameter) }

    /// Custom types first seen in this batch; the first spelling wins, existing rows are kept.
    /// $1 run, $2 batch, $3 the table's qualified name for the snapshot.
    func insertCustomTypes(snapshot: SnapshotTable) -> String {
        """
        WITH created AS (
            INSERT INTO \(types.table.quoted) AS \(SnapshotTable.written) (\(q(types.tenant)), \(q(types.label)), \(q(types.normalizedLabel)))
            SELECT DISTINCT ON (tenant, custom_normalized) tenant, custom_label, custom_normalized
            FROM \(staging.quoted)
            WHERE custom_normalized IS NOT NULL\(oneTenant("tenant"))
            ORDER BY tenant, custom_normalized, seq
            ON CONFLICT (\(q(types.tenant)), \(q(types.normalizedLabel))) DO NOTHING
            RETURNING \(snapshot.returning())
        ), snapshot AS (
            \(snapshot.recordInserts(from: "created", tableOrder: typesOrder, tableNameParameter: "$3"))
        )
        SELECT count(*) FROM created
        """
    }

    /// Phone rows for contacts that still have none; returns rows and contacts inserted. `stillThere`:
    /// only for contacts that still exist (see `contacts`).
    /// $1 run, $2 batch, $3 the table's qualified name for the snapshot.
    func insertPhoneRows(
        snapshot: SnapshotTable, for staged: StagedContacts = .existing, stillThere: Bool = false
    ) -> String {
        let present =
            contacts.map { c in
                stillThere
                    ? """

                      AND EXISTS (SELECT 1 FROM \(c.table.quoted) c
                                  WHERE c.\(q(c.tenant)) = s.tenant AND c.\(q(c.key)) = s.contact_key\(oneTenant("c.\(q(c.tenant))")))
                    """ : ""
            } ?? ""
        let which =
            switch staged {
            case .replacing:
                """
                NOT s.is_default
                  AND EXISTS (SELECT 1 FROM \(replacing.quoted) r
                              WHERE r.done AND r.has_rows AND r.tenant = s.tenant AND r.contact_key = s.contact_key\(oneTenant("r.tenant")))
                """
            case .new: "s.contact_is_new"
            case .existing:
                // OFFSET 0 keeps this a probe of the (tenant, contact) index per staged row: as an anti-join
                // the planner hashed the whole phone table for every batch, which costs most when the table
                // is full from the start. A run that fills an empty table is faster with the hash. A contact
                // whose naive row the batch replaces needs no probe: it has a row, or the application
                // deleted it since the read, which leaves the contact alone like any other change. Said as
                // NOT IN (the columns are NOT NULL), a hashed subplan the scan asks before the probe: an
                // anti-join would be joined only after the probe.
                """
                NOT s.contact_is_new\(replacesNaiveRows ? """

                  AND (s.tenant, s.contact_key) NOT IN (SELECT r.tenant, r.contact_key FROM \(replacing.quoted) r WHERE true\(oneTenant("r.tenant")))
                """ : "")
                  AND NOT EXISTS (SELECT 1 FROM \(phones.table.quoted) p
                                  WHERE p.\(q(phones.tenant)) = s.tenant AND p.\(q(phones.contactKey)) = s.contact_key\(oneTenant("p.\(q(phones.tenant))"))\(probeByIndex ? "\n                  OFFSET 0" : ""))\(present)
                """
            }
        let optional = optionalColumns
        return """
            WITH inserted AS (
                INSERT INTO \(phones.table.quoted) AS \(SnapshotTable.written) (
                    \(q(phones.tenant)), \(q(phones.contactKey)), \(q(phones.phoneNumber)),
                    \(q(phones.canonicalType)), \(q(phones.customType)), \(q(phones.isDefault)), \(q(phones.displayOrder))\(optional.columns))
                SELECT s.tenant, s.contact_key, s.phone_number, s.canonical_type, t.\(q(types.id)),
                       s.is_default, s.display_order\(optional.values)
                FROM \(staging.quoted) s
                LEFT JOIN \(types.table.quoted) t
                       ON t.\(q(types.tenant)) = s.tenant AND t.\(q(types.normalizedLabel)) = s.custom_normalized\(oneTenant("t.\(q(types.tenant))"))
                WHERE \(which)\(oneTenant("s.tenant"))
                RETURNING \(snapshot.returning([phones.isDefault]))
            ), snapshot AS (
                \(snapshot.recordInserts(from: "inserted", tableOrder: phonesOrder, tableNameParameter: "$3"))
            )
            -- Every contact given phones gets exactly one default row: counting defaults counts contacts.
            SELECT count(*) AS rows_inserted, count(*) FILTER (WHERE \(q(phones.isDefault))) AS contacts_inserted FROM inserted
            """
    }

    /// Staged numbers for contacts that already have phones (an import merging into them): numbers
    /// they lack are added after their existing ones, never as the default; nothing is removed.
    /// $1 run, $2 batch, $3 the table's qualified name for the snapshot, $4 (Citus) the batch's tenant.
    func mergePhoneRows(snapshot: SnapshotTable) -> String {
        let sameContact =
            "p.\(q(phones.tenant)) = s.tenant AND p.\(q(phones.contactKey)) = s.contact_key\(oneTenant("p.\(q(phones.tenant))"))"
        let optional = optionalColumns
        return """
            WITH merged AS (
                INSERT INTO \(phones.table.quoted) AS \(SnapshotTable.written) (
                    \(q(phones.tenant)), \(q(phones.contactKey)), \(q(phones.phoneNumber)),
                    \(q(phones.canonicalType)), \(q(phones.customType)), \(q(phones.isDefault)), \(q(phones.displayOrder))\(optional.columns))
                SELECT s.tenant, s.contact_key, s.phone_number, s.canonical_type, t.\(q(types.id)), false,
                       (SELECT max(p.\(q(phones.displayOrder))) FROM \(phones.table.quoted) p WHERE \(sameContact))
                           + row_number() OVER (PARTITION BY s.tenant, s.contact_key ORDER BY s.seq)\(optional.values)
                FROM \(staging.quoted) s
                LEFT JOIN \(types.table.quoted) t
                       ON t.\(q(types.tenant)) = s.tenant AND t.\(q(types.normalizedLabel)) = s.custom_normalized\(oneTenant("t.\(q(types.tenant))"))
                WHERE NOT s.contact_is_new\(oneTenant("s.tenant")) AND EXISTS (SELECT 1 FROM \(phones.table.quoted) p WHERE \(sameContact))
                  AND NOT EXISTS (SELECT 1 FROM \(phones.table.quoted) p
                                  WHERE \(sameContact) AND p.\(q(phones.phoneNumber)) = s.phone_number
                                    \(sameExtension(table: "p", staged: "s.extension")))
                RETURNING \(snapshot.returning())
            ), snapshot AS (
                \(snapshot.recordInserts(from: "merged", tableOrder: phonesOrder, tableNameParameter: "$3"))
            )
            SELECT count(*) FROM merged
            """
    }

    /// The columns a mapping may declare absent, and the key where ferry draws it, with what ferry writes
    /// into each: ", a, b" and ", x, y".
    private var optionalColumns: (columns: String, values: String) {
        // The application's own backfill: created from created_at, updated from updated_at, then created_at.
        let present = [
            (phones.extensionDigits, "s.extension"), (phones.createdAt, "coalesce(s.created_at, now())"),
            (phones.updatedAt, "coalesce(s.updated_at, s.created_at, now())"),
            (stagedRowKeys ? phones.id : nil, "s.row_key"),
        ]
        .compactMap { column, value in column.map { (quoteIdentifier($0), value) } }
        return (present.map { ", " + $0.0 }.joined(), present.map { ", " + $0.1 }.joined())
    }

    /// "and the same extension" for a row of the phone table (nothing when the table has no extension
    /// column: ferry then stores none, see the mapping's extension policy).
    func sameExtension(table alias: String, staged: String) -> String {
        phones.extensionDigits.map { "AND \(alias).\(quoteIdentifier($0)) IS NOT DISTINCT FROM \(staged)" } ?? ""
    }

    // MARK: Naive rows replaced in place (phones job, existing_rows: replace_naive)

    static let replaceTable = "ferry_phone_replace"

    /// The naive rows a batch means to replace: the row's key, the number it held when read, and
    /// whether the contact has normalized rows to put in its place (else the row is deleted).
    func createReplaceTable(tenantType: String, keyType: String, idType: String) -> [String] {
        replacing.create(
            columns: """
                tenant \(tenantType) NOT NULL,
                contact_key \(keyType) NOT NULL,
                row_id \(idType) NOT NULL,
                naive_number text NOT NULL,
                has_rows boolean NOT NULL,
                done boolean NOT NULL DEFAULT false,
                row_ctid tid
                """) + [SnapshotTable.createPendingPreImages]
    }

    var copyIntoReplaceTable: String {
        "COPY \(replacing.quoted) (tenant, contact_key, row_id, naive_number, has_rows) FROM STDIN"
    }

    private var sameNaiveRow: String {
        "p.\(q(phones.tenant)) = r.tenant AND p.\(q(phones.contactKey)) = r.contact_key AND p.\(q(phones.id)) = r.row_id"
    }

    /// The naive row `p` is still exactly as read (`r`) and still its contact's only row.
    private func stillNaive(_ signature: (_ row: String, _ legacy: String) -> String, tenant: Int = 4) -> String {
        """
        \(sameNaiveRow) AND \(signature("p", "r.naive_number"))
          AND NOT EXISTS (SELECT 1 FROM \(phones.table.quoted) o
                          WHERE o.\(q(phones.tenant)) = p.\(q(phones.tenant))
                            AND o.\(q(phones.contactKey)) = p.\(q(phones.contactKey))
                            AND o.\(q(phones.id)) <> p.\(q(phones.id))\(oneTenant("o.\(q(phones.tenant))", tenant)))
        """
    }

    /// Locks the naive rows that are still exactly as read (still the contact's only row), records their
    /// pre-images (update or delete) and marks them done with where each stands (its ctid, which the lock
    /// keeps until the batch commits); a row the application changed meanwhile is left alone. $1 run,
    /// $2 batch, $3 the table's qualified name for the snapshot. (On Citus: `citusSnapshotNaiveRows`.)
    func snapshotNaiveRows(snapshot: SnapshotTable, signature: (_ row: String, _ legacy: String) -> String) -> String {
        // A lateral probe by primary key per staged row: as a join, the planner merged the batch with a
        // scan of the whole phone table. The lock inside the probe: locked from outside, the subquery's
        // whole output row, pre-image included, would be copied once more for the outer lock.
        """
        WITH still AS (
            SELECT p.* FROM \(replacing.quoted) r
            CROSS JOIN LATERAL (
                SELECT p.\(q(phones.tenant)), p.\(q(phones.contactKey)), p.\(q(phones.id)), p.ctid AS ferry_ctid,
                       \(snapshot.carryingKeyAndPreImage("p", object: naiveRowPreImage(snapshot)))
                FROM \(phones.table.quoted) p
                WHERE \(stillNaive(signature))
                FOR UPDATE OF p) p
        ), snapshot AS (
            INSERT INTO ferry.snapshot_rows (run_id, batch_no, table_order, table_name, action, key, \(SnapshotTable.preImageColumns))
            SELECT $1, $2, \(phonesOrder), $3, CASE WHEN r.has_rows THEN 'update' ELSE 'delete' END,
                   \(SnapshotTable.carriedKeyAndPreImage("p"))
            FROM still p JOIN \(replacing.quoted) r ON \(sameNaiveRow)
        )
        UPDATE \(replacing.quoted) r SET done = true, row_ctid = p.ferry_ctid FROM still p WHERE \(sameNaiveRow)
        """
    }

    /// On Citus a statement may not both read the distributed phone table and write the coordinator's
    /// ledger: the pre-images (locked) go to the session's pending table ($1 run, $2 batch, $3 table,
    /// $4 tenant), then the rows, still locked, are marked done ($1 tenant).
    func citusSnapshotNaiveRows(
        snapshot: SnapshotTable, signature: (_ row: String, _ legacy: String) -> String
    ) -> (preImages: String, markDone: String) {
        (
            """
            INSERT INTO \(snapshot.preImageTable) (run_id, batch_no, table_order, table_name, action, key, \(SnapshotTable.preImageColumns))
            SELECT $1, $2, \(phonesOrder), $3, CASE WHEN r.has_rows THEN 'update' ELSE 'delete' END,
                   \(snapshot.keyObject(alias: "p")), \(snapshot.preImage("p"))
            FROM \(phones.table.quoted) p JOIN \(replacing.quoted) r ON \(stillNaive(signature))
            WHERE true\(oneTenant("p.\(q(phones.tenant))"))\(oneTenant("r.tenant"))
            FOR UPDATE OF p
            """,
            """
            UPDATE \(replacing.quoted) r SET done = true FROM \(phones.table.quoted) p
            WHERE \(stillNaive(signature, tenant: 1))\(oneTenant("p.\(q(phones.tenant))", 1))\(oneTenant("r.tenant", 1))
            """
        )
    }

    /// What the rewrite of a naive row writes: each column with its new value.
    private var naiveRowUpdate: [(column: String, value: String)] {
        [
            (phones.phoneNumber, "s.phone_number"), (phones.canonicalType, "s.canonical_type"),
            (phones.customType, "t.\(q(types.id))"),
        ]
            + (phones.extensionDigits.map { [($0, "s.extension")] } ?? [])
            + (phones.updatedAt.map { [($0, "now()")] } ?? [])
    }

    /// A naive row's pre-image, for the replace table's row `r`: the columns the rewrite writes, or the
    /// whole row where it is deleted (no usable number).
    private func naiveRowPreImage(_ snapshot: SnapshotTable) -> String {
        "CASE WHEN r.has_rows THEN \(snapshot.updatedColumns(naiveRowUpdate.map(\.column), of: "p")) ELSE to_jsonb(p) END"
    }

    /// Writes each replaced contact's first normalized number into its naive row (its key kept).
    /// $1 (Citus) the batch's tenant.
    var updateNaiveRows: String {
        """
        UPDATE \(phones.table.quoted) p SET \(naiveRowUpdate.map { "\(q($0.column)) = \($0.value)" }.joined(separator: ", "))
        FROM \(replacing.quoted) r
        JOIN \(staging.quoted) s ON s.tenant = r.tenant AND s.contact_key = r.contact_key AND s.is_default
        LEFT JOIN \(types.table.quoted) t
               ON t.\(q(types.tenant)) = s.tenant AND t.\(q(types.normalizedLabel)) = s.custom_normalized\(oneTenant("t.\(q(types.tenant))", 1))
        WHERE r.done AND r.has_rows AND \(lockedNaiveRow)\(oneTenant("p.\(q(phones.tenant))", 1))\(oneTenant("r.tenant", 1))\(oneTenant("s.tenant", 1))
        """
    }

    /// `p` is the naive row `r` names, which the batch locked: found where the lock saw it (its ctid, no
    /// index descent) where the lock recorded that, else by key (Citus).
    private var lockedNaiveRow: String {
        (replacing.isDistributed ? "" : "p.ctid = r.row_ctid AND ")
            + "p.\(q(phones.tenant)) = r.tenant AND p.\(q(phones.id)) = r.row_id"
    }

    /// (Citus) After `updateNaiveRows` and `deleteNaiveRows`: the pre-images into the ledger, the
    /// rewritten rows' with the hash of each as written ($1 table, $2 tenant).
    func recordNaivePreImages(snapshot: SnapshotTable) -> String? {
        snapshot.recordPreImages(
            written: """
                SELECT \(snapshot.keyObject(alias: "p")) AS key, \(SnapshotTable.rowHash("p")) AS ferry_row_hash
                FROM \(phones.table.quoted) p JOIN \(replacing.quoted) r
                  ON p.\(q(phones.tenant)) = r.tenant AND p.\(q(phones.id)) = r.row_id
                WHERE r.done AND r.has_rows\(oneTenant("p.\(q(phones.tenant))", 2))\(oneTenant("r.tenant", 2))
                """)
    }

    /// Deletes the naive rows whose value holds no usable number (the legacy column still has it).
    /// $1 (Citus) the batch's tenant.
    var deleteNaiveRows: String {
        """
        DELETE FROM \(phones.table.quoted) p USING \(replacing.quoted) r
        WHERE r.done AND NOT r.has_rows AND \(lockedNaiveRow)\(oneTenant("p.\(q(phones.tenant))", 1))\(oneTenant("r.tenant", 1))
        """
    }
}
