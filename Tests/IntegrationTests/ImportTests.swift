import Foundation
import Testing
@testable import FerryKit

/// A database with the sample schema, three tenants and a few organizations, ready for imports.
func importDatabase() throws -> TestDatabase {
    let db = try TestDatabase()
    try db.connection.execute(
        script: """
            INSERT INTO tenants VALUES ('00000000-0000-4000-8000-000000000001', 'Acme', 'US'),
                                       ('00000000-0000-4000-8000-000000000002', 'Berlin', 'DE'),
                                       ('00000000-0000-4000-8000-000000000003', 'Thames', 'GB');
            INSERT INTO clients (tenant, client_id, client_name) VALUES
                ('00000000-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000001', 'Analytical Engines');
            """)
    let mapping = try importMapping()
    _ = try SchemaMigrator(connection: db.connection).apply(
        try ImportJob(mapping: mapping, conninfo: db.conninfo).schemaSteps(using: db.connection))
    return db
}

func importMapping() throws -> ContactsCSVMapping {
    try ContactsCSVMapping.load(
        path: TestDatabase.packageRoot.appendingPathComponent("mappings/contacts-csv.yaml").path)
}

extension TestDatabase {
    func importFile(_ path: String, _ configure: (inout ImportOptions) -> Void = { _ in }) throws -> ImportSummary {
        var options = ImportOptions()
        options.showProgress = false
        options.log = { _ in }
        configure(&options)
        return try ImportJob(mapping: try importMapping(), conninfo: conninfo).run(file: path, options)
    }

    /// Every table an import writes, fingerprinted.
    func importedTablesChecksum() throws -> [String] { try ImportTables.checksum(connection) }
}

let partnerFile = TestDatabase.packageRoot.appendingPathComponent("samples/import/partner-contacts.csv").path

func copyOfPartnerFile() throws -> String {
    try temporaryFile(try Data(contentsOf: URL(fileURLWithPath: partnerFile)), name: "partner.csv")
}

/// Changes a CSV file's bytes by one more line; returns the bytes it had.
func appendALateLine(to file: String) throws -> Data {
    let original = try Data(contentsOf: URL(fileURLWithPath: file))
    try (original + Data("00000000-0000-4000-8000-000000000001,Late,US,late@example.com,,,,,\n".utf8)).write(
        to: URL(fileURLWithPath: file))
    return original
}

func temporaryFile(_ data: Data, name: String = "input.csv") throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ferry-it-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let path = directory.appendingPathComponent(name).path
    FileManager.default.createFile(atPath: path, contents: data)
    return path
}

func temporaryFile(_ text: String, name: String = "input.csv") throws -> String {
    try temporaryFile(Data(text.utf8), name: name)
}

/// Records in a CSV file, read with ferry's own reader (bytes, whatever the encoding).
func readAllRecords(_ path: String) throws -> Int {
    let reader = try CSVReader(path: path, encoding: .latin1)
    var count = 0
    while let item = try reader.next() { if case .record = item { count += 1 } }
    return count
}

