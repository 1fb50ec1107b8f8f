import Foundation
import TestFiles
import Testing
@testable import FerryKit

@Suite("ferry on the command line")
struct CommandLineTests {
    @Test func aBadMappingExitsOneNamingFileAndLine() throws {
        let directory = Scratch.folder("bad-mapping")
        let file = directory.appendingPathComponent("bad.yaml")
        try
            "job: phones\nsource:\n  columns:\n    - column: phone_number\n      type: work\nphones:\n  default_region: US\n  colour: blue\n"
            .write(to: file, atomically: true, encoding: .utf8)
        let result = try ferryCLI("plan '\(file.path)'")
        #expect(result.status == 1)
        #expect(result.stderr.contains("bad.yaml:8: unknown key 'phones.colour'"), "\(result.stderr)")
    }

    /// The commands find their job through the mapping's `job:`, and a mapping of the wrong kind is
    /// refused with the command that runs it, before anything is read.
    @Test func eachCommandSaysWhichCommandRunsAMappingOfAnotherKind() throws {
        for command in [
            "import samples/import/partner-contacts.csv --mapping mappings/phones.yaml",
            "export --mapping mappings/customers.yaml",
        ] {
            let result = try ferryCLI(command + " --db 'postgresql://127.0.0.1:1/nowhere'")
            #expect(result.status == 1, "\(command)")
            #expect(
                result.stderr.contains("works with a contacts-csv mapping")
                    && result.stderr.contains("run it with `ferry plan` and `ferry apply`"),
                "\(command): \(result.stderr)")
        }
        let plan = try ferryCLI("plan mappings/contacts-csv.yaml --db 'postgresql://127.0.0.1:1/nowhere'")
        #expect(plan.status == 1)
        #expect(plan.stderr.contains("run it with `ferry import FILE --mapping MAPPING`"), "\(plan.stderr)")
    }

    @Test func aPasswordNeverAppearsInOutput() throws {
        let result = try ferryCLI(
            "plan mappings/phones.yaml --db 'postgresql://postgres:Sup3rSecret@127.0.0.1:1/nowhere'")
        #expect(result.status == 1)
        #expect(!result.stderr.contains("Sup3rSecret") && !result.stdout.contains("Sup3rSecret"))
        #expect(result.stderr.contains("connecting to PostgreSQL"))
    }

    @Test func connectsThroughPGVariablesLikePsql() throws {
        let db = try TestDatabase(samples: 60)
        _ = try db.applySchema(try db.mapping())
        let result = try ferryCLI("plan mappings/phones.yaml --no-progress", database: db.name)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("  database  \(db.name) on "), "\(result.stdout)")
        #expect(result.stdout.contains(" (PostgreSQL 15."), "\(result.stdout)")
        #expect(result.stdout.contains("✓ adds up"))
    }

    @Test func runsOnADatabaseWithoutTheLedgerSaysWhatToDo() throws {
        let db = try TestDatabase()
        for command in ["runs", "show 1", "rollback 1"] {
            let result = try ferryCLI("\(command) --db dbname=\(db.name)")
            #expect(result.status == 1)
            #expect(
                result.stderr.contains("this database has no ferry ledger (ferry.runs)"), "\(command): \(result.stderr)"
            )
        }
    }

    @Test func applyPrintsWhatItDidAndSchemaStatusShowsSteps() throws {
        let db = try TestDatabase(samples: 90)
        let schema = try ferryCLI(
            "schema apply mappings/phones.yaml --db dbname=\(db.name) --snapshot-dir '\(db.scratchFile("snapshots"))'"
        )
        #expect(schema.status == 0, "\(schema.stderr)")
        #expect(schema.stdout.contains("schema snapshot (pg_dump) of contacts: "), "\(schema.stdout)")
        let apply = try ferryCLI("apply mappings/phones.yaml --db dbname=\(db.name)")
        #expect(apply.status == 0, "\(apply.stderr)")
        let inserted = try db.count("SELECT count(*) FROM contact_phone_numbers")
        #expect(inserted > 50)
        #expect(
            apply.stdout.contains(
                "  phone rows inserted" + String(repeating: " ", count: 26) + formatCount(inserted).leftPadded(9)),
            "\(apply.stdout)")
        let status = try ferryCLI("schema status mappings/phones.yaml --db dbname=\(db.name)")
        #expect(status.stdout.contains("phones/contact_phone_numbers  applied"))
    }
}

