/// Streams a source in keyset order by (tenant, key), one page per batch, so memory stays flat and every
/// batch boundary is a resumable position. The page statement follows `KeysetSource`'s parameters and
/// returns its keyset as the columns `ferry_tenant` and `ferry_key`; rows are decoded by column name.
/// Sendable because the pipeline hands it to its extract thread, which alone calls it until the run ends.
final class KeysetExtractor<Record: Sendable>: @unchecked Sendable {
    private var connection: PostgresConnection
    private let query: String
    private let record: (Row) throws -> Record
    private let pageSize: Int
    private let tenants: String?
    private var position: (tenant: String, key: String)?
    private var exhausted = false
    private let retry: RetryPolicy?
    private let log: @Sendable (String) -> Void
    private let reconnect: (() throws -> PostgresConnection)?
    private let what: String
    /// The key a resumed run starts after (nil from the start of the source).
    let startedAfter: [String]?
    /// Read one tenant at a time, in this order (the first is being read): on Citus a page restricted to
    /// one tenant is read from the one shard holding it, where a page across tenants made every shard
    /// sort and send a whole page for the coordinator to merge. Empty: every tenant at once.
    private var tenantWalk: [String]
    /// The page statement for one tenant (`TableMigration.extractTenantPage`), used while walking.
    private let tenantQuery: String?
    /// The last key of a slice of one tenant (`TenantSlice`): the statements then take it as $5.
    private let until: String?

    /// `after` resumes after a committed batch's last key; `reconnect` (apply only) replaces a lost session;
    /// `tenants` is the statement's $4 (NULL: every tenant).
    init(
        connection: PostgresConnection, what: String, query: String, pageSize: Int, tenants: String?,
        after: [String]? = nil, retry: RetryPolicy? = nil, log: @escaping @Sendable (String) -> Void = { _ in },
        reconnect: (() throws -> PostgresConnection)? = nil, tenantWalk: [String] = [], tenantQuery: String? = nil,
        until: String? = nil, record: @escaping (Row) throws -> Record
    ) {
        self.until = until
        self.tenantWalk = tenantWalk
        self.tenantQuery = tenantQuery
        self.connection = connection
        self.what = what
        self.query = query
        self.pageSize = pageSize
        self.tenants = tenants
        if let after, after.count == 2 { position = (after[0], after[1]) }
        startedAfter = after?.count == 2 ? after : nil
        self.retry = retry
        self.log = log
        self.reconnect = reconnect
        self.record = record
    }

    func nextPage() throws -> [Record]? {
        while !exhausted {
            let scope = tenantWalk.first.map { textArrayLiteral([$0]) } ?? tenants
            let statement = tenantWalk.isEmpty ? query : tenantQuery ?? query
            let run = { [self] () throws -> QueryResult in
                try connection.query(
                    statement, [position?.tenant, position?.key, String(pageSize), scope] + (until.map { [$0] } ?? []))
            }
            let result: QueryResult
            if let retry, let reconnect {
                result = try retry.run(
                    "reading \(what)", reconnect: { [self] in connection = try reconnect() }, log: log, run)
            } else {
                result = try run()
            }
            let rows = result.decoded(what, key: "ferry_key")
            if let last = rows.last {
                position = (try last.required("ferry_tenant"), try last.required("ferry_key"))
            }
            if result.rows.count < pageSize {
                // This tenant (or the whole source) is read: the next tenant starts from its beginning.
                if tenantWalk.count > 1 {
                    tenantWalk.removeFirst()
                    position = nil
                } else {
                    exhausted = true
                }
            }
            if !rows.isEmpty { return try rows.map(record) }
        }
        return nil
    }
}