@Suite("CSV import on PostgreSQL")
struct ImportTests {
    @Test func partnerFileLoadsRejectsAndAddsUp() throws {
        let db = try importDatabase()
        let file = try copyOfPartnerFile()
        let summary = try db.importFile(file)
        #expect(summary.rowsRead == 12)
        #expect(summary.blankLines == 1)
        #expect(
            (summary.inserted, summary.updated, summary.unchanged, summary.skipped, summary.rejected) == (6, 0, 0, 0, 6)
        )
        #expect(summary.addsUp)
        #expect(try db.count("SELECT count(*) FROM contacts") == 6)
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == 9)
        // Organizations: found by name (any case) or created once per tenant and name.
        #expect(try db.count("SELECT count(*) FROM clients") == 4)
        #expect(
            try db.scalar(
                "SELECT c.client_name FROM contacts JOIN clients c USING (tenant, client_id) WHERE email = 'ada@analytical.example'"
            ) == "Analytical Engines")
        // Spaces are data; the email is the canonical key; exactly one default each.
        #expect(try db.scalar("SELECT full_name FROM contacts WHERE email = 'spaced@example.com'") == "  Spaced Name  ")
        #expect(try db.count("SELECT count(*) FROM contacts WHERE email = 'grace.hopper@navy.example'") == 1)
        #expect(
            try db.count(
                "SELECT count(*) FROM (SELECT 1 FROM contact_phone_numbers GROUP BY tenant, contact_name_id HAVING count(*) FILTER (WHERE is_default) <> 1) x"
            ) == 0)
        #expect(
            try db.scalar(
                "SELECT string_agg(p.phone_number || coalesce('x' || p.extension, ''), ' ' ORDER BY p.display_order) FROM contact_phone_numbers p JOIN contacts USING (tenant, contact_name_id) WHERE email = 'klaus@anlagen.example'"
            ) == "+49301234567x78 +491712345678")

        // The reject file: original line numbers, reasons and the original fields, byte for byte.
        let rejects = try String(contentsOfFile: file + ".rejects.csv", encoding: .utf8)
        let lines = rejects.components(separatedBy: "\r\n")
        #expect(lines[0] == "line,reason,Tenant,Full Name,Country,Email,Company,Title,Office Phone,Mobile,Notes")
        #expect(
            lines[1]
                == "5,duplicate in file: same email as line 2 (the first one is imported),00000000-0000-4000-8000-000000000001,Duplicate Ada,US,ADA@analytical.example,,,,,the same email as line 2"
        )
        #expect(lines.dropFirst().compactMap { Int($0.prefix { $0 != "," }) } == [5, 6, 7, 8, 10, 12])
        #expect(lines[5].hasSuffix(",00000000-0000-4000-8000-000000000002,Too Many,DE,too.many@example.com,,,,,,extra"))

        // The same file again: nothing to insert, nothing to update.
        let again = try db.importFile(file)
        #expect((again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 6, 6))
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == 9)
    }

    /// A contact the application inserts while a batch is being decided: the line is decided `insert`,
    /// its insert loses to the application's row (same tenant and email), and the line becomes a reject
    /// with the reason; nothing of it is written, the other line is.
    @Test func aContactTheApplicationInsertsMeanwhileMakesItsLineARejectWithTheReason() throws {
        let db = try importDatabase()
        let file = try temporaryFile(
            """
            Tenant,Full Name,Country,Email,Company,Title,Office Phone,Mobile,Notes
            00000000-0000-4000-8000-000000000001,First Person,US,first@example.com,,,,,
            00000000-0000-4000-8000-000000000001,Late Person,US,late@example.com,,,+1 212 555 0100,,

            """)
        let application = try PostgresConnection(conninfo: db.conninfo)
        defer { application.close() }
        try application.execute(
            script: """
                BEGIN;
                INSERT INTO contacts (tenant, contact_name_id, full_name, email)
                VALUES ('00000000-0000-4000-8000-000000000001', gen_random_uuid(), 'Application', 'late@example.com')
                """)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ferryBinary)
        process.arguments = ["import", file, "--db", db.conninfo, "--no-progress", "--json", "--lock-timeout", "20s"]
        process.currentDirectoryURL = TestDatabase.packageRoot
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        // The import's insert waits for the application's uncommitted row with the same key.
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        defer { watcher.close() }
        var waiting = false
        for _ in 0..<1000 where !waiting {
            Thread.sleep(forTimeInterval: 0.01)
            waiting =
                try watcher.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ferry import' AND wait_event_type = 'Lock'"
                ).scalar != "0"
        }
        #expect(waiting, "the import never waited for the application's row")
        try application.execute(script: "COMMIT")
        let json = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 4)
        let summary = try JSONDecoder().decode(ImportSummary.self, from: json)
        #expect(summary.inserted == 1 && summary.rejected == 1 && summary.addsUp)
        let rejects = try String(contentsOfFile: file + ".rejects.csv", encoding: .utf8)
        #expect(rejects.contains("concurrent insert") && rejects.contains("late@example.com"), "\(rejects)")
        #expect(
            try db.scalar("SELECT string_agg(full_name, ',' ORDER BY full_name) FROM contacts")
                == "Application,First Person")
        #expect(
            try db.count("SELECT count(*) FROM contact_phone_numbers") == 0, "no phone for the application's contact")
    }

    @Test func dryRunWritesNothingAndPredictsTheApply() throws {
        let db = try importDatabase()
        let file = try copyOfPartnerFile()
        let before = try db.importedTablesChecksum()
        let runs = try db.count("SELECT count(*) FROM ferry.runs")
        let predicted = try db.importFile(file) { $0.dryRun = true }
        #expect(try db.importedTablesChecksum() == before)
        #expect(try db.count("SELECT count(*) FROM ferry.runs") == runs)
        let applied = try db.importFile(file)
        #expect(
            (
                predicted.inserted, predicted.updated, predicted.rejected, predicted.phoneRowsToInsert,
                predicted.organizationsToCreate
            )
                == (
                    applied.inserted, applied.updated, applied.rejected, applied.phoneRowsToInsert,
                    applied.organizationsToCreate
                ))
        // The dry run's report is the plan report: same model, same renderers.
        let report = PlanReport(importSummary: predicted, mapping: try importMapping())
        #expect(report.accounting[0].addsUp)
        #expect(report.anomalies.contains { $0.name == "rejected: duplicate in file" && $0.count == 1 })
        #expect(try report.render(.markdown).contains("unchanged 0"))
        // The growth estimate covers the new rows, their phones and the snapshot rows rollback reads.
        #expect((predicted.estimatedGrowthBytes ?? 0) > 0)
        #expect(predicted.growthBasis.contains { $0.hasPrefix("contact_phone_numbers: ") }, "\(predicted.growthBasis)")
        #expect(predicted.growthBasis.contains { $0.hasPrefix("ferry.snapshot_rows: ") }, "\(predicted.growthBasis)")
        #expect(try report.render(.markdown).contains("growth: about"))
    }

    @Test func updatesOnlyWhatDiffersMergesPhonesAndRollsBackExactly() throws {
        let db = try importDatabase()
        try db.connection.execute(
            script: """
                INSERT INTO contacts (tenant, contact_name_id, full_name, email, role, notes, client_id) VALUES
                    ('00000000-0000-4000-8000-000000000001', 'cccccccc-0000-4000-8000-000000000001', 'Ada Lovelace', 'Ada@Analytical.example',
                     'Countess', 'keep me', 'aaaaaaaa-0000-4000-8000-000000000001');
                INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default, display_order)
                VALUES ('00000000-0000-4000-8000-000000000001', 'cccccccc-0000-4000-8000-000000000001', '+12125550199', 'home', true, 0);
                """)
        let before = try db.importedTablesChecksum()
        let file = try temporaryFile(
            """
            Tenant,Full Name,Email,Title,Notes,Office Phone,Mobile
            00000000-0000-4000-8000-000000000001,Ada Lovelace,ada@analytical.example,Buyer,,212-555-0199,650-253-0000
            00000000-0000-4000-8000-000000000001,New Person,new@example.com,,,,

            """)
        let summary = try db.importFile(file)
        #expect((summary.inserted, summary.updated, summary.unchanged, summary.rejected) == (1, 1, 0, 0))
        // role changed; notes kept (an empty cell never erases); the existing phone and default kept, the new one appended.
        #expect(
            try db.scalar(
                "SELECT role || '|' || notes FROM contacts WHERE contact_name_id = 'cccccccc-0000-4000-8000-000000000001'"
            ) == "Buyer|keep me")
        #expect(
            try db.scalar(
                """
                SELECT string_agg(phone_number || ':' || is_default || ':' || display_order, ' ' ORDER BY display_order)
                FROM contact_phone_numbers WHERE contact_name_id = 'cccccccc-0000-4000-8000-000000000001'
                """) == "+12125550199:true:0 +16502530000:false:1")

        // --on-conflict skip and error leave the contact alone; a second import is a no-op.
        try db.connection.execute(
            script:
                "UPDATE contacts SET role = 'Changed by app' WHERE contact_name_id = 'cccccccc-0000-4000-8000-000000000001'"
        )
        let skipped = try db.importFile(file) { $0.onConflict = .skip }
        #expect((skipped.skipped, skipped.unchanged, skipped.updated) == (1, 1, 0))
        let refused = try db.importFile(file) { $0.onConflict = .error }
        #expect(refused.rejected == 1)
        #expect(refused.rejectExamples.first?.reason.hasPrefix("conflict: contact exists and differs (role)") == true)
        #expect(
            try db.scalar("SELECT role FROM contacts WHERE contact_name_id = 'cccccccc-0000-4000-8000-000000000001'")
                == "Changed by app")
        try db.connection.execute(
            script: "UPDATE contacts SET role = 'Buyer' WHERE contact_name_id = 'cccccccc-0000-4000-8000-000000000001'")

        // Rollback of the first import: conflicts where the app changed the row since (the role edit above)…
        let report = try Rollback(conninfo: db.conninfo).run(summary.runId!, dryRun: false, force: false)
        #expect(!report.complete)
        #expect(report.conflicts.count == 1)
        // …and, forced, every table is exactly as before the import.
        _ = try Rollback(conninfo: db.conninfo).run(summary.runId!, dryRun: false, force: true)
        #expect(try db.importedTablesChecksum() == before)
    }

    /// Keys that are not uuids (identity columns here) come from the columns' defaults: the insert
    /// returns each new contact's key and the batch's lines learn theirs by email; a new organization's
    /// key comes back the same way. Re-import, update and rollback hold as with uuid keys.
    @Test func identityKeysComeFromTheColumnsAndRollBackExactly() throws {
        let db = try TestDatabase(empty: true)
        try db.connection.execute(
            script: """
                CREATE SCHEMA crm;
                CREATE TABLE crm.tenants (tenant uuid PRIMARY KEY, name text NOT NULL);
                CREATE TABLE crm.clients (
                    tenant uuid NOT NULL REFERENCES crm.tenants,
                    client_id bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 500),
                    client_name text NOT NULL,
                    PRIMARY KEY (tenant, client_id));
                CREATE TABLE crm.contacts (
                    tenant uuid NOT NULL REFERENCES crm.tenants,
                    contact_name_id bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 1000),
                    full_name text NOT NULL, email text, client_id bigint, role text, notes text,
                    is_inactive boolean NOT NULL DEFAULT false, updated_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (tenant, contact_name_id), UNIQUE (tenant, email),
                    FOREIGN KEY (tenant, client_id) REFERENCES crm.clients (tenant, client_id));
                INSERT INTO crm.tenants VALUES ('00000000-0000-4000-8000-000000000001', 'Acme');
                INSERT INTO crm.clients (tenant, client_name) VALUES ('00000000-0000-4000-8000-000000000001', 'Analytical Engines');
                """)
        let yaml = try String(
            contentsOf: TestDatabase.packageRoot.appendingPathComponent("mappings/contacts-csv.yaml"), encoding: .utf8
        )
        .replacingOccurrences(of: "\ntarget:", with: "\ntarget:\n  schema: crm\n ")
        let mapping = try ContactsCSVMapping.load(path: try temporaryFile(yaml, name: "crm.yaml"))
        let job = ImportJob(mapping: mapping, conninfo: db.conninfo)
        _ = try SchemaMigrator(connection: db.connection).apply(try job.schemaSteps(using: db.connection))
        func checksums() throws -> [String] {
            try ["crm.contacts", "crm.clients", "crm.contact_phone_numbers", "crm.contact_phone_type_definitions"].map {
                try db.checksum($0)
            }
        }
        func run(_ text: String) throws -> ImportSummary {
            var options = ImportOptions()
            options.showProgress = false
            options.log = { _ in }
            return try job.run(file: try temporaryFile(text), options)
        }
        let contactsWithPhones = """
            SELECT string_agg(c.contact_name_id || ':' || c.full_name || ':' || coalesce(o.client_id || '=' || o.client_name, '-')
                              || ':' || coalesce(c.role, '-') || ':' || coalesce(p.phones, '-'), ' ' ORDER BY c.contact_name_id)
            FROM crm.contacts c LEFT JOIN crm.clients o USING (tenant, client_id)
            LEFT JOIN LATERAL (SELECT string_agg(x.phone_number, ',' ORDER BY x.display_order) AS phones
                               FROM crm.contact_phone_numbers x
                               WHERE x.tenant = c.tenant AND x.contact_name_id = c.contact_name_id) p ON true
            """
        let before = try checksums()
        let file = """
            Tenant,Full Name,Email,Company,Title,Office Phone,Mobile
            00000000-0000-4000-8000-000000000001,Ada Lovelace,ada@analytical.example,Analytical Engines,,212-555-0199,
            00000000-0000-4000-8000-000000000001,Grace Hopper,grace@navy.example,US Navy,,650-253-0000,
            00000000-0000-4000-8000-000000000001,Ada Again,ADA@analytical.example,,,,
            00000000-0000-4000-8000-000000000001,Charles Babbage,charles@engines.example,us navy,,,+1 415 555 0132

            """
        let first = try run(file)
        #expect((first.inserted, first.updated, first.rejected) == (3, 0, 1) && first.addsUp)
        #expect(
            try db.scalar(contactsWithPhones)
                == "1000:Ada Lovelace:500=Analytical Engines:-:+12125550199 1001:Grace Hopper:501=US Navy:-:+16502530000 1002:Charles Babbage:501=US Navy:-:+14155550132"
        )
        let again = try run(file)
        #expect((again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 3, 1))

        let afterFirst = try checksums()
        let changed = try run(
            """
            Tenant,Full Name,Email,Title,Office Phone,Mobile
            00000000-0000-4000-8000-000000000001,Grace Hopper,grace@navy.example,Rear Admiral,650-253-0000,+1 212 555 0142
            00000000-0000-4000-8000-000000000001,Alan Turing,alan@bletchley.example,,,

            """)
        #expect((changed.inserted, changed.updated, changed.rejected) == (1, 1, 0))
        #expect(
            try db.scalar(contactsWithPhones)
                == "1000:Ada Lovelace:500=Analytical Engines:-:+12125550199 1001:Grace Hopper:501=US Navy:Rear Admiral:+16502530000,+12125550142 1002:Charles Babbage:501=US Navy:-:+14155550132 1003:Alan Turing:-:-:-"
        )

        // Undone newest first: the rollback of the update gives Grace's row a new xmin, and the rollback
        // of the first import still knows that row as its own (it was restored to what that import wrote)…
        _ = try Rollback(conninfo: db.conninfo).run(changed.runId!, dryRun: false, force: false)
        #expect(try checksums() == afterFirst)
        let dry = try Rollback(conninfo: db.conninfo).run(first.runId!, dryRun: true, force: false)
        #expect(dry.conflicts.isEmpty, "\(dry.conflicts)")
        // …until the application changes it.
        try db.connection.execute(script: "UPDATE crm.contacts SET notes = 'called' WHERE contact_name_id = 1001")
        let undone = try Rollback(conninfo: db.conninfo).run(first.runId!, dryRun: false, force: false)
        #expect(
            undone.conflicts == [
                #"crm.contacts {"tenant": "00000000-0000-4000-8000-000000000001", "contact_name_id": 1001}: changed since the run"#,
                #"crm.clients {"tenant": "00000000-0000-4000-8000-000000000001", "client_id": 501}: still referenced by newer rows"#,
            ])
        _ = try Rollback(conninfo: db.conninfo).run(first.runId!, dryRun: false, force: true)
        #expect(try checksums() == before)
        // Every run is undone: a prune drops the records of restored rows, which no snapshot row needs now.
        #expect(try db.count("SELECT count(*) FROM ferry.restored_rows") > 0)
        _ = try RunLedger(connection: db.connection).pruneSnapshots(olderThan: "30 days", all: false)
        #expect(try db.count("SELECT count(*) FROM ferry.restored_rows") == 0)
    }

    /// An application's BEFORE UPDATE trigger that sets updated_at: a rollback restores the contact
    /// through it, so it says the row is not as it was (exit 3) rather than "rolled back"; with
    /// --disable-before-triggers the row comes back exactly, and the trigger stays as it was.
    @Test func aRollbackThroughAnUpdatedAtTriggerSaysSoOrDisablesIt() throws {
        let db = try importDatabase()
        try db.connection.execute(
            script: """
                INSERT INTO contacts (tenant, contact_name_id, full_name, email, role, updated_at) VALUES
                    ('00000000-0000-4000-8000-000000000001', 'cccccccc-0000-4000-8000-000000000001', 'Grace Hopper',
                     'grace@navy.example', 'Captain', '2020-01-01 00:00:00+00');
                CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at = now(); RETURN NEW; END $$;
                CREATE TRIGGER contacts_touch BEFORE UPDATE ON contacts FOR EACH ROW EXECUTE FUNCTION touch();
                ALTER TABLE contacts ENABLE ALWAYS TRIGGER contacts_touch;
                """)
        // The doctor says so before anything is written.
        let doctor = try ferryCLI("doctor mappings/contacts-csv.yaml", database: db.name)
        #expect(doctor.status == 0, "\(doctor.stdout)\(doctor.stderr)")
        #expect(
            doctor.stdout.contains(
                "warning: table contacts has BEFORE row trigger contacts_touch: a rollback restores rows through it"),
            "\(doctor.stdout)")
        let before = try db.importedTablesChecksum()
        let file = try temporaryFile(
            """
            Tenant,Full Name,Email,Title
            00000000-0000-4000-8000-000000000001,Grace Hopper,grace@navy.example,Rear Admiral

            """)
        let keptItsTime =
            "SELECT (updated_at = '2020-01-01 00:00:00+00')::text FROM contacts WHERE email = 'grace@navy.example'"
        let trigger = "SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'contacts_touch'"

        let first = try db.importFile(file)
        #expect(first.updated == 1)
        let dry = try Rollback(conninfo: db.conninfo).run(first.runId!, dryRun: true, force: false)
        #expect(dry.tables.first { $0.table == "public.contacts" }?.restoredOtherwise == 1)
        #expect(dry.tables.first { $0.table == "public.contacts" }?.columnsChangedByTriggers == ["updated_at"])
        #expect(dry.notRestoredExactly.count == 1 && dry.notRestoredExactly[0].contains("contacts_touch"))
        var exact = Rollback(conninfo: db.conninfo)
        exact.disablesBeforeTriggers = true
        let undone = try exact.run(first.runId!, dryRun: false, force: false)
        #expect(undone.complete && undone.notRestoredExactly.isEmpty)
        #expect(try db.importedTablesChecksum() == before)
        #expect(try db.scalar(keptItsTime) == "true")
        #expect(try db.scalar(trigger) == "A", "the trigger is enabled as it was")

        // Without the flag the row is restored through the trigger, and the rollback says so.
        let second = try db.importFile(file)
        let rollback = try ferryCLI("rollback \(second.runId!) --yes", database: db.name)
        #expect(rollback.status == 3, "\(rollback.stdout)\(rollback.stderr)")
        #expect(
            rollback.stdout.contains(
                "not exact: public.contacts: 1 restored row differs from the pre-image in updated_at"))
        #expect(rollback.stdout.contains("run \(second.runId!) is rolled back, but not exactly"))
        #expect(try db.scalar("SELECT role FROM contacts WHERE email = 'grace@navy.example'") == "Captain")
        #expect(try db.scalar(keptItsTime) == "false")
    }

    /// The database lowercases the file's emails with its own lower(), as its index on the contacts'
    /// emails does: Swift's lowercasing reads 'İ' as 'i̇' where PostgreSQL reads 'i', and the import
    /// then inserted the person a second time instead of finding them.
    @Test func anEmailIsMatchedAsTheDatabaseLowercasesIt() throws {
        let db = try importDatabase()
        try db.connection.execute(
            script: """
                INSERT INTO contacts (tenant, contact_name_id, full_name, email, role) VALUES
                    ('00000000-0000-4000-8000-000000000001', gen_random_uuid(), 'İlker Yılmaz', 'İlker@firma.example', 'Buyer');
                """)
        let file = try temporaryFile(
            """
            Tenant,Full Name,Email,Title
            00000000-0000-4000-8000-000000000001,İlker Yılmaz,İLKER@FIRMA.EXAMPLE,Director
            00000000-0000-4000-8000-000000000001,İlker Again,ilker@firma.example,Director

            """)
        let summary = try db.importFile(file)
        #expect((summary.inserted, summary.updated, summary.rejected) == (0, 1, 1), "\(summary.rejectExamples)")
        #expect(summary.rejectExamples.first?.reason.hasPrefix("duplicate in file: same email as line 2") == true)
        #expect(
            try db.scalar("SELECT string_agg(email || ' ' || role, ',') FROM contacts")
                == "İlker@firma.example Director")
    }

    @Test func deactivateMissingSetsInactiveAndRollsBack() throws {
        let db = try importDatabase()
        try db.connection.execute(
            script: """
                INSERT INTO contacts (tenant, contact_name_id, full_name, email) VALUES
                    ('00000000-0000-4000-8000-000000000001', 'dddddddd-0000-4000-8000-000000000001', 'Gone Person', 'gone@example.com'),
                    ('00000000-0000-4000-8000-000000000001', 'dddddddd-0000-4000-8000-000000000002', 'Kept Person', 'KEPT@example.com'),
                    ('00000000-0000-4000-8000-000000000002', 'dddddddd-0000-4000-8000-000000000003', 'Other Tenant', 'other@example.com');
                """)
        let before = try db.importedTablesChecksum()
        let file = try temporaryFile(
            "Tenant,Full Name,Email\n00000000-0000-4000-8000-000000000001,Kept Person,kept@example.com\n")
        let summary = try db.importFile(file) { $0.deactivateMissing = true }
        #expect(summary.contactsDeactivated == 1)
        #expect(
            try db.scalar("SELECT string_agg(email || ':' || is_inactive, ' ' ORDER BY email) FROM contacts")
                == "KEPT@example.com:false gone@example.com:true other@example.com:false")
        _ = try Rollback(conninfo: db.conninfo).run(summary.runId!, dryRun: false, force: false)
        #expect(try db.importedTablesChecksum() == before)

        // A rejected line without a usable key could be any contact: deactivation is refused.
        let broken = try temporaryFile("Tenant,Full Name,Email\n00000000-0000-4000-8000-000000000001,No Email,\n")
        #expect { _ = try db.importFile(broken) { $0.deactivateMissing = true } } throws: { error in
            String(describing: error).contains("--deactivate-missing refused")
        }
    }

    @Test func brokenFilesAreRefusedOrRejectedWithTheirLine() throws {
        let db = try importDatabase()
        let header = "Tenant,Full Name,Email,Office Phone\n"
        let tenant = "00000000-0000-4000-8000-000000000001"
        // An unbalanced quote: the whole file is refused before anything is written, naming the line.
        let unbalanced = try temporaryFile(
            header + "\(tenant),Ada,ada@example.com,\n\(tenant),\"Bob,bob@example.com,\n\(tenant),Cy,cy@example.com,\n")
        let result = try ferryCLI("import '\(unbalanced)' --no-progress", database: db.name)
        #expect(result.status == 1)
        #expect(result.stderr.contains("\(unbalanced):3: a quoted field opened on this line is never closed"))
        #expect(try db.count("SELECT count(*) FROM contacts") == 0)
        #expect(try db.count("SELECT count(*) FROM ferry.runs") == 0)

        // Latin-1 bytes in a UTF-8 file reject that row only; a NUL byte rejects its row; the rest loads.
        var bytes = Array((header + "\(tenant),Ada,ada@example.com,\n\(tenant),Caf").utf8) + [0xE9]
        bytes +=
            Array(",cafe@example.com,\n\(tenant),Nul".utf8) + [0x00]
            + Array(",nul@example.com,\n\(tenant),Zed,zed@example.com,\n".utf8)
        let mixed = try temporaryFile(Data(bytes))
        let cli = try ferryCLI("import '\(mixed)' --no-progress", database: db.name)
        #expect(cli.status == 4)
        #expect(
            cli.stdout.contains(
                "rows read 4 = inserted 2 + updated 0 + unchanged 0 + skipped 0 + rejected 2  ✓ adds up"))
        let rejects = try Data(contentsOf: URL(fileURLWithPath: mixed + ".rejects.csv"))
        #expect(
            rejects.range(
                of: Data("3,\"invalid text: column 'Full Name' byte 0xE9 at position 4 is not valid UTF-8".utf8)) != nil
        )
        #expect(rejects.range(of: Data([0x43, 0x61, 0x66, 0xE9])) != nil)  // the original bytes, not a replacement
        #expect(rejects.range(of: Data("4,\"invalid text: column 'Full Name' contains a NUL byte".utf8)) != nil)

        // Declared as Latin-1, the same kind of row imports with its é.
        let latin1 = try temporaryFile(
            Data(Array((header + "\(tenant),Caf").utf8) + [0xE9] + Array(",cafe@example.com,\n".utf8)))
        #expect(try ferryCLI("import '\(latin1)' --encoding latin1 --no-progress", database: db.name).status == 0)
        #expect(try db.scalar("SELECT full_name FROM contacts WHERE email = 'cafe@example.com'") == "Café")
    }

    /// csvkit's edge cases: each file is imported, or refused with a reason naming it, or its bad rows
    /// rejected; never a crash, and the counts always add up.
    @Test(
        arguments: try FileManager.default.contentsOfDirectory(
            atPath: TestDatabase.packageRoot.appendingPathComponent("../shared/corpora/csv/csvkit-examples-edge")
                .standardizedFileURL.path
        )
        .filter { $0.hasSuffix(".csv") || $0.hasSuffix(".tsv") }.sorted())
    func csvkitEdgeCases(_ name: String) throws {
        let db = try importDatabase()
        // A mapping that reads these files' own headers: a, b, c (and csvkit's foo/bar/baz).
        let mappingPath = try temporaryFile(
            try String(
                contentsOfFile: TestDatabase.packageRoot.appendingPathComponent("mappings/contacts-csv.yaml").path,
                encoding: .utf8
            )
            .replacingOccurrences(
                of: "full_name: [Full Name, Name, Contact Name]", with: "full_name: [a, foo, column_a]"
            )
            .replacingOccurrences(of: "email: [Email, E-mail, Email Address]", with: "email: [b, bar, column_b]")
            .replacingOccurrences(of: "notes: [Notes, Comments]", with: "notes: [c, baz, column_c]"),
            name: "mapping.yaml")
        let source = TestDatabase.packageRoot.appendingPathComponent(
            "../shared/corpora/csv/csvkit-examples-edge/\(name)"
        ).standardizedFileURL.path
        let file = try temporaryFile(try Data(contentsOf: URL(fileURLWithPath: source)), name: name)
        let result = try ferryCLI(
            "import '\(file)' --mapping '\(mappingPath)' --tenant 00000000-0000-4000-8000-000000000001 --json --no-progress",
            database: db.name)
        #expect([0, 1, 4].contains(result.status), "\(name): exit \(result.status) \(result.stderr)")
        // Refused as a whole, with the reason: no usable header (another delimiter, none at all, an empty file).
        let refused: Set = [
            "dummy.tsv", "empty.csv", "no_header_row.csv", "sniff_limit.csv", "test_header_newline.csv",
        ]
        #expect((result.status == 1) == refused.contains(name), "\(name): exit \(result.status) \(result.stderr)")
        if result.status == 1 {
            #expect(result.stderr.hasPrefix("error: \(file)"), "\(name): \(result.stderr)")
            return
        }
        let summary = try JSONDecoder().decode(ImportSummary.self, from: Data(result.stdout.utf8))
        #expect(summary.addsUp)
        #expect(summary.rejected == (result.status == 4 ? summary.rejected : 0))
        #expect(summary.rejected > 0 || result.status == 0)
        // Reject rows keep the input's bytes (not necessarily UTF-8); rows end in CRLF, fields may hold bare LF or CR.
        let rejects = try Data(contentsOf: URL(fileURLWithPath: file + ".rejects.csv"))
        let rows = try readAllRecords(file + ".rejects.csv")
        #expect(
            rows == summary.rejected + 1, "\(name): the reject file holds every rejected row (\(rejects.count) bytes)")
    }

    @Test func exportGuardsFormulasAndReimportsWithNoChanges() throws {
        let db = try importDatabase()
        _ = try db.importFile(try copyOfPartnerFile())
        let out = try temporaryFile("", name: "export.csv")
        let export = try ferryCLI("export -o '\(out)'", database: db.name)
        #expect(export.status == 0, "\(export.stderr)")
        let text = try String(contentsOfFile: out, encoding: .utf8)
        #expect(text.hasPrefix("Tenant,Full Name,Email,Company,Role,Notes,Office Phone,Mobile,Home Phone,Fax\r\n"))
        #expect(
            text.contains(
                ",Formula Guy,formula@example.com,'=HYPERLINK(1),Office manager,'-not a formula,+442079460123,,,\r\n"))
        #expect(
            text.contains(",Ada Lovelace,ada@analytical.example,Analytical Engines,Buyer,,+12125550100 ext. 12,,,\r\n"))
        #expect(text.contains(",\"  Spaced Name  \",spaced@example.com,"))
        let again = try ferryCLI("import '\(out)' --no-progress", database: db.name)
        #expect(again.status == 0)
        #expect(again.stdout.contains("rows read 6 = inserted 0 + updated 0 + unchanged 6"))

        let all = try ferryCLI("export --phones all -o '\(out)'", database: db.name)
        #expect(all.status == 0)
        let rows = try String(contentsOfFile: out, encoding: .utf8).components(separatedBy: "\r\n").filter {
            !$0.isEmpty
        }
        #expect(rows.count == 1 + 9)
        #expect(rows[0] == "Tenant,Email,phone_number,extension,type,is_default,display_order")
        #expect(
            rows.contains("00000000-0000-4000-8000-000000000001,ada@analytical.example,+16502530000,,mobile,false,1"))
    }
}

