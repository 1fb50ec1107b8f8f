/// Legacy contacts in keyset order by (tenant, key): the phones job's extract stage.
typealias PhonesExtractor = KeysetExtractor<LegacyPhoneContact>

extension KeysetExtractor where Record == LegacyPhoneContact {
    convenience init(
        connection: PostgresConnection, sql: PhonesSQL, pageSize: Int, after: [String]? = nil,
        retry: RetryPolicy? = nil, log: @escaping @Sendable (String) -> Void = { _ in },
        reconnect: (() throws -> PostgresConnection)? = nil
    ) {
        self.init(
            connection: connection, what: "contacts", pageSize: pageSize, after: after, retry: retry, log: log,
            reconnect: reconnect, query: sql.extractPage(after:)
        ) { row in
            let valueCount = row.count - 4
            return LegacyPhoneContact(
                tenant: row[0] ?? "", contactKey: row[1] ?? "", region: row[2],
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
