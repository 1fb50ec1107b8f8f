import Foundation
import Testing
@testable import FerryKit

@Suite("Plan report rendering")
struct PlanReportTests {
    /// A summary built from real transform outcomes, including a hostile legacy value.
    func report() throws -> PlanReport {
        let (summary, mapping) = try summary()
        return PlanReport(summary: summary, mapping: mapping, generatedAt: Date(timeIntervalSince1970: 0))
    }

    func summary() throws -> (PhonesSummary, PhonesMapping) {
        let mapping = try PhonesMapping(file: "m.yaml", text: MappingTests.minimal)
        var builder = PhonesSummaryBuilder(
            summary: PhonesSummary(mode: .plan, mappingFile: "m.yaml", mappingSHA256: mapping.sha256),
            existingCustomTypes: [])
        let values: [String?] = [
            "(650) 253-0000", "<script>alert(1)</script> | x", "Pager: 650 253 0001", "650-253-0002 / 415-555-0132",
            nil, "n/a", "650-253-0003 x12",
        ]
        for (index, value) in values.enumerated() {
            let contact = LegacyPhoneContact(
                tenant: index % 2 == 0 ? "tenant-a" : "tenant-b", contactKey: "c\(index)", values: [value])
            builder.add(mapping.transform.transform(contact), contact: contact, columns: mapping.source.columns)
        }
        return (builder.finished, mapping)
    }

    @Test func everyAnomalyClassHasASample() throws {
        let report = try report()
        let sampled = Set(report.samples.flatMap(\.classes))
        for anomaly in report.anomalies {
            #expect(sampled.contains(anomaly.name), "no sample for \(anomaly.name)")
        }
        #expect(report.tenants.map(\.counts.contactsScanned).reduce(0, +) == 7)
        #expect(report.checks.allSatisfy { $0.violations == 0 })
        #expect(report.accounting.first?.addsUp == true)
    }

