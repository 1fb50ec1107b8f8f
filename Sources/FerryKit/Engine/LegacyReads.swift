/// (Citus) What each apply read of the legacy values a job's contract drops, by source row: md5 of
/// the values (computed by the extract in the same snapshot as the values) and the run.
/// `ferry.legacy_reads_<job>` is distributed like the source. On Citus a row's xmin is its worker's,
/// so the contract judges "changed since the apply" by these instead: a value is unchanged only if its
/// newest read is exactly it and was made by a successful apply. A phones batch records only the values
/// it may leave unmigrated and forgets the contacts it migrates whole; a customers batch records every
/// project it reads. Nothing is recorded on PostgreSQL (xmin serves there).
struct LegacyReads: Sendable {
    let table: TableName
    let staging: StagingTable
    private let engine: DatabaseEngine

    init(job: String, engine: DatabaseEngine, writer: Int = 0) {
        table = Self.table(of: job)
        staging = .forEngine(
            engine, name: "stage_\(job.replacingOccurrences(of: "-", with: "_"))_reads", writer: writer)
        self.engine = engine
    }

    static func table(of job: String) -> TableName {
        TableName(schema: "ferry", name: "legacy_reads_\(job.replacingOccurrences(of: "-", with: "_"))")
    }

    /// md5 of a source row's legacy `columns` (its text form), as the extract selects it and the contract
    /// compares it.
    static func hash(_ columns: [String], alias: String) -> String {
        "md5(row(\(columns.map { "\(alias).\(quoteIdentifier($0))" }.joined(separator: ", ")))::text)"
    }

    var isRecorded: Bool { engine.isCitus }

    /// Once per session: the table of reads, and the batch's reads staged beside it.
    func create(tenantType: String, keyType: String) -> [String] {
        guard engine.isCitus else { return [] }
        // The writers of a parallel apply start together: one creates the table, under a lock.
        return [
            """
            DO $ferry$
            BEGIN
            PERFORM pg_advisory_xact_lock(hashtext(\(sqlLiteral("ferry create " + table.quoted))));
            CREATE TABLE IF NOT EXISTS \(table.quoted) (
                tenant \(tenantType) NOT NULL, row_key \(keyType) NOT NULL, values_hash text NOT NULL,
                run_id bigint NOT NULL, PRIMARY KEY (tenant, row_key));
            IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = \(sqlLiteral(table.quoted))::regclass) THEN
                \(engine.distribute(table, on: "tenant"))
            END IF;
            END
            $ferry$
            """
        ]
            + staging.create(
                columns: "tenant \(tenantType) NOT NULL, row_key \(keyType) NOT NULL, values_hash text NOT NULL")
    }

    var copyIntoStaging: String { "COPY \(staging.quoted) (tenant, row_key, values_hash) FROM STDIN" }

    /// The batch's reads, as of run $2, for tenant $1.
    var record: String {
        """
        INSERT INTO \(table.quoted) AS r (tenant, row_key, values_hash, run_id)
        SELECT tenant, row_key, values_hash, $2::bigint FROM \(staging.quoted) WHERE tenant = $1
        ON CONFLICT (tenant, row_key) DO UPDATE SET values_hash = excluded.values_hash, run_id = excluded.run_id
        """
    }

    /// Whether runs other than $2 recorded reads in tenant $1.
    var hasEarlierReads: String {
        "SELECT EXISTS (SELECT 1 FROM \(table.quoted) WHERE tenant = $1 AND run_id <> $2::bigint)"
    }

    /// The reads of rows the batch migrates whole go ($1 tenant): such a row is migrated while its value
    /// stays, and once changed it has no read, so it counts as changed, as it is. `staged` names the
    /// batch's staging table and its column holding the row key.
    func forget(staged table: StagingTable, keyColumn: String) -> String? {
        guard isRecorded else { return nil }
        return """
            DELETE FROM \(self.table.quoted) r USING \(table.quoted) s
            WHERE r.tenant = s.tenant AND r.row_key = s.\(quoteIdentifier(keyColumn)) AND r.tenant = $1 AND s.tenant = $1
            """
    }

    /// In a batch's transaction: COPYs `rows` (tenant, key, hash per row read) and records them for run
    /// `run`, tenant `tenant`. Nothing when the engine records no reads.
    func record(_ rows: CopyTextEncoder, run: String, tenant: [String], on connection: PostgresConnection) throws {
        guard isRecorded, !rows.bytes.isEmpty else { return }
        _ = try connection.copyIn(copyIntoStaging) { write in try rows.bytes.withUnsafeBytes { try write($0) } }
        try connection.query(record, tenant + [run])
        if let empty = staging.emptyBeforeCommit { try connection.query(empty, tenant) }
    }

    /// What a contract subject's statement adds on Citus for the source row `alias`, read a tenant at a
    /// time: the join with the row's newest read (alias `r`), the one-tenant filter ($2, of type
    /// `tenantType`), and the judgement: the row changed unless a successful apply (runs $1, a
    /// bigint[]) read last exactly its `columns` as they are now. An apply rolled back since read it
    /// last: then the row counts as changed until the next apply, the safe side.
    struct ContractFilter {
        let join: String
        let filter: String
        let changed: String
        let tenantType: String

        init(job: String, columns: [String], alias: String, tenantColumn: String, keyColumn: String, tenantType: String)
        {
            let tenant = "\(alias).\(quoteIdentifier(tenantColumn))", key = "\(alias).\(quoteIdentifier(keyColumn))"
            join =
                "\nLEFT JOIN \(LegacyReads.table(of: job).quoted) r ON r.tenant = \(tenant) AND r.row_key = \(key) AND r.tenant = $2::\(tenantType)"
            filter = "\(tenant) = $2::\(tenantType)"
            changed =
                "(r.run_id IS NULL OR r.run_id <> ALL ($1::bigint[]) OR r.values_hash IS DISTINCT FROM \(LegacyReads.hash(columns, alias: alias)))"
            self.tenantType = tenantType
        }

        /// The tenant named again for another table's `column`, so that one shard group serves.
        func sameTenant(_ column: String) -> String { " AND \(column) = $2::\(tenantType)" }
    }
}
