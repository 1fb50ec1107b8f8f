/// What one writer of a parallel apply takes at a time: a tenant's rows after `after` (from its first
/// without one) up to and including the key `until` (to its last without one).
struct TenantSlice: Sendable {
    let tenant: String
    var after: [String]?
    let until: Bound?

    /// The last key of a slice, compared as the key column's type.
    struct Bound: Sendable {
        let key: String
        let keyType: String

        /// A job's keyset page cut at `bound` ($5), or the page itself without one: a page that comes
        /// back shorter than asked ends the slice, as a short page ends a tenant. The page is one
        /// tenant's, so its keys alone order it.
        static func page(_ page: String, cutAt bound: Bound?) -> String {
            guard let keyType = bound?.keyType else { return page }
            return """
                SELECT * FROM (\(page)) ferry_slice
                WHERE ferry_slice.ferry_key::\(keyType) <= $5::\(keyType)
                ORDER BY ferry_slice.ferry_key::\(keyType)
                """
        }
    }
}
