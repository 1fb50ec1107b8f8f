import Foundation
import Testing
@testable import FerryKit

/// A writing job as the shared suite drives it: its mapping, the tables it writes, and an edit of its
/// source that a plan file must notice. Adding a job to the suite is one more line in `all`.
struct JobCase: Sendable, CustomTestStringConvertible {
    let mapping: String
    /// Every table the job writes (their rows are compared, tenant by tenant where asked).
    let tables: [String]
    /// Changes one source row the job reads, after a plan (the plan file must refuse the apply).
    let sourceEdit: String
    /// Brings the samples into the state the job starts from (after its schema steps).
    var setup: [String] = []

    /// The CSV import: a query whose rows (one text column, in order) are the file it imports.
    var importFileQuery: String? = nil
    /// Columns that differ between two runs of the same work beyond the tables' own random defaults.
    var volatileColumns: [String] = []

    var testDescription: String { mapping }
    /// `--jobs N` writes with N sessions: a table job's tenants in parallel, an import's shares of its
    /// file's contacts (on PostgreSQL only: on Citus the import writes with one session).
    var appliesInParallel: Bool { importFileQuery == nil || !TestDatabase.onCitus }
    /// Whether ferry.batches' keys are (tenant, key) pairs; an import's are line numbers.
    var batchesKeyedByTenant: Bool { importFileQuery == nil }
    /// Whether its writers divide a tenant's rows (`TenantSlice`): the phones jobs; the others take
    /// whole tenants.
    var slicesTenants: Bool { mapping.contains("phones") }

    /// The file an import job reads, written beside `db` (a copy of `db` reads the same file).
    func inputFile(of db: TestDatabase) -> String {
        db.scratchFile("import.csv")
    }

    /// `ferry plan` (for the import, `ferry import FILE --dry-run`) with `extra` arguments.
    func plan(_ db: TestDatabase, _ extra: String) -> String {
        importFileQuery == nil
            ? "plan \(mapping) \(extra)" : "import '\(inputFile(of: db))' --mapping \(mapping) --dry-run \(extra)"
    }

    /// `ferry apply` (for the import, `ferry import FILE`) with `extra` arguments.
    func apply(_ db: TestDatabase, _ extra: String) -> String {
        importFileQuery == nil
            ? "apply \(mapping) \(extra)" : "import '\(inputFile(of: db))' --mapping \(mapping) \(extra)"
    }

    func applyArguments(_ db: TestDatabase, _ extra: [String]) -> [String] {
        (importFileQuery == nil ? ["apply", mapping] : ["import", inputFile(of: db), "--mapping", mapping]) + extra
    }

    /// What an interrupted run tells the user to type.
    func resumeHint(_ db: TestDatabase) -> String {
        importFileQuery == nil
            ? "Resume with: ferry apply \(mapping)" : "Resume with: ferry import \(inputFile(of: db))"
    }

    /// The tenants a `--json` plan covered (the import prints its summary, the table jobs their report),
    /// and the table growth it estimated.
    func planned(_ json: String) throws -> (tenants: [String], growthBytes: Int?) {
        if importFileQuery != nil {
            let summary = try JSONDecoder().decode(ImportSummary.self, from: Data(json.utf8))
            return (summary.tenants.keys.sorted(), summary.estimatedGrowthBytes)
        }
        let report = try JSONDecoder().decode(PlanReport.self, from: Data(json.utf8))
        return (report.tenants.map(\.tenant), report.header.estimatedGrowthBytes)
    }

    /// The application's own naive backfill into the phone tables.
    static let naiveBackfillSQL = """
        INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default, display_order)
        SELECT tenant, contact_name_id, btrim(phone_number), 'work', true, 0 FROM contacts WHERE btrim(phone_number) <> ''
        """

    /// The phone tables, then the application's own naive backfill into them.
    static let naiveBackfill = ["ferry schema apply mappings/phones.yaml", naiveBackfillSQL]

    static let phoneTables = ["contacts", "contact_phone_numbers", "contact_phone_type_definitions"]
    /// The first contact's legacy phone value, changed.
    static let legacyPhoneEdit = """
        UPDATE contacts SET phone_number = '212 555 0199'
        WHERE (tenant, contact_name_id) = (SELECT tenant, contact_name_id FROM contacts ORDER BY 1, 2 LIMIT 1)
        """

