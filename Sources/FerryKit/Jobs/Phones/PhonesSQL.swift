/// Every statement the phones job runs, built from the mapping with every identifier quoted.
/// Values always travel as parameters or through COPY, never inside the statement text.
struct PhonesSQL {
    let mapping: PhonesMapping

    private var source: PhonesMapping.Source { mapping.source }
    private var phones: PhonesMapping.PhoneNumbersTable { mapping.phoneNumbers }
    private var types: PhonesMapping.TypeDefinitionsTable { mapping.typeDefinitions }
    private func q(_ name: String) -> String { quoteIdentifier(name) }

    // MARK: Extract

    /// One keyset page of legacy contacts. `after` is nil for the first page, else ($1 tenant, $2 key); $n is the limit.
    func extractPage(after: Bool) -> String {
        let region = source.regionColumn.map { "s.\(q($0))::text" } ?? "NULL::text"
        let values = source.columns.map { "s.\(q($0.name))::text" }.joined(separator: ", ")
        let keyset = after ? "WHERE (s.\(q(source.tenantColumn)), s.\(q(source.keyColumn))) > ($1, $2)" : ""
        let limit = after ? "$3" : "$1"
        return """
            SELECT s.\(q(source.tenantColumn))::text, s.\(q(source.keyColumn))::text, \(region), \(values),
                   EXISTS (SELECT 1 FROM \(phones.table.quoted) p
                           WHERE p.\(q(phones.tenant)) = s.\(q(source.tenantColumn))
                             AND p.\(q(phones.contactKey)) = s.\(q(source.keyColumn))) AS has_phones
            FROM \(source.table.quoted) s
            \(keyset)
            ORDER BY s.\(q(source.tenantColumn)), s.\(q(source.keyColumn))
            LIMIT \(limit)
            """
    }

    /// Source rows up to a resumed run's last key ($1 tenant, $2 key), which its earlier part read.
    var contactsThrough: String {
        """
        SELECT count(*) FROM \(source.table.quoted) s
        WHERE (s.\(q(source.tenantColumn)), s.\(q(source.keyColumn))) <= ($1, $2)
        """
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
        "SELECT \(q(types.tenant))::text, \(q(types.normalizedLabel)) FROM \(types.table.quoted)"
    }

    // MARK: Load

    var phoneRows: PhoneRowsSQL {
        PhoneRowsSQL(phones: phones, types: types, typesOrder: 1, phonesOrder: 2)
    }

    /// What apply runs, in order: once per session, then for every batch in one transaction ($1 run,
    /// $2 batch, $3 the table's name for its snapshot rows). For the plan report's appendix.
    func applyStatements(types: SnapshotTable, phones: SnapshotTable, tenantType: String, keyType: String) -> [String] {
        [
            phoneRows.createStagingTable(tenantType: tenantType, keyType: keyType), "BEGIN", Self.setLocalTimeouts,
            phoneRows.copyIntoStaging, phoneRows.insertCustomTypes(snapshot: types),
            phoneRows.insertPhoneRows(snapshot: phones),
            Self.recordBatch, "COMMIT",
        ]
    }

    static let setLocalTimeouts =
        "SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)"

    /// The batch's cursor, committed with its rows: a crash can neither skip nor repeat a batch.
    static let recordBatch = """
        WITH batch AS (
            INSERT INTO ferry.batches (run_id, batch_no, first_key, last_key, rows_inserted)
            VALUES ($1, $2, $3::text[], $4::text[], $5)
        )
        INSERT INTO ferry.events (run_id, kind, detail)
        VALUES ($1, 'batch committed', jsonb_build_object('batch', $2::int, 'first_key', $3::text[], 'last_key', $4::text[],
                                                          'rows_inserted', $5::int, 'custom_types_created', $6::int))
        """

    /// Per tenant: source rows and a hash of every mapped value in key order. plan and apply --plan
    /// both use it, so they compare like with like.
    var sourceFingerprint: String {
        let region = source.regionColumn.map { "s.\(q($0))::text" } ?? "NULL::text"
        let values = ([region] + source.columns.map { "s.\(q($0.name))::text" }).map { "coalesce(\($0), E'\\\\N')" }
        return """
            SELECT s.\(q(source.tenantColumn))::text, count(*),
                   md5(string_agg(md5(concat_ws(E'\\x1f', s.\(q(source.keyColumn))::text, \(values.joined(separator: ", ")))), ''
                                  ORDER BY s.\(q(source.keyColumn))))
            FROM \(source.table.quoted) s
            GROUP BY 1 ORDER BY 1
            """
    }

    /// Per tenant, source rows written (inserted or updated) by transactions from id $1 on: after a plan's
    /// snapshot, or after a run started (32-bit xid compare; nothing is kept for the four billion
    /// transactions it would take to wrap).
    var sourceRowsWrittenSincePerTenant: String {
        """
        SELECT \(q(source.tenantColumn))::text, count(*) FROM \(source.table.quoted)
        WHERE xmin::text::bigint >= $1::bigint % 4294967296 GROUP BY 1
        """
    }

}
