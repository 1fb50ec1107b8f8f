import Foundation
import TestFiles
import Testing
@testable import FerryKit

/// Runs the built ferry in the package root (so mappings/ resolves) against one test database.
extension TestDatabase {
    /// A content fingerprint of the phone tables that ignores generated ids and timestamps.
    func phoneContentChecksum() throws -> String {
        try TestDatabaseView(connection: connection).phoneContentChecksum()
    }

    func touchedTablesChecksum() throws -> [String] {
        try ["contacts", "contact_phone_numbers", "contact_phone_type_definitions"].map(checksum)
    }

    func job() throws -> PhonesJob {
        let job = PhonesJob(mapping: try mapping(), conninfo: conninfo)
        return job
    }

    func quietOptions() -> ApplyOptions {
        var options = ApplyOptions()
        options.log = { _ in }
        return options
    }
}

@Suite("Run ledger, snapshots and rollback")
struct LedgerTests {
    /// Sample contacts, plus phone rows and a custom type that existed before ferry ran.
    func preparedDatabase(contacts: Int = 400) throws -> TestDatabase {
        let db = try TestDatabase(samples: contacts)
        _ = try db.applySchema(try db.mapping())
        try db.connection.execute(
            script: """
                WITH first AS (SELECT tenant, contact_name_id FROM contacts ORDER BY 1, 2 LIMIT 3),
                     kind AS (INSERT INTO contact_phone_type_definitions (tenant, label, normalized_label)
                              SELECT DISTINCT tenant, 'Boat', 'boat' FROM first RETURNING tenant, contact_phone_type_id)
                INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, custom_phone_type_id, is_default)
                SELECT f.tenant, f.contact_name_id, '+15550001111', k.contact_phone_type_id, true FROM first f JOIN kind k USING (tenant);
                """)
        return db
    }

