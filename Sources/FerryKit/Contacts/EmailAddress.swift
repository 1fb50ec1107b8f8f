/// An email address as a business key: trimmed and lower-cased, or the reason it is not one.
/// Deliberately plain: one `@`, a non-empty local part, a dotted domain, no spaces or control characters.
public enum EmailAddress {
    public static func canonical(_ raw: String) -> Result<String, EmailRejection> {
        let value = raw.trimmingWhitespace().lowercased()
        if value.isEmpty { return .failure(EmailRejection(reason: "email is empty")) }
        if value.count > 254 { return .failure(EmailRejection(reason: "email is longer than 254 characters")) }
        // ASCII's whitespace is below 0x21; Unicode's properties are looked up only beyond ASCII.
        if value.unicodeScalars.contains(where: {
            $0.value < 0x21 || $0.value == 0x7F || ($0.value >= 0x80 && $0.properties.isWhitespace)
        }) {
            return .failure(EmailRejection(reason: "email contains spaces or control characters"))
        }
        let parts = value.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            return .failure(EmailRejection(reason: parts.count == 1 ? "email has no @" : "email has more than one @"))
        }
        let (local, domain) = (parts[0], parts[1])
        if local.isEmpty { return .failure(EmailRejection(reason: "email has nothing before the @")) }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, labels.allSatisfy({ !$0.isEmpty && !$0.hasPrefix("-") && !$0.hasSuffix("-") }) else {
            return .failure(EmailRejection(reason: "email domain '\(domain)' is not a domain name"))
        }
        return .success(value)
    }
}

public struct EmailRejection: Error, Equatable, Sendable {
    public let reason: String
}
