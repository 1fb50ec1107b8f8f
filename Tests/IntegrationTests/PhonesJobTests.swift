import Foundation
import Testing
@testable import FerryKit

@Suite("Phones job on a real PostgreSQL")
struct PhonesJobTests {
    static let tenant = "00000000-0000-4000-8000-0000000000aa"

    /// A handful of contacts whose outcome is known exactly.
    func fixture() throws -> TestDatabase {
        let db = try TestDatabase()
        try db.connection.execute(
            script: """
                INSERT INTO tenants VALUES ('\(Self.tenant)', 'Fixture', 'US');
                INSERT INTO contacts (tenant, contact_name_id, full_name, email, phone_number, country) VALUES
                  ('\(Self.tenant)', '00000000-0000-4000-8000-000000000001', 'Plain', 'a@x.test', '(650) 253-0000', 'US'),
                  ('\(Self.tenant)', '00000000-0000-4000-8000-000000000002', 'Two', 'b@x.test', 'H: 650-253-0001 W: 415-555-0132 x7', NULL),
                  ('\(Self.tenant)', '00000000-0000-4000-8000-000000000003', 'German', 'c@x.test', '+49 30 123456 App. 78', 'DE'),
                  ('\(Self.tenant)', '00000000-0000-4000-8000-000000000004', 'Pager', 'd@x.test', 'Pager: 650 253 0002', 'US'),
                  ('\(Self.tenant)', '00000000-0000-4000-8000-000000000005', 'Pager2', 'e@x.test', ' PAGER : 650 253 0003', 'US'),
                  ('\(Self.tenant)', '00000000-0000-4000-8000-000000000006', 'Garbage', 'f@x.test', 'call reception', 'US'),
                  ('\(Self.tenant)', '00000000-0000-4000-8000-000000000007', 'Blank', 'g@x.test', '   ', 'US'),
                  ('\(Self.tenant)', '00000000-0000-4000-8000-000000000008', 'Null', 'h@x.test', NULL, 'US'),
                  ('\(Self.tenant)', '00000000-0000-4000-8000-000000000009', 'Dupes', 'i@x.test', '650-253-0004 / (650) 253-0004', 'US'),
                  ('\(Self.tenant)', '00000000-0000-4000-8000-00000000000a', 'Mobile', 'j@x.test', '650-253-0005 (mobile)', 'US');
                """)
        return db
    }

    static let expectedRows: [[String?]] = [
        ["01", "+16502530000", nil, "work", nil, "t", "0"],
        ["02", "+16502530001", nil, "home", nil, "t", "0"],
        ["02", "+14155550132", "7", "work", nil, "f", "1"],
        ["03", "+4930123456", "78", "work", nil, "t", "0"],
        ["04", "+16502530002", nil, nil, "Pager", "t", "0"],
        ["05", "+16502530003", nil, nil, "Pager", "t", "0"],
        ["09", "+16502530004", nil, "work", nil, "t", "0"],
        ["0a", "+16502530005", nil, "mobile", nil, "t", "0"],
    ]

    func phoneRows(_ db: TestDatabase) throws -> [[String?]] {
        try db.connection.query(
            """
            SELECT right(p.contact_name_id::text, 2), p.phone_number, p.extension, p.canonical_type, t.label,
                   p.is_default, p.display_order
            FROM contact_phone_numbers p
            LEFT JOIN contact_phone_type_definitions t
                   ON t.tenant = p.tenant AND t.contact_phone_type_id = p.custom_phone_type_id
            ORDER BY p.contact_name_id, p.display_order
            """
        ).rows
    }