    @Test func applyThenRollbackRestoresEveryTouchedTable() throws {
        let db = try preparedDatabase()
        let before = try db.touchedTablesChecksum()
        let summary = try db.job().apply(db.quietOptions())
        #expect((summary.applied?.rowsInserted ?? 0) > 200)
        #expect(try db.touchedTablesChecksum() != before)
        let report = try Rollback(conninfo: db.conninfo).run(summary.runId!, dryRun: false, force: false)
        #expect(report.complete)
        #expect(report.conflicts.isEmpty)
        #expect(try db.touchedTablesChecksum() == before)
        #expect(
            try db.scalar("SELECT status FROM ferry.runs WHERE run_id = $1", [String(summary.runId!)]) == "rolled_back")
        #expect(
            try db.scalar(
                "SELECT mode || ':' || status || ':' || rollback_of FROM ferry.runs WHERE rollback_of IS NOT NULL")
                == "rollback:succeeded:\(summary.runId!)")
        #expect(try db.count("SELECT count(*) FROM ferry.snapshot_rows") == 0)
        #expect(try db.count("SELECT count(*) FROM ferry.batches WHERE xid IS NULL") == 0)
        // A run is rolled back once.
        #expect(throws: LedgerError.self) {
            try Rollback(conninfo: db.conninfo).run(summary.runId!, dryRun: false, force: false)
        }
    }

    @Test func dryRunChangesNothingNotEvenTheLedger() throws {
        let db = try preparedDatabase()
        let summary = try db.job().apply(db.quietOptions())
        let tables =
            try db.touchedTablesChecksum() + ["ferry.runs", "ferry.events", "ferry.snapshot_rows"].map(db.checksum)
        let report = try Rollback(conninfo: db.conninfo).run(summary.runId!, dryRun: true, force: false)
        #expect(
            report.tables.map(\.unchanged).reduce(0, +) == summary.applied!.rowsInserted
                + summary.applied!.customTypesCreated)
        #expect(report.rollbackRunId == nil)
        #expect(
            try db.touchedTablesChecksum() + ["ferry.runs", "ferry.events", "ferry.snapshot_rows"].map(db.checksum)
                == tables)
    }

    @Test func rowsChangedSinceTheRunAreConflictsUntilForced() throws {
        let db = try preparedDatabase()
        let before = try db.touchedTablesChecksum()
        let summary = try db.job().apply(db.quietOptions())
        // The application edits one row ferry wrote (of a canonical type: a custom-typed row kept as a
        // conflict would keep its custom type too, a second, "still referenced" conflict).
        try db.connection.query(
            """
            UPDATE contact_phone_numbers SET extension = '99'
            WHERE contact_phone_number_id = (SELECT contact_phone_number_id FROM contact_phone_numbers
                                             WHERE phone_number <> '+15550001111' AND custom_phone_type_id IS NULL
                                               -- the contact's only row: editing one of several rows would also
                                               -- keep its default for the invariant, a second conflict
                                               AND is_default AND NOT EXISTS (
                                                   SELECT 1 FROM contact_phone_numbers o
                                                   WHERE o.contact_name_id = contact_phone_numbers.contact_name_id
                                                     AND NOT o.is_default)
                                             ORDER BY 1 LIMIT 1)
            """)
        // The exit code says "conflicts" whatever the format, and a dry run predicts it.
        let predicted = try ferryCLI("rollback \(summary.runId!) --dry-run --json", database: db.name)
        #expect(predicted.status == 3, "\(predicted.stdout) \(predicted.stderr)")
        let prediction = try JSONDecoder().decode(RollbackReport.self, from: Data(predicted.stdout.utf8))
        #expect(prediction.conflicts.count == 1 && prediction.dryRun, "\(prediction.conflicts)")
        let cli = try ferryCLI("rollback \(summary.runId!) --json --yes", database: db.name)
        #expect(cli.status == 3, "\(cli.stdout) \(cli.stderr)")
        let report = try JSONDecoder().decode(RollbackReport.self, from: Data(cli.stdout.utf8))
        #expect(report.conflicts.count == 1 && !report.complete, "\(report.conflicts)")
        #expect(report.conflicts.first?.contains("changed since the run") == true)
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers WHERE extension = '99'") == 1)
        // Recorded as what happened: the apply is partly undone, the rollback run left conflicts.
        #expect(
            try db.scalar("SELECT status FROM ferry.runs WHERE run_id = $1", [String(summary.runId!)])
                == "partially_rolled_back")
        #expect(
            try db.scalar("SELECT status FROM ferry.runs WHERE rollback_of = $1", [String(summary.runId!)]) == "partial"
        )
        let listed = try ferryCLI("runs", database: db.name)
        #expect(listed.stdout.contains("partially rolled back"), "\(listed.stdout)")
        let forced = try Rollback(conninfo: db.conninfo).run(summary.runId!, dryRun: false, force: true)
        #expect(forced.complete)
        #expect(try db.touchedTablesChecksum() == before)
    }

    @Test func aCustomTypeStillUsedByALaterRunIsLeftAlone() throws {
        let db = try preparedDatabase(contacts: 200)
        let first = try db.job().apply(db.quietOptions())
        #expect((first.applied?.customTypesCreated ?? 0) > 0)
        // New legacy contacts arrive, and a later run gives them phones of the same custom type.
        try db.connection.execute(
            script: """
                INSERT INTO contacts (tenant, contact_name_id, full_name, email, phone_number, country)
                SELECT tenant, gen_random_uuid(), 'Late', 'late' || n || '@x.test', 'Pager: 650 253 00' || lpad(n::text, 2, '0'), 'US'
                FROM tenants, generate_series(10, 12) n WHERE country = 'US';
                """)
        let second = try db.job().apply(db.quietOptions())
        #expect(second.applied?.rowsInserted == 3)
        // The dry run predicts exactly what the rollback then does, the type still in use included.
        let predicted = try Rollback(conninfo: db.conninfo).run(first.runId!, dryRun: true, force: false)
        let report = try Rollback(conninfo: db.conninfo).run(first.runId!, dryRun: false, force: false)
        #expect(predicted.tables.map(\.stillReferenced) == report.tables.map(\.stillReferenced))
        #expect(predicted.tables.map(\.unchanged) == report.tables.map(\.undone))
        #expect(predicted.conflicts == report.conflicts)
        #expect(!report.complete)
        #expect(report.tables.map(\.stillReferenced).reduce(0, +) == 1)
        #expect(report.conflicts.contains { $0.contains("still referenced") })
        #expect(
            try db.count(
                "SELECT count(*) FROM contact_phone_numbers p JOIN contact_phone_type_definitions t ON t.contact_phone_type_id = p.custom_phone_type_id WHERE t.normalized_label = 'pager'"
            ) == 3)
        // Rolling back the later run frees the type; then the first run's rollback completes.
        #expect(try Rollback(conninfo: db.conninfo).run(second.runId!, dryRun: false, force: false).complete)
        #expect(try Rollback(conninfo: db.conninfo).run(first.runId!, dryRun: false, force: false).complete)
        #expect(
            try db.count("SELECT count(*) FROM contact_phone_type_definitions WHERE normalized_label = 'pager'") == 0)
    }

    @Test func aContactIsNeverLeftWithPhonesButNoDefault() throws {
        let db = try preparedDatabase(contacts: 300)
        let summary = try db.job().apply(db.quietOptions())
        // After the apply, the application adds a second, non-default number to one contact ferry gave phones.
        let contact = try db.scalar(
            """
            SELECT contact_name_id::text FROM contact_phone_numbers WHERE is_default AND phone_number <> '+15550001111'
            ORDER BY contact_name_id LIMIT 1
            """)!
        try db.connection.query(
            """
            INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default, display_order)
            SELECT tenant, contact_name_id, '+16502530099', 'home', false, 9 FROM contact_phone_numbers
            WHERE contact_name_id = $1::uuid AND is_default
            """, [contact])
        let predicted = try ferryCLI("rollback \(summary.runId!) --dry-run --json", database: db.name)
        #expect(predicted.status == 3, "\(predicted.stderr)")
        let prediction = try JSONDecoder().decode(RollbackReport.self, from: Data(predicted.stdout.utf8))
        let real = try ferryCLI("rollback \(summary.runId!) --json --yes", database: db.name)
        #expect(real.status == 3, "\(real.stderr)")
        let report = try JSONDecoder().decode(RollbackReport.self, from: Data(real.stdout.utf8))
        #expect(report.tables.map(\.keptForInvariant).reduce(0, +) == 1)
        #expect(prediction.tables.map(\.keptForInvariant) == report.tables.map(\.keptForInvariant))
        #expect(prediction.tables.map(\.unchanged) == report.tables.map(\.undone))
        #expect(prediction.conflicts == report.conflicts)
        #expect(
            report.conflicts.contains {
                $0.contains("kept: deleting it would leave its group with rows but none marked as the default")
            })
        // The contact keeps ferry's default beside the application's number; every other ferry row is gone.
        #expect(
            try db.count(
                "SELECT count(*) FROM contact_phone_numbers WHERE contact_name_id = '\(contact)' AND is_default") == 1)
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers WHERE contact_name_id = '\(contact)'") == 2)
        #expect(
            try db.count(
                """
                SELECT count(*) FROM (SELECT tenant, contact_name_id FROM contact_phone_numbers GROUP BY 1, 2
                                      HAVING count(*) FILTER (WHERE is_default) <> 1) broken
                """) == 0)
        #expect(
            try db.scalar("SELECT status FROM ferry.runs WHERE run_id = $1", [String(summary.runId!)])
                == "partially_rolled_back")
    }

    /// References the catalog does not show (an application's trigger that refuses a delete with
    /// foreign_key_violation): the rollback's one statement fails, and the rows go in smaller sets. A
    /// row that a later row of the same run holds back goes once that row is gone; a row the
    /// application's data holds back stays, reported.
    @Test func referencesOnlyATriggerKnowsKeepJustTheRowsTheyHold() throws {
        let db = try preparedDatabase(contacts: 300)
        let before = try db.touchedTablesChecksum()
        let summary = try db.job().apply(db.quietOptions())
        let inserted = summary.applied?.rowsInserted ?? 0
        let severalNumbers = try db.count(
            "SELECT count(*) FROM contact_phone_numbers WHERE display_order > 0 AND custom_phone_type_id IS NULL")
        #expect(severalNumbers > 0)
        let held = try db.scalar(
            """
            SELECT contact_phone_number_id::text FROM contact_phone_numbers p
            WHERE is_default AND custom_phone_type_id IS NULL AND phone_number <> '+15550001111'
              AND NOT EXISTS (SELECT 1 FROM contact_phone_numbers o
                              WHERE o.contact_name_id = p.contact_name_id AND NOT o.is_default)
            ORDER BY 1 LIMIT 1
            """)!
        try db.connection.execute(
            script: """
                CREATE TABLE call_log (phone_id uuid NOT NULL);
                INSERT INTO call_log VALUES ('\(held)');
                CREATE FUNCTION refuse_referenced_delete() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF EXISTS (SELECT 1 FROM call_log WHERE phone_id = OLD.contact_phone_number_id)
                       OR EXISTS (SELECT 1 FROM contact_phone_numbers o
                                  WHERE o.tenant = OLD.tenant AND o.contact_name_id = OLD.contact_name_id
                                    AND o.display_order > OLD.display_order) THEN
                        RAISE EXCEPTION 'phone % is still referenced', OLD.contact_phone_number_id
                            USING ERRCODE = 'foreign_key_violation';
                    END IF;
                    RETURN OLD;
                END $$;
                CREATE TRIGGER refuse_referenced_delete BEFORE DELETE ON contact_phone_numbers
                    FOR EACH ROW EXECUTE FUNCTION refuse_referenced_delete();
                """)
        let report = try Rollback(conninfo: db.conninfo).run(summary.runId!, dryRun: false, force: false)
        #expect(!report.complete)
        #expect(report.conflicts.count == 1, "\(report.conflicts)")
        #expect(
            report.conflicts.first?.contains(held) == true
                && report.conflicts.first?.contains("still referenced by newer rows") == true)
        #expect(report.tables.map(\.stillReferenced).reduce(0, +) == 1)
        #expect(report.tables.map(\.undone).reduce(0, +) == inserted - 1 + (summary.applied?.customTypesCreated ?? 0))
        #expect(
            try db.count("SELECT count(*) FROM contact_phone_numbers WHERE contact_phone_number_id = '\(held)'") == 1)
        #expect(try db.count("SELECT count(*) FROM ferry.snapshot_rows") == 1)
        // Once the application lets go of it, the rest of the rollback completes.
        try db.connection.execute(script: "DELETE FROM call_log")
        #expect(try Rollback(conninfo: db.conninfo).run(summary.runId!, dryRun: false, force: false).complete)
        #expect(try db.touchedTablesChecksum() == before)
    }

    @Test func restoresUpdatedAndDeletedRowsFromTheirPreImages() throws {
        // The phones job only inserts; the customers job will update and delete. Rollback is generic:
        // prove it on snapshot rows recorded the way an updating job records them.
        let db = try TestDatabase(samples: 30)
        _ = try db.applySchema(try db.mapping())
        let before = try db.checksum("contacts")
        let runId = try RunLedger(connection: db.connection).start(
            job: "test", mode: "apply", mappingFile: "t", mappingSHA256: "t")
        // Record pre-images, then change the rows, recording the hash of what was written.
        try db.connection.query(
            """
            INSERT INTO ferry.snapshot_rows (run_id, batch_no, table_order, table_name, action, key, before)
            SELECT $1, 1, 1, 'public.contacts', CASE WHEN n = 1 THEN 'update' ELSE 'delete' END,
                   jsonb_build_object('tenant', tenant, 'contact_name_id', contact_name_id), to_jsonb(c)
            FROM (SELECT c, row_number() OVER (ORDER BY tenant, contact_name_id) AS n, tenant, contact_name_id
                  FROM contacts c ORDER BY tenant, contact_name_id LIMIT 2) c
            """, [String(runId)])
        try db.connection.execute(
            script: """
                UPDATE contacts SET role = 'changed by the run'
                WHERE (tenant, contact_name_id) = (SELECT tenant, contact_name_id FROM contacts ORDER BY 1, 2 LIMIT 1);
                UPDATE ferry.snapshot_rows s SET after_hash = (SELECT md5(c::text) FROM contacts c
                    WHERE c.tenant = (s.key->>'tenant')::uuid AND c.contact_name_id = (s.key->>'contact_name_id')::uuid)
                WHERE action = 'update';
                DELETE FROM contacts
                WHERE (tenant, contact_name_id) = (SELECT tenant, contact_name_id FROM contacts ORDER BY 1, 2 OFFSET 1 LIMIT 1);
                """)
        try RunLedger(connection: db.connection).finish(runId: runId, status: "succeeded")
        #expect(try db.checksum("contacts") != before)
        let report = try Rollback(conninfo: db.conninfo).run(runId, dryRun: false, force: false)
        #expect(report.complete)
        #expect(report.tables.first?.undone == 2)
        #expect(try db.checksum("contacts") == before)
    }

    @Test func eventsAreAppendOnlyAndRunsAreListed() throws {
        let db = try preparedDatabase(contacts: 60)
        let summary = try db.job().apply(db.quietOptions())
        #expect(throws: PostgresError.self) { try db.connection.query("UPDATE ferry.events SET kind = 'x'") }
        #expect(throws: PostgresError.self) { try db.connection.query("DELETE FROM ferry.events") }
        let runs = try ferryCLI("runs --json", database: db.name)
        #expect(runs.status == 0)
        let records = try JSONDecoder().decode([RunRecord].self, from: Data(runs.stdout.utf8))
        #expect(records.map(\.runId) == [summary.runId!])
        let sha = try db.mapping().sha256
        #expect(records.first?.status == "succeeded" && records.first?.mappingSHA256 == sha)
        let show = try ferryCLI("show \(summary.runId!)", database: db.name)
        #expect(
            show.stdout.contains("run started") && show.stdout.contains("batch committed")
                && show.stdout.contains("run finished"))
        #expect(
            try db.count("SELECT count(*) FROM ferry.batches WHERE run_id = \(summary.runId!)")
                == summary.applied?.batchesCommitted)
    }

    @Test func pruneKeepsTheNewestRunUnlessAll() throws {
        let db = try preparedDatabase(contacts: 60)
        let first = try db.job().apply(db.quietOptions())
        try db.connection.execute(
            script: """
                INSERT INTO contacts (tenant, contact_name_id, full_name, email, phone_number, country)
                SELECT tenant, gen_random_uuid(), 'Late', 'late@x.test', '650 253 0077', 'US' FROM tenants WHERE country = 'US';
                """)
        let second = try db.job().apply(db.quietOptions())
        let ledger = RunLedger(connection: db.connection)
        #expect(
            try ledger.pruneSnapshots(olderThan: "0 seconds", all: false, dryRun: true).map(\.runId) == [first.runId!])
        #expect(
            try db.count("SELECT count(*) FROM ferry.snapshot_rows WHERE run_id = \(first.runId!)") > 0,
            "a dry run prunes nothing")
        #expect(try ledger.pruneSnapshots(olderThan: "0 seconds", all: false).map(\.runId) == [first.runId!])
        #expect(try db.count("SELECT count(*) FROM ferry.snapshot_rows WHERE run_id = \(second.runId!)") > 0)
        let cli = try ferryCLI("snapshots prune --older-than 0d --all --yes", database: db.name)
        #expect(cli.status == 0, "\(cli.stderr)")
        #expect(try db.count("SELECT count(*) FROM ferry.snapshot_rows") == 0)
        #expect(intervalSetting("30d") == "30 days" && intervalSetting("soon") == nil)
    }
}

