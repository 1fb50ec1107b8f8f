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
            self = .custom(label.trimmingWhitespace())
        }
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

/// The deduplication key of a custom type: trimmed, inner whitespace collapsed, lower-cased.
public func normalizePhoneLabel(_ label: String) -> String {
    label.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ").lowercased()
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
}

extension String {
    func trimmingWhitespace() -> String {
        var view = Substring(self)
        while let first = view.first, first.isWhitespace { view = view.dropFirst() }
        while let last = view.last, last.isWhitespace { view = view.dropLast() }
        return String(view)
    }
}
