import Foundation
import Testing
@testable import FerryKit

/// The multilingual corpus (Tests/Corpus/phones, written by scripts/make-phone-corpus.py): values as
/// people write them in English, German, French, Spanish and Japanese, each with the rows expected
/// from how the case was built. Every case must give exactly its expected rows, or its rejection.
@Suite("Multilingual phone corpus")
struct MultilingualCorpusTests {
    struct Case: Sendable {
        let line: Int
        let region: String
        let value: String
        let expected: String
        let note: String
    }

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Corpus/phones")

    static func cases(_ language: String) throws -> [Case] {
        let text = try String(contentsOf: folder.appendingPathComponent("\(language).tsv"), encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: true).enumerated().dropFirst().map {
            index, line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return Case(line: index + 1, region: fields[0], value: fields[1], expected: fields[2], note: fields[3])
        }
    }

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
        let cases = try Self.cases(language)
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
