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

    /// `after` resumes after a committed batch's last key; `reconnect` (apply only) replaces a lost session;
    /// `tenants` is the statement's $4 (NULL: every tenant).
    init(
        connection: PostgresConnection, what: String, query: String, pageSize: Int, tenants: String?,
        after: [String]? = nil, retry: RetryPolicy? = nil, log: @escaping @Sendable (String) -> Void = { _ in },
        reconnect: (() throws -> PostgresConnection)? = nil, record: @escaping (Row) throws -> Record
    ) {
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
        guard !exhausted else { return nil }
        let run = { [self] () throws -> QueryResult in
            try connection.query(query, [position?.tenant, position?.key, String(pageSize), tenants])
        }
        let result: QueryResult
        if let retry, let reconnect {
            result = try retry.run(
                "reading \(what)", reconnect: { [self] in connection = try reconnect() }, log: log, run)
        } else {
            result = try run()
        }
        if result.rows.count < pageSize { exhausted = true }
        let rows = result.decoded(what, key: "ferry_key")
        guard let last = rows.last else { return nil }
        position = (try last.required("ferry_tenant"), try last.required("ferry_key"))
        return try rows.map(record)
    }
}
