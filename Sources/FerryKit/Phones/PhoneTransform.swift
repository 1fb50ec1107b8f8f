/// A legacy source column holding phones, and the type its numbers get unless an annotation says otherwise.
public struct PhoneSourceColumn: Equatable, Sendable {
    public let name: String
    public let type: PhoneType

    public init(name: String, type: PhoneType) {
        self.name = name
        self.type = type
    }
}

/// Where the region a contact's numbers are read in came from, in order of precedence.
public enum RegionOrigin: String, Codable, Sendable, CaseIterable {
    /// The source row's own column (`source.region_column`).
    case row
    /// A lookup by tenant or by client (`source.region_lookup`).
    case lookup
    /// The mapping's per-tenant list (`phones.region_by_tenant`).
    case tenantMap = "tenant map"
    /// `phones.default_region`.
    case `default`
}

/// One legacy contact as extracted: its key and the raw values of the mapped columns, in priority order.
public struct LegacyPhoneContact: Equatable, Sendable {
    public let tenant: String
    public let contactKey: String
    /// The region from the row's own column or from the mapping's lookup (nil: the tenant's or the default).
    public let region: String?
    /// Which of the two `region` came from.
    public let regionOrigin: RegionOrigin
    public let values: [String?]
    /// The contact already has rows in the target table: the job leaves it alone, unless they are
    /// the naive backfill's (`naiveRow`) and the mapping replaces those.
    public let alreadyHasPhones: Bool
    /// The key of the contact's one row as a naive backfill wrote it (the legacy value trimmed, `work`,
    /// the default), when the mapping replaces such rows; nil otherwise.
    public let naiveRow: String?
    /// The contact's own timestamps as PostgreSQL printed them, when the mapping gives its rows those.
    public var createdAt: String? = nil
    public var updatedAt: String? = nil
    /// (Citus) md5 of the legacy values as read, recorded with the run: the contract's "changed since
    /// the apply" there, where a row's xmin is its worker's.
    public var legacyHash: String? = nil

    public init(
        tenant: String, contactKey: String, region: String? = nil, regionOrigin: RegionOrigin = .row,
        values: [String?], alreadyHasPhones: Bool = false, naiveRow: String? = nil
    ) {
        self.naiveRow = naiveRow
        self.tenant = tenant
        self.contactKey = contactKey
        self.region = region
        self.regionOrigin = regionOrigin
        self.values = values
        self.alreadyHasPhones = alreadyHasPhones
    }
}

extension LegacyPhoneContact {
    /// A value as PostgreSQL's `btrim` leaves it (spaces only): what the naive backfill stored.
    static func naiveNumber(_ value: String?) -> String {
        guard let value else { return "" }
        var view = Substring(value)
        while view.first == " " { view = view.dropFirst() }
        while view.last == " " { view = view.dropLast() }
        return String(view)
    }
}

/// A phone row to write.
public struct PhoneRowDraft: Equatable, Sendable {
    public let tenant: String
    public let contactKey: String
    public let e164: String
    public let extensionDigits: String?
    public let type: PhoneType
    public let isDefault: Bool
    public let displayOrder: Int
    public let sourceColumn: String
    public let raw: String
}

/// The classes of things a DBA wants to see before approving a run.
public enum PhoneAnomalyClass: String, CaseIterable, Codable, Sendable {
    case rejected = "value rejected"
    case fragmentRejected = "part of a value rejected"
    case splitIntoSeveral = "split into several numbers"
    case extensionFound = "extension found"
    case annotationUsedAsType = "annotation used as type"
    case duplicateWithinContact = "duplicate within contact"
    case customTypeUsed = "custom type"
    case regionAmbiguous = "region ambiguous"
    /// Loaded under `phones.accept: possible`: of a possible length, not a number libphonenumber's
    /// metadata assigns in the region.
    case possibleNotValid = "possible, not valid"
}

public struct PhoneAnomaly: Equatable, Sendable {
    public let kind: PhoneAnomalyClass
    public let tenant: String
    public let contactKey: String
    public let column: String
    public let raw: String
    /// The reason or the detail: "too short", "3 numbers", "custom:Pager".
    public let detail: String
    public let rejectionReason: PhoneRejectionReason?
}

/// What happened to each mapped value of one contact. `read = loaded + rejected + skipped*`.
public struct PhoneValueCounts: Codable, Equatable, Sendable {
    public var read = 0
    public var loaded = 0
    public var rejected = 0
    public var skippedEmpty = 0
    public var skippedExistingPhones = 0

