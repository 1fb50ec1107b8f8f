import Foundation

/// Which writer session a line of the file goes to under `ferry import --jobs N`. Every line of one
/// contact key goes to the same session: that session's memory of the lines it has seen then finds
/// every duplicate in the file, and no two sessions ever write one contact. The division depends only
/// on the key and N, so a resumed run divides its lines as its first part did.
enum ImportPartition {
    static func of(_ outcome: ImportRowOutcome, among count: Int) -> Int {
        guard count > 1, case .contact(let contact) = outcome else { return 0 }
        return of(tenant: contact.tenant, email: contact.emailAsWritten, among: count)
    }

    static func of(tenant: String, email: String, among count: Int) -> Int {
        guard count > 1 else { return 0 }
        // FNV-1a: the same on every run and every machine (Swift's Hasher is seeded per process).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in tenant.lowercased().utf8 + [0] + foldedKey(email).utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return Int(hash % UInt64(count))
    }

    /// The database compares emails by its own lower(), which depends on its locale (a Turkish lower('I')
    /// is 'ı'; lower('İ') is 'i' in some, 'i̇' in others). The division must send emails any lower() calls
    /// equal to one session, so it folds more than any of them: case, diacritics and width, and the
    /// dotless i to i. Folding more only puts some distinct contacts on one session, which is harmless.
    static func foldedKey(_ email: String) -> String {
        if email.utf8.allSatisfy({ $0 < 0x80 }) {
            return String(decoding: email.utf8.map { $0 >= 0x41 && $0 <= 0x5a ? $0 | 0x20 : $0 }, as: UTF8.self)
        }
        return email.folding(options: [.caseInsensitive, .diacriticInsensitive, .widthInsensitive], locale: nil)
            .replacingOccurrences(of: "ı", with: "i")
    }
}
