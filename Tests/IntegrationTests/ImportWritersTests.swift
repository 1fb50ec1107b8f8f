import Foundation
import TestFiles
import Testing
@testable import FerryKit

/// `ferry import --jobs N`: several writer sessions, each taking its share of the file's contacts.
@Suite("An import with several writer sessions")
struct ImportWritersTests {
    /// 900 lines over three tenants naming organizations the tenants lack (two in every tenant, one in
    /// two of them: every share meets them in its first batches), and a custom phone label; nine emails
    /// that repeat in another case later in the file (same tenant); a line with no usable tenant.
    func sharedFile() throws -> String {
        var lines = ["Tenant,Full Name,Country,Email,Company,Title,Office Phone,Mobile,Notes"]
        let companies = ["Neue GmbH", "Nouvelle SARL", "Analytical Engines", ""]
        for number in 1...900 {
            let tenant = number == 450 ? "not-a-tenant" : "00000000-0000-4000-8000-00000000000\(number % 3 + 1)"
            let email = number % 100 == 0 ? "PERSON\(number - 51)@Example.com" : "person\(number)@example.com"
            let company = companies[number % 4]
            let phone = "+1 650 253 \(String(format: "%04d", number)) (Pager)"
            lines.append("\(tenant),Person \(number),US,\(email),\(company),Buyer,\(phone),,")
        }
        return try temporaryFile(lines.joined(separator: "\n") + "\n", name: "shared.csv")
    }

    /// The imported rows as names and values (the keys new rows get are random).
    func content(_ db: TestDatabase) throws -> String {
        try db.scalar(
            """
            SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
                SELECT concat_ws(',', c.tenant, c.email, c.full_name, o.client_name, c.role, p.phone_number,
                                 p.canonical_type, t.label, p.is_default, p.display_order) AS x
                FROM contacts c
                LEFT JOIN clients o USING (tenant, client_id)
                LEFT JOIN contact_phone_numbers p USING (tenant, contact_name_id)
                LEFT JOIN contact_phone_type_definitions t
                       ON t.tenant = p.tenant AND t.contact_phone_type_id = p.custom_phone_type_id) y
            """) ?? ""
    }