    @Test func everyFormatLeadsWithTheSummaryAndEndsWithTheSignOff() throws {
        var report = try report()
        report.header.planFile = PlanReport.PlanFileReference(
            path: "plan.json", sha256: String(repeating: "ab", count: 32))
        #expect(report.summaryLines.first == "changes: 6 rows inserted, 0 updated, 0 deleted in 2 tables")
        #expect(report.summaryLines[1] == "rejected: 2 of 7 read (28.6%), every one accounted for")
        #expect(report.summaryLines.last?.hasPrefix("constraint checks: ") == true)
        #expect(
            report.summaryLines.contains(
                "locks: 4 (advisory lock ferry:phones (session), and 3 more listed below)"), "\(report.summaryLines)")
        for format in PlanReport.Format.allCases where format != .json {
            let text = try report.render(format)
            let summary = text.range(of: "rows inserted")!.lowerBound, tables = text.range(of: "Tables")!.lowerBound
            #expect(summary < tables, "\(format): the summary comes first")
            #expect(text.contains("plan file plan.json, sha256 \(String(repeating: "ab", count: 32))"), "\(format)")
            #expect(text.contains("reviewed by:"), "\(format)")
        }
        let decoded = try JSONDecoder().decode(PlanReport.self, from: Data(try report.render(.json).utf8))
        #expect(decoded.header.planFile?.sha256 == String(repeating: "ab", count: 32))
    }

    @Test func repeatedValuesAreOneExampleWithItsCount() {
        var entry = CountWithExamples()
        for key in ["a", "b", "c"] {
            entry.add(ValueExample(tenant: "t", contactKey: key, column: "phone", raw: "n/a", detail: "empty"))
        }
        entry.add(ValueExample(tenant: "t", contactKey: "d", column: "phone", raw: "-", detail: "empty"))
        #expect(entry.count == 4)
        #expect(entry.examples.map(\.raw) == ["n/a", "-"])
        #expect(entry.examples.map(\.occurrencesText) == [" (×3)", ""])
    }

    @Test func htmlIsSelfContainedAndEscapesLegacyValues() throws {
        let html = try report().render(.html)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<svg"))
        #expect(!html.contains("<script>"))
        #expect(html.contains("&lt;script&gt;"))
        #expect(
            !html.contains("src=") && !html.contains("href=") && !html.contains("@import") && !html.contains("url("))
    }

    @Test func jsonIsVersionedStableAndReadsBack() throws {
        let report = try report()
        let first = try report.render(.json)
        #expect(first == (try report.render(.json)))
        #expect(first.contains("\"schema\" : \"ferry-report/1\""))
        let decoded = try JSONDecoder().decode(PlanReport.self, from: Data(first.utf8))
        #expect(decoded.tables.first?.insert == report.tables.first?.insert)
        // Keys are sorted: "accounting" comes before "anomalies" comes before "changesPending".
        let accounting = try #require(first.range(of: "\"accounting\""))
        let anomalies = try #require(first.range(of: "\"anomalies\""))
        #expect(accounting.lowerBound < anomalies.lowerBound)
    }

    @Test func markdownKeepsTablesIntact() throws {
        let markdown = try report().render(.markdown)
        #expect(markdown.contains("| table | insert | update | delete | unchanged |"))
        #expect(markdown.contains("\\| x"))
        #expect(markdown.contains("## Samples, before → after"))
    }

    @Test func textHasColourOnlyWhenAsked() throws {
        let report = try report()
        #expect(!(try report.render(.terminal)).contains("\u{1B}["))
        #expect(try report.render(.terminal, colour: true).contains("\u{1B}[1m"))
    }

    /// Columns are right-aligned, so a header as long as its rows stands over their numbers.
    @Test func theTerminalTablesLabelsStandOverTheirNumbers() throws {
        let lines = try report().render(.terminal).components(separatedBy: "\n")
        for title in ["Tables", "Tenants"] {
            let start = try #require(lines.firstIndex { $0.hasPrefix(title + " ") })
            let block = lines[start...].prefix { !$0.isEmpty }
            #expect(block.count > 1, "\(title) has rows")
            #expect(Set(block.map(\.count)).count == 1, "\(block.joined(separator: "\n"))")
        }
    }

    @Test func countsLineUpHoweverLongTheirLabels() throws {
        let long = "a class whose name is longer than forty-four characters"
        let apply = TableJobTerminalText.counts(
            [("projects read", 900), ("  linked", 12)], anomalies: [long: CountWithExamples(count: 1_234)],
            noun: "project")
        #expect(apply.count == 3 && Set(apply.map(\.count)).count == 1, "\(apply.joined(separator: "\n"))")

        var (summary, mapping) = try summary()
        summary.anomalies[long] = CountWithExamples(count: 1_234)
        let lines = try PlanReport(summary: summary, mapping: mapping, generatedAt: Date(timeIntervalSince1970: 0))
            .render(.terminal).components(separatedBy: "\n")
        let start = try #require(lines.firstIndex(of: "Anomalies"))
        let rows = lines[(start + 1)...].prefix { !$0.isEmpty }.filter { !$0.hasPrefix("      ") }
        #expect(rows.count > 1 && Set(rows.map(\.count)).count == 1, "\(rows.joined(separator: "\n"))")
    }

    /// Only a job whose checks are the target's constraints may say that the apply would fail.
    @Test func aViolatedCheckSaysTheApplyWouldFailOnlyWhereTheChecksAreConstraints() throws {
        var (summary, mapping) = try summary()
        summary.checks.append(ConstraintCheck(constraint: "every project has an organization", violations: 2))
        var report = PlanReport(summary: summary, mapping: mapping, generatedAt: Date(timeIntervalSince1970: 0))
        let checks = "constraint checks: 1 VIOLATED of \(report.checks.count) "
        #expect(report.summaryLines.contains(checks + "(see below)"), "\(report.summaryLines)")
        report.checksAreConstraints = false
        #expect(report.summaryLines.contains(checks + "(see below)"), "\(report.summaryLines)")
        report.checksAreConstraints = true
        #expect(report.summaryLines.contains(checks + "(apply would fail)"), "\(report.summaryLines)")
    }

    @Test func aNullLegacyValueIsNotShownAsTheTextNULL() throws {
        let mapping = try PhonesMapping(file: "m.yaml", text: MappingTests.minimal)
        var summary = PhonesSummary(mode: .plan, mappingFile: "m.yaml", mappingSHA256: mapping.sha256)
        summary.samples = [
            ContactSample(
                tenant: "t", contactKey: "c", legacyValues: ["absent": nil, "text": "NULL"], rows: [], classes: ["x"])
        ]
        let report = PlanReport(summary: summary, mapping: mapping, generatedAt: Date(timeIntervalSince1970: 0))
        #expect(try report.render(.terminal).contains(#"before  absent=NULL text="NULL""#))
        #expect(try report.render(.markdown).contains(#"| absent: NULL<br>text: "NULL" |"#))
        #expect(try report.render(.html).contains("absent: <code>NULL</code><br>text: <code>&quot;NULL&quot;</code>"))
    }

    @Test func samplesAreTheFirstOfEachClassAndAFewPlainOnesUpToTheMaximum() {
        var selection = SampleSelection<String>(plainWanted: 2, maximum: 5)
        let records: [([String], Bool)] = [
            ([], true), (["a"], false), (["a"], false), ([], true), ([], true), (["a", "b"], false),
            ([], false), (["c"], false), (["d"], false), (["e"], false),
        ]
        let shown = records.indices.filter { selection.shows(records[$0].0, isPlain: records[$0].1) }
        // The second "a", the third plain one and a record that is neither are passed over; "c" is the
        // fifth shown, so "d" and "e" are past the maximum.
        #expect(shown == [0, 1, 3, 5, 7])
    }

    @Test(arguments: [
        ("r.md", PlanReport.Format.markdown), ("r.JSON", .json), ("r.html", .html), ("r.htm", .html),
        ("r.txt", .terminal), ("r", .terminal),
    ])
    func formatFollowsTheExtension(_ path: String, _ format: PlanReport.Format) {
        #expect(PlanReport.Format(path: path) == format)
    }
}