    @Test func schemaApplyTwiceIsANoOp() throws {
        let db = try TestDatabase()
        let mapping = try db.mapping()
        let first = try db.applySchema(mapping)
        #expect(
            first == [
                "ferry/ledger-schema", "ferry/ledger-runs", "ferry/ledger-contract",
                "ferry/ledger-snapshot-rows-unchecked", "ferry/ledger-run-options-partial-statuses",
                "ferry/ledger-restored-rows",
                "phones/contact_phone_type_definitions", "phones/contact_phone_numbers",
            ])
        let catalog =
            "SELECT md5(string_agg(relname || relkind::text, ',' ORDER BY relname)) FROM pg_class WHERE relnamespace IN (SELECT oid FROM pg_namespace WHERE nspname IN ('public', 'ferry'))"
        let before = try db.scalar(catalog)
        let steps = try db.checksum("ferry.schema_steps")
        #expect(try db.applySchema(mapping).isEmpty)
        #expect(try db.scalar(catalog) == before)
        #expect(try db.checksum("ferry.schema_steps") == steps)
        // The constraints the issue names are really there.
        #expect(throws: PostgresError.self) {
            try db.connection.query(
                "INSERT INTO contact_phone_type_definitions (tenant, label, normalized_label) VALUES ('\(Self.tenant)', 'X', ' X ')"
            )
        }
    }

    @Test func applyWritesExactlyTheExpectedRows() throws {
        let db = try fixture()
        let mapping = try db.mapping()
        _ = try db.applySchema(mapping)
        let job = try db.job()
        let summary = try job.apply()
        let rows = try phoneRows(db)
        #expect(rows == Self.expectedRows, "\(rows)")
        #expect(try db.count("SELECT count(*) FROM contact_phone_type_definitions") == 1)
        #expect(
            try db.scalar("SELECT label || '|' || normalized_label FROM contact_phone_type_definitions")
                == "Pager|pager")
        #expect(summary.applied?.rowsInserted == Self.expectedRows.count)
        #expect(summary.applied?.customTypesCreated == 1)
        #expect(summary.rowsToInsert == Self.expectedRows.count)
        #expect(
            summary.values
                == PhoneValueCounts(read: 10, loaded: 7, rejected: 2, skippedEmpty: 1, skippedExistingPhones: 0))
        #expect(summary.accountingAddsUp)
        // The legacy column is untouched.
        #expect(
            try db.scalar("SELECT phone_number FROM contacts WHERE full_name = 'German'") == "+49 30 123456 App. 78")
        // normalized_phone_number is generated by the database.
        #expect(
            try db.scalar("SELECT normalized_phone_number FROM contact_phone_numbers WHERE extension = '78'")
                == "4930123456")
    }

    @Test func secondApplyInsertsNothing() throws {
        let db = try TestDatabase(samples: 600)
        let mapping = try db.mapping()
        _ = try db.applySchema(mapping)
        let job = try db.job()
        let first = try job.apply()
        let checksum = try db.checksum("contact_phone_numbers")
        let second = try job.apply()
        #expect((first.applied?.rowsInserted ?? 0) > 300)
        #expect(second.applied?.rowsInserted == 0)
        #expect(second.rowsToInsert == 0)
        #expect(second.values.skippedExistingPhones == first.values.loaded)
        #expect(second.accountingAddsUp)
        #expect(try db.checksum("contact_phone_numbers") == checksum)
    }

    @Test func everyContactWithNumbersHasExactlyOneDefault() throws {
        let db = try TestDatabase(samples: 1500)
        let mapping = try db.mapping()
        _ = try db.applySchema(mapping)
        let job = try db.job()
        let summary = try job.apply()
        #expect(
            try db.count(
                """
                SELECT count(*) FROM (SELECT tenant, contact_name_id FROM contact_phone_numbers
                                      GROUP BY 1, 2 HAVING count(*) FILTER (WHERE is_default) <> 1) bad
                """) == 0)
        let contactsWithPhones = try db.count(
            "SELECT count(DISTINCT (tenant, contact_name_id)) FROM contact_phone_numbers")
        #expect(contactsWithPhones == summary.contactsWithNumbers)
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == summary.applied?.rowsInserted)
        #expect(summary.rowsToInsert == summary.applied?.rowsInserted)
        #expect(summary.contactsScanned == 1500)
        #expect(summary.accountingAddsUp)
        // Every rejected value is still there, untouched, for a human to fix.
        let rejected = summary.rejectedByReason.values.reduce(0) { $0 + $1.count }
        #expect(rejected == summary.values.rejected)
    }

    @Test func planChangesNothing() throws {
        let db = try TestDatabase(samples: 900)
        let mapping = try db.mapping()
        _ = try db.applySchema(mapping)
        let tables = ["contacts", "contact_phone_numbers", "contact_phone_type_definitions", "ferry.schema_steps"]
        let before = try tables.map(db.checksum)
        let counters = try tupleCounters(db)
        let plan = try ferryCLI("plan mappings/phones.yaml --db 'dbname=\(db.name)' --json")
        #expect(plan.status == 0, "\(plan.stderr)")
        let report = try JSONDecoder().decode(PlanReport.self, from: Data(plan.stdout.utf8))
        #expect(report.schema == PlanReport.schemaVersion && report.changesPending)
        #expect(report.tables[0].insert > 500)
        #expect(report.accounting.allSatisfy { $0.addsUp })
        #expect(try tables.map(db.checksum) == before)
        #expect(try tupleCounters(db) == counters)
    }

    /// Inserted/updated/deleted tuple counters of every table of the test database (its own and ferry's), after every other session has flushed.
    func tupleCounters(_ db: TestDatabase) throws -> String {
        for _ in 0..<50 {
            let others = try db.count(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            if others == 0 { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        try db.connection.query("SELECT pg_stat_force_next_flush()")
        try db.connection.query("SELECT pg_stat_clear_snapshot()")
        // Every table but the plan session's own temporary one (the planned rows it checks constraints on).
        return try db.scalar(
            """
            SELECT sum(n_tup_ins) || '/' || sum(n_tup_upd) || '/' || sum(n_tup_del) FROM pg_stat_user_tables
            WHERE schemaname NOT LIKE 'pg\\_temp\\_%' AND schemaname NOT LIKE 'pg\\_toast\\_temp\\_%'
            """) ?? ""
    }

    @Test func planAndApplyPredictTheSameRows() throws {
        let db = try TestDatabase(samples: 1200)
        let mapping = try db.mapping()
        _ = try db.applySchema(mapping)
        let job = try db.job()
        let plan = try job.plan()
        let apply = try job.apply()
        #expect(plan.rowsToInsert == apply.applied?.rowsInserted)
        #expect(plan.rowsByType == apply.rowsByType)
        #expect(plan.customTypesToCreate.count == apply.applied?.customTypesCreated)
        #expect(plan.values == apply.values)
    }

    @Test func worksOnAnExistingAppWithOtherTableAndColumnNames() throws {
        let db = try fixture()
        try db.connection.execute(
            script: """
                CREATE SCHEMA crm;
                CREATE TABLE crm."Phone Types" (tid uuid NOT NULL, type_id uuid NOT NULL DEFAULT gen_random_uuid(),
                    name text NOT NULL, name_key text NOT NULL, created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(),
                    PRIMARY KEY (tid, type_id), UNIQUE (tid, name_key));
                CREATE TABLE crm.phones (tid uuid NOT NULL, phone_id uuid NOT NULL DEFAULT gen_random_uuid(), person uuid NOT NULL,
                    number text NOT NULL, ext text, kind text, custom_kind uuid, is_default boolean NOT NULL, position int NOT NULL,
                    created_at timestamptz DEFAULT now(), updated_at timestamptz DEFAULT now(), PRIMARY KEY (tid, phone_id));
                """)
        let text = try String(
            contentsOf: TestDatabase.packageRoot.appendingPathComponent("mappings/phones.yaml"), encoding: .utf8
        )
        .replacingOccurrences(
            of: """
                target:                        # the defaults shown; rename to fit an existing app
                  phone_numbers:
                    table: contact_phone_numbers
                  type_definitions:
                    table: contact_phone_type_definitions
                """,
            with: """
                target:
                  schema: crm
                  phone_numbers:
                    table: phones
                    columns: {tenant: tid, contact_key: person, phone_number: number, extension: ext, canonical_type: kind,
                              custom_type: custom_kind, display_order: position}
                  type_definitions:
                    table: Phone Types
                    columns: {tenant: tid, id: type_id, label: name, normalized_label: name_key}
                """)
        let mapping = try PhonesMapping(file: "renamed.yaml", text: text)
        #expect(mapping.phoneNumbers.table.name == "phones")
        // schema apply on an existing app: the ledger is created, the app's own tables are left as they are.
        #expect(
            try db.applySchema(mapping) == [
                "ferry/ledger-schema", "ferry/ledger-runs", "ferry/ledger-contract",
                "ferry/ledger-snapshot-rows-unchecked", "ferry/ledger-run-options-partial-statuses",
                "ferry/ledger-restored-rows",
                "phones/crm.Phone Types", "phones/crm.phones",
            ])
        let job = PhonesJob(mapping: mapping, conninfo: db.conninfo)
        let summary = try job.apply()
        #expect(summary.applied?.rowsInserted == Self.expectedRows.count)
        #expect(try db.count("SELECT count(*) FROM crm.phones WHERE is_default") == 7)
        #expect(try db.scalar("SELECT name FROM crm.\"Phone Types\"") == "Pager")
    }

    @Test func rowsTakeTheContactsOwnTimestampsWhenTheMappingSaysSo() throws {
        let db = try fixture()
        try db.connection.execute(
            script: """
                UPDATE contacts SET created_at = '2019-03-04 05:06:07+00', updated_at = '2021-08-09 10:11:12+00';
                UPDATE contacts SET updated_at = created_at WHERE full_name = 'German';
                """)
        let text = try String(
            contentsOf: TestDatabase.packageRoot.appendingPathComponent("mappings/phones.yaml"), encoding: .utf8
        )
        .replacingOccurrences(
            of: "  region_column: country",
            with: "  region_column: country\n  created_at_column: created_at\n  updated_at_column: updated_at")
        let mapping = try PhonesMapping(file: "timestamps.yaml", text: text)
        _ = try db.applySchema(mapping)
        let job = PhonesJob(mapping: mapping, conninfo: db.conninfo)
        _ = try job.apply()
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == Self.expectedRows.count)
        // Every row: the contact's created_at, and its updated_at.
        #expect(
            try db.count(
                """
                SELECT count(*) FROM contact_phone_numbers p JOIN contacts c USING (tenant, contact_name_id)
                WHERE p.created_at IS DISTINCT FROM c.created_at OR p.updated_at IS DISTINCT FROM c.updated_at
                """) == 0)
        #expect(
            try db.count("SELECT count(*) FROM contact_phone_numbers WHERE created_at = '2019-03-04 05:06:07+00'") > 0)
        // Without the keys, now(): the default mapping.
        let withoutKeys = try db.mapping()
        #expect(!withoutKeys.source.timestampsFromSource)
        // A key for a column the phone table is declared without is refused, with its line.
        #expect {
            try PhonesMapping(
                file: "t.yaml",
                text: text.replacingOccurrences(
                    of: "    table: contact_phone_numbers",
                    with: "    table: contact_phone_numbers\n    columns: {created_at: null}"))
        } throws: { String(describing: $0).contains("declared without that timestamp column") }
    }

    /// The application accepts numbers that are "possible": so does a mapping with `accept: possible`,
    /// listing each under its anomaly; the contract judges with the same rule. A local-only number stays
    /// rejected either way.
    @Test func possibleNumbersLoadWhenTheMappingAcceptsThemAndTheContractAgrees() throws {
        let db = try fixture()
        try db.connection.execute(
            script: """
                INSERT INTO contacts (tenant, contact_name_id, full_name, email, phone_number, country) VALUES
                  ('\(Self.tenant)', '00000000-0000-4000-8000-00000000000b', 'New Range', 'k@x.test', '(213) 055-1234', 'US'),
                  ('\(Self.tenant)', '00000000-0000-4000-8000-00000000000c', 'Local', 'l@x.test', '301-4166', 'US');
                """)
        let text = try String(
            contentsOf: TestDatabase.packageRoot.appendingPathComponent("mappings/phones.yaml"), encoding: .utf8
        )
        .replacingOccurrences(of: "  default_region: US\n", with: "  default_region: US\n  accept: possible\n")
        let mapping = try PhonesMapping(file: "possible.yaml", text: text)
        #expect(mapping.acceptance == .possible)
        _ = try db.applySchema(mapping)
        let job = PhonesJob(mapping: mapping, conninfo: db.conninfo)
        let plan = try job.plan()
        #expect(plan.anomalies[PhoneAnomalyClass.possibleNotValid.rawValue]?.count == 1)
        _ = try job.apply()
        #expect(
            try db.scalar(
                "SELECT string_agg(right(contact_name_id::text, 2) || '=' || phone_number, ',' ORDER BY contact_name_id) FROM contact_phone_numbers WHERE right(contact_name_id::text, 2) IN ('0b', '0c')"
            ) == "0b=+12130551234")
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == Self.expectedRows.count + 1)

        func unmigrated(_ mapping: PhonesMapping, _ name: String) throws -> [String] {
            var options = ContractOptions()
            options.unmigratedFile = db.scratchFile("\(name)-unmigrated.csv")
            options.log = { _ in }
            let report = try Contract(subject: PhonesContractSubject(mapping: mapping), conninfo: db.conninfo).run(
                options)
            guard let file = report.unmigratedFile else { return report.problems }
            return try contractKeyFile(file).map { String($0.key.suffix(2)) }.sorted()
        }
        // Garbage and Local hold nothing loadable; with the default mapping New Range's number is not
        // migrated either, as that mapping never loads it.
        #expect(try unmigrated(mapping, "possible") == ["06", "0c"])
        let strict = try unmigrated(try db.mapping(), "valid")
        #expect(strict == ["06", "0b", "0c"], "\(strict)")
    }

    /// The application deletes a contact after ferry read it and before its batch is written: the
    /// batch is written again for the contacts still there, the run goes on, and the summary counts the
    /// contact as skipped at load (it failed the run on the foreign key before).
    @Test func aContactDeletedBetweenReadAndWriteIsSkippedNotAFailure() throws {
        let db = try TestDatabase(samples: 300)
        _ = try db.applySchema(try db.mapping())
        let victim = try #require(
            try db.scalar(
                """
                SELECT contact_name_id::text FROM contacts WHERE phone_number ~ '[0-9]{3}.*[0-9]{4}' AND phone_number !~ '[A-Za-z]'
                ORDER BY tenant, contact_name_id OFFSET 40 LIMIT 1
                """))
        let position = try db.count(
            "SELECT count(*) FROM contacts WHERE (tenant, contact_name_id) < (SELECT tenant, contact_name_id FROM contacts WHERE contact_name_id = '\(victim)')"
        )
        #expect(position >= 25, "the contact is read after the first batch")
        // The first batch waits for a lock on the phone table (its insert); meanwhile the next pages are read.
        let (status, json) = try runWhileTheFirstBatchWaits(
            db,
            [
                "apply", "mappings/phones.yaml", "--no-progress", "--json", "--batch-size", "25", "--lock-timeout",
                "20s",
            ],
            session: "ferry apply phones", lock: "LOCK TABLE contact_phone_numbers IN EXCLUSIVE MODE",
            meanwhile: """
                UPDATE projects SET customer_id = NULL WHERE customer_id = '\(victim)';
                DELETE FROM contacts WHERE contact_name_id = '\(victim)'
                """)
        #expect(status == 0)
        let summary = try JSONDecoder().decode(PhonesSummary.self, from: json)
        #expect(summary.applied?.contactsSkippedAtLoad == 1)
        #expect(summary.applied?.rowsInserted == (try db.count("SELECT count(*) FROM contact_phone_numbers")))
    }

    /// `existing_rows: replace_naive`: the application edits one naive row and deletes another after
    /// ferry read them and before their batch is written. Both contacts are left as the application
    /// left them (the deleted number is not written back) and counted as skipped at load.
    @Test func naiveRowsTheApplicationChangedAfterTheReadAreLeftAlone() throws {
        let db = try TestDatabase(samples: 300)
        let mapping = "mappings/phones-over-naive-rows.yaml"
        _ = try db.applySchema(try db.mapping(mapping))
        try db.connection.execute(script: JobCase.naiveBackfillSQL)
        // Two contacts read after the first batch (of 25) and before the read-ahead stops, whose naive
        // value is not already what ferry writes.
        let victims = try db.connection.query(
            """
            SELECT c.contact_name_id::text AS key
            FROM (SELECT tenant, contact_name_id, row_number() OVER (ORDER BY tenant, contact_name_id) AS position FROM contacts) c
            JOIN contact_phone_numbers p ON p.tenant = c.tenant AND p.contact_name_id = c.contact_name_id
            WHERE c.position BETWEEN 30 AND 70 AND p.phone_number !~ '^\\+'
            ORDER BY c.position LIMIT 2
            """
        ).decoded("two naive rows", key: "key").map { try $0.required("key", as: String.self) }
        try #require(victims.count == 2)
        let (status, json) = try runWhileTheFirstBatchWaits(
            db, ["apply", mapping, "--no-progress", "--json", "--batch-size", "25", "--lock-timeout", "20s"],
            session: "ferry apply phones", lock: "LOCK TABLE contact_phone_numbers IN EXCLUSIVE MODE",
            meanwhile: """
                UPDATE contact_phone_numbers SET phone_number = '555 0100 (front desk)' WHERE contact_name_id = '\(victims[0])';
                DELETE FROM contact_phone_numbers WHERE contact_name_id = '\(victims[1])'
                """)
        #expect(status == 0)
        let summary = try JSONDecoder().decode(PhonesSummary.self, from: json)
        #expect(summary.applied?.contactsSkippedAtLoad == 2)
        #expect(
            try db.scalar(
                "SELECT string_agg(phone_number, ',') FROM contact_phone_numbers WHERE contact_name_id = '\(victims[0])'"
            )
                == "555 0100 (front desk)")
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers WHERE contact_name_id = '\(victims[1])'") == 0)
    }

    @Test func missingTargetTablesAreReportedBeforeAnyWork() throws {
        let db = try fixture()
        let job = PhonesJob(mapping: try db.mapping(), conninfo: db.conninfo)
        #expect {
            try job.apply()
        } throws: { error in
            let text = String(describing: error)
            return text.contains("contact_phone_numbers does not exist") && text.contains("ferry schema apply")
        }
    }

    @Test func contactsThatGotPhonesElsewhereAreLeftAlone() throws {
        let db = try fixture()
        let mapping = try db.mapping()
        _ = try db.applySchema(mapping)
        try db.connection.execute(
            script: """
                INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default)
                VALUES ('\(Self.tenant)', '00000000-0000-4000-8000-000000000001', '+15550000000', 'other', true)
                """)
        let job = try db.job()
        let summary = try job.apply()
        #expect(summary.values.skippedExistingPhones == 1)
        #expect(
            try db.scalar(
                "SELECT string_agg(phone_number, ',') FROM contact_phone_numbers WHERE contact_name_id = '00000000-0000-4000-8000-000000000001'"
            ) == "+15550000000")
        #expect(summary.accountingAddsUp)
    }
}