@Suite("Resume, retries and single-runner safety")
struct ResumeTests {
    @Test func killedApplyResumesToTheSameEndStateAsAnUninterruptedRun() throws {
        let db = try TestDatabase(samples: 120_000)
        _ = try db.applySchema(try db.mapping())
        // An identical copy for the uninterrupted run.
        let copyHolder = try DatabaseCopy(of: db)
        defer { withExtendedLifetime(copyHolder) {} }
        let copy = copyHolder.name
        let watcher = try PostgresConnection(conninfo: db.conninfo)

        // Start apply with small batches, kill -9 it after a few committed batches.
        let batchesAtKill = try killApply(
            "mappings/phones.yaml", conninfo: db.conninfo, batchSize: 2000, after: 5, watcher: watcher)
        #expect(batchesAtKill >= 5)
        #expect(batchesAtKill < 60, "the run finished before it was killed; nothing was tested")
        #expect(try watcher.query("SELECT status FROM ferry.runs").scalar == "running")
        // The ledger still says running, but nobody holds the job's lock: `ferry runs` tells the truth.
        let listed = try ferryCLI("runs --json", database: db.name)
        #expect(
            try JSONDecoder().decode([RunRecord].self, from: Data(listed.stdout.utf8)).map(\.status) == ["interrupted"],
            "\(listed.stdout)")

