import Testing
@testable import FerryKit

@Suite("Phone transform (contact level)")
struct PhoneTransformTests {
    let twoColumns = PhoneTransform(
        columns: [
            PhoneSourceColumn(name: "phone_number", type: work), PhoneSourceColumn(name: "mobile_phone", type: mobile),
        ],
        defaultRegion: "US")

    func contact(_ values: [String?], region: String? = nil, hasPhones: Bool = false) -> LegacyPhoneContact {
        LegacyPhoneContact(tenant: "t1", contactKey: "c1", region: region, values: values, alreadyHasPhones: hasPhones)
    }

    @Test func firstNumberOfTheFirstColumnIsTheOnlyDefault() {
        let outcome = twoColumns.transform(contact(["650-253-0000 / 415-555-0132", "(201) 555-0123"]))
        #expect(outcome.rows.map(\.e164) == ["+16502530000", "+14155550132", "+12015550123"])
        #expect(outcome.rows.map(\.isDefault) == [true, false, false])
        #expect(outcome.rows.map(\.displayOrder) == [0, 1, 2])
        #expect(outcome.rows.map(\.type) == [work, work, mobile])
    }

    /// replace_naive: a naive row that already holds the one row ferry would write stays untouched
    /// (rewriting it changed nothing but its row version, and every later apply did it again).
    @Test func aNaiveRowAlreadyNormalizedIsNotReplaced() {
        let transform = PhoneTransform(columns: [PhoneSourceColumn(name: "phone", type: work)], defaultRegion: "US")
        func naive(_ value: String) -> LegacyPhoneContact {
            LegacyPhoneContact(
                tenant: "t1", contactKey: "c1", region: nil, values: [value], alreadyHasPhones: true, naiveRow: "r1")
        }
        let normalized = transform.transform(naive(" +12125550101 "))
        #expect(normalized.rows.isEmpty && normalized.replacesRow == nil)
        #expect(
            normalized.counts
                == PhoneValueCounts(read: 1, loaded: 0, rejected: 0, skippedEmpty: 0, skippedExistingPhones: 1))
        // Written another way, or as another type, it is still replaced.
        for value in ["212-555-0101", "mobile +12125550101", "+12125550101 x7"] {
            let outcome = transform.transform(naive(value))
            #expect(outcome.replacesRow == "r1" && outcome.rows.count == 1, "\(value)")
        }
    }

    @Test func defaultFallsToTheNextColumnWhenTheFirstIsUnusable() {
        let outcome = twoColumns.transform(contact(["n/a", "(201) 555-0123"]))
        #expect(outcome.rows.count == 1)
        #expect(outcome.rows[0].isDefault && outcome.rows[0].type == mobile)
        #expect(
            outcome.counts
                == PhoneValueCounts(read: 2, loaded: 1, rejected: 1, skippedEmpty: 0, skippedExistingPhones: 0))
    }

    @Test func aRegionAmbiguousValueIsLeftWithItsReasonUnlessTheMappingLoadsIt() {
        let contact = LegacyPhoneContact(
            tenant: "t1", contactKey: "c1", region: "DE", values: ["702-478-7965", nil], alreadyHasPhones: false)
        let rejected = twoColumns.transform(contact)
        #expect(rejected.rows.isEmpty)
        #expect(rejected.counts.rejected == 1 && rejected.counts.loaded == 0)
        #expect(rejected.anomalies.contains { $0.kind == .regionAmbiguous && $0.detail.contains("+17024787965") })
        #expect(rejected.anomalies.contains { $0.rejectionReason == .regionAmbiguous })
        let loading = PhoneTransform(
            columns: twoColumns.columns, defaultRegion: "US", regionAmbiguity: .load)
        let loaded = loading.transform(contact)
        #expect(loaded.rows.map(\.e164) == ["+497024787965"])
        #expect(loaded.anomalies.contains { $0.kind == .regionAmbiguous })
        // One ambiguous number among others: the others load, it is listed as rejected.
        let mixed = twoColumns.transform(
            LegacyPhoneContact(
                tenant: "t1", contactKey: "c1", region: "DE", values: ["030 1234567, 702-478-7965", nil],
                alreadyHasPhones: false))
        #expect(mixed.rows.map(\.e164) == ["+49301234567"])
        #expect(mixed.anomalies.contains { $0.kind == .fragmentRejected && $0.rejectionReason == .regionAmbiguous })
    }

    /// The application checks "is possible": `phones.accept: possible` loads a number of a possible
    /// length that libphonenumber's metadata does not assign (listed), never a local-only one.
    @Test func aPossibleNumberLoadsOnlyWhenTheMappingAcceptsPossibleNumbers() {
        let values = ["(213) 055-1234", "301-4166"]
        let strict = twoColumns.transform(contact(values))
        #expect(strict.rows.isEmpty)
        #expect(strict.counts.rejected == 2)
        #expect(strict.anomalies.allSatisfy { $0.rejectionReason == .invalidForRegion })
        let possible = PhoneTransform(columns: twoColumns.columns, defaultRegion: "US", acceptance: .possible)
        let loaded = possible.transform(contact(values))
        #expect(loaded.rows.map(\.e164) == ["+12130551234"])
        #expect(loaded.counts.loaded == 1 && loaded.counts.rejected == 1 && loaded.counts.addsUp)
        #expect(loaded.anomalies.contains { $0.kind == .possibleNotValid && $0.detail.contains("+12130551234") })
        // Seven digits are a local number in the US: possible only there, never loaded.
        #expect(loaded.anomalies.contains { $0.rejectionReason == .invalidForRegion && $0.raw == "301-4166" })
        // A placeholder is of a possible length too, and no number.
        #expect(possible.transform(contact(["000-000-0000", "(555) 555-5555"])).rows.isEmpty)
        // A valid number is not listed as merely possible.
        #expect(
            !possible.transform(contact(["(201) 555-0123", nil])).anomalies.contains { $0.kind == .possibleNotValid })
    }

    @Test func theSameNumberTwiceBecomesOneRow() {
        let outcome = twoColumns.transform(contact(["+1 650 253 0000", "(650) 253-0000"]))
        #expect(outcome.rows.count == 1)
        #expect(outcome.anomalies.contains { $0.kind == .duplicateWithinContact })
    }

    @Test func sameNumberWithAnotherExtensionIsKept() {
        let outcome = twoColumns.transform(contact(["650-253-0000 x1", "650-253-0000 x2"]))
        #expect(outcome.rows.map(\.extensionDigits) == ["1", "2"])
    }

    @Test func annotationOverridesTheColumnType() {
        let outcome = twoColumns.transform(contact(["Fax: 650-253-0000", nil]))
        #expect(outcome.rows.map(\.type) == [fax])
        #expect(outcome.anomalies.contains { $0.kind == .annotationUsedAsType })
    }

    @Test func customLabelsAreReportedAndKeptAsFirstSpelled() {
        let outcome = twoColumns.transform(contact(["Pager: 650-253-0000", "PAGER: 415-555-0132"]))
        #expect(outcome.rows.map(\.type) == [.custom("Pager"), .custom("PAGER")])
        var builder = PhonesSummaryBuilder(
            summary: PhonesSummary(mode: .plan, mappingFile: "m", mappingSHA256: "x"),
            existingCustomTypes: [])
        builder.add(outcome)
        #expect(builder.summary.customTypesToCreate == ["t1: Pager"])
    }

    @Test func existingCustomTypesAreNotCreatedAgain() {
        var builder = PhonesSummaryBuilder(
            summary: PhonesSummary(mode: .plan, mappingFile: "m", mappingSHA256: "x"),
            existingCustomTypes: [PhonesSummaryBuilder.customTypeKey(tenant: "t1", label: " pager ")])
        builder.add(twoColumns.transform(contact(["Pager: 650-253-0000", nil])))
        #expect(builder.summary.customTypesToCreate.isEmpty)
    }

    @Test func nullAndEmptyAreSkippedButBlanksAreRejected() {
        let outcome = twoColumns.transform(contact([nil, "   "]))
        #expect(outcome.rows.isEmpty)
        #expect(
            outcome.counts
                == PhoneValueCounts(read: 2, loaded: 0, rejected: 1, skippedEmpty: 1, skippedExistingPhones: 0))
        let empty = twoColumns.transform(contact(["", nil]))
        #expect(empty.counts.skippedEmpty == 2)
    }

    @Test func contactsThatAlreadyHavePhonesAreSkipped() {
        let outcome = twoColumns.transform(contact(["650-253-0000", nil], hasPhones: true))
        #expect(outcome.rows.isEmpty)
        #expect(outcome.counts.skippedExistingPhones == 1 && outcome.counts.skippedEmpty == 1 && outcome.counts.addsUp)
    }

    @Test func rowRegionOverridesTheDefault() {
        #expect(twoColumns.transform(contact(["030 123456", nil], region: "DE")).rows.map(\.e164) == ["+4930123456"])
        #expect(twoColumns.transform(contact(["030 123456", nil], region: " de ")).rows.map(\.e164) == ["+4930123456"])
        #expect(twoColumns.transform(contact(["030 123456", nil], region: "")).rows.isEmpty)
    }

    @Test func unknownRegionRejectsInsteadOfGuessing() {
        let outcome = twoColumns.transform(contact(["030 123456", nil], region: "XX"))
        #expect(outcome.rows.isEmpty)
        #expect(outcome.anomalies.first?.rejectionReason == .unsupportedRegion)
    }

    @Test func partlyRejectedFieldsLoadWhatIsValidAndReportTheRest() {
        let transform = PhoneTransform(columns: [PhoneSourceColumn(name: "phone", type: work)], defaultRegion: "GB")
        let outcome = transform.transform(
            LegacyPhoneContact(
                tenant: "t", contactKey: "k",
                values: ["020 7946 0958 / 07700 900123"]))
        #expect(outcome.rows.count == 1)
        #expect(outcome.counts.loaded == 1)
        #expect(outcome.anomalies.map(\.kind).contains(.fragmentRejected))
        #expect(outcome.anomalies.map(\.kind).contains(.splitIntoSeveral))
    }

    @Test func keysAndRawValuesTravelWithEveryRow() {
        let outcome = twoColumns.transform(contact(["  (650) 253-0000 ", nil]))
        #expect(outcome.rows.first?.tenant == "t1")
        #expect(outcome.rows.first?.contactKey == "c1")
        #expect(outcome.rows.first?.raw == "  (650) 253-0000 ")
        #expect(outcome.rows.first?.sourceColumn == "phone_number")
    }
}