    /// Every writing job; the Citus tier runs the same suite over them.
    static let every: [JobCase] = [
        JobCase(mapping: "mappings/phones.yaml", tables: phoneTables, sourceEdit: legacyPhoneEdit),
        // The application's own naive backfill, in the release that created the tables.
        JobCase(
            mapping: "mappings/phones-over-naive-rows.yaml", tables: phoneTables, sourceEdit: legacyPhoneEdit,
            setup: naiveBackfill),
        JobCase(
            mapping: "mappings/customers.yaml",
            tables: ["clients", "contacts", "projects", "project_contact_points"],
            // A column of a joined table: only a fingerprint of what the job reads sees it.
            sourceEdit: """
                UPDATE contacts SET role = 'Changed since the plan'
                WHERE (tenant, contact_name_id) = (SELECT tenant, customer_id FROM projects WHERE customer_id IS NOT NULL ORDER BY 1, 2 LIMIT 1)
                """),
        JobCase(
            mapping: "mappings/phones-in-place.yaml",
            tables: ["contact_phone_numbers", "contact_phone_type_definitions"],
            sourceEdit: """
                UPDATE contact_phone_numbers SET phone_number = '212 555 0199'
                WHERE (tenant, contact_phone_number_id) = (SELECT tenant, contact_phone_number_id FROM contact_phone_numbers ORDER BY 1, 2 LIMIT 1)
                """,
            // The application's naive backfill, then its release that drops the legacy column.
            setup: naiveBackfill + [
                // One statement per step: Citus forwards a statement's whole text to its workers.
                "ALTER TABLE contacts DROP COLUMN phone_number"
            ]),
        JobCase(
            mapping: "mappings/service-requests.yaml", tables: ["contacts", "service_requests"],
            sourceEdit: """
                UPDATE service_requests SET status = 'changed since the plan'
                WHERE (tenant, request_id) = (SELECT tenant, request_id FROM service_requests ORDER BY 1, 2 LIMIT 1)
                """),
        JobCase(
            mapping: "mappings/contacts-csv.yaml",
            tables: ["contacts", "clients", "contact_phone_numbers", "contact_phone_type_definitions"],
            // What the import classifies against: a contact of the file's tenants.
            sourceEdit: """
                UPDATE contacts SET role = 'Changed since the plan'
                WHERE (tenant, contact_name_id) = (SELECT tenant, contact_name_id FROM contacts ORDER BY 1, 2 LIMIT 1)
                """,
            // A quarter of the contacts again (a new role, a mobile number), then 1,500 new people.
            importFileQuery: """
                SELECT line FROM (
                    SELECT 0 AS n, 'Tenant,Full Name,Country,Email,Company,Title,Office Phone,Mobile,Notes' AS line
                    UNION ALL
                    SELECT row_number() OVER (ORDER BY c.contact_name_id),
                           concat_ws(',', c.tenant, c.full_name, 'US', lower(c.email), '', 'Imported role', '',
                                     '+1 646 555 01' || lpad((row_number() OVER (ORDER BY c.contact_name_id) % 100)::text, 2, '0'), '')
                    FROM contacts c
                    WHERE c.contact_name_id::text < '4'
                      AND NOT EXISTS (SELECT 1 FROM contacts d WHERE d.tenant = c.tenant AND lower(d.email) = lower(c.email)
                                                                 AND d.contact_name_id <> c.contact_name_id)
                    UNION ALL
                    SELECT 100000 + g, concat_ws(',', t.tenant, 'New Person ' || g, 'US', 'new' || g || '@import.example', '',
                                                 'Buyer', '+1 212 555 01' || lpad((g % 100)::text, 2, '0'), '', '')
                    FROM generate_series(1, 1500) g
                    JOIN (SELECT tenant, row_number() OVER (ORDER BY tenant) - 1 AS k FROM tenants) t ON t.k = g % 3) x
                ORDER BY n
                """,
            // New contacts get random keys; their phone rows point at them.
            volatileColumns: ["contact_name_id"]),
    ]

    /// One job per way of writing a batch: a table job (every one commits through `LoaderSession`) and
    /// the CSV import. For the slow Citus tier's checks of what all table jobs share.
    /// The phones job on an empty phone table: the engine's plain write path.
    static let phones = every.first { $0.mapping == "mappings/phones.yaml" }!
    static let onePerWritePath = every.filter { $0.mapping == phones.mapping || $0.importFileQuery != nil }
}