        // Run the same apply again: it continues the same run after its last committed batch.
        let resumed = try ferryCLI(
            "apply mappings/phones.yaml --batch-size 2000 --wait --no-progress --json", database: db.name)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let summary = try JSONDecoder().decode(PhonesSummary.self, from: Data(resumed.stdout.utf8))
        #expect(summary.runId == 1)
        #expect(summary.resumedAfterBatch == batchesAtKill)
        #expect(try watcher.query("SELECT count(*) FROM ferry.runs").scalar == "1")
        #expect(try watcher.query("SELECT status FROM ferry.runs").scalar == "succeeded")
        // Batches are numbered without gap or repeat.
        #expect(try watcher.query("SELECT count(*) = max(batch_no) FROM ferry.batches").scalar == "t")
        #expect(
            try watcher.query(
                "SELECT count(*) FROM ferry.events WHERE kind IN ('run found interrupted', 'run resumed')"
            ).scalar == "2")
        // The run's record counts every batch, before the kill and after the resume.
        let inserted =
            try watcher.query(
                "SELECT (SELECT count(*) FROM contact_phone_numbers) + (SELECT count(*) FROM contact_phone_type_definitions)"
            ).scalar.flatMap { Int($0) } ?? -1
        let record = try RunLedger(connection: watcher).run(1)!
        #expect(record.rowsInserted == inserted && record.batches > batchesAtKill)
        #expect(record.counts["run_totals"]?["rows_inserted"] == .number(Double(inserted)), "\(record.counts)")

        let uninterrupted = try ferryCLI("apply mappings/phones.yaml --batch-size 2000 --no-progress", database: copy)
        #expect(uninterrupted.status == 0, "\(uninterrupted.stderr)")
        let copyDatabase = try PostgresConnection(conninfo: "dbname=\(copy)")
        let reference = TestDatabaseView(connection: copyDatabase)
        #expect(try TestDatabaseView(connection: watcher).phoneContentChecksum() == reference.phoneContentChecksum())
        #expect(
            try watcher.query("SELECT count(*) FROM contact_phone_numbers").scalar
                == copyDatabase.query("SELECT count(*) FROM contact_phone_numbers").scalar)
        copyDatabase.close()
        watcher.close()
    }

    @Test func aSecondRunnerExitsAtOnceNamingTheHolder() throws {
        let db = try TestDatabase(samples: 60)
        _ = try db.applySchema(try db.mapping())
        let holder = try PostgresConnection(conninfo: db.conninfo)
        try holder.query(
            "INSERT INTO ferry.runs (job, mode, status, mapping_file, mapping_sha256, tool_version) VALUES ('phones', 'apply', 'running', 'm', 'x', 'test')"
        )
        try holder.query("SELECT pg_advisory_lock($1, hashtext('phones'))", [String(RunLock.namespace)])
        let started = Date()
        let second = try ferryCLI("apply mappings/phones.yaml", database: db.name)
        #expect(second.status == 1)
        #expect(second.stderr.contains("job 'phones' is already running in this database: run 1"), "\(second.stderr)")
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == 0)

        // With --wait it queues, and runs once the holder is gone (its dead run is marked interrupted).
        let release = Thread {
            Thread.sleep(forTimeInterval: 1.0); holder.close()
        }
        release.start()
        let waited = try ferryCLI("apply mappings/phones.yaml --wait --no-progress", database: db.name)
        #expect(waited.status == 0, "\(waited.stderr)")
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") > 0)
    }

    /// The session holding the job's lock ends while a rollback works (PostgreSQL releases the lock, and
    /// a run of the job could start beside it): the rollback commits nothing and says so; run again, it
    /// restores the tables.
    @Test func aRollbackWhoseLockSessionIsLostCommitsNothing() throws {
        let db = try TestDatabase(samples: 200)
        _ = try db.applySchema(try db.mapping())
        let before = try db.touchedTablesChecksum()
        let runId = try #require(db.job().apply(db.quietOptions()).runId)
        let applied = try db.touchedTablesChecksum()
        let (outcome, waited) = try whileASessionWaits(
            db, session: "ferry rollback", lock: "LOCK TABLE contact_phone_numbers IN SHARE MODE",
            meanwhile:
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'ferry lock phones'"
        ) { try Rollback(conninfo: db.conninfo).run(runId, dryRun: false, force: false) }
        #expect(waited, "the rollback never waited for the table")
        #expect(throws: LedgerError.self) { try outcome.get() }
        if case .failure(let error) = outcome {
            #expect("\(error)".contains("lock was lost"), "\(error)")
            #expect("\(error)".contains("nothing was restored: run `ferry rollback \(runId)` again"), "\(error)")
        }
        #expect(try db.touchedTablesChecksum() == applied, "nothing restored")
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = $1", [String(runId)]) == "succeeded")
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE rollback_of = $1", [String(runId)]) == "failed")

        let again = try Rollback(conninfo: db.conninfo).run(runId, dryRun: false, force: false)
        #expect(again.complete)
        #expect(try db.touchedTablesChecksum() == before)
    }

    @Test func lockTimeoutsAreRetriedThenTheRunStopsAsInterrupted() throws {
        let db = try TestDatabase(samples: 300)
        _ = try db.applySchema(try db.mapping())
        // The application holds a lock on the target table for a moment: batches wait, time out, retry.
        let blocker = try PostgresConnection(conninfo: db.conninfo)
        try blocker.execute(script: "BEGIN; LOCK TABLE contact_phone_numbers IN ACCESS EXCLUSIVE MODE")
        let release = Thread {
            Thread.sleep(forTimeInterval: 1.2); _ = try? blocker.execute(script: "COMMIT")
        }
        release.start()
        var options = db.quietOptions()
        options.pacing.lockTimeout = DurationSetting("100ms")
        let messages = MessageLog()
        options.log = { messages.append($0) }
        options.retry.baseDelay = 0.3
        let summary = try db.job().apply(options)
        #expect((summary.applied?.rowsInserted ?? 0) > 100)
        #expect(messages.lines.contains { $0.contains("55P03") && $0.contains("retry 1") }, "\(messages.lines)")

        // A lock held longer than every retry: the run stops as interrupted, with a resume hint.
        let second = try TestDatabase(samples: 300)
        _ = try second.applySchema(try second.mapping())
        let longBlocker = try PostgresConnection(conninfo: second.conninfo)
        try longBlocker.execute(script: "BEGIN; LOCK TABLE contact_phone_numbers IN ACCESS EXCLUSIVE MODE")
        var impatient = second.quietOptions()
        impatient.pacing.lockTimeout = DurationSetting("50ms")
        impatient.retry.attempts = 2
        impatient.retry.baseDelay = 0.05
        #expect {
            try second.job().apply(impatient)
        } throws: { error in
            let text = String(describing: error)
            return text.contains("Resume with: ferry apply ") && text.contains("ferry resume 1")
                && text.contains("55P03")
        }
        #expect(try second.scalar("SELECT status FROM ferry.runs") == "interrupted")
        try longBlocker.execute(script: "COMMIT")
        let resumed = try second.job().apply(second.quietOptions())
        #expect(resumed.runId == 1 && resumed.resumedAfterBatch == 0)
        #expect(try second.scalar("SELECT status FROM ferry.runs") == "succeeded")
    }

    @Test func rowsArrivingDuringARunAreCountedAndPickedUpByARerun() throws {
        let db = try TestDatabase(samples: 600)
        _ = try db.applySchema(try db.mapping())
        let app = try PostgresConnection(conninfo: db.conninfo)
        let writer = Thread {
            Thread.sleep(forTimeInterval: 0.4)
            _ = try? app.execute(
                script: """
                    INSERT INTO contacts (tenant, contact_name_id, full_name, email, phone_number, country)
                    SELECT tenant, ('ffffffff-ffff-4fff-8fff-' || lpad(n::text, 12, '0'))::uuid, 'New', 'new' || n || '@x.test',
                           '650 253 ' || (1000 + n), 'US'
                    FROM tenants, generate_series(1, 5) n WHERE country = 'US';
                    """)
        }
        writer.start()
        var options = db.quietOptions()
        options.pacing.batchSize = 50
        options.pacing.batchDelay = 0.1
        let first = try db.job().apply(options)
        #expect(first.applied?.sourceRowsChangedDuringRun == 5)
        let second = try db.job().apply(db.quietOptions())
        #expect(
            try db.count("SELECT count(*) FROM contact_phone_numbers WHERE contact_name_id::text LIKE 'ffffffff%'") == 5
        )
        #expect(second.applied?.sourceRowsChangedDuringRun == 0)
    }
}

