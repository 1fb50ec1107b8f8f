/// What a job's contract step drops, and how it judges one row's legacy value: the rest (checks,
/// refusal, the drop under a bounded lock, kept values, rollback) is the same for every job.
public protocol ContractSubject: Sendable {
    var job: String { get }
    var mappingFile: String { get }
    var mappingSHA256: String { get }
    var table: TableName { get }
    var legacyColumns: [String] { get }
    var load: LoadSettings { get }
    /// What one row is ("contact", "project"): the key files' column is `<noun>_key`.
    var rowNoun: String { get }
    /// The source's tenant and key columns, and the alias `rows` gives the source row.
    var tenantColumn: String { get }
    var keyColumn: String { get }
    var rowAlias: String { get }
    /// Rows holding a legacy value, with `ferry_tenant`, `ferry_key` and `ferry_changed` (`changed`: the
    /// row changed since the apply), `joins` added to the source row, `filter` ANDed to the row's
    /// conditions, and `sameTenant` naming the filtered tenant for another table's column (nothing when
    /// all tenants are read). See `legacyRows` and `citusLegacyRows`.
    func rows(changed: String, from joins: String, filter: String, sameTenant: (String) -> String) -> String
    /// (Citus) Where the job's applies record what they read (`LegacyReads`); nil where the job records
    /// no reads: the contract is refused there.
    var citusReads: TableName? { get }
    /// A row's verdict and its legacy values as text.
    func judge(_ row: Row) throws -> (verdict: LegacyValueVerdict, values: String)
}

extension ContractSubject {
    /// The rows judged by xmin. $1 is the last apply's start xid, $2 (when not NULL) keeps only rows
    /// written from that xid on, $3 the xids of ferry's own batches (a row last written by ferry has not
    /// changed its legacy value).
    public var legacyRows: String {
        rows(changed: changedSinceApply(rowAlias), from: "", filter: writtenSince(rowAlias), sameTenant: { _ in "" })
    }

    /// On Citus (a row's xmin is its worker's): the same rows of one tenant ($2, of type `tenantType`,
    /// named so that Citus reads that tenant's shard), with `ferry_changed` judged against what the
    /// job's successful applies (runs $1) read. nil where the job records no reads.
    public func citusLegacyRows(tenantType: String) -> String? {
        guard citusReads != nil else { return nil }
        let citus = LegacyReads.ContractFilter(
            job: job, columns: legacyColumns, alias: rowAlias, tenantColumn: tenantColumn, keyColumn: keyColumn,
            tenantType: tenantType)
        return rows(changed: citus.changed, from: citus.join, filter: citus.filter, sameTenant: citus.sameTenant)
    }
}

/// `xmin` newer than the last apply's start, and not written by one of ferry's batches.
func changedSinceApply(_ alias: String) -> String {
    "(\(alias).xmin::text::bigint >= $1::bigint % 4294967296 AND \(alias).xmin::text::bigint <> ALL ($3::bigint[]))"
}

func writtenSince(_ alias: String) -> String {
    "($2::bigint IS NULL OR \(alias).xmin::text::bigint >= $2::bigint % 4294967296)"
}
