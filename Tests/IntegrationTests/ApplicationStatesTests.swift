import Foundation
import PhoneCorpus
import TestFiles
import Testing
@testable import FerryKit

/// The reference application's schema in each state a real database is found in, with the
/// multilingual corpus as its contacts' phone values in tenants of their regions.
struct ApplicationState: CustomTestStringConvertible, Sendable {
    enum Rows: String, Sendable, CaseIterable {
        /// The phone tables as created, empty: the backfill.
        case empty
        /// The application's naive backfill ran; the legacy column is still there: replace_naive.
        case naiveWithLegacyColumn
        /// The naive backfill ran and the next release dropped the legacy column: in place.
        case naiveWithoutLegacyColumn
    }

    let rows: Rows
    /// Whether the phone table has the `extension` column (a later release of the application adds it).
    let extensionColumn: Bool

    var testDescription: String { "\(rows.rawValue), \(extensionColumn ? "with" : "without") extension column" }

    static let all = Rows.allCases.flatMap { rows in
        [true, false].map { ApplicationState(rows: rows, extensionColumn: $0) }
    }

    static let es = "00000000-0000-4000-8000-0000000000e5"
    static let jp = "00000000-0000-4000-8000-0000000000f6"

    /// The tenant whose region a corpus case is written in.
    static func tenant(of region: String) -> String {
        switch region {
        case "US": ApplicationSchema.us
        case "GB": ApplicationSchema.gb
        case "DE": ApplicationSchema.de
        case "FR": ApplicationSchema.fr
        case "ES": es
        default: jp
        }
    }

    struct Case: Sendable {
        let contact: String
        let language: String
        let item: PhoneCorpus.Case
    }

    static func corpus() throws -> [Case] {
        var cases: [Case] = []
        for language in PhoneCorpus.languages {
            for item in try PhoneCorpus.cases(language) {
                let contact = String(format: "50000000-0000-4000-8000-%012d", cases.count + 1)
                cases.append(Case(contact: contact, language: language, item: item))
            }
        }
        return cases
    }

    /// The application's tables in this state, its tenants (regions: GB, DE, ES and JP from its table,
    /// FR from the mapping, US the default) and one contact per corpus case.
    func database(_ cases: [Case]) throws -> TestDatabase {
        let db = try TestDatabase(empty: true)
        try db.connection.execute(script: ApplicationSchema.ddl)
        try db.connection.execute(
            script: """
                DELETE FROM contacts;
                INSERT INTO tenants VALUES ('\(Self.es)', 'Tajo SL'), ('\(Self.jp)', 'Sumida KK');
                INSERT INTO tenant_regions VALUES ('\(Self.es)', 'ES'), ('\(Self.jp)', 'JP');
                """)
        if extensionColumn {
            try db.connection.execute(script: "ALTER TABLE contact_phone_numbers ADD COLUMN extension text")
        }
        for chunk in stride(from: 0, to: cases.count, by: 200) {
            let slice = cases[chunk..<min(chunk + 200, cases.count)]
            try db.connection.query(
                """
                INSERT INTO contacts (tenant, contact_name_id, full_name, phone_number, created_at)
                SELECT t::uuid, c::uuid, 'Corpus ' || c, v, '2024-01-01T00:00:00Z'
                FROM unnest($1::text[], $2::text[], $3::text[]) AS x(t, c, v)
                """,
                [
                    textArrayLiteral(slice.map { Self.tenant(of: $0.item.region) }),
                    textArrayLiteral(slice.map(\.contact)), textArrayLiteral(slice.map(\.item.value)),
                ])
        }
        if rows != .empty { try db.connection.execute(script: ApplicationSchema.naiveBackfill) }
        if rows == .naiveWithoutLegacyColumn {
            try db.connection.execute(script: "ALTER TABLE contacts DROP COLUMN phone_number")
        }
        return db
    }