final class MessageLog: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [String] = []
    func append(_ line: String) { lock.lock(); storage.append(line); lock.unlock() }
    var lines: [String] { lock.lock(); defer { lock.unlock() }; return storage }
}

/// Checksums on a connection that is not a TestDatabase (a copy made from a template).
struct TestDatabaseView {
    let connection: PostgresConnection
    func phoneContentChecksum() throws -> String {
        try connection.query(
            """
            SELECT coalesce(md5(string_agg(concat_ws(',', p.tenant, p.contact_name_id, p.phone_number, p.extension,
                                                     p.canonical_type, t.label, p.is_default, p.display_order), '|'
                                           ORDER BY p.tenant, p.contact_name_id, p.display_order)), 'empty')
            FROM contact_phone_numbers p
            LEFT JOIN contact_phone_type_definitions t
                   ON t.tenant = p.tenant AND t.contact_phone_type_id = p.custom_phone_type_id
            """
        ).scalar ?? ""
    }
}

@Suite("Snapshot files")
struct SnapshotFileTests {
    @Test func applyWritesACompressedSnapshotWithAChecksum() throws {
        let db = try TestDatabase(samples: 300)
        _ = try db.applySchema(try db.mapping())
        let directory = Scratch.folder("snapshot")
        let path = directory.appendingPathComponent("run.snapshot.gz").path
        var options = db.quietOptions()
        options.pacing.snapshotFile = path
        let summary = try db.job().apply(options)
        let written = try #require(summary.snapshotFile)
        #expect(written.rows == summary.applied!.rowsInserted + summary.applied!.customTypesCreated)
        // Standard tools read it: the checksum verifies, gzip decompresses, one JSON object per line.
        let check = try runProcess("/bin/sh", ["-c", "cd '\(directory.path)' && sha256sum -c run.snapshot.gz.sha256"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        let lines = try runProcess("/bin/sh", ["-c", "gzip -dc '\(path)'"]).stdout.split(separator: "\n")
        #expect(lines.count == written.rows + 1)
        let header = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: String]
        #expect(header?["format"] == "ferry-snapshot/1" && header?["run"] == String(summary.runId!))
        let first = try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any]
        #expect(first?["action"] as? String == "insert")
        #expect((first?["key"] as? [String: Any])?.keys.contains("tenant") == true)
        // Corrupt one byte: the checksum says so.
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: 40)
        try handle.write(contentsOf: Data([0x00, 0xFF]))
        try handle.close()
        #expect(
            try runProcess("/bin/sh", ["-c", "cd '\(directory.path)' && sha256sum -c run.snapshot.gz.sha256"]).status
                != 0)
    }
}