@Suite("Memory does not grow with the table")
struct MemoryTests {
    func peakMegabytes(contacts: Int) throws -> Double {
        let db = try TestDatabase(samples: contacts)
        _ = try db.applySchema(try db.mapping())
        let plan = try ferryCLI("plan mappings/phones.yaml --db 'dbname=\(db.name)' --json")
        #expect(plan.status == 0, "\(plan.stderr)")
        let report = try JSONDecoder().decode(PlanReport.self, from: Data(plan.stdout.utf8))
        #expect(report.tenants.map(\.counts.contactsScanned).reduce(0, +) == contacts)
        return report.header.peakResidentMegabytes ?? .infinity
    }

    @Test func peakMemoryIsTheSameForFiveTimesTheRows() throws {
        let small = try peakMegabytes(contacts: 20_000)
        let large = try peakMegabytes(contacts: 100_000)
        print("peak RSS: \(small) MB for 20,000 contacts, \(large) MB for 100,000")
        #expect(large <= small * 1.2 + 4, "memory grew with the table: \(small) MB → \(large) MB")
    }

    /// A partner file of `rows` lines: messy phones (each with its country), notes of varying length,
    /// every email new.
    func partnerFile(rows: Int) throws -> String {
        let tenants = [
            "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002",
            "00000000-0000-4000-8000-000000000003",
        ]
        let phones = [
            ("US", "(206) 555-0%03d"), ("DE", "+49 30 1234%03d"), ("GB", "020 7946 0%03d"), ("US", "206.555.0%03d x12"),
            ("US", "n/a"), ("US", "+1 206 555 0%03d / 206 555 1%03d"),
        ]
        var text = "Tenant,Full Name,Country,Email,Company,Title,Office Phone,Mobile,Notes\n"
        for index in 0..<rows {
            let (country, format) = phones[index % phones.count]
            let phone = String(format: format, index % 1000, (index + 1) % 1000)
            let notes = index % 5 == 0 ? "\"called back, " + String(repeating: "x", count: index % 120) + "\"" : ""
            text +=
                "\(tenants[index % 3]),Contact \(index),\(country),contact\(index)@example.org,,Buyer,\(phone),,\(notes)\n"
        }
        return try temporaryFile(text, name: "partner-\(rows).csv")
    }

    func importPeakMegabytes(rows: Int, database: String) throws -> Double {
        // Small batches: the few batches in flight between the pipeline's stages are then a small part
        // of either file, and what is compared is what grows with the file.
        let result = try ferryCLI(
            "import '\(try partnerFile(rows: rows))' --dry-run --json --no-progress --batch-size 500",
            database: database)
        #expect(result.status == 0, "\(result.stderr)")
        let summary = try JSONDecoder().decode(ImportSummary.self, from: Data(result.stdout.utf8))
        #expect(summary.rowsRead == rows && summary.inserted == rows)
        return summary.peakResidentMegabytes
    }

    @Test func importPeakMemoryIsTheSameForFiveTimesTheRows() throws {
        let db = try importDatabase()
        let small = try importPeakMegabytes(rows: 20_000, database: db.name)
        let large = try importPeakMegabytes(rows: 100_000, database: db.name)
        print("import peak RSS: \(small) MB for 20,000 rows, \(large) MB for 100,000")
        #expect(large <= small * 1.2 + 4, "memory grew with the file: \(small) MB → \(large) MB")
    }
}
