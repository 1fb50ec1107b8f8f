import Foundation
import Testing
@testable import FerryKit

/// The shared corpora live beside the project: ../shared/corpora (CI has them there too).
enum Corpus {
    static let root: URL = {
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/corpora")
    }()

    /// Tab-separated lines, keeping empty fields (a blank raw value is a case of its own).
    static func tsv(_ relativePath: String) throws -> [[String]] {
        let text = try String(contentsOf: root.appendingPathComponent(relativePath), encoding: .utf8)
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        return lines.map { $0.components(separatedBy: "\t") }
    }
}

/// Where ferry deliberately differs from libphonenumber's verdict on the whole string, and why.
let acceptedDisagreements: [String: String] = [
    "030 123456 Durchwahl 78":
        "German extension word: ferry loads +4930123456 ext. 78; libphonenumber rejects the whole string",
    "+49 30 123456 App. 78":
        "libphonenumber reads the letters of 'App.' as digits (+493012345627778); ferry strips the annotation: +4930123456 ext. 78",
    "+33 1 23 45 67 89 poste 12":
        "French extension word: ferry loads +33123456789 ext. 12; libphonenumber rejects the whole string",
    "(11) 2345-6789 ramal 200":
        "Portuguese extension word: ferry loads +551123456789 ext. 200; libphonenumber rejects the whole string",
    "650-253-0000 (mobile)":
        "the issue requires '(mobile)' to become the type; libphonenumber reads its letters as digits and rejects",
]

@Suite("Shared phone corpora")
struct PhoneCorpusTests {
    let parser = PhoneFieldParser()

    @Test func exampleNumbersAgreeCompletely() throws {
        let inputs = try Corpus.tsv("phones/example_numbers.tsv")
        let expected = try Corpus.tsv("phones/example_numbers.expected.tsv")
        try #require(inputs.count == expected.count && inputs.count > 3000)
        var disagreements: [String] = []
        for (input, verdict) in zip(inputs, expected) {
            let result = parser.parse(input[0], region: input[1])
            let got = result.numbers.count == 1 ? result.numbers[0].e164 : "INVALID"
            if got != verdict[1] {
                disagreements.append("\(input[0]) [\(input[1])]: expected \(verdict[1]), got \(got)")
            }
        }
        print("example_numbers: \(inputs.count - disagreements.count)/\(inputs.count) agree")
        #expect(disagreements.isEmpty, "\(disagreements.prefix(20))")
    }

    /// The shim gives each thread its own PhoneNumberUtil: verdicts must not depend on which one answered.
    @Test func verdictsAreTheSameFromEightThreadsAsFromOne() throws {
        let inputs = try Corpus.tsv("phones/example_numbers.tsv") + Corpus.tsv("phones/messy_phones.dev.tsv")
        try #require(inputs.count > 3400)
        let repeated = Array(repeating: inputs, count: 4).flatMap { $0 }
        let serial = repeated.map { PhoneNumberParser.parse($0[0], defaultRegion: $0[1]) }
        let concurrent = parallelMap(repeated, workers: 8) { PhoneNumberParser.parse($0[0], defaultRegion: $0[1]) }
        let differing = zip(repeated, zip(serial, concurrent)).filter { $1.0 != $1.1 }.map { "\($0.0[0]) [\($0.0[1])]" }
        #expect(differing.isEmpty, "\(differing.prefix(10))")
        #expect(serial.contains { $0.outcome == .valid } && serial.contains { $0.outcome != .valid })
    }

    /// ferry's own instances match numbers against the metadata with a matcher of the shim's, not the
    /// library's: every verdict must be the library instance's, for each region's example numbers read
    /// in their region and in two others, and for the messy values read in ten regions.
    @Test func theShimsMatcherGivesTheLibrarysVerdicts() throws {
        let examples = try Corpus.tsv("phones/example_numbers.tsv")
        let messy = try Corpus.tsv("phones/messy_phones.dev.tsv")
        try #require(examples.count > 3000 && messy.count > 400)
        var inputs: [(text: String, region: String)] = []
        for row in examples { inputs += [(row[0], row[1]), (row[0], "US"), (row[0], "DE")] }
        for row in messy {
            for region in ["US", "DE", "GB", "FR", "BR", "IN", "JP", "AU", "CH", "ZZ"] {
                inputs.append((row[0], region))
            }
        }
        var differing: [String] = []
        for input in inputs {
            let library = PhoneNumberParser.parse(input.text, defaultRegion: input.region, instance: .library)
            let own = PhoneNumberParser.parse(input.text, defaultRegion: input.region, instance: .spareOwn)
            if own != library {
                differing.append("\(input.text) [\(input.region)]: library \(library), ferry's \(own)")
            }
        }
        let validCount = inputs.filter {
            PhoneNumberParser.parse($0.text, defaultRegion: $0.region, instance: .library).outcome == .valid
        }.count
        #expect(validCount > 3000 && validCount < inputs.count, "both valid and invalid verdicts are compared")
        #expect(differing.isEmpty, "\(differing.count) of \(inputs.count) differ: \(differing.prefix(10))")
    }