/// A moment at which the ledger's own session is lost during a write of its, and what ferry then says.
struct LedgerWriteLoss: Sendable, CustomTestStringConvertible {
    let testDescription: String
    /// Text the write sends: the loss happens in the write that sends it.
    let statement: String
    let fault: ConnectionDroppingProxy.Fault
    let says: String

    var checkedOnCitus = false

    static let all = [
        LedgerWriteLoss(
            testDescription: "the run's record, its reply lost", statement: "INSERT INTO ferry.runs",
            fault: .replyLost(tag: "INSERT", occurrence: 1), says: "opening another"),
        LedgerWriteLoss(
            testDescription: "the run's start, its COMMIT's reply lost", statement: "INSERT INTO ferry.runs",
            fault: .replyLost(tag: "COMMIT", occurrence: 1), says: "had committed before its session was lost",
            checkedOnCitus: true),
        LedgerWriteLoss(
            testDescription: "the run's last event, its reply lost", statement: "run finished",
            fault: .replyLost(tag: "INSERT", occurrence: 1), says: "opening another"),
        LedgerWriteLoss(
            testDescription: "the run's end, its COMMIT's reply lost", statement: "run finished",
            fault: .replyLost(tag: "COMMIT", occurrence: 1), says: "had committed before its session was lost"),
        LedgerWriteLoss(
            testDescription: "the run's end, its last event lost on the way",
            statement: "UPDATE ferry.runs SET status = $2",
            fault: .requestLost(containing: "run finished"), says: "still held its transaction open; ended it"),
        LedgerWriteLoss(
            testDescription: "the run's end, its COMMIT lost on the way", statement: "run finished",
            fault: .requestLost(containing: "COMMIT"), says: "still held its transaction open; ended it",
            checkedOnCitus: true),
    ]
}

extension TestDatabase {
    /// A database with the samples and the job's schema steps applied.
    static func forJob(_ job: JobCase, contacts: Int = 6_000) throws -> TestDatabase {
        let db = try TestDatabase(samples: contacts)
        for step in job.setup {
            if step.hasPrefix("ferry ") {
                let result = try ferryCLI(String(step.dropFirst("ferry ".count)), database: db.name)
                guard result.status == 0 else { throw TestSetupError("\(step): \(result.stderr)") }
            } else {
                try db.connection.execute(script: step)
            }
        }
        let schema = try ferryCLI("schema apply \(job.mapping)", database: db.name)
        guard schema.status == 0 else { throw TestSetupError("schema apply \(job.mapping): \(schema.stderr)") }
        if let query = job.importFileQuery {
            let lines = try db.connection.query(query).rows.map { $0[0] ?? "" }
            try (lines.joined(separator: "\n") + "\n").write(
                toFile: job.inputFile(of: db), atomically: true, encoding: .utf8)
        }
        return db
    }

    /// The job's tables, row by row by column name (optionally only the rows `tenantFilter` selects).
    func tablesChecksum(_ job: JobCase, tenantFilter: String = "true") throws -> [String] {
        try TestDatabaseView(connection: connection).tablesChecksum(job, tenantFilter: tenantFilter)
    }
}

extension TestDatabaseView {
    func tablesChecksum(_ job: JobCase, tenantFilter: String = "true") throws -> [String] {
        try job.tables.map { table in
            try connection.query(
                "SELECT coalesce(md5(string_agg(to_jsonb(t)::text, '|' ORDER BY to_jsonb(t)::text)), 'empty') FROM \(table) t WHERE \(tenantFilter)"
            ).scalar ?? ""
        }
    }

    /// The job's tables without what differs between two runs of the same work: columns filled by
    /// random or clock defaults, `updated_at`, and references to rows with random keys.
    func contentChecksum(_ job: JobCase) throws -> [String] {
        try job.tables.map { table in
            let volatile =
                try connection.query(
                    """
                    SELECT a.attname FROM pg_attribute a JOIN pg_attrdef d ON (d.adrelid, d.adnum) = (a.attrelid, a.attnum)
                    WHERE a.attrelid = $1::regclass AND pg_get_expr(d.adbin, d.adrelid) ~ '(gen_random_uuid|now)\\('
                    """, [table]
                ).rows.compactMap { $0[0] } + ["updated_at", "custom_phone_type_id"] + job.volatileColumns
            return try connection.query(
                "SELECT coalesce(md5(string_agg(v, '|' ORDER BY v)), 'empty') FROM (SELECT (to_jsonb(t) - $1::text[])::text AS v FROM \(table) t) x",
                [textArrayLiteral(volatile)]
            ).scalar ?? ""
        }
    }
}