    /// The mapping for this state: regions from the lookup table, then the mapping's, then the default;
    /// without an extension column, extensions kept in the number (RFC 3966).
    func mapping() throws -> String {
        let target = """
            target:
              phone_numbers:
                columns:
                  extension: \(extensionColumn ? "extension" : "null")
            """
        let phones = """
            phones:
              default_region: US
              region_by_tenant:
                \(ApplicationSchema.fr): FR
            \(extensionColumn ? "" : "  extension_without_column: rfc3966")
            \(rows == .naiveWithLegacyColumn ? "  existing_rows: replace_naive" : "")
            """
        let lookup = """
              region_lookup:
                table: tenant_regions
                join: {tenant: tenant}
                column: region
            """
        let text =
            rows == .naiveWithoutLegacyColumn
            ? "job: phones-in-place\nsource:\n\(lookup)\n\(target)\n\(phones)\n"
            : """
            job: phones
            source:
              table: contacts
            \(lookup)
              columns:
                - column: phone_number
                  type: work
            \(target)
            \(phones)

            """
        return try temporaryFile(text, name: "application-\(rows.rawValue)-\(extensionColumn).yaml")
    }

    /// What a contact's rows must be after apply, in the corpus's notation, in display order. In place,
    /// the rewritten row keeps its own type (work), and a value with no usable number keeps its row.
    func expectedRows(_ item: PhoneCorpus.Case) -> [String] {
        if item.expected.hasPrefix("reject") {
            let naive = item.value.trimmingCharacters(in: CharacterSet(charactersIn: " "))
            return rows == .naiveWithoutLegacyColumn ? ["\(naive)|work"] : []
        }
        var expected = item.expected.components(separatedBy: " ; ")
        if rows == .naiveWithoutLegacyColumn, let first = expected.first, let bar = first.lastIndex(of: "|") {
            expected[0] = first[..<bar] + "|work"
        }
        return expected
    }

    /// Each contact's rows as the corpus writes them ("+E164 xEXT|type"), in display order.
    func actualRows(_ db: TestDatabase) throws -> [String: [String]] {
        let ext = extensionColumn ? "p.extension" : "NULL::text"
        var rows: [String: [String]] = [:]
        for row in try db.connection.query(
            """
            SELECT p.contact_name_id::text AS contact, p.phone_number, \(ext) AS extension,
                   coalesce(p.canonical_type, 'custom:' || t.label) AS type
            FROM contact_phone_numbers p
            LEFT JOIN contact_phone_type_definitions t ON (t.tenant, t.contact_phone_type_id) = (p.tenant, p.custom_phone_type_id)
            ORDER BY p.contact_name_id, p.display_order, p.is_default DESC
            """
        ).decoded("the phone rows", key: "contact") {
            var number: String = try row.required("phone_number")
            // RFC 3966 keeps the extension in the number: the corpus writes it apart.
            if let split = number.range(of: ";ext=") {
                number = String(number[..<split.lowerBound]) + " x" + String(number[split.upperBound...])
            }
            let extensionDigits: String? = try row.optional("extension")
            let value =
                number + (extensionDigits.map { " x" + $0 } ?? "") + "|" + (try row.required("type", as: String.self))
            rows[try row.required("contact"), default: []].append(value)
        }
        return rows
    }
}

/// Issue #17's states of the application's database, each with per-tenant regions and the whole
/// multilingual corpus: plan changes nothing, apply gives every case its expected rows, a second apply
/// changes nothing, rollback restores the exact tables, kill -9 and resume equals an uninterrupted run.
@Suite("The application's database in each state, with the multilingual corpus")
struct ApplicationStatesTests {
    static let tables = ["contacts", "contact_phone_numbers", "contact_phone_type_definitions"]

    static func checksums(_ db: TestDatabase) throws -> [String] {
        try tables.map { try db.checksum($0) }
    }

    /// Runs a ferry command: it exits with `status` and leaves the tables with the checksums `expected`.
    static func run(
        _ command: String, _ db: TestDatabase, status: Int32 = 0, leaves expected: [String], _ promise: String
    ) throws {
        let result = try ferryCLI(command, database: db.name)
        #expect(result.status == status, "\(command): \(result.stdout)\(result.stderr)")
        #expect(try checksums(db) == expected, "\(promise): \(result.stdout)")
    }

