/// Streams a table in keyset order by (tenant, key), one page per batch, so memory stays flat and every
/// batch boundary is a resumable position. `query(after:)` gives the page statement (parameters: tenant
/// and key after, when resuming, then the limit); the first two columns of each row are the keyset.
final class KeysetExtractor<Record: Sendable>: @unchecked Sendable {
    private var connection: PostgresConnection
    private let query: (_ after: Bool) -> String
    private let record: ([String?]) -> Record
    private let pageSize: Int
    private var position: (tenant: String, key: String)?
    private var exhausted = false
    private let retry: RetryPolicy?
    private let log: @Sendable (String) -> Void
    private let reconnect: (() throws -> PostgresConnection)?
    private let what: String
    /// The key a resumed run starts after (nil from the start of the table).
    let startedAfter: [String]?

    /// `after` resumes after a committed batch's last key; `reconnect` (apply only) replaces a lost session.
    init(
        connection: PostgresConnection, what: String, pageSize: Int, after: [String]? = nil,
        retry: RetryPolicy? = nil, log: @escaping @Sendable (String) -> Void = { _ in },
        reconnect: (() throws -> PostgresConnection)? = nil,
        query: @escaping (_ after: Bool) -> String, record: @escaping ([String?]) -> Record
    ) {
        self.connection = connection
        self.what = what
        self.pageSize = pageSize
        if let after, after.count == 2 { position = (after[0], after[1]) }
        startedAfter = after?.count == 2 ? after : nil
        self.retry = retry
        self.log = log
        self.reconnect = reconnect
        self.query = query
        self.record = record
    }

    func nextPage() throws -> [Record]? {
        guard !exhausted else { return nil }
        let run = { [self] () throws -> QueryResult in
            if let position {
                return try connection.query(query(true), [position.tenant, position.key, String(pageSize)])
            }
            return try connection.query(query(false), [String(pageSize)])
        }
        let result: QueryResult
        if let retry, let reconnect {
            result = try retry.run(
                "reading \(what)", reconnect: { [self] in connection = try reconnect() }, log: log, run)
        } else {
            result = try run()
        }
        if result.rows.count < pageSize { exhausted = true }
        guard let last = result.rows.last else { return nil }
        position = (last[0] ?? "", last[1] ?? "")
        return result.rows.map(record)
    }
}
