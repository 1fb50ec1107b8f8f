/// Whether dropping the legacy columns would lose anything of one row (a contact's phones, a project's customer).
public enum LegacyValueVerdict: Equatable, Sendable {
    /// Every number the legacy values hold is among the contact's phone rows.
    case migrated
    /// The legacy values hold no number: empty, blank, or a placeholder such as "n/a" or "-".
    case nothingToMigrate
    /// The transform cannot read (part of) a value: only a DBA can accept losing it.
    case rejected(reason: String)
    /// Readable numbers that are not among the contact's phone rows (e.g. written after the apply, or
    /// the contact already had other phones and the apply left it alone).
    case missing(numbers: [String])
    /// Another job's row the apply has not migrated yet.
    case notMigrated(reason: String)

    public var isMigrated: Bool { self == .migrated || self == .nothingToMigrate }

    public var reason: String {
        switch self {
        case .migrated: return "migrated"
        case .nothingToMigrate: return "empty"
        case .rejected(let reason): return "rejected: \(reason)"
        case .missing(let numbers): return "not in the phone rows: \(numbers.joined(separator: ", "))"
        case .notMigrated(let reason): return reason
        }
    }
}

extension PhoneTransform {
    /// Judges a contact's legacy values against the phone rows it has now. `existing` holds each row as
    /// `phoneRowKey(e164:extension:)`. The same transform as the apply decides what the values mean.
    public func contractVerdict(_ contact: LegacyPhoneContact, existing: Set<String>) -> LegacyValueVerdict {
        let fresh = LegacyPhoneContact(
            tenant: contact.tenant, contactKey: contact.contactKey, region: contact.region,
            values: contact.values, alreadyHasPhones: false)
        let outcome = transform(fresh)
        // A placeholder ("n/a", "-", blanks) holds no number: dropping it loses nothing.
        let losses = outcome.anomalies.filter {
            ($0.kind == .rejected || $0.kind == .fragmentRejected) && $0.rejectionReason != .emptyToken
        }
        if let rejected = losses.first {
            let part = rejected.kind == .fragmentRejected ? "part of " : ""
            return .rejected(reason: "\(part)\(rejected.column) '\(rejected.raw)': \(rejected.detail)")
        }
        if outcome.rows.isEmpty { return .nothingToMigrate }
        let missing = outcome.rows.filter {
            !existing.contains(Self.phoneRowKey(e164: $0.e164, extension: $0.extensionDigits))
        }
        .map { row in row.extensionDigits.map { "\(row.e164) ext. \($0)" } ?? row.e164 }
        return missing.isEmpty ? .migrated : .missing(numbers: missing)
    }

    /// How a phone row is compared: number and extension.
    public static func phoneRowKey(e164: String, extension digits: String?) -> String {
        e164 + "#" + (digits ?? "")
    }
}
