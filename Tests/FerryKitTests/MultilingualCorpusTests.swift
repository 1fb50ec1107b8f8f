import Foundation
import PhoneCorpus
import Testing
@testable import FerryKit

/// The multilingual corpus (`PhoneCorpus`): every case must give exactly its expected rows, or its rejection.
@Suite("Multilingual phone corpus")
struct MultilingualCorpusTests {
    /// What ferry makes of a value, in the corpus's notation.
    static func actual(_ value: String, region: String) -> String {
        let transform = PhoneTransform(columns: [PhoneSourceColumn(name: "phone", type: work)], defaultRegion: region)
        let outcome = transform.transform(
            LegacyPhoneContact(tenant: "t", contactKey: "c", region: region, values: [value], alreadyHasPhones: false))
        if outcome.rows.isEmpty {
            let reason = outcome.anomalies.first { $0.kind == .rejected }?.rejectionReason
            return "reject:" + (reason?.rawValue ?? "?")
        }
        return outcome.rows.map { row in
            let type: String
            switch row.type {
            case .canonical(let canonical): type = canonical.rawValue
            case .custom(let label): type = "custom:" + label
            }
            return row.e164 + (row.extensionDigits.map { " x" + $0 } ?? "") + "|" + type
        }.joined(separator: " ; ")
    }

    @Test(arguments: [("en", 150), ("de", 150), ("fr", 150), ("es", 30), ("ja", 30)])
    func everyCaseGivesItsExpectedRows(_ language: String, _ atLeast: Int) throws {
        let cases = try PhoneCorpus.cases(language)
        #expect(cases.count >= atLeast, "\(language): \(cases.count) cases")
        var agreed = 0
        for item in cases {
            let actual = Self.actual(item.value, region: item.region)
            // "reject" alone: any reason (libphonenumber's verdict on a fragment is its own business).
            if actual == item.expected || (item.expected == "reject" && actual.hasPrefix("reject:")) {
                agreed += 1
            } else {
                Issue.record(
                    "\(language).tsv:\(item.line) [\(item.region)] \(item.value.debugDescription) (\(item.note)): expected \(item.expected), got \(actual)"
                )
            }
        }
        print("corpus \(language): \(agreed) of \(cases.count) agree")
    }
}
