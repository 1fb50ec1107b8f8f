/// Streams legacy contacts in keyset order by (tenant, key), one page per batch, so memory stays
/// flat and every batch boundary is a resumable position.
final class PhonesExtractor: @unchecked Sendable {
    private var connection: PostgresConnection
    private let sql: PhonesSQL
    private let pageSize: Int
    private var position: (tenant: String, key: String)?
    private var exhausted = false

    /// `after` resumes after a committed batch's last key; `reconnect` (apply only) replaces a lost session.
    private let retry: RetryPolicy?
    private let log: @Sendable (String) -> Void
    private let reconnect: (() throws -> PostgresConnection)?

    init(connection: PostgresConnection, sql: PhonesSQL, pageSize: Int, after: [String]? = nil,
         retry: RetryPolicy? = nil, log: @escaping @Sendable (String) -> Void = { _ in },
         reconnect: (() throws -> PostgresConnection)? = nil) {
        self.connection = connection
        self.sql = sql
        self.pageSize = pageSize
        if let after, after.count == 2 { position = (after[0], after[1]) }
        self.retry = retry
        self.log = log
        self.reconnect = reconnect
    }

    func nextPage() throws -> [LegacyPhoneContact]? {
        guard !exhausted else { return nil }
        let query = { [self] () throws -> QueryResult in
            if let position {
                return try connection.query(sql.extractPage(after: true), [position.tenant, position.key, String(pageSize)])
            }
            return try connection.query(sql.extractPage(after: false), [String(pageSize)])
        }
        let result: QueryResult
        if let retry, let reconnect {
            result = try retry.run("reading contacts", reconnect: { [self] in connection = try reconnect() }, log: log, query)
        } else {
            result = try query()
        }
        if result.rows.count < pageSize { exhausted = true }
        guard let last = result.rows.last else { return nil }
        position = (last[0] ?? "", last[1] ?? "")
        let valueCount = result.columns.count - 4
        return result.rows.map { row in
            LegacyPhoneContact(tenant: row[0] ?? "", contactKey: row[1] ?? "", region: row[2],
                               values: Array(row[3..<(3 + valueCount)]), alreadyHasPhones: row[3 + valueCount] == "t")
        }
    }
}

/// One batch as it travels from the transform to a sink.
struct PhonesBatch: Sendable {
    let number: Int
    let contacts: [LegacyPhoneContact]
    let outcomes: [PhoneContactOutcome]
    let firstKey: [String]
    let lastKey: [String]
}