    @Test func threeWritersWriteWhatOneWriterWritesAndCreateEachOrganizationOnce() throws {
        let file = try sharedFile()
        let serial = try importDatabase(), parallel = try importDatabase()
        let before = try parallel.importedTablesChecksum()

        let planned = try parallel.importFile(file) {
            $0.dryRun = true
            $0.jobs = 3
        }
        let one = try serial.importFile(file) { $0.batchSize = 40 }
        let oneRejects = try Data(contentsOf: URL(fileURLWithPath: file + ".rejects.csv"))
        let three = try parallel.importFile(file) {
            $0.batchSize = 40
            $0.jobs = 3
        }
        let threeRejects = try Data(contentsOf: URL(fileURLWithPath: file + ".rejects.csv"))

        #expect(three.addsUp && three.rowsRead == 900)
        #expect(three.writers == 3 && one.writers == 1 && planned.writers == 1, "a dry run classifies in one session")
        let locks = PlanReport(importSummary: three, mapping: try importMapping()).header.locks
        #expect(locks.contains { $0.hasPrefix("3 writer sessions") }, "\(locks)")
        #expect(
            !PlanReport(importSummary: one, mapping: try importMapping()).header.locks.contains {
                $0.contains("writer")
            })
        for summary in [planned, three] {
            #expect(summary.inserted == one.inserted && summary.rejected == one.rejected, "\(summary)")
            #expect(summary.organizationsToCreate == 8 && summary.customTypesToCreate == 3, "\(summary)")
            #expect(summary.phoneRowsToInsert == one.phoneRowsToInsert)
        }
        #expect(one.organizationsToCreate == 8 && one.rejectsByClass["duplicate in file"]?.count == 9)
        #expect(threeRejects == oneRejects, "the reject file is the one writer's, byte for byte")
        #expect(try content(parallel) == content(serial))
        // Each share of the file went through its own session, and no organization was made twice.
        #expect(
            try parallel.scalar(
                "SELECT count(DISTINCT detail->>'partition') FROM ferry.events WHERE kind = 'import batch'") == "3")
        #expect(
            try parallel.scalar(
                "SELECT count(*) FROM (SELECT 1 FROM clients GROUP BY tenant, lower(client_name) HAVING count(*) > 1) d"
            )
                == "0")
        #expect(try parallel.count("SELECT count(*) FROM clients") == 9)

        let rollback = try ferryCLI("rollback 1 --yes", database: parallel.name)
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        #expect(try parallel.importedTablesChecksum() == before)
    }

    /// One share of a batch fails (a trigger refuses a line) while the other commits: a resumed run loads
    /// each share after its own last committed line, and ends where one uninterrupted writer does.
    @Test func aShareThatFailedIsLoadedAgainOnResumeAndTheOtherIsNot() throws {
        let file = try sharedFile()
        let db = try importDatabase(), serial = try importDatabase()
        try db.connection.execute(
            script: """
                CREATE FUNCTION refuse_a_line() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN IF NEW.email = 'person301@example.com' THEN RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END $$;
                CREATE TRIGGER refuse_a_line BEFORE INSERT ON contacts FOR EACH ROW EXECUTE FUNCTION refuse_a_line();
                """)
        let failed = try ferryCLI("import \(file) --jobs 2 --batch-size 40 --no-progress", database: db.name)
        #expect(failed.status == 1 && failed.stderr.contains("refused for the test"), "\(failed.stderr)")
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = 1") == "failed")
        // Lines 282…321 are one batch: the share without line 301 committed, the one with it did not.
        let batchMates = (282...321).filter { $0 != 301 }.map { "'person\($0)@example.com'" }.joined(separator: ",")
        let committedMates = try db.count("SELECT count(*) FROM contacts WHERE email IN (\(batchMates))")
        #expect(committedMates > 0 && committedMates < 39, "\(committedMates) of the batch's other lines committed")
        #expect(try db.count("SELECT count(*) FROM contacts WHERE email = 'person301@example.com'") == 0)

        try db.connection.execute(script: "DROP TRIGGER refuse_a_line ON contacts")
        let resumed = try ferryCLI("resume 1 --no-progress --json", database: db.name)
        #expect(resumed.status == 4, "rejected lines: \(resumed.stderr)")
        let summary = try JSONDecoder().decode(ImportSummary.self, from: Data(resumed.stdout.utf8))
        #expect(summary.addsUp && summary.rowsRead == 900 && summary.runId == 1, "\(summary)")
        let resumedRejects = try Data(contentsOf: URL(fileURLWithPath: file + ".rejects.csv"))

        let one = try serial.importFile(file) { $0.batchSize = 40 }
        #expect(summary.inserted == one.inserted && summary.rejected == one.rejected)
        #expect(try Data(contentsOf: URL(fileURLWithPath: file + ".rejects.csv")) == resumedRejects)
        #expect(try content(db) == content(serial))
    }

    /// One writer's session is terminated mid-import (a DBA, a proxy, a failover): the import resumes
    /// its run by itself and ends where one uninterrupted writer does, reject file included.
    @Test func aWriterSessionLostMidImportResumesTheRunAndEndsAsOneWriterDoes() throws {
        let file = try sharedFile()
        let db = try importDatabase(), serial = try importDatabase()
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        defer { watcher.close() }
        // The session holding the job's lock, sampled through the run: one, kept from the attempt to its resume.
        let lockSessions = SessionSampler(
            conninfo: db.conninfo,
            query:
                "SELECT pid::text FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'ferry lock contacts-csv'"
        )
        var terminated = 0
        let run = try interruptFerry(
            ["import", file, "--jobs", "2", "--batch-size", "40"], conninfo: db.conninfo, after: 3, watcher: watcher
        ) { _ in
            terminated =
                try watcher.query(
                    """
                    SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                    WHERE datname = current_database() AND application_name = 'ferry import (writer 2)'
                    """
                ).value("sessions terminated", as: Int.self)
        }
        let lockPids = lockSessions.stop()
        #expect(terminated == 1)
        #expect(lockPids.count == 1, "the lock's sessions: \(lockPids)")
        #expect(run.status == 4, "rejected lines, nothing else: \(run.stderr)")
        #expect(run.stderr.contains("import run 1 lost a session"), "\(run.stderr)")
        #expect(try db.scalar("SELECT string_agg(status, ',') FROM ferry.runs") == "succeeded")
        #expect(try db.count("SELECT count(*) FROM ferry.events WHERE kind = 'run resumed'") == 1)
        #expect(try db.scalar("SELECT count(*) = max(batch_no) FROM ferry.batches") == "t")
        let resumedRejects = try Data(contentsOf: URL(fileURLWithPath: file + ".rejects.csv"))

        let one = try serial.importFile(file) { $0.batchSize = 40 }
        #expect(one.rejected > 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: file + ".rejects.csv")) == resumedRejects)
        #expect(try content(db) == content(serial))
    }

    @Test func writersAreRefusedWhereOneSessionMustSeeEveryLine() throws {
        let db = try importDatabase()
        let file = try sharedFile()
        let deactivating = try ferryCLI("import \(file) --jobs 2 --deactivate-missing --no-progress", database: db.name)
        #expect(
            deactivating.status != 0 && deactivating.stderr.contains("--deactivate-missing"), "\(deactivating.stderr)")
        let tooMany = try ferryCLI("import \(file) --jobs 65 --no-progress", database: db.name)
        #expect(tooMany.status != 0 && tooMany.stderr.contains("--jobs must be between 1 and 64"), "\(tooMany.stderr)")
        #expect(try db.count("SELECT count(*) FROM ferry.runs") == 0)
        #expect(try db.count("SELECT count(*) FROM contacts") == 0)
    }
}
