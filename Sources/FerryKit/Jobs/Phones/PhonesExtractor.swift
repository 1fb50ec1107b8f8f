/// Streams legacy contacts in keyset order by (tenant, key), one page per batch, so memory stays
/// flat and every batch boundary is a resumable position.
final class PhonesExtractor: @unchecked Sendable {
    private let connection: PostgresConnection
    private let sql: PhonesSQL
    private let pageSize: Int
    private var position: (tenant: String, key: String)?
    private var exhausted = false

    init(connection: PostgresConnection, sql: PhonesSQL, pageSize: Int) {
        self.connection = connection
        self.sql = sql
        self.pageSize = pageSize
    }

    func nextPage() throws -> [LegacyPhoneContact]? {
        guard !exhausted else { return nil }
        let result: QueryResult
        if let position {
            result = try connection.query(sql.extractPage(after: true), [position.tenant, position.key, String(pageSize)])
        } else {
            result = try connection.query(sql.extractPage(after: false), [String(pageSize)])
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
    let outcomes: [PhoneContactOutcome]
    let firstKey: String
    let lastKey: String
}
