import Foundation

/// The phone types every app understands; anything else is a tenant's custom type.
public enum CanonicalPhoneType: String, CaseIterable, Codable, Sendable {
    case work, mobile, home, fax, other
}

public enum PhoneType: Hashable, Sendable, CustomStringConvertible {
    case canonical(CanonicalPhoneType)
    /// A tenant-scoped label, as first spelled in the source.
    case custom(String)

    /// Reads "mobile" as canonical and anything else as a custom label.
    public init(label: String) {
        if let canonical = CanonicalPhoneType(rawValue: normalizePhoneLabel(label)) {
            self = .canonical(canonical)
        } else {
            self = .customLabel(label)
        }
    }

    /// A custom type as ferry stores it: trimmed, in Unicode NFC, so that "Pagé" typed with a composed é
    /// and with e + a combining accent is one label in the plan (Swift compares them equal) and in
    /// PostgreSQL (which compares bytes).
    public static func customLabel(_ label: String) -> PhoneType {
        .custom(label.trimmingWhitespace().precomposedStringWithCanonicalMapping)
    }

    public var description: String {
        switch self {
        case .canonical(let type): return type.rawValue
        case .custom(let label): return "custom:\(label)"
        }
    }

    public var canonical: CanonicalPhoneType? {
        if case .canonical(let type) = self { return type }
        return nil
    }

    public var customLabel: String? {
        if case .custom(let label) = self { return label }
        return nil
    }
}

/// The deduplication key of a custom type: trimmed, inner whitespace collapsed, lower-cased, NFC.
public func normalizePhoneLabel(_ label: String) -> String {
    label.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ").lowercased()
        .precomposedStringWithCanonicalMapping
}

/// E.164 as the target stores it: "+", a first digit 1-9, at most 15 digits in all, ASCII only. E.164
/// sets no minimum beyond a country code and a digit: libphonenumber's own examples include six-digit
/// numbers (+98 9601).
/// What ferry stores as a phone number: E.164, or (a table without an extension column, RFC 3966
/// policy) E.164 followed by `;ext=` and ASCII digits.
public func isStoredPhoneNumber(_ text: String) -> Bool {
    // Most rows are plain E.164: decide those without searching the text.
    if isE164(text) { return true }
    let bytes = text.utf8
    guard let semicolon = bytes.firstIndex(of: UInt8(ascii: ";")) else { return false }
    let rest = bytes[bytes.index(after: semicolon)...]
    guard rest.starts(with: "ext=".utf8) else { return false }
    let digits = rest.dropFirst(4)
    return isE164(String(decoding: bytes[..<semicolon], as: UTF8.self)) && !digits.isEmpty
        && digits.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
}

public func isE164(_ text: String) -> Bool {
    let bytes = text.utf8
    guard bytes.first == 0x2B, (3...16).contains(bytes.count) else { return false }
    let digits = bytes.dropFirst()
    return digits.first != 0x30 && digits.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
}

/// Why a value (or a piece of it) is not loaded as a phone.
public enum PhoneRejectionReason: String, CaseIterable, Codable, Sendable {
    case emptyToken = "empty-ish token"
    case notANumber = "not a number"
    case unrecognizedText = "unrecognized text"
    case tooShort = "too short"
    case tooLong = "too long"
    case invalidCountryCode = "invalid country code"
    case invalidForRegion = "invalid for region"
    case unsupportedRegion = "unsupported region"
    /// Longer than any phone field: rejected before parsing, which costs time with the length.
    case fieldTooLong = "too long for a phone field"
    /// The number has an extension and the phone table has no column for it (the mapping's policy).
    case extensionWithoutColumn = "has an extension, and the phone table has no extension column"
    /// Written as a North American number and valid as one, in a tenant outside North America (the
    /// mapping's `region_ambiguous` policy).
    case regionAmbiguous = "region ambiguous (a North American number too)"
}

/// Which numbers load: those libphonenumber calls valid (assigned in its region's metadata), or also
/// those of a possible length there, as an application that checks "is possible" accepts them (a range
/// assigned after the library's metadata was built is one).
public enum NumberAcceptance: String, Sendable, CaseIterable {
    case valid
    /// A number that is possible but not valid loads too, listed under the anomaly "possible, not valid".
    /// A local-only number (too short to dial from elsewhere) never does.
    case possible
}

/// What happens to a number that is valid in its region and, as written, in North America as well.
public enum RegionAmbiguity: String, Sendable, CaseIterable {
    /// Left where it is, rejected with the reason, listed: someone must say which was meant.
    case reject
    /// Loaded as a number of its own region.
    case load
}

/// Where a number's extension goes.
public enum ExtensionHandling: String, Sendable, CaseIterable {
    /// The phone table's extension column.
    case column
    /// The table has none: the number is rejected with that reason (never stored without it).
    case reject
    /// The table has none: kept in the number in RFC 3966's form, `+4930123456;ext=78`.
    case rfc3966
}

extension String {
    func trimmingWhitespace() -> String {
        // Most values begin and end with a printable ASCII character (no cluster that starts or ends
        // with one is whitespace): nothing to look up.
        if let first = utf8.first, let last = utf8.last, (0x21...0x7E).contains(first), (0x21...0x7E).contains(last) {
            return self
        }
        var view = Substring(self)
        while let first = view.first, first.isAnyWhitespace { view = view.dropFirst() }
        while let last = view.last, last.isAnyWhitespace { view = view.dropLast() }
        return String(view)
    }
}