    @Test(arguments: ApplicationState.all)
    func planApplyReapplyRollback(_ state: ApplicationState) throws {
        let cases = try ApplicationState.corpus()
        let db = try state.database(cases)
        let mapping = try state.mapping()
        let schema = try ferryCLI("schema apply \(mapping)", database: db.name)
        #expect(schema.status == 0, "\(schema.stdout)\(schema.stderr)")
        let before = try Self.checksums(db)

        let plan = try ferryCLI("plan \(mapping) --no-progress --detailed-exitcode --json", database: db.name)
        #expect(plan.status == 2, "\(plan.stderr)")
        #expect(try Self.checksums(db) == before, "the plan changed nothing")
        // The plan's appendix shows what apply will run on the rows already there: the naive rows'
        // rewrite and delete with their pre-images, not only the insert.
        let statements = try JSONDecoder().decode(PlanReport.self, from: Data(plan.stdout.utf8)).statements ?? []
        if state.rows != .empty {
            for statement in [
                "UPDATE \"contact_phone_numbers\" p SET", "DELETE FROM \"contact_phone_numbers\" p",
                "INSERT INTO ferry.snapshot_rows",
            ] {
                #expect(statements.contains { $0.contains(statement) }, "\(statement) in \(statements)")
            }
        }
        let apply = try ferryCLI("apply \(mapping) --no-progress --batch-size 100", database: db.name)
        #expect(apply.status == 0, "\(apply.stdout)\(apply.stderr)")
        #expect(apply.stdout.contains("  database  \(db.name) on "), "every state's apply names its database")
        let actual = try state.actualRows(db)
        var agreed = 0
        for item in cases {
            let expected = state.expectedRows(item.item)
            let got = actual[item.contact] ?? []
            if got == expected {
                agreed += 1
            } else {
                Issue.record(
                    "\(state.testDescription): \(item.language).tsv:\(item.item.line) [\(item.item.region)] \(item.item.value.debugDescription) (\(item.item.note)): expected \(expected), got \(got)"
                )
            }
        }
        #expect(agreed == cases.count, "\(agreed) of \(cases.count) cases")
        #expect(cases.count > 800)

        // Each pre-image is the row's columns, and beside it the row's xmin then (what lets a rollback
        // of a later run leave this run's rows recognisable as its own).
        #expect(
            try db.count(
                "SELECT count(*) FROM ferry.snapshot_rows WHERE action <> 'insert' AND (before_xmin IS NULL OR before ? 'ferry_before_xmin')"
            ) == 0)
        let applied = try Self.checksums(db)
        try Self.run("apply \(mapping) --no-progress", db, leaves: applied, "a second apply changes nothing")
        try Self.run("rollback 1 --yes", db, leaves: before, "rollback restores the exact tables")
        #expect(try db.count("SELECT count(*) FROM ferry.snapshot_rows") == 0, "nothing left to undo")
    }

    @Test(arguments: ApplicationState.all)
    func aKilledApplyResumesToTheUninterruptedEndState(_ state: ApplicationState) throws {
        let cases = try ApplicationState.corpus()
        let db = try state.database(cases)
        let mapping = try state.mapping()
        #expect(try ferryCLI("schema apply \(mapping)", database: db.name).status == 0)
        // Closes the test's own session: the watcher reads from here on.
        let twin = try DatabaseCopy(of: db)
        defer { withExtendedLifetime(twin) {} }
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        defer { watcher.close() }
        let atKill = try signalFerry(
            ["apply", mapping, "--batch-size", "20"], conninfo: db.conninfo, after: 3, watcher: watcher,
            signal: SIGKILL
        ).committed
        #expect(atKill >= 3, "killed after \(atKill) batches")
        let resumed = try ferryCLI("resume 1 --wait --no-progress", database: db.name)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try watcher.query("SELECT count(*) = max(batch_no) FROM ferry.batches").scalar == "t")
        let uninterrupted = try ferryCLI("apply \(mapping) --batch-size 20 --no-progress", database: twin.name)
        #expect(uninterrupted.status == 0, "\(uninterrupted.stderr)")
        let copy = try PostgresConnection(conninfo: "dbname=\(twin.name)")
        defer { copy.close() }
        // New rows and types get random keys: compared by what they hold.
        let content = """
            SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
                SELECT concat_ws('/', p.contact_name_id, p.phone_number, p.canonical_type, t.normalized_label, p.is_default, p.display_order) AS x
                FROM contact_phone_numbers p
                LEFT JOIN contact_phone_type_definitions t ON (t.tenant, t.contact_phone_type_id) = (p.tenant, p.custom_phone_type_id)) y
            """
        #expect(try watcher.query(content).scalar == copy.query(content).scalar)
        #expect(try watcher.query("SELECT count(*) > 800 FROM contact_phone_numbers").scalar == "t")
    }
}
