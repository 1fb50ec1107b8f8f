import Foundation
import TestFiles
import Testing
@testable import FerryKit

extension TestDatabaseView {
    /// The contacts an import wrote and their phones, by natural key (contact ids are random per run).
    func importContent() throws -> String {
        try connection.query(
            """
            SELECT coalesce(md5(string_agg(x, '|' ORDER BY x)), 'empty') FROM (
                SELECT concat_ws(',', c.tenant, c.email, c.full_name, c.client_id, c.role, c.notes, c.is_inactive,
                                 p.phone_number, p.extension, p.canonical_type, t.label, p.is_default, p.display_order) AS x
                FROM contacts c
                LEFT JOIN contact_phone_numbers p USING (tenant, contact_name_id)
                LEFT JOIN contact_phone_type_definitions t
                       ON t.tenant = p.tenant AND t.contact_phone_type_id = p.custom_phone_type_id) y
            """
        ).scalar ?? ""
    }
}

/// Every table an import writes, fingerprinted on any session.
enum ImportTables {
    static func checksum(_ connection: PostgresConnection) throws -> [String] {
        try ["contacts", "clients", "contact_phone_numbers", "contact_phone_type_definitions"].map { table in
            try connection.query(
                "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), 'empty') FROM \(table) t"
            )
            .scalar ?? ""
        }
    }
}

@Suite("An interrupted import continues in the same run")
struct ImportResumeTests {
    /// 3,000 lines over three tenants; every 500th has an unusable email (rejected), and line 2,951 has the
    /// email of line 11 (a duplicate the run must still find after a restart between them).
    func bigFile(unusableEmails: Bool = true) throws -> String {
        var lines = ["Tenant,Full Name,Country,Email,Company,Title,Office Phone,Mobile,Notes"]
        for number in 1...3_000 {
            let tenant = "00000000-0000-4000-8000-00000000000\(number % 3 + 1)"
            let email =
                number % 500 == 0 && unusableEmails
                ? "not-an-email-\(number)" : number == 2_950 ? "Person10@example.com" : "person\(number)@example.com"
            lines.append(
                "\(tenant),Person \(number),US,\(email),,Buyer,+1 212 555 \(String(format: "%04d", number % 10_000)),,")
        }
        return try temporaryFile(lines.joined(separator: "\n") + "\n", name: "big.csv")
    }