    public var skipped: Int { skippedEmpty + skippedExistingPhones }
    public var addsUp: Bool { read == loaded + rejected + skipped }

    public static func += (lhs: inout PhoneValueCounts, rhs: PhoneValueCounts) {
        lhs.read += rhs.read
        lhs.loaded += rhs.loaded
        lhs.rejected += rhs.rejected
        lhs.skippedEmpty += rhs.skippedEmpty
        lhs.skippedExistingPhones += rhs.skippedExistingPhones
    }
}

public struct PhoneContactOutcome: Equatable, Sendable {
    /// The region the contact's values were read in, and where it came from.
    public var region = ""
    public var regionOrigin = RegionOrigin.default
    /// The naive row these rows replace (the first is written into it, the rest beside it); with no
    /// rows, the naive row is deleted (the legacy value stays where it is, reported as rejected).
    public var replacesRow: String?
    public var rows: [PhoneRowDraft] = []
    public var anomalies: [PhoneAnomaly] = []
    public var counts = PhoneValueCounts()

    /// Whether the contract may find a legacy value of this contact unmigrated after the apply: one the
    /// transform rejected in whole or in part (a placeholder such as "n/a" aside), or one it left alone
    /// because the contact had phones. The contract's `contractVerdict` judges the same losses.
    public var mayLeaveValueUnmigrated: Bool {
        counts.skippedExistingPhones > 0
            || anomalies.contains {
                ($0.kind == .rejected || $0.kind == .fragmentRejected) && $0.rejectionReason != .emptyToken
            }
    }
}

/// The phones job's transform: pure, no database. Legacy contact in, phone rows and anomalies out.
public struct PhoneTransform: Sendable {
    public let columns: [PhoneSourceColumn]
    public let defaultRegion: String
    public let parser: PhoneFieldParser
    public let extensions: ExtensionHandling
    /// Per tenant (its text form), the region when the row and the lookup give none.
    public let regionsByTenant: [String: String]
    public let regionAmbiguity: RegionAmbiguity

    public init(
        columns: [PhoneSourceColumn], defaultRegion: String, labels: PhoneLabels = .standard,
        extensions: ExtensionHandling = .column, regionsByTenant: [String: String] = [:],
        regionAmbiguity: RegionAmbiguity = .reject, acceptance: NumberAcceptance = .valid
    ) {
        self.columns = columns
        self.defaultRegion = defaultRegion
        self.regionsByTenant = regionsByTenant
        self.parser = PhoneFieldParser(labels: labels, acceptance: acceptance)
        self.extensions = extensions
        self.regionAmbiguity = regionAmbiguity
    }

    /// The region a contact's values are read in, in order of precedence: its own (row or lookup, as
    /// `origin` says), the tenant's from the mapping, the default.
    public func region(
        _ own: String?, origin: RegionOrigin, tenant: String
    ) -> (region: String, origin: RegionOrigin) {
        resolve(
            own.map { $0.trimmingWhitespace().uppercased() }.flatMap { $0.isEmpty ? nil : $0 }, origin: origin,
            tenant: tenant)
    }

    private func resolve(_ region: String?, origin: RegionOrigin, tenant: String) -> (String, RegionOrigin) {
        if let region { return (region, origin) }
        if !regionsByTenant.isEmpty, let mapped = regionsByTenant[tenant.lowercased()] { return (mapped, .tenantMap) }
        return (defaultRegion, .default)
    }