@Suite("An import plan file binds the file, the options and the data")
struct ImportPlanFileTests {
    @Test func anImportPlanRefusesOtherBytesAndOtherOptions() throws {
        let db = try importDatabase()
        let file = try copyOfPartnerFile()
        let plan = file + ".plan.json"
        let planned = try ferryCLI(
            "import \(file) --dry-run --out \(plan) --no-progress --detailed-exitcode", database: db.name)
        #expect(planned.status == 4, "rejected lines win over changes pending: \(planned.stderr)")
        #expect(try PlanFile.read(plan).job == "contacts-csv")
        let before = try ImportTables.checksum(db.connection)

        let otherOptions = try ferryCLI(
            "import \(file) --plan \(plan) --on-conflict skip --no-progress", database: db.name)
        #expect(otherOptions.status == 1)
        #expect(
            otherOptions.stderr.contains("the plan used --on-conflict update, this import skip"),
            "\(otherOptions.stderr)")

        _ = try appendALateLine(to: file)
        let otherBytes = try ferryCLI("import \(file) --plan \(plan) --no-progress", database: db.name)
        #expect(otherBytes.status == 1)
        #expect(otherBytes.stderr.contains("file \(file) changed since the plan (sha256"), "\(otherBytes.stderr)")
        #expect(try ImportTables.checksum(db.connection) == before, "nothing written")
        #expect(try db.count("SELECT count(*) FROM ferry.runs") == 0, "no run started")