    @Test func sigtermThenTheSameImportEndsWhereAnUninterruptedOneEnds() throws {
        let db = try importDatabase()
        let before = try ImportTables.checksum(db.connection)
        let file = try bigFile()
        let copyHolder = try DatabaseCopy(of: db)
        defer { withExtendedLifetime(copyHolder) {} }
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        defer { watcher.close() }

        let stopped = try signalFerry(
            ["import", file, "--batch-size", "50"], conninfo: db.conninfo, after: 3, watcher: watcher, signal: SIGTERM)
        #expect(stopped.status == 128 + SIGTERM, "\(stopped.stderr)")
        #expect(stopped.stderr.contains("Resume with: ferry import \(file)"), "\(stopped.stderr)")
        #expect(try watcher.query("SELECT status FROM ferry.runs").scalar == "interrupted")
        let committed = Int(try watcher.query("SELECT count(*) FROM ferry.batches").scalar ?? "") ?? -1
        #expect(committed >= 3 && committed < 60, "stopped after \(committed) of 60 batches")

        let snapshot = file + ".snapshot.gz"
        let again = try ferryCLI(
            "import \(file) --batch-size 50 --no-progress --json --snapshot-file \(snapshot)", database: db.name)
        #expect(again.status == 4, "rejected lines: \(again.stderr)")
        let summary = try JSONDecoder().decode(ImportSummary.self, from: Data(again.stdout.utf8))
        #expect(summary.runId == 1)
        #expect(summary.resumed?.batches == committed)
        #expect(summary.rowsRead == 3_000 && summary.addsUp)
        #expect(summary.inserted == 2_993 && summary.rejected == 7 && summary.unchanged == 0, "\(summary)")
        #expect(summary.rejectsByClass["duplicate in file"]?.count == 1, "\(summary.rejectsByClass.keys)")
        #expect(try watcher.query("SELECT count(*), min(status) FROM ferry.runs").rows == [["1", "succeeded"]])
        #expect(try watcher.query("SELECT count(*) = max(batch_no) FROM ferry.batches").scalar == "t")
        #expect(try watcher.query("SELECT count(*) FROM contacts").scalar == "2993")
        let check = try runProcess(
            "/bin/sh",
            ["-c", "cd '\((snapshot as NSString).deletingLastPathComponent)' && sha256sum -c '\(snapshot).sha256'"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")

        #expect(again.stderr.contains("reading on after it"), "\(again.stderr)")
        // The resumed part classified only the lines after the restart point: one batch row per 50 lines.
        #expect(try watcher.query("SELECT count(*) FROM ferry.batches").scalar == "60")
        let resumedRejects = try Data(contentsOf: URL(fileURLWithPath: file + ".rejects.csv"))

        let uninterrupted = try ferryCLI("import \(file) --batch-size 50 --no-progress", database: copyHolder.name)
        #expect(uninterrupted.status == 4, "\(uninterrupted.stderr)")
        // The reject file is byte for byte the uninterrupted run's (the first part's rejects written again).
        #expect(try Data(contentsOf: URL(fileURLWithPath: file + ".rejects.csv")) == resumedRejects)
        #expect(resumedRejects.filter { $0 == UInt8(ascii: "\n") }.count == 8, "the header and 7 rejected lines")
        let copy = try PostgresConnection(conninfo: "dbname=\(copyHolder.name)")
        defer { copy.close() }
        #expect(
            try TestDatabaseView(connection: watcher).importContent()
                == TestDatabaseView(connection: copy).importContent())

        // One run: its rollback undoes both parts.
        let rollback = try ferryCLI("rollback 1 --yes", database: db.name)
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        #expect(try ImportTables.checksum(watcher) == before)
    }

    /// --deactivate-missing after a restart: the replayed lines' contacts count as in the file, so only
    /// the contacts the file lacks are deactivated, as in an uninterrupted run.
    @Test func aResumedImportDeactivatesOnlyWhatTheWholeFileLacks() throws {
        let db = try importDatabase()
        try db.connection.execute(
            script: """
                INSERT INTO contacts (tenant, contact_name_id, full_name, email)
                SELECT ('00000000-0000-4000-8000-00000000000' || (n % 3 + 1))::uuid, gen_random_uuid(), 'Earlier ' || n,
                       CASE WHEN n <= 20 THEN 'person' || n || '@example.com' ELSE 'gone' || n || '@example.com' END
                FROM generate_series(1, 30) n
                """)
        // Every line has a usable key (else --deactivate-missing refuses); line 2,951 still repeats line 11's.
        let file = try bigFile(unusableEmails: false)
        let copyHolder = try DatabaseCopy(of: db)
        defer { withExtendedLifetime(copyHolder) {} }
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        defer { watcher.close() }
        let killed = try signalFerry(
            ["import", file, "--batch-size", "50", "--deactivate-missing"], conninfo: db.conninfo, after: 20,
            watcher: watcher, signal: SIGKILL)
        #expect(killed.committed >= 20 && killed.committed < 60, "killed after \(killed.committed) batches")
        let resumed = try ferryCLI("resume 1 --no-progress --json", database: db.name)
        #expect(resumed.status == 4, "\(resumed.stderr)")
        let summary = try JSONDecoder().decode(ImportSummary.self, from: Data(resumed.stdout.utf8))
        let uninterrupted = try ferryCLI(
            "import \(file) --batch-size 50 --deactivate-missing --no-progress --json", database: copyHolder.name)
        #expect(uninterrupted.status == 4, "\(uninterrupted.stderr)")
        let whole = try JSONDecoder().decode(ImportSummary.self, from: Data(uninterrupted.stdout.utf8))
        #expect(summary.contactsDeactivated == 10 && whole.contactsDeactivated == 10, "the ten 'gone' contacts")
        #expect(
            (summary.inserted, summary.updated, summary.rejected) == (whole.inserted, whole.updated, whole.rejected))
        let copy = try PostgresConnection(conninfo: "dbname=\(copyHolder.name)")
        defer { copy.close() }
        #expect(
            try TestDatabaseView(connection: watcher).importContent()
                == TestDatabaseView(connection: copy).importContent())
    }

    /// The dry run's growth estimate against what the import then took on disk.
    @Test func theGrowthEstimateIsWithinAFactorOfTwoOfTheRealGrowth() throws {
        let db = try importDatabase()
        let file = try bigFile()
        let predicted = try db.importFile(file) { $0.dryRun = true }
        let size = """
            SELECT sum(pg_total_relation_size(x)) FROM unnest(ARRAY['contacts', 'contact_phone_numbers', 'clients',
                   'contact_phone_type_definitions', 'ferry.snapshot_rows']::regclass[]) x
            """
        let before = try db.count(size)
        _ = try db.importFile(file)
        let grown = Double(try db.count(size) - before)
        let estimate = Double(try #require(predicted.estimatedGrowthBytes))
        #expect(estimate > grown / 2 && estimate < grown * 2, "estimated \(estimate) bytes, grew \(grown)")
    }

    @Test func resumeByRunIdUsesTheRecordedFileAndRefusesChangedBytes() throws {
        let db = try importDatabase()
        let file = try bigFile()
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        defer { watcher.close() }
        let rejects = file + ".elsewhere.csv"
        let killed = try signalFerry(
            ["import", file, "--batch-size", "50", "--on-conflict", "skip", "--rejects", rejects],
            conninfo: db.conninfo, after: 2, watcher: watcher, signal: SIGKILL)
        #expect(killed.status != 0 && killed.committed >= 2)
        // The same import with another --on-conflict would decide the rest of the lines differently.
        let otherOptions = try ferryCLI("import \(file) --no-progress", database: db.name)
        #expect(otherOptions.status == 1)
        #expect(
            otherOptions.stderr.contains("it was started with --on-conflict skip (now update)")
                && otherOptions.stderr.contains("ferry resume 1"), "\(otherOptions.stderr)")
        #expect(try watcher.query("SELECT count(*) FROM ferry.runs").scalar == "1", "no second run")
        // The file changes: the run read other bytes, so resume refuses and says why.
        let original = try appendALateLine(to: file)
        let refused = try ferryCLI("resume 1 --no-progress", database: db.name)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("run 1 imported other bytes"), "\(refused.stderr)")
        try original.write(to: URL(fileURLWithPath: file))
        let resumed = try ferryCLI("resume 1 --no-progress --json", database: db.name)
        #expect(resumed.status == 4, "\(resumed.stderr)")
        let summary = try JSONDecoder().decode(ImportSummary.self, from: Data(resumed.stdout.utf8))
        #expect(summary.runId == 1 && summary.onConflict == "skip" && summary.addsUp && summary.rowsRead == 3_000)
        #expect(try watcher.query("SELECT status FROM ferry.runs WHERE run_id = 1").scalar == "succeeded")
        #expect(try db.count("SELECT count(*) FROM contacts") == 2_993)
        // The run's own reject file and batch size, not the defaults.
        #expect(summary.rejectFile == rejects && summary.rejected == 7)
        #expect(try readAllRecords(rejects) == 8, "the header and every rejected line")
        #expect(!FileManager.default.fileExists(atPath: file + ".rejects.csv"))
        #expect(try db.count("SELECT count(*) FROM ferry.batches") == 60, "batches of 50 lines")
    }
    /// The table jobs' pacing flags, on the import: a row the application holds stops a batch after
    /// --lock-timeout (retried, then the run is interrupted, not failed), and `ferry resume` continues with
    /// the run's --batch-delay and --lock-timeout and says so.
    @Test func theImportTakesThePacingFlagsAndAResumeKeepsThem() throws {
        let db = try importDatabase()
        let file = try bigFile(unusableEmails: false)
        let application = try PostgresConnection(conninfo: db.conninfo)
        defer { application.close() }
        // Every new contact's foreign key check takes a KEY SHARE lock on its tenant's row.
        try application.execute(
            script: "BEGIN; SELECT * FROM tenants WHERE tenant = '00000000-0000-4000-8000-000000000002' FOR UPDATE")
        let started = Date()
        let stopped = try ferryCLI(
            "import \(file) --batch-size 500 --batch-delay 300ms --lock-timeout 100ms --no-progress", database: db.name)
        let waited = Date().timeIntervalSince(started)
        #expect(stopped.status == 1)
        #expect(
            stopped.stderr.contains("lock timeout") && stopped.stderr.contains("Resume with: ferry import"),
            "\(stopped.stderr)")
        // Five attempts of 100 ms and the backoff between them; the mapping's 2 s would take over 10 s.
        #expect(waited < 9, "waited \(waited) s")
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = 1") == "interrupted")
        #expect(
            try db.scalar("SELECT options->>'lock_timeout' || ' ' || (options->>'batch_delay') FROM ferry.runs")
                == "100ms 300ms")
        try application.execute(script: "ROLLBACK")

        let resumed = try ferryCLI("resume 1 --no-progress", database: db.name)
        #expect(resumed.status == 4, "line 2,951 repeats line 11's email: \(resumed.stderr)")
        #expect(
            resumed.stderr.contains("with its options: --batch-delay 300ms --batch-size 500 --lock-timeout 100ms"),
            "\(resumed.stderr)")
        #expect(try db.count("SELECT count(*) FROM contacts") == 2_999)
        #expect(try db.count("SELECT count(*) FROM ferry.batches") == 6)
        #expect(
            try db.count(
                "SELECT count(*) FROM ferry.batches b WHERE batch_no > 1 AND committed_at - (SELECT committed_at FROM ferry.batches p WHERE p.batch_no = b.batch_no - 1) < interval '290 ms'"
            ) == 0, "the delay was kept between the batches")
    }
}
