/// One phone row as the application's table holds it.
public struct ExistingPhoneRow: Codable, Equatable, Sendable {
    public let id: String
    public let number: String
    public let ext: String?

    public init(id: String, number: String, ext: String? = nil) {
        self.id = id
        self.number = number
        self.ext = ext
    }
}

/// A contact's phone rows, read from the phone table itself (the legacy column is gone).
public struct PhoneRowsOfContact: Equatable, Sendable {
    public let tenant: String
    public let contactKey: String
    /// The region from the mapping's lookup (nil: the tenant's or the default).
    public let region: String?
    public let rows: [ExistingPhoneRow]

    public init(tenant: String, contactKey: String, region: String? = nil, rows: [ExistingPhoneRow]) {
        self.tenant = tenant
        self.contactKey = contactKey
        self.region = region
        self.rows = rows
    }
}

/// What happens to a row that holds no usable number.
public enum UnusableRows: String, Sendable {
    /// Left as it is, and reported (the default: ferry never deletes a value nobody can read back).
    case keep
    /// Deleted (recorded with its pre-image, so a rollback brings it back).
    case delete
}

/// What the in-place job does with one contact's rows.
public struct InPlaceDecision: Equatable, Sendable {
    /// A row whose value becomes its first normalized number (its key, type, default and order kept).
    public struct Rewrite: Equatable, Sendable {
        public let id: String
        /// The value as read: the write happens only if the row still holds it.
        public let was: String
        public let number: String
        public let ext: String?
    }

    public var rewrites: [Rewrite] = []
    /// Further numbers found in a row's value: added after the contact's rows, never the default.
    public var additions: [PhoneRowDraft] = []
    /// Rows with no usable number, when the mapping deletes them (`unusable_rows: delete`).
    public var deletions: [(id: String, was: String)] = []
    public var unchanged = 0
    public var unusable = 0
    public var anomalies: [PhoneAnomaly] = []
    public var region = ""
    public var regionOrigin = RegionOrigin.default

    public static func == (lhs: InPlaceDecision, rhs: InPlaceDecision) -> Bool {
        lhs.rewrites == rhs.rewrites && lhs.additions == rhs.additions
            && lhs.deletions.map(\.id) == rhs.deletions.map(\.id) && lhs.unchanged == rhs.unchanged
            && lhs.unusable == rhs.unusable && lhs.anomalies == rhs.anomalies
    }
}

/// The in-place job's transform: pure. A row already in stored form is left alone; any other row's
/// value is read as the backfill would read a legacy value (same parser, regions, labels, extension
/// policy); its first number goes into the row, further ones beside it.
public struct PhonesInPlaceTransform: Sendable {
    let phones: PhoneTransform
    let unusableRows: UnusableRows
    /// The phone table's column, for reports.
    let column: String

    public init(phones: PhoneTransform, unusableRows: UnusableRows, column: String) {
        self.phones = phones
        self.unusableRows = unusableRows
        self.column = column
    }

    public func decide(_ contact: PhoneRowsOfContact) -> InPlaceDecision {
        var decision = InPlaceDecision()
        var known = Set<String>()
        let stored = contact.rows.filter { isStoredPhoneNumber($0.number) && Self.asciiDigits($0.ext) }
        for row in stored { known.insert(row.number + "#" + (row.ext ?? "")) }
        decision.unchanged = stored.count
        (decision.region, decision.regionOrigin) = phones.region(
            contact.region, origin: .lookup, tenant: contact.tenant)
        for row in contact.rows where !stored.contains(row) {
            let outcome = phones.transform(
                LegacyPhoneContact(
                    tenant: contact.tenant, contactKey: contact.contactKey, region: contact.region,
                    regionOrigin: .lookup, values: [row.number]))
            decision.anomalies += outcome.anomalies
            guard let head = outcome.rows.first else {
                decision.unusable += 1
                if unusableRows == .delete { decision.deletions.append((row.id, row.number)) }
                continue
            }
            decision.rewrites.append(
                InPlaceDecision.Rewrite(id: row.id, was: row.number, number: head.e164, ext: head.extensionDigits))
            known.insert(head.e164 + "#" + (head.extensionDigits ?? ""))
            for extra in outcome.rows.dropFirst() {
                guard known.insert(extra.e164 + "#" + (extra.extensionDigits ?? "")).inserted else { continue }
                decision.additions.append(
                    PhoneRowDraft(
                        tenant: contact.tenant, contactKey: contact.contactKey, e164: extra.e164,
                        extensionDigits: extra.extensionDigits, type: extra.type, isDefault: false,
                        displayOrder: decision.additions.count + 1, sourceColumn: column, raw: row.number))
            }
        }
        return decision
    }

    static func asciiDigits(_ text: String?) -> Bool {
        guard let text else { return true }
        return !text.isEmpty && text.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }
}