/// Every writing job on the one engine, held to the same promises the same way.
@Suite("Every writing job: plan, apply, resume, rollback, plan files, --tenant, snapshot files")
struct EveryJobTests {
    @Test(arguments: JobCase.every)
    func planChangesNothingApplyOnceRollbackRestores(_ job: JobCase) throws {
        let db = try TestDatabase.forJob(job)
        let before = try db.tablesChecksum(job)
        let plan = try ferryCLI(job.plan(db, "--no-progress --detailed-exitcode"), database: db.name)
        #expect(plan.status == 2, "changes pending: \(plan.stderr)")
        #expect(try db.tablesChecksum(job) == before, "the plan changed nothing")
        #expect(try db.count("SELECT count(*) FROM ferry.runs") == 0, "not even the ledger")

        let snapshot = db.scratchFile("snapshot.gz")
        let apply = try ferryCLI(job.apply(db, "--no-progress --snapshot-file \(snapshot)"), database: db.name)
        #expect(apply.status == 0, "\(apply.stderr)")
        let applied = try db.tablesChecksum(job)
        #expect(applied != before, "the apply changed rows")
        // The snapshot file is the run's snapshot, verifiable on its own.
        let check = try runProcess(
            "/bin/sh",
            ["-c", "cd '\((snapshot as NSString).deletingLastPathComponent)' && sha256sum -c '\(snapshot).sha256'"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        #expect(try runProcess("/bin/gzip", ["-t", snapshot]).status == 0)
        let snapshotRows = try runProcess("/bin/sh", ["-c", "gzip -dc '\(snapshot)' | wc -l"]).stdout
        #expect(
            Int(snapshotRows.trimmingCharacters(in: .whitespacesAndNewlines))
                == 1 + (try db.count("SELECT count(*) FROM ferry.snapshot_rows WHERE run_id = 1")))

        let again = try ferryCLI(job.apply(db, "--no-progress"), database: db.name)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try db.tablesChecksum(job) == applied, "a second apply changes nothing")
        #expect(
            try db.count("SELECT coalesce(sum(rows_inserted + rows_updated), 0) FROM ferry.batches WHERE run_id = 2")
                == 0)