    public func transform(_ contact: LegacyPhoneContact) -> PhoneContactOutcome {
        var outcome = PhoneContactOutcome()
        var seen = Set<String>()
        let region = contact.region.map { $0.trimmingWhitespace().uppercased() }.flatMap { $0.isEmpty ? nil : $0 }
        (outcome.region, outcome.regionOrigin) = resolve(region, origin: contact.regionOrigin, tenant: contact.tenant)

        for (column, value) in zip(columns, contact.values) {
            outcome.counts.read += 1
            guard let raw = value, !raw.isEmpty else {
                outcome.counts.skippedEmpty += 1
                continue
            }
            if contact.alreadyHasPhones && contact.naiveRow == nil {
                outcome.counts.skippedExistingPhones += 1
                continue
            }
            func anomaly(_ kind: PhoneAnomalyClass, _ detail: String, _ reason: PhoneRejectionReason? = nil) {
                outcome.anomalies.append(
                    PhoneAnomaly(
                        kind: kind, tenant: contact.tenant, contactKey: contact.contactKey,
                        column: column.name, raw: raw, detail: detail, rejectionReason: reason))
            }
            if let region, !PhoneNumberParser.isSupportedRegion(region) {
                outcome.counts.rejected += 1
                anomaly(.rejected, "\(PhoneRejectionReason.unsupportedRegion.rawValue) \(region)", .unsupportedRegion)
                continue
            }
            var parsed = parser.parse(raw, region: outcome.region)
            if let reason = parsed.fieldRejection {
                outcome.counts.rejected += 1
                let detail = parsed.rejected.first?.detail.map { "\(reason.rawValue) (\($0))" } ?? reason.rawValue
                anomaly(.rejected, detail, reason)
                continue
            }
            if extensions == .reject {
                let withExtension = parsed.numbers.filter { $0.extensionDigits != nil }
                parsed.numbers.removeAll { $0.extensionDigits != nil }
                let reason = PhoneRejectionReason.extensionWithoutColumn
                if parsed.numbers.isEmpty {
                    outcome.counts.rejected += 1
                    let numbers = withExtension.map { "\($0.e164) ext. \($0.extensionDigits ?? "")" }
                    anomaly(.rejected, "\(reason.rawValue) (\(numbers.joined(separator: ", ")))", reason)
                    continue
                }
                for number in withExtension {
                    anomaly(
                        .fragmentRejected, "\(reason.rawValue): \(number.e164) ext. \(number.extensionDigits ?? "")",
                        reason)
                }
            }
            let ambiguous =
                parsed.numbers.contains { $0.alsoReadsAs != nil } ? parsed.numbers.filter { $0.alsoReadsAs != nil } : []
            for number in ambiguous {
                anomaly(
                    .regionAmbiguous,
                    "\(number.e164) in \(outcome.region), or \(number.alsoReadsAs ?? "") in North America, from \"\(number.fragment)\""
                )
            }
            if regionAmbiguity == .reject, !ambiguous.isEmpty {
                parsed.numbers.removeAll { $0.alsoReadsAs != nil }
                let reason = PhoneRejectionReason.regionAmbiguous
                if parsed.numbers.isEmpty {
                    outcome.counts.rejected += 1
                    anomaly(
                        .rejected, "\(reason.rawValue) (\(ambiguous.map(\.fragment).joined(separator: ", ")))", reason)
                    continue
                }
                for number in ambiguous { anomaly(.fragmentRejected, "\(reason.rawValue): \(number.fragment)", reason) }
            }
            outcome.counts.loaded += 1
            if parsed.wasSplit { anomaly(.splitIntoSeveral, "\(parsed.numbers.count) numbers") }
            for fragment in parsed.rejected {
                anomaly(.fragmentRejected, "\(fragment.reason.rawValue): \(fragment.fragment)", fragment.reason)
            }
            for number in parsed.numbers {
                let key = number.e164 + "#" + (number.extensionDigits ?? "")
                if !seen.insert(key).inserted {
                    anomaly(.duplicateWithinContact, number.e164)
                    continue
                }
                if let hint = number.typeHint, hint != column.type {
                    anomaly(.annotationUsedAsType, "\(hint) from \"\(number.fragment)\"")
                }
                if let digits = number.extensionDigits { anomaly(.extensionFound, "ext. \(digits)") }
                if number.possibleOnly { anomaly(.possibleNotValid, "\(number.e164) from \"\(number.fragment)\"") }
                let type = number.typeHint ?? column.type
                if case .custom(let label) = type { anomaly(.customTypeUsed, label) }
                // Without an extension column, RFC 3966 keeps the extension in the number itself.
                let inNumber = extensions == .rfc3966 ? number.extensionDigits : nil
                outcome.rows.append(
                    PhoneRowDraft(
                        tenant: contact.tenant, contactKey: contact.contactKey,
                        e164: inNumber.map { "\(number.e164);ext=\($0)" } ?? number.e164,
                        extensionDigits: inNumber == nil ? number.extensionDigits : nil, type: type,
                        isDefault: outcome.rows.isEmpty, displayOrder: outcome.rows.count, sourceColumn: column.name,
                        raw: raw))
            }
        }
        outcome.replacesRow = contact.naiveRow
        if contact.naiveRow != nil, outcome.rows.count == 1, let row = outcome.rows.first, row.extensionDigits == nil,
            row.type == .canonical(.work), row.e164 == LegacyPhoneContact.naiveNumber(contact.values.first ?? nil)
        {
            // The naive row already holds what ferry would write: rewriting it would change nothing but
            // its row version, and a second apply would touch every such row again.
            outcome.rows = []
            outcome.replacesRow = nil
            outcome.counts.loaded -= 1
            outcome.counts.skippedExistingPhones += 1
        }
        return outcome
    }
}
