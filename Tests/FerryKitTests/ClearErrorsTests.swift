import Foundation
import TestFiles
import Testing
@testable import FerryKit

@Suite("Errors name the file, the line and the reason")
struct ClearErrorsTests {
    func mappingFile(_ bytes: [UInt8]) throws -> String { try temporaryFile(bytes, name: "mapping.yaml") }

    @Test func aMissingFileSaysWhy() throws {
        do {
            _ = try CSVReader(path: "/nonexistent/partner.csv")
            Issue.record("expected an error")
        } catch let error as CSVSyntaxError {
            #expect(error.description == "/nonexistent/partner.csv: cannot open the file: No such file or directory")
        }
        do {
            _ = try PhonesMapping.load(path: "/nonexistent/phones.yaml")
            Issue.record("expected an error")
        } catch let error as MappingError {
            #expect(
                error.description == "/nonexistent/phones.yaml: cannot read the mapping file: No such file or directory"
            )
        }
    }

    @Test func aBinaryFileIsNotTextNotMalformedQuoting() throws {
        #expect(throws: CSVSyntaxError.self) { _ = try CSVReader(path: "/bin/ls") }
        do { _ = try CSVReader(path: "/bin/ls") } catch let error as CSVSyntaxError {
            #expect(error.description == "/bin/ls: not a text file: it starts like an ELF executable")
        }
        let nuls = try temporaryFile(
            [UInt8](repeating: 0, count: 50) + Array("a,b\n1,2\n".utf8) + [UInt8](repeating: 0, count: 50))
        do { _ = try CSVReader(path: nuls); Issue.record("expected an error") } catch let error as CSVSyntaxError {
            #expect(error.reason == "not a text file: 100 of its first 108 bytes are NUL")
        }
        // One NUL in a short file is a bad field, for the import to reject by line, not a binary file.
        let oneNul = try temporaryFile(Array("a,b,c\n".utf8) + [0] + Array(",2,3\n".utf8))
        #expect(try readAll(oneNul).records.count == 2)
    }

    @Test func aDuplicatedKeyNamesBothLines() throws {
        let path = try mappingFile(Array("job: phones\nsource:\n  table: contacts\n  table: people\n".utf8))
        do { _ = try PhonesMapping.load(path: path); Issue.record("expected an error") } catch let error as MappingError
        {
            #expect(error.description == "\(path):3: duplicate key 'table' in the mapping that starts here")
        }
    }

    @Test func aNulInANameIsAMappingErrorWithItsLine() throws {
        let path = try mappingFile(
            Array(
                "job: phones\nsource:\n  table: \"con\\0tacts\"\n  columns:\n    - column: phone_number\n      type: work\nphones:\n  default_region: US\n"
                    .utf8))
        do { _ = try PhonesMapping.load(path: path); Issue.record("expected an error") } catch let error as MappingError
        {
            #expect(error.description == "\(path):3: source.table: must not contain a NUL character")
        }
    }

    @Test func aMappingThatIsNotUTF8SaysWhere() throws {
        let path = try mappingFile(Array("job: phones\nsource:\n  table: caf".utf8) + [0xE9] + Array("\n".utf8))
        do { _ = try PhonesMapping.load(path: path); Issue.record("expected an error") } catch let error as MappingError
        {
            #expect(error.description == "\(path):3: the mapping file is not UTF-8: byte 0xE9 at offset 32 (column 13)")
        }
    }

    @Test func driftNamesChangedRowsAlsoWhenRowsWereAdded() {
        let tenant = "00000000-0000-4000-8000-000000000001"
        let mapping = try? PhonesMapping(
            file: "m.yaml",
            text:
                "job: phones\nsource:\n  columns:\n    - column: phone_number\n      type: work\nphones:\n  default_region: US\n"
        )
        guard let mapping else { Issue.record("mapping did not load"); return }
        let plan = PlanFile(
            job: "phones", mappingFile: mapping.file, mappingSHA256: mapping.sha256, noun: "contacts", tenants: [],
            fingerprint: [TenantFingerprint(tenant: tenant, rows: 12, sha: "a")], snapshotXmax: 1, database: nil,
            summary: .object([:]))
        let changes = plan.drift(
            mappingFile: mapping.file, mappingSHA256: mapping.sha256,
            now: [TenantFingerprint(tenant: tenant, rows: 15, sha: "b")], writtenSince: [tenant: 15])
        #expect(
            changes == [
                "tenant \(tenant): 3 contacts added since the plan (12 → 15, 15 source rows inserted or updated in all)"
            ])
    }

    @Test func theProgressLineFitsTheTerminalAndCountsAResumedRunsEarlierPart() {
        let progress = ProgressLine(label: "apply phones", total: 100_000, enabled: false, alreadyDone: 40_000)
        let text = progress.text(done: 10_000, elapsed: 10)
        #expect(text == "apply phones: 50,000 / ~100,000 (50%), ETA 0:50, 1,000/s (resumed after 40,000)")
        #expect(ProgressLine.fitted(text, columns: 40) == String(text.prefix(38)) + "…")
        #expect(ProgressLine.fitted(text, columns: 40).count == 39)
        #expect(ProgressLine.fitted(text, columns: 200) == text)
    }
}