        let rollback = try ferryCLI("rollback 1 --yes", database: db.name)
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        #expect(try db.tablesChecksum(job) == before, "rollback restores every row")
    }

    @Test(arguments: JobCase.every)
    func aKilledApplyResumesToTheSameEndStateAsAnUninterruptedOne(_ job: JobCase) throws {
        let db = try TestDatabase.forJob(job)
        let (twin, twinName) = try Self.twin(of: db, job)
        defer { withExtendedLifetime(twin) {} }
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        defer { watcher.close() }
        let atKill = try signalFerry(
            job.applyArguments(db, ["--batch-size", "100"]), conninfo: db.conninfo, after: 3, watcher: watcher,
            signal: SIGKILL
        ).committed
        #expect(atKill >= 3, "killed after \(atKill) batches")
        let resumed = try ferryCLI("resume 1 --wait --no-progress", database: db.name)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try watcher.query("SELECT count(*) FROM ferry.batches").scalar.flatMap { Int($0) } ?? 0 > atKill)
        try Self.expectTheEndStateOfAnUninterruptedRun(job, db, watcher, twin: twinName)
    }

    /// A DBA's pg_terminate_backend, a proxy or a failover drops ferry's sessions mid-run. A table job's
    /// writer and reader get new sessions (the writer its staging tables again), the lost batch is
    /// written again and the run ends as an uninterrupted one. The import remembers the file's lines in
    /// its session: it resumes its run (which rebuilds that memory), and ends the same.
    @Test(arguments: JobCase.every)
    func sessionsTerminatedMidRunAreReplacedAndTheRunEndsAsAnUninterruptedOne(_ job: JobCase) throws {
        // The writer ("ferry apply <job>", "ferry import") and the reader ("… (read)"); not the session
        // holding the job's lock, nor the ledger's.
        try Self.terminatingSessions(job, named: "^ferry (apply [a-z-]+( \\(read\\))?|import)$") {
            _, watcher, terminated, run throws in
            #expect(terminated >= 1, "a session to terminate")
            #expect(run.stderr.contains("retry 1"), "\(run.stderr)")
            #expect(run.status == 0, "\(run.stderr)")
            if job.importFileQuery != nil {
                // The import's memory of the file's lines went with its session: it resumed its run.
                #expect(run.stderr.contains("import run 1 lost a session"), "\(run.stderr)")
                #expect(try watcher.query("SELECT count(*) FROM ferry.runs").scalar == "1")
                #expect(
                    try watcher.query("SELECT count(*) FROM ferry.events WHERE kind = 'run resumed'").scalar == "1")
            }
        }
    }

    /// The ledger's own session ends mid-run (idle between the run's start and its end): the run opens
    /// another and ends as an uninterrupted one.
    @Test(arguments: JobCase.every)
    func aLostLedgerSessionIsReplacedAndTheRunEndsAsAnUninterruptedOne(_ job: JobCase) throws {
        try Self.terminatingSessions(job, named: "^ferry ledger$") { _, _, terminated, run in
            #expect(terminated == 1, "the ledger's session")
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stderr.contains("the ledger's session was lost; opening another"), "\(run.stderr)")
        }
    }

    /// The writer's connection drops after its third COMMIT reached the server and before the reply came
    /// back: that transaction committed, and ferry learns it only by asking. The run writes nothing twice
    /// and ends as an uninterrupted one (on Citus, with the whole two-phase commit behind the COMMIT;
    /// there for one table job, as every table job commits through the same `LoaderSession`).
    @Test(arguments: TestDatabase.onCitus ? JobCase.onePerWritePath : JobCase.every)
    func aCommitWhoseReplyIsLostIsNotWrittenAgain(_ job: JobCase) throws {
        let db = try TestDatabase.forJob(job)
        let (twin, twinName) = try Self.twin(of: db, job)
        defer { withExtendedLifetime(twin) {} }
        let proxy = try ConnectionDroppingProxy(
            application: "^ferry (apply [a-z-]+|import)$", .replyLost(tag: "COMMIT", occurrence: 3))
        defer { proxy.close() }
        let run = try ferryCLI(
            job.apply(db, "--batch-size 100 --no-progress"), database: db.name, environment: proxy.environment)
        #expect(proxy.dropped.value)
        #expect(run.status == 0, "\(run.stderr)")
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        defer { watcher.close() }
        if job.importFileQuery != nil {
            #expect(run.stderr.contains("import run 1 lost a session"), "\(run.stderr)")
        } else {
            #expect(
                run.stderr.contains("was committed before its session was lost (the reply went with it)"),
                "\(run.stderr)")
        }
        try Self.expectTheEndStateOfAnUninterruptedRun(job, db, watcher, twin: twinName)
    }

    /// The ledger's own session is lost during one of its writes, at the moments that leave ferry unsure
    /// whether the write took effect. The run opens another session, writes what had not committed and
    /// nothing twice: one run, whose events are those of an uninterrupted run. For one job: every run
    /// writes its ledger through `RunLedger`, whatever its job. On Citus, where the ledger is the
    /// coordinator's own tables, the two moments that ask the server what became of a COMMIT.
    @Test(arguments: TestDatabase.onCitus ? LedgerWriteLoss.all.filter(\.checkedOnCitus) : LedgerWriteLoss.all)
    func aLedgerWriteWhoseSessionIsLostIsRecordedOnce(_ loss: LedgerWriteLoss) throws {
        let job = JobCase.phones
        // The ledger writes the same whatever the number of rows: few rows, few batches.
        let db = try TestDatabase.forJob(job, contacts: 1_000)
        let (twin, twinName) = try Self.twin(of: db, job, contacts: 1_000)
        defer { withExtendedLifetime(twin) {} }
        let proxy = try ConnectionDroppingProxy(application: "^ferry ledger$", loss.fault, after: loss.statement)
        defer { proxy.close() }
        let run = try ferryCLI(
            job.apply(db, "--batch-size 250 --no-progress"), database: db.name, environment: proxy.environment)
        #expect(proxy.dropped.value)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("the ledger's session was lost; opening another"), "\(run.stderr)")
        #expect(run.stderr.contains(loss.says), "\(run.stderr)")
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        defer { watcher.close() }
        try Self.expectTheEndStateOfAnUninterruptedRun(job, db, watcher, twin: twinName, batchSize: 250)
        let copy = try PostgresConnection(conninfo: "dbname=\(twinName)")
        defer { copy.close() }
        let story = "SELECT string_agg(kind, ', ' ORDER BY event_id) FROM ferry.events"
        #expect(try watcher.query(story).scalar == copy.query(story).scalar, "the run's events, each once")
    }

    /// The session holding the job's lock ends mid-run (PostgreSQL then releases the lock, and a second
    /// run of the job could start): the run stops before its next batch, as interrupted, and its resume
    /// ends as an uninterrupted run.
    @Test(arguments: JobCase.every)
    func aRunWhoseLockSessionIsLostStopsAndItsResumeEndsAsAnUninterruptedOne(_ job: JobCase) throws {
        try Self.terminatingSessions(job, named: "^ferry lock ") { db, watcher, terminated, run in
            #expect(terminated == 1, "the lock's session")
            #expect(run.status == 1, "\(run.stderr)")
            #expect(run.stderr.contains("lock was lost"), "\(run.stderr)")
            #expect(run.stderr.contains(job.resumeHint(db)), "\(run.stderr)")
            #expect(try watcher.query("SELECT status FROM ferry.runs WHERE run_id = 1").scalar == "interrupted")
            let resumed = try ferryCLI("resume 1 --no-progress", database: db.name)
            #expect(resumed.status == 0, "\(resumed.stderr)")
        }
    }

    /// The job's apply in batches of 100 on a fresh database, during which, after three batches, ferry's
    /// sessions whose application_name matches the regular expression `named` are terminated. `check`
    /// looks at how many were and at the run (ending it, if it stopped); what is left must then be the
    /// end state of an uninterrupted run on a twin database.
    static func terminatingSessions(
        _ job: JobCase, named: String,
        check: (
            _ db: TestDatabase, _ watcher: PostgresConnection, _ terminated: Int,
            _ run: (committed: Int, status: Int32, stderr: String)
        ) throws -> Void
    ) throws {
        let db = try TestDatabase.forJob(job)
        let (twin, twinName) = try Self.twin(of: db, job)
        defer { withExtendedLifetime(twin) {} }
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        defer { watcher.close() }
        var terminated = 0
        let run = try interruptFerry(
            job.applyArguments(db, ["--batch-size", "100"]), conninfo: db.conninfo, after: 3, watcher: watcher
        ) { _ in
            terminated =
                try watcher.query(
                    """
                    SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                    WHERE datname = current_database() AND application_name ~ $1
                    """, [named]
                ).value("sessions terminated", as: Int.self)
        }
        try check(db, watcher, terminated, run)
        try expectTheEndStateOfAnUninterruptedRun(job, db, watcher, twin: twinName)
    }

    /// The one run on `db` succeeded with contiguous batches, and its rows and batch counts are those of
    /// an uninterrupted run of the job (in batches of `batchSize`) on `twin`.
    static func expectTheEndStateOfAnUninterruptedRun(
        _ job: JobCase, _ db: TestDatabase, _ watcher: PostgresConnection, twin: String, batchSize: Int = 100
    ) throws {
        #expect(try watcher.query("SELECT string_agg(status, ', ') FROM ferry.runs").scalar == "succeeded", "one run")
        #expect(try watcher.query("SELECT count(*) = max(batch_no) FROM ferry.batches").scalar == "t")
        let uninterrupted = try ferryCLI(job.apply(db, "--batch-size \(batchSize) --no-progress"), database: twin)
        #expect(uninterrupted.status == 0, "\(uninterrupted.stderr)")
        let copy = try PostgresConnection(conninfo: "dbname=\(twin)")
        defer { copy.close() }
        #expect(
            try TestDatabaseView(connection: watcher).contentChecksum(job)
                == TestDatabaseView(connection: copy).contentChecksum(job))
        let counts =
            "SELECT sum(rows_inserted) || '/' || sum(rows_updated) || '/' || sum(rows_deleted) FROM ferry.batches"
        #expect(try watcher.query(counts).scalar == copy.query(counts).scalar, "the batches' counts add up the same")
    }

    @Test(arguments: JobCase.every)
    func sigtermStopsBetweenBatchesAndLeavesTheRunResumable(_ job: JobCase) throws {
        let db = try TestDatabase.forJob(job)
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        defer { watcher.close() }
        let stopped = try signalFerry(
            job.applyArguments(db, ["--batch-size", "50"]), conninfo: db.conninfo, after: 2, watcher: watcher,
            signal: SIGTERM)
        #expect(stopped.status == 128 + SIGTERM, "\(stopped.stderr)")
        #expect(stopped.stderr.contains("SIGTERM received"), "\(stopped.stderr)")
        #expect(stopped.stderr.contains(job.resumeHint(db)), "\(stopped.stderr)")
        #expect(try watcher.query("SELECT status FROM ferry.runs WHERE run_id = 1").scalar == "interrupted")
        #expect(try watcher.query("SELECT error FROM ferry.runs WHERE run_id = 1").scalar == "stopped by SIGTERM")
        let committed = try db.count("SELECT count(*) FROM ferry.batches")
        #expect(committed >= 2, "stopped after \(committed) batches")
        let resumed = try ferryCLI("resume 1 --no-progress", database: db.name)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try watcher.query("SELECT count(*) = max(batch_no) FROM ferry.batches").scalar == "t")
        #expect(try db.count("SELECT count(*) FROM ferry.batches") > committed)
    }

    @Test(arguments: JobCase.every)
    func aPlanFileRefusesAnApplyAfterTheSourceChanged(_ job: JobCase) throws {
        let db = try TestDatabase.forJob(job)
        let path = db.scratchFile("plan.json")
        let plan = try ferryCLI(job.plan(db, "--no-progress --out \(path)"), database: db.name)
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(
            try PlanFile.read(path).job
                == (try mappingJob(path: TestDatabase.packageRoot.appendingPathComponent(job.mapping).path)))
        try db.connection.execute(script: job.sourceEdit)
        let before = try db.tablesChecksum(job)
        let refused = try ferryCLI(job.apply(db, "--no-progress --plan \(path)"), database: db.name)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("refusing to apply"), "\(refused.stderr)")
        #expect(refused.stderr.contains("changed since the plan"), "\(refused.stderr)")
        #expect(try db.tablesChecksum(job) == before, "nothing written")
        #expect(try db.count("SELECT count(*) FROM ferry.runs") == 0)

        // A fresh plan binds the apply again.
        #expect(try ferryCLI(job.plan(db, "--no-progress --out \(path)"), database: db.name).status == 0)
        let bound = try ferryCLI(job.apply(db, "--no-progress --plan \(path)"), database: db.name)
        #expect(bound.status == 0, "\(bound.stderr)")
        #expect(try db.scalar("SELECT detail->>'drift' FROM ferry.events WHERE kind = 'plan checked'") == "0")
    }

    @Test(arguments: JobCase.every)
    func tenantLimitsARunToThatTenant(_ job: JobCase) throws {
        let db = try TestDatabase.forJob(job)
        let tenant = try #require(try db.scalar("SELECT min(tenant::text) FROM tenants"))
        let others = "tenant::text <> '\(tenant)'"
        let othersBefore = try db.tablesChecksum(job, tenantFilter: others)
        let mineBefore = try db.tablesChecksum(job, tenantFilter: "NOT (\(others))")
        let plan = try ferryCLI(job.plan(db, "--no-progress --json --tenant \(tenant)"), database: db.name)
        #expect(plan.status == 0, "\(plan.stderr)")
        let planned = try job.planned(plan.stdout)
        #expect(planned.tenants == [tenant], "the plan covers that tenant only")
        #expect((planned.growthBytes ?? 0) > 0, "the plan estimates the growth its writes bring")

        let apply = try ferryCLI(job.apply(db, "--no-progress --tenant \(tenant)"), database: db.name)
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(try db.tablesChecksum(job, tenantFilter: others) == othersBefore, "other tenants untouched")
        #expect(try db.tablesChecksum(job, tenantFilter: "NOT (\(others))") != mineBefore, "that tenant migrated")
        if job.batchesKeyedByTenant {
            #expect(
                try db.count(
                    "SELECT count(*) FROM ferry.batches WHERE first_key[1] <> '\(tenant)' OR last_key[1] <> '\(tenant)'"
                )
                    == 0)
        }
        #expect(try db.scalar("SELECT options->>'tenants' FROM ferry.runs WHERE run_id = 1") == tenant)
    }

    /// A database for the run a test compares with: a template copy, or on Citus (a template copies no
    /// worker's shards) the same deterministic samples built again: `contacts` must be what `db` was
    /// made with.
    static func twin(
        of db: TestDatabase, _ job: JobCase, contacts: Int = 6_000
    ) throws -> (
        holder: AnyObject, name: String
    ) {
        if TestDatabase.onCitus {
            let again = try TestDatabase.forJob(job, contacts: contacts)
            return (again, again.name)
        }
        let copy = try DatabaseCopy(of: db)
        return (copy, copy.name)
    }

    @Test(arguments: JobCase.every.filter(\.appliesInParallel))
    func parallelWritersWriteWhatOneWriterWrites(_ job: JobCase) throws {
        let db = try TestDatabase.forJob(job)
        let before = try db.tablesChecksum(job)
        let twin = try Self.twin(of: db, job)
        defer { withExtendedLifetime(twin.holder) {} }
        let parallel = try ferryCLI(job.apply(db, "--no-progress --jobs 3 --batch-size 400"), database: db.name)
        #expect(parallel.status == 0, "\(parallel.stderr)")
        let serial = try ferryCLI(job.apply(db, "--no-progress --batch-size 400"), database: twin.name)
        #expect(serial.status == 0, "\(serial.stderr)")
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        defer { watcher.close() }
        let other = try PostgresConnection(conninfo: "dbname=\(twin.name)")
        defer { other.close() }
        #expect(
            try TestDatabaseView(connection: watcher).contentChecksum(job)
                == TestDatabaseView(connection: other).contentChecksum(job))
        // Every batch holds one tenant's rows (an import's, one writer's share of the file's lines); the run
        // records its writers; the counts are the serial run's.
        if job.batchesKeyedByTenant {
            #expect(
                try watcher.query("SELECT count(*) FROM ferry.batches WHERE first_key[1] <> last_key[1]").scalar == "0")
            #expect(try watcher.query("SELECT options->>'jobs' FROM ferry.runs WHERE run_id = 1").scalar == "3")
            // Fewer tenants than twice the writers: each tenant in three slices (two bounds) where the job
            // allows it, whole tenants elsewhere.
            let tenants = try watcher.query("SELECT count(DISTINCT last_key[1]) FROM ferry.batches").scalar
            #expect(
                try watcher.query(
                    """
                    SELECT count(*) FROM ferry.events e, jsonb_each_text(e.detail) t
                    WHERE e.kind = 'slices' AND cardinality(string_to_array(t.value, ',')) = 2
                    """
                ).scalar == (job.slicesTenants ? tenants : "0"))
        } else {
            #expect(
                try watcher.query("SELECT detail->>'jobs' FROM ferry.events WHERE run_id = 1 AND kind = 'file'").scalar
                    == "3")
            #expect(
                try watcher.query(
                    "SELECT count(DISTINCT detail->>'partition') FROM ferry.events WHERE run_id = 1 AND kind = 'import batch'"
                ).scalar == "3")
        }
        let counts =
            "SELECT sum(rows_inserted) || '/' || sum(rows_updated) || '/' || sum(rows_deleted) FROM ferry.batches"
        #expect(try watcher.query(counts).scalar == other.query(counts).scalar)
        let rollback = try ferryCLI("rollback 1 --yes", database: db.name)
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        #expect(try TestDatabaseView(connection: watcher).tablesChecksum(job) == before, "rollback restores every row")
    }

    @Test(arguments: JobCase.every.filter(\.appliesInParallel))
    func aKilledParallelApplyResumesEachPartWhereItStopped(_ job: JobCase) throws {
        let db = try TestDatabase.forJob(job)
        let twin = try Self.twin(of: db, job)
        defer { withExtendedLifetime(twin.holder) {} }
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        defer { watcher.close() }
        let killed = try signalFerry(
            job.applyArguments(db, ["--batch-size", "100", "--jobs", "2"]), conninfo: db.conninfo, after: 4,
            watcher: watcher, signal: SIGKILL)
        #expect(killed.committed >= 4)
        // One writer cannot take over where several stopped (nor the other way round).
        let serial = try ferryCLI("resume 1 --jobs 1 --no-progress", database: db.name)
        #expect(serial.status == 1 && serial.stderr.contains("was started with --jobs 2"), "\(serial.stderr)")
        let resumed = try ferryCLI("resume 1 --wait --no-progress", database: db.name)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(try watcher.query("SELECT status FROM ferry.runs WHERE run_id = 1").scalar == "succeeded")
        let uninterrupted = try ferryCLI(job.apply(db, "--batch-size 100 --no-progress"), database: twin.name)
        #expect(uninterrupted.status == 0, "\(uninterrupted.stderr)")
        let other = try PostgresConnection(conninfo: "dbname=\(twin.name)")
        defer { other.close() }
        #expect(
            try TestDatabaseView(connection: watcher).contentChecksum(job)
                == TestDatabaseView(connection: other).contentChecksum(job))
    }
}