        // --allow-drift imports anyway and the ledger keeps each change.
        let allowed = try ferryCLI("import \(file) --plan \(plan) --allow-drift --no-progress", database: db.name)
        #expect(allowed.status == 4, "\(allowed.stderr)")
        #expect(try db.count("SELECT count(*) FROM ferry.events WHERE kind = 'drift allowed'") == 1)
        #expect(try db.scalar("SELECT detail->>'drift' FROM ferry.events WHERE kind = 'plan checked'") == "1")

        // An --out without --dry-run is a usage mistake, said before anything runs.
        let misuse = try ferryCLI("import \(file) --out \(plan) --no-progress", database: db.name)
        #expect(misuse.status == 64 && misuse.stderr.contains("--out writes a plan file"), "\(misuse.stderr)")
    }
}

@Suite("An import's review files")
struct ImportReviewFileTests {
    @Test func theReportShowsExamplesPerPhoneAnomalyClassAndListsEveryAnomalyBesideIt() throws {
        let db = try importDatabase()
        let file = try copyOfPartnerFile()
        let report = file + ".review.html"
        let result = try ferryCLI("import \(file) --dry-run --json --no-progress --report \(report)", database: db.name)
        #expect(result.status == 4, "\(result.stderr)")
        let summary = try JSONDecoder().decode(ImportSummary.self, from: Data(result.stdout.utf8))
        #expect(!summary.phoneAnomalies.isEmpty)
        for (name, count) in summary.phoneAnomalies {
            let examples = summary.phoneAnomalyExamples[name] ?? []
            #expect(!examples.isEmpty && examples.count <= min(count, 5), "\(name): \(examples)")
            #expect(examples.map { $0.occurrences ?? 1 }.reduce(0, +) <= count)
        }
        let list = PlanReport.anomalyListPath(forReport: report)
        #expect(summary.anomalyFile == list)
        #expect(result.stderr.contains("every phone anomaly written to \(list)"), "\(result.stderr)")
        let rows = try readAllRecords(list)
        #expect(rows == 1 + summary.phoneAnomalies.values.reduce(0, +), "a header and one row per anomaly")
        let html = try String(contentsOfFile: report, encoding: .utf8)
        let anExample = try #require(summary.phoneAnomalyExamples.values.first?.first)
        #expect(html.contains(anExample.contactKey), "examples in the report")
    }
}