    /// Past the shim's eight own instances, threads share the singleton: twelve threads that all stay
    /// alive until each has parsed once cover both kinds, and every verdict must match a serial pass.
    @Test func verdictsAreTheSameFromMoreThreadsThanTheShimBuildsInstancesFor() throws {
        let inputs = try Corpus.tsv("phones/messy_phones.dev.tsv")
        let serial = inputs.map { PhoneNumberParser.parse($0[0], defaultRegion: $0[1]) }
        let threads = 12
        let allStarted = DispatchGroup(), allDone = DispatchGroup()
        let results = UnsafeMutableBufferPointer<[LibPhoneVerdict]>.allocate(capacity: threads)
        results.initialize(repeating: [])
        defer { results.deinitialize(); results.deallocate() }
        nonisolated(unsafe) let output = results
        for thread in 0..<threads {
            allStarted.enter()
            allDone.enter()
            Thread.detachNewThread {
                var verdicts = [PhoneNumberParser.parse(inputs[0][0], defaultRegion: inputs[0][1])]
                allStarted.leave()
                allStarted.wait()  // every thread holds its instance (or the singleton) from here on
                verdicts += inputs.dropFirst().map { PhoneNumberParser.parse($0[0], defaultRegion: $0[1]) }
                output[thread] = verdicts
                allDone.leave()
            }
        }
        allDone.wait()
        for thread in 0..<threads {
            #expect(results[thread] == serial, "thread \(thread)")
        }
    }

    @Test func messyPhonesAgreeWithLibphonenumberOnSingleNumberRows() throws {
        let inputs = try Corpus.tsv("phones/messy_phones.dev.tsv")
        let expected = try Corpus.tsv("phones/expected.dev.tsv")
        try #require(inputs.count == expected.count && inputs.count > 400)
        var single = 0, agree = 0, splitRows = 0
        var unexplained: [String] = []
        var explained: [String] = []
        for (input, verdict) in zip(inputs, expected) {
            let raw = input[0], region = input[1]
            let result = parser.parse(raw, region: region)
            if result.wasSplit, !result.numbers.isEmpty {
                // Several numbers in one field: libphonenumber's whole-string INVALID is not the target.
                splitRows += 1
                #expect(verdict[1] == "INVALID")
                #expect(result.numbers.allSatisfy { $0.e164.hasPrefix("+") })
                continue
            }
            single += 1
            let got = result.numbers.first?.e164 ?? "INVALID"
            if got == verdict[1] {
                agree += 1
            } else if acceptedDisagreements[raw] != nil {
                explained.append(raw)
            } else {
                unexplained.append("\(raw) [\(region)]: libphonenumber \(verdict[1]), ferry \(got)")
            }
        }
        let rawAgreement = Double(agree) / Double(single)
        let explainedAgreement = Double(agree + explained.count) / Double(single)
        print(
            String(
                format:
                    "messy_phones: %d single-number rows, %d agree (%.2f%%); with the %d explained disagreements %.2f%%; %d split rows",
                single, agree, rawAgreement * 100, explained.count, explainedAgreement * 100, splitRows))
        #expect(unexplained.isEmpty, "\(unexplained)")
        #expect(explainedAgreement >= 0.99)
        #expect(rawAgreement >= 0.985)
        #expect(
            Set(explained) == Set(acceptedDisagreements.keys),
            "an accepted disagreement no longer occurs: update the list")
    }

    @Test func everyMessyValueIsAccountedFor() throws {
        let transform = PhoneTransform(columns: [PhoneSourceColumn(name: "phone", type: work)], defaultRegion: "US")
        var counts = PhoneValueCounts()
        for (index, input) in try Corpus.tsv("phones/messy_phones.dev.tsv").enumerated() {
            let outcome = transform.transform(
                LegacyPhoneContact(tenant: "t", contactKey: String(index), region: input[1], values: [input[0]]))
            counts += outcome.counts
            #expect(outcome.rows.filter(\.isDefault).count == (outcome.rows.isEmpty ? 0 : 1))
        }
        #expect(counts.read == 453)
        #expect(counts.addsUp)
        #expect(counts.loaded > 300 && counts.rejected > 60)
    }
}
