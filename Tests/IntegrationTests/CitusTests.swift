import Foundation
import Testing
@testable import FerryKit

/// The Citus tier (`make test-citus`, run by `make test` when Citus is installed): a coordinator and two
/// workers, every sample table hash-distributed on `tenant` and colocated, as the application runs at scale.
/// Without FERRY_CITUS_WORKERS these tests fail at setup; `make test` leaves the suite out and says so.
@Suite("Citus: tables distributed by tenant")
struct CitusTests {
    init() throws {
        guard TestDatabase.onCitus else {
            throw TestSetupError(
                "no Citus cluster: run this suite with `make test-citus` (FERRY_CITUS_WORKERS is not set)")
        }
    }

    func ferry(_ arguments: [String], db: TestDatabase) throws -> ProcessResult {
        try ferryCLI(arguments.joined(separator: " "), database: db.name)
    }

    static let importMapping = "mappings/contacts-csv.yaml"

    /// A database with the import's schema steps applied, tenant ...0001, and `setUp` run after.
    func databaseForImports(_ setUp: String = "") throws -> TestDatabase {
        let db = try TestDatabase()
        #expect(try ferry(["schema", "apply", Self.importMapping], db: db).status == 0)
        try db.connection.execute(
            script: "INSERT INTO tenants VALUES ('00000000-0000-4000-8000-000000000001', 'Acme', 'US');" + setUp)
        return db
    }

    /// Imports `text` as a CSV file; expects the import to succeed and returns its run.
    func importing(_ text: String, into db: TestDatabase) throws -> Int {
        let file = URL(fileURLWithPath: db.scratchFile("\(UUID().uuidString).csv"))
        try text.write(to: file, atomically: true, encoding: .utf8)
        let run = try ferry(["import", file.path, "--mapping", Self.importMapping], db: db)
        #expect(run.status == 0, "\(run.stdout) \(run.stderr)")
        return try db.count("SELECT max(run_id) FROM ferry.runs")
    }

    /// Each hash-distributed table with its distribution column and colocation group.
    func placements(_ db: TestDatabase) throws -> [String: (column: String, group: String)] {
        var placements: [String: (column: String, group: String)] = [:]
        for row in try db.connection.query(
            """
            SELECT logicalrelid::text AS name, column_to_column_name(logicalrelid, partkey) AS column_name,
                   colocationid::text AS grp
            FROM pg_dist_partition WHERE partmethod = 'h'
            """
        ).decoded("pg_dist_partition") {
            placements[try row.required("name")] = (try row.required("column_name"), try row.required("grp"))
        }
        return placements
    }

    @Test func schemaStepsDistributeTheTablesTheyCreateColocatedWithTheSource() throws {
        let db = try TestDatabase(samples: 100)
        for mapping in ["phones", "customers", "service-requests", "contacts-csv"] {
            let applied = try ferry(["schema", "apply", "mappings/\(mapping).yaml"], db: db)
            #expect(applied.status == 0, "\(mapping): \(applied.stderr)")
            // The schema snapshot taken first says how each table is placed.
            let snapshotLine = (applied.stdout + "\n" + applied.stderr).split(separator: "\n")
                .first { $0.hasPrefix("schema snapshot") }
            #expect(snapshotLine != nil, "\(mapping): \(applied.stdout)\(applied.stderr)")
            if mapping == "phones", let line = snapshotLine, let colon = line.range(of: ": ", options: .backwards) {
                let file = URL(fileURLWithPath: String(line[colon.upperBound...]), relativeTo: TestDatabase.packageRoot)
                let text = try String(contentsOf: file, encoding: .utf8)
                #expect(text.contains("-- citus: contacts is distributed by tenant (hash"), "\(text.prefix(400))")
                try? FileManager.default.removeItem(at: file)
            }
            let status = try ferry(["schema", "status", "mappings/\(mapping).yaml"], db: db)
            #expect(status.status == 0 && !status.stdout.contains("pending"), "\(mapping): \(status.stdout)")
        }
        let placed = try placements(db)
        let contacts = try #require(placed["contacts"])
        for table in ["contact_phone_type_definitions", "contact_phone_numbers", "project_contact_points"] {
            let placement = try #require(placed[table], "\(table) is not distributed")
            #expect(placement.column == "tenant" && placement.group == contacts.group, "\(table): \(placement)")
        }
        // The foreign keys came after the distribution, named, and hold across the workers.
        #expect(
            try db.count(
                "SELECT count(*) FROM pg_constraint WHERE conname IN ('contact_phone_numbers_contact_fkey', 'contact_phone_numbers_custom_type_fkey', 'clients_organization_type_check')"
            ) == 3)
        let orphan = try db.connection.query(
            "SELECT tenant::text FROM tenants LIMIT 1"
        ).scalar
        #expect(throws: PostgresError.self) {
            try db.connection.execute(
                script:
                    "INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type) VALUES ('\(orphan ?? "")', gen_random_uuid(), '+15555550100', 'work')"
            )
        }
        // The ledger stays on the coordinator.
        #expect(placed["ferry.runs"] == nil && placed["ferry.snapshot_rows"] == nil)
    }

    @Test func schemaStepsOnCitusCountAsAppliedWhereThePostgreSQLTextWas() throws {
        let db = try TestDatabase(samples: 10)
        let mapping = try db.mapping()
        let engine = try DatabaseEngine.detect(source: mapping.source.table, on: db.connection)
        #expect(engine.isCitus, "\(engine)")
        let plain = PhonesSchema.steps(for: mapping, tenantType: "uuid", keyType: "uuid")
        let onCitus = PhonesSchema.steps(for: mapping, tenantType: "uuid", keyType: "uuid", engine: engine)
        // A database moved from PostgreSQL to Citus recorded the PostgreSQL text.
        for (step, before) in zip(onCitus, plain) {
            #expect(
                step.checksum != before.checksum && step.equivalentChecksums.contains(before.checksum), "\(step.name)")
        }
        try SchemaMigrator(connection: db.connection).apply([])
        for step in plain {
            try db.connection.query(
                "INSERT INTO ferry.schema_steps (name, sha256) VALUES ($1, $2)", [step.name, step.checksum])
        }
        let status = try SchemaMigrator(connection: db.connection).status(onCitus)
        #expect(status.allSatisfy { if case .applied = $0.state { true } else { false } }, "\(status.map(\.state))")
    }

    @Test func doctorNamesTheEngineAndATableLocalToTheCoordinator() throws {
        let db = try TestDatabase(samples: 10)
        // The phone tables as the PostgreSQL text creates them: local to the coordinator.
        let mapping = try db.mapping()
        try SchemaMigrator(connection: db.connection).apply(
            LedgerSchema.steps + PhonesSchema.steps(for: mapping, tenantType: "uuid", keyType: "uuid"))
        let doctor = try ferry(["doctor", "mappings/phones.yaml"], db: db)
        #expect(doctor.status == 1)
        #expect(doctor.stdout.contains("engine: Citus"), "\(doctor.stdout)")
        #expect(
            doctor.stdout.contains(
                "table contact_phone_numbers is local to the coordinator while contacts is distributed"),
            "\(doctor.stdout)")
        #expect(!doctor.stdout.contains("ferry.runs is local"), "\(doctor.stdout)")
    }

    /// Citus revokes its recovery function from PUBLIC: doctor warns a role that may not call it (after a
    /// lost session ferry could not resolve what it left prepared), and stops once it is granted.
    @Test func doctorWarnsARoleThatMayNotResolvePreparedTransactions() throws {
        let db = try TestDatabase(samples: 10)
        #expect(try ferry(["schema", "apply", "mappings/phones.yaml"], db: db).status == 0)
        let role = "ferry_doctor_\(UUID().uuidString.prefix(8).lowercased())"
        try db.connection.execute(script: "CREATE ROLE \(role) LOGIN")
        defer { _ = try? db.connection.execute(script: "DROP OWNED BY \(role); DROP ROLE \(role)") }
        let warning = "role \(role) may not call recover_prepared_transactions()"
        let asRole = "doctor mappings/phones.yaml --db 'dbname=\(db.name) user=\(role)'"
        let refused = try ferryCLI(asRole)
        #expect(refused.stdout.contains(warning), "\(refused.stdout)\(refused.stderr)")
        #expect(
            refused.stdout.contains(
                "GRANT EXECUTE ON FUNCTION pg_catalog.recover_prepared_transactions() TO \"\(role)\";"),
            "\(refused.stdout)")
        try db.connection.execute(
            script: "GRANT EXECUTE ON FUNCTION pg_catalog.recover_prepared_transactions() TO \(role)")
        let granted = try ferryCLI(asRole)
        #expect(!granted.stdout.contains("recover_prepared_transactions"), "\(granted.stdout)")
        #expect(granted.stdout.contains("role \(role)"), "the role's other findings still shown: \(granted.stdout)")
        let owner = try ferry(["doctor", "mappings/phones.yaml"], db: db)
        #expect(!owner.stdout.contains("recover_prepared_transactions"), "\(owner.stdout)")
    }

    /// The import's own paths on Citus: a dry run that writes no application row, then a run that updates,
    /// inserts and deactivates (pre-images keyed from the coordinator's ledger), undone byte for byte.
    @Test func anImportUpdatesInsertsAndDeactivatesAndItsRollbackIsExact() throws {
        let db = try TestDatabase(samples: 600)
        let mapping = "mappings/contacts-csv.yaml"
        #expect(try ferry(["schema", "apply", mapping], db: db).status == 0)
        let tenants = ["00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"]
        // Every other contact of two tenants again with a new role, and ten new people in each.
        var lines = ["Tenant,Full Name,Country,Email,Company,Title,Office Phone,Mobile,Notes"]
        var fileEmails = Set<String>()
        for row in try db.connection.query(
            """
            SELECT tenant::text AS tenant, full_name, lower(email) AS email FROM contacts
            WHERE tenant::text = ANY ($1::text[]) AND email IS NOT NULL AND contact_name_id::text < '8'
            ORDER BY tenant, contact_name_id
            """, [textArrayLiteral(tenants)]
        ).decoded("the contacts to import again") {
            let tenant: String = try row.required("tenant"), email: String = try row.required("email")
            lines.append(
                "\(tenant),\(try row.required("full_name", as: String.self)),US,\(email),,New role,,+1 646 555 0123,")
            fileEmails.insert(tenant + "/" + email)
        }
        for tenant in tenants {
            for n in 1...10 {
                lines.append(
                    "\(tenant),New Person \(n),US,new\(n)@import.example,Acme New,Buyer,+1 212 555 01\(n + 10),,")
                fileEmails.insert(tenant + "/new\(n)@import.example")
            }
        }
        let file = db.scratchFile("import.csv")
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        // Active contacts of the two tenants that no line names: what --deactivate-missing must deactivate.
        let missing = try db.connection.query(
            "SELECT tenant::text AS tenant, lower(email) AS email FROM contacts WHERE tenant::text = ANY ($1::text[]) AND NOT is_inactive",
            [textArrayLiteral(tenants)]
        ).decoded("the active contacts").filter {
            !fileEmails.contains(try $0.required("tenant", as: String.self) + "/" + (try $0.optional("email") ?? ""))
        }.count
        let tables = ["contacts", "clients", "contact_phone_numbers"]
        let before = try tables.map { try db.checksum($0) }
        let arguments = ["import", file, "--mapping", mapping, "--deactivate-missing", "--batch-size", "50", "--json"]

        let dryRun = try ferry(arguments + ["--dry-run"], db: db)
        #expect([0, 4].contains(dryRun.status), "\(dryRun.stderr)")
        let planned = try JSONDecoder().decode(ImportSummary.self, from: Data(dryRun.stdout.utf8))
        #expect(planned.database?.engine?.hasPrefix("Citus") == true, "the summary names the engine")
        #expect(try tables.map { try db.checksum($0) } == before, "a dry run wrote an application table")
        #expect(try db.count("SELECT count(*) FROM ferry.runs") == 0)

        let run = try ferry(arguments, db: db)
        #expect([0, 4].contains(run.status), "\(run.stderr)")
        let applied = try JSONDecoder().decode(ImportSummary.self, from: Data(run.stdout.utf8))
        #expect(
            applied.inserted == 20 && applied.updated > 100, "inserted \(applied.inserted), updated \(applied.updated)")
        #expect(applied.contactsDeactivated == missing && missing > 100)
        let appliedCounts: [Int] = [
            applied.inserted, applied.updated, applied.contactsDeactivated, applied.phoneRowsToInsert,
        ]
        let plannedCounts: [Int] = [
            planned.inserted, planned.updated, planned.contactsDeactivated, planned.phoneRowsToInsert,
        ]
        #expect(appliedCounts == plannedCounts)
        #expect(try db.count("SELECT count(*) FROM contacts WHERE role = 'New role'") == applied.updated)
        for staging in [
            "ferry_import_rows", "ferry_import_seen", "ferry_import_phone_stage", "ferry_import_seen_dry_run",
        ] {
            #expect(try db.count("SELECT count(*) FROM ferry.\(staging)") == 0, "\(staging) kept rows after the run")
        }

        let runId = try db.count("SELECT max(run_id) FROM ferry.runs")
        let rollback = try ferry(["rollback", String(runId), "--yes"], db: db)
        #expect(rollback.status == 0, "\(rollback.stdout) \(rollback.stderr)")
        #expect(try tables.map { try db.checksum($0) } == before, "rollback left a difference")
    }

    /// Two imports, the second updating the contact the first inserted, undone newest first: here rows
    /// are judged by their hash, and restoring the contact makes it again what the first import wrote.
    /// The import's staging tables are distributed and shared by the cluster: one writer session on Citus.
    @Test func anImportWithSeveralWritersIsRefusedBeforeAnythingIsWritten() throws {
        let db = try databaseForImports()
        let file = URL(fileURLWithPath: db.scratchFile("writers.csv"))
        try """
        Tenant,Full Name,Email,Office Phone
        00000000-0000-4000-8000-000000000001,Grace Hopper,grace@navy.example,650-253-0000

        """.write(to: file, atomically: true, encoding: .utf8)
        let refused = try ferry(["import", file.path, "--mapping", Self.importMapping, "--jobs", "2"], db: db)
        #expect(
            refused.status == 1 && refused.stderr.contains("on Citus the import writes with one session"),
            "\(refused.stderr)")
        #expect(try db.count("SELECT count(*) FROM ferry.runs") == 0)
        #expect(try db.count("SELECT count(*) FROM contacts") == 0)
    }

    @Test func importsUndoneNewestFirstLeaveNoConflicts() throws {
        let db = try databaseForImports()
        let tables = ["contacts", "clients", "contact_phone_numbers"]
        func checksums() throws -> [String] { try tables.map { try db.checksum($0) } }
        let before = try checksums()
        let first = try importing(
            """
            Tenant,Full Name,Email,Company,Office Phone
            00000000-0000-4000-8000-000000000001,Grace Hopper,grace@navy.example,US Navy,650-253-0000

            """, into: db)
        let afterFirst = try checksums()
        let second = try importing(
            """
            Tenant,Full Name,Email,Title,Mobile
            00000000-0000-4000-8000-000000000001,Grace Hopper,grace@navy.example,Rear Admiral,+1 212 555 0142

            """, into: db)
        #expect(try db.scalar("SELECT role FROM contacts") == "Rear Admiral")
        let undoSecond = try ferry(["rollback", String(second), "--yes"], db: db)
        #expect(undoSecond.status == 0, "\(undoSecond.stdout) \(undoSecond.stderr)")
        #expect(try checksums() == afterFirst)
        let undoFirst = try ferry(["rollback", String(first), "--yes"], db: db)
        #expect(undoFirst.status == 0, "\(undoFirst.stdout) \(undoFirst.stderr)")
        #expect(try checksums() == before)
    }

    /// An import moves a contact to another organization and the application deletes the old one: the
    /// contact waits in the ledger (exit 3) until the organization is back.
    @Test func aContactWhoseOldOrganizationIsGoneWaitsInTheLedger() throws {
        let db = try databaseForImports(
            """
            INSERT INTO clients (tenant, client_id, client_name) VALUES
                ('00000000-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000002', 'Old Org');
            """)
        try db.connection.execute(
            script: """
                INSERT INTO contacts (tenant, contact_name_id, full_name, email, client_id) VALUES
                    ('00000000-0000-4000-8000-000000000001', 'cccccccc-0000-4000-8000-000000000001', 'Xavier', 'x@example.com',
                     'aaaaaaaa-0000-4000-8000-000000000002')
                """)
        let tables = ["contacts", "clients", "contact_phone_numbers"]
        func checksums() throws -> [String] { try tables.map { try db.checksum($0) } }
        let before = try checksums()
        let run = try importing(
            """
            Tenant,Full Name,Email,Company,Office Phone
            00000000-0000-4000-8000-000000000001,Xavier,x@example.com,US Navy,
            00000000-0000-4000-8000-000000000001,Yolanda,y@example.com,,+1 212 555 0100

            """, into: db)
        let oldOrganization = try #require(
            try db.scalar("SELECT to_jsonb(c)::text FROM clients c WHERE client_name = 'Old Org'"))
        try db.connection.execute(script: "DELETE FROM clients WHERE client_name = 'Old Org'")
        let partial = try ferry(["rollback", String(run), "--yes"], db: db)
        #expect(partial.status == 3, "\(partial.stdout)\(partial.stderr)")
        #expect(partial.stdout.contains("a row it references was deleted since the run"), "\(partial.stdout)")
        #expect(try db.count("SELECT count(*) FROM contacts WHERE email = 'y@example.com'") == 0)
        try db.connection.query(
            "INSERT INTO clients SELECT * FROM jsonb_populate_record(NULL::clients, $1::jsonb)", [oldOrganization])
        let finished = try ferry(["rollback", String(run), "--yes"], db: db)
        #expect(finished.status == 0, "\(finished.stdout)\(finished.stderr)")
        #expect(try checksums() == before)
    }

    /// Staging tables outlive the session on Citus: one an older ferry made with another shape is
    /// made again, not used as it is.
    @Test func aStagingTableOfAnotherShapeIsMadeAgain() throws {
        let db = try databaseForImports(
            "CREATE UNLOGGED TABLE ferry.ferry_import_rows (line integer NOT NULL, tenant uuid NOT NULL, email text NOT NULL)"
        )
        _ = try importing(
            "Tenant,Full Name,Email\n00000000-0000-4000-8000-000000000001,Grace Hopper,Grace@Navy.example\n", into: db)
        #expect(try db.scalar("SELECT email FROM contacts") == "grace@navy.example")
        #expect(
            try db.count(
                "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'ferry.ferry_import_rows'::regclass") == 1)
    }

    /// A column the application adds after an import changes every row's text, so here (rows judged by
    /// their hash) the import's rows count as changed since it; --force restores them, and the restored
    /// contact keeps the new column's value rather than a NULL its NOT NULL would refuse.
    @Test func aColumnAddedAfterAnImportTurnsItsRowsIntoConflictsThatForceRestores() throws {
        let db = try databaseForImports(
            """
            INSERT INTO contacts (tenant, contact_name_id, full_name, email, role) VALUES
                ('00000000-0000-4000-8000-000000000001', gen_random_uuid(), 'Grace Hopper', 'grace@navy.example', 'Captain');
            """)
        let run = String(
            try importing(
                "Tenant,Full Name,Email,Title\n00000000-0000-4000-8000-000000000001,Grace Hopper,grace@navy.example,Rear Admiral\n",
                into: db))
        try db.connection.execute(script: "ALTER TABLE contacts ADD COLUMN status text NOT NULL DEFAULT 'active'")
        let refused = try ferry(["rollback", run, "--yes"], db: db)
        #expect(refused.status == 3, "\(refused.stdout) \(refused.stderr)")
        #expect(refused.stdout.contains("changed since the run"), "\(refused.stdout)")
        let forced = try ferry(["rollback", run, "--yes", "--force"], db: db)
        #expect(forced.status == 0, "\(forced.stdout) \(forced.stderr)")
        #expect(try db.scalar("SELECT role || ' ' || status FROM contacts") == "Captain active")
    }

    @Test func aBatchsLockTimeoutReachesTheWorkers() throws {
        let db = try TestDatabase(samples: 20)
        let row = try #require(
            try db.connection.query("SELECT tenant::text AS tenant, contact_name_id::text AS id FROM contacts LIMIT 1")
                .decoded("contacts").first)
        let tenant: String = try row.required("tenant"), id: String = try row.required("id")
        let holder = try PostgresConnection(conninfo: db.conninfo)
        try holder.execute(script: "BEGIN")
        try holder.query(
            "UPDATE contacts SET notes = 'held' WHERE tenant = $1::uuid AND contact_name_id = $2::uuid", [tenant, id])
        // ferry's own session, as a batch opens it: the lock timeout must end the wait on the worker.
        let writer = try PostgresConnection(conninfo: db.conninfo)
        let started = Date()
        var failure: PostgresError?
        do {
            try writer.transaction {
                try writer.execute(script: SessionSettings.setLocalBatchSettings(("300ms", "60s")))
                try writer.query(
                    "UPDATE contacts SET notes = 'ferry' WHERE tenant = $1::uuid AND contact_name_id = $2::uuid",
                    [tenant, id])
            }
        } catch let error as PostgresError {
            failure = error
        }
        let waited = Date().timeIntervalSince(started)
        try holder.execute(script: "ROLLBACK")
        #expect(failure?.sqlState == "55P03", "\(String(describing: failure))")
        #expect(waited < 20, "waited \(waited) s: the statement timeout, not the lock timeout, ended the wait")
    }

    /// Transactions left prepared on the workers as a coordinator session lost during Citus's two-phase
    /// commit leaves them (Citus's names for them, their coordinator transaction gone, no record that it
    /// committed), holding every row of the job's tables. Citus's daemon would roll them back within a
    /// minute, longer than a batch's retries wait: the batch that times out on their locks asks Citus to
    /// resolve them, and the run ends as an uninterrupted one. (Every run's retries go through one
    /// `RetryPolicy`; the import sets it up on its own path.)
    @Test(arguments: JobCase.onePerWritePath)
    func transactionsLeftPreparedOnTheWorkersAreResolvedAndTheRunGoesOn(_ job: JobCase) throws {
        let created = Date()
        let db = try TestDatabase.forJob(job)
        // The coordinator's daemon resolves such transactions when it starts in a database and then once
        // a minute: ferry, not the daemon, must be the one to find these.
        let sinceTheDaemonsLastPass = Date().timeIntervalSince(created).truncatingRemainder(dividingBy: 60)
        if sinceTheDaemonsLastPass > 40 { Thread.sleep(forTimeInterval: 65 - sinceTheDaemonsLastPass) }
        let prepared = "SELECT count(*) FROM pg_prepared_xacts WHERE gid = $1"
        var workers: [(connection: PostgresConnection, gid: String)] = []
        defer {
            for (worker, gid) in workers {
                _ = try? worker.execute(script: "ROLLBACK PREPARED '\(gid)'")
                worker.close()
            }
        }
        for port in TestDatabase.citusWorkerPorts {
            let shards = try db.connection.query(
                "SELECT shard_name FROM citus_shards WHERE nodeport = $1::int AND table_name::text = ANY ($2::text[])",
                [port, textArrayLiteral(job.tables)]
            ).rows.compactMap { $0[0] }
            let worker = try PostgresConnection(conninfo: "\(db.conninfo) port=\(port)")
            let gid = "citus_0_2147483000_\(Int.random(in: 1_000_000_000...2_000_000_000))_0"
            workers.append((worker, gid))
            try worker.execute(script: "BEGIN")
            for shard in shards {
                _ = try worker.query("SELECT count(*) FROM (SELECT FROM \(shard) FOR UPDATE) locked")
            }
            try worker.execute(script: "PREPARE TRANSACTION '\(gid)'")
            #expect(try worker.query(prepared, [gid]).scalar == "1")
        }

        let run = try ferryCLI(job.apply(db, "--batch-size 100 --no-progress"), database: db.name)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("lock timeout"), "a batch waited on a prepared transaction: \(run.stderr)")
        #expect(run.stderr.contains("Citus resolved"), "\(run.stderr)")
        for (worker, gid) in workers { #expect(try worker.query(prepared, [gid]).scalar == "0") }
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        defer { watcher.close() }
        let (twin, twinName) = try EveryJobTests.twin(of: db, job)
        defer { withExtendedLifetime(twin) {} }
        try EveryJobTests.expectTheEndStateOfAnUninterruptedRun(job, db, watcher, twin: twinName)
    }

    /// ferry's session turns JIT off at connect, which Citus does not pass on: a batch's own settings must
    /// reach the worker its statements run on (compiling a batch's insert there took longer than running it).
    @Test func aBatchsSettingsReachTheWorkers() throws {
        let db = try TestDatabase(samples: 20)
        let tenant = try #require(try db.connection.query("SELECT min(tenant::text) FROM contacts").scalar)
        let writer = try PostgresConnection(conninfo: db.conninfo)
        // current_setting in a statement routed to the tenant's shard runs on its worker.
        let onTheWorker =
            "SELECT current_setting('jit') AS jit, current_setting('lock_timeout') AS lock_timeout FROM contacts WHERE tenant = $1::uuid LIMIT 1"
        let outside = try #require(try writer.query(onTheWorker, [tenant]).decoded("settings").first)
        #expect(
            try outside.required("jit", as: String.self) == "on",
            "the worker's own default, which the batch must override")
        try writer.transaction {
            try writer.execute(script: SessionSettings.setLocalBatchSettings(("300ms", "60s")))
            let inside = try #require(try writer.query(onTheWorker, [tenant]).decoded("settings").first)
            #expect(try inside.required("jit", as: String.self) == "off")
            #expect(try inside.required("lock_timeout", as: String.self) == "300ms")
        }
    }

    /// A batch's phone rows are written on their tenant's worker in one statement: ferry draws each row's
    /// key (the column defaults to gen_random_uuid(), which Citus will not evaluate on a worker inside an
    /// INSERT … SELECT), so Citus need not pull the selected rows to the coordinator and push them back.
    @Test func aBatchsPhoneInsertRunsOnItsTenantsWorker() throws {
        let db = try TestDatabase(samples: 20)
        #expect(try ferry(["schema", "apply", "mappings/phones.yaml"], db: db).status == 0)
        let mapping = try PhonesMapping.load(
            path: TestDatabase.packageRoot.appendingPathComponent("mappings/phones.yaml").path)
        let statements = try PhonesJob(mapping: mapping, conninfo: db.conninfo).statements(db.connection)
        #expect(statements.sql.drawsPhoneRowKeys)
        let rows = statements.sql.phoneRows
        let tenant = try #require(try db.connection.query("SELECT min(tenant::text) FROM contacts").scalar)
        for statement in rows.createStagingTable(tenantType: statements.tenantType, keyType: statements.keyType) {
            try db.connection.execute(script: statement)
        }
        let phones = try SnapshotTable.resolve("contact_phone_numbers", on: db.connection)
        let plan = try db.connection.query(
            "EXPLAIN " + rows.insertPhoneRows(snapshot: phones), ["1", "1", phones.qualifiedName, tenant]
        ).rows.compactMap { $0.first ?? nil }.joined(separator: "\n")
        #expect(plan.contains("Custom Scan (Citus"), "\(plan)")
        #expect(!plan.contains("pull to coordinator") && !plan.contains("repartition"), "\(plan)")
        #expect(plan.contains("Insert on contact_phone_numbers_"), "the insert runs on the shard: \(plan)")
    }

    /// A job whose contract drops a legacy column, and an application edit of a value the apply migrated.
    struct ContractCase: Sendable, CustomTestStringConvertible {
        let mapping: String
        let job: String
        let table: String
        let column: String
        let edit: String
        /// The tenant of the row `edit` changed.
        let editedTenant: String
        var testDescription: String { mapping }
    }

    static let contractCases = [
        ContractCase(
            mapping: "mappings/phones.yaml", job: "phones", table: "contacts", column: "phone_number",
            edit: """
                UPDATE contacts SET phone_number = 'ring the bell' WHERE contact_name_id =
                    (SELECT min(contact_name_id::text)::uuid FROM contacts WHERE contact_name_id IN (SELECT contact_name_id FROM contact_phone_numbers))
                """,
            editedTenant: "SELECT tenant::text FROM contacts WHERE phone_number = 'ring the bell'"),
        // Another contact as the customer of a project the apply linked.
        ContractCase(
            mapping: "mappings/customers.yaml", job: "customers", table: "projects", column: "customer_id",
            edit: """
                UPDATE projects p SET customer_id = (SELECT max(c.contact_name_id::text)::uuid FROM contacts c WHERE c.tenant = p.tenant
                                                     AND c.contact_name_id <> p.customer_id AND c.client_id IS NULL)
                WHERE project_id = (SELECT min(project_id::text)::uuid FROM projects WHERE customer_organization_id IS NOT NULL)
                """,
            editedTenant: """
                SELECT tenant::text FROM projects
                WHERE project_id = (SELECT min(project_id::text)::uuid FROM projects WHERE customer_organization_id IS NOT NULL)
                """),
    ]

    /// On Citus "changed since the apply" is what the last apply read (recorded per row), not xmin: an
    /// application edit after the apply is refused even with an accepted list naming every unmigrated
    /// row; after a new apply the exact list drops the column, and rollback puts every value back.
    @Test(arguments: contractCases)
    func theContractJudgesByWhatTheApplyReadAndItsRollbackRestoresEveryValue(_ job: ContractCase) throws {
        let db = try TestDatabase(samples: 300)
        let folder = db.scratchFile("contract")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let list = folder + "/unmigrated.csv"
        func contract(_ extra: [String], _ out: String) throws -> (ContractReport, ProcessResult) {
            let run = try ferry(["contract", job.mapping, "--json", "--unmigrated-out", out] + extra, db: db)
            return (try JSONDecoder().decode(ContractReport.self, from: Data(run.stdout.utf8)), run)
        }
        let columnExists =
            "SELECT count(*) FROM information_schema.columns WHERE table_name = '\(job.table)' AND column_name = '\(job.column)'"
        // By column name: a column added back comes last.
        let rowsNow = "SELECT md5(string_agg(to_jsonb(t)::text, '' ORDER BY to_jsonb(t)::text)) FROM \(job.table) t"
        #expect(try ferry(["schema", "apply", job.mapping], db: db).status == 0)
        #expect(try ferry(["apply", job.mapping, "--no-progress"], db: db).status == 0)
        let reads = LegacyReads.table(of: job.job)
        #expect(try db.count("SELECT count(*) FROM \(reads.quoted) WHERE run_id = 1") > 0)

        let (first, checked) = try contract([], list)
        #expect(first.unmigrated > 0 && first.changedSinceApply == 0, "\(checked.stdout)\(checked.stderr)")

        // The application changes a migrated value: changed since the apply, whatever a list says.
        try db.connection.execute(script: job.edit)
        let (second, refused) = try contract(["--confirm", "--accept-rejected", list], list + ".2")
        #expect(second.changedSinceApply == 1 && !second.dropped, "\(refused.stdout)")
        #expect(try db.scalar(columnExists) == "1")

        // Applied again for the edited row's tenant only, the edit has been read (the other tenants'
        // values were read by the first apply): the exact list drops the column.
        let tenant = try #require(try db.scalar(job.editedTenant))
        #expect(try ferry(["apply", job.mapping, "--no-progress", "--tenant", tenant], db: db).status == 0)
        let before = try db.scalar(rowsNow)
        let (listed, _) = try contract([], list)
        #expect(listed.changedSinceApply == 0, "\(listed.problems)")
        let (third, dropped) = try contract(["--confirm", "--accept-rejected", list], list + ".3")
        #expect(third.dropped && third.valuesKept > 100, "\(dropped.stdout)\(dropped.stderr)")
        #expect(try db.scalar(columnExists) == "0")

        let rollback = try ferry(["rollback", String(try #require(third.runId)), "--yes"], db: db)
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        #expect(try db.scalar(rowsNow) == before, "every legacy value back")
        #expect(
            try db.count(
                "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'ferry.contract_rollback%'") == 0,
            "scratch table dropped")
    }

    /// "Unchanged since the run" by the hash recorded at apply: an application edit is a conflict, a
    /// contact the application gave another number keeps ferry's default, everything else is undone, and
    /// --force undoes the rest.
    @Test func rollbackConflictsAreExactOnDistributedTables() throws {
        let db = try TestDatabase(samples: 400)
        #expect(try ferry(["schema", "apply", "mappings/phones.yaml"], db: db).status == 0)
        let apply = try ferry(["apply", "mappings/phones.yaml", "--no-progress"], db: db)
        #expect(apply.status == 0, "\(apply.stderr)")
        let written = try db.count("SELECT count(*) FROM contact_phone_numbers")
        #expect(written > 100)
        #expect(try db.count("SELECT count(*) FROM ferry.snapshot_rows WHERE after_hash IS NULL") == 0)
        // The only row of its contact: a contact's other rows would keep its default for the edited one.
        let edited = try #require(
            try db.scalar(
                """
                SELECT min(contact_phone_number_id::text) FROM contact_phone_numbers
                WHERE (tenant, contact_name_id) IN (SELECT tenant, contact_name_id FROM contact_phone_numbers GROUP BY 1, 2 HAVING count(*) = 1)
                """))
        try db.connection.query(
            "UPDATE contact_phone_numbers SET phone_number = '+15555550199' WHERE contact_phone_number_id = $1::uuid",
            [edited])
        let keptDefault = try #require(
            try db.scalar(
                "SELECT contact_phone_number_id::text FROM contact_phone_numbers WHERE is_default AND contact_phone_number_id <> $1::uuid ORDER BY 1 DESC LIMIT 1",
                [edited]))
        try db.connection.query(
            """
            INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default, display_order)
            SELECT tenant, contact_name_id, '+15555550123', 'home', false, 9 FROM contact_phone_numbers
            WHERE contact_phone_number_id = $1::uuid
            """, [keptDefault])
        // A row the application rewrote to exactly what ferry wrote is unchanged: the same bytes.
        try db.connection.execute(
            script: "UPDATE contact_phone_numbers SET phone_number = phone_number WHERE display_order = 1")

        let dryRun = try ferry(["rollback", "1", "--dry-run"], db: db)
        #expect(dryRun.status == 3 || dryRun.status == 0, "\(dryRun.stdout)\(dryRun.stderr)")
        #expect(
            try db.count("SELECT count(*) FROM contact_phone_numbers") == written + 1, "the dry run changed nothing")
        let rollback = try ferry(["rollback", "1", "--yes"], db: db)
        #expect(rollback.stdout.contains("changed since the run (conflicts)                  1"), "\(rollback.stdout)")
        #expect(rollback.stdout.contains("kept: a contact would lose its default             1"), "\(rollback.stdout)")
        let left = try db.connection.query(
            "SELECT contact_phone_number_id::text FROM contact_phone_numbers WHERE display_order <> 9 ORDER BY 1"
        ).rows.compactMap { $0[0] }
        #expect(Set(left) == [edited, keptDefault], "\(left)")
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = 1") == "partially_rolled_back")
        let snapshotLeft = try db.connection.query(
            "SELECT table_name, key::text FROM ferry.snapshot_rows WHERE run_id = 1"
        ).rows
        // The two rows left, and a custom type the run created that one of them still references.
        let typesStillUsed = try db.count(
            "SELECT count(DISTINCT custom_phone_type_id) FROM contact_phone_numbers WHERE display_order <> 9")
        #expect(snapshotLeft.count == 2 + typesStillUsed, "\(snapshotLeft)")
        #expect(
            try db.count("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'ferry.rollback%'") == 0,
            "scratch tables dropped")

        let forced = try ferry(["rollback", "1", "--force", "--yes"], db: db)
        #expect(forced.status == 0, "\(forced.stdout)\(forced.stderr)")
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == 1, "only the application's own row")
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = 1") == "rolled_back")
    }

    /// In place with `unusable_rows: delete`, then the application deletes a contact whose row the run
    /// deleted, and gives another such contact a new default: neither row can go back; the rollback
    /// restores the rest, keeps their pre-images and says so; once the contact is back and the new
    /// default gone, a second rollback finishes exactly.
    @Test func aDeletedRowWhoseContactIsGoneWaitsInTheLedger() throws {
        let db = try TestDatabase(samples: 300)
        #expect(try ferry(["schema", "apply", "mappings/phones.yaml"], db: db).status == 0)
        try db.connection.execute(
            script: """
                INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default, display_order, created_at, updated_at)
                SELECT tenant, contact_name_id, BTRIM(phone_number), 'work', true, 0, COALESCE(created_at, NOW()), COALESCE(updated_at, created_at, NOW())
                FROM contacts WHERE phone_number IS NOT NULL AND BTRIM(phone_number) <> ''
                """)
        try db.connection.execute(script: "ALTER TABLE contacts DROP COLUMN phone_number")
        let mapping = URL(fileURLWithPath: db.scratchFile("in-place.yaml"))
        try String(
            contentsOf: TestDatabase.packageRoot.appendingPathComponent("mappings/phones-in-place.yaml"),
            encoding: .utf8
        )
        .replacingOccurrences(of: "unusable_rows: keep", with: "unusable_rows: delete")
        .write(to: mapping, atomically: true, encoding: .utf8)
        #expect(try ferry(["schema", "apply", mapping.path], db: db).status == 0)
        let phones =
            "SELECT md5(string_agg(p::text, '' ORDER BY p.tenant, p.contact_phone_number_id)) FROM contact_phone_numbers p"
        let before = try db.scalar(phones)
        let apply = try ferry(["apply", mapping.path, "--no-progress"], db: db)
        #expect(apply.status == 0, "\(apply.stdout)\(apply.stderr)")
        let deleted = try #require(
            try db.scalar(
                "SELECT before->>'contact_name_id' FROM ferry.snapshot_rows WHERE action = 'delete' ORDER BY key::text LIMIT 1"
            ))
        let contact = try #require(
            try db.scalar("SELECT to_jsonb(c)::text FROM contacts c WHERE contact_name_id = $1::uuid", [deleted]))
        try db.connection.query("UPDATE projects SET customer_id = NULL WHERE customer_id = $1::uuid", [deleted])
        try db.connection.query("DELETE FROM contacts WHERE contact_name_id = $1::uuid", [deleted])
        // Another contact whose deleted default the application replaced with a new one.
        let replaced = try #require(
            try db.scalar(
                """
                SELECT before->>'contact_name_id' FROM ferry.snapshot_rows
                WHERE action = 'delete' AND (before->>'is_default')::boolean AND before->>'contact_name_id' <> $1
                ORDER BY key::text LIMIT 1
                """, [deleted]))
        try db.connection.query(
            """
            INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default)
            SELECT tenant, contact_name_id, '+12125550111', 'mobile', true FROM contacts WHERE contact_name_id = $1::uuid
            """, [replaced])

        let partial = try ferry(["rollback", "1", "--yes"], db: db)
        #expect(partial.status == 3, "\(partial.stdout)\(partial.stderr)")
        #expect(partial.stdout.contains("a row it references was deleted since the run"), "\(partial.stdout)")
        #expect(partial.stdout.contains("a row written since the run holds the same unique key"), "\(partial.stdout)")
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = 1") == "partially_rolled_back")
        #expect(
            try db.scalar(
                "SELECT count(*) FROM ferry.snapshot_rows WHERE run_id = 1 AND (action <> 'delete' OR before->>'contact_name_id' NOT IN ($1, $2))",
                [deleted, replaced]) == "0")

        try db.connection.query(
            "INSERT INTO contacts SELECT * FROM jsonb_populate_record(NULL::contacts, $1::jsonb)", [contact])
        try db.connection.query("DELETE FROM contact_phone_numbers WHERE phone_number = '+12125550111'")
        let finished = try ferry(["rollback", "1", "--yes"], db: db)
        #expect(finished.status == 0, "\(finished.stdout)\(finished.stderr)")
        #expect(try db.scalar(phones) == before)
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = 1") == "rolled_back")
    }

    /// A run that updates distributed rows (the customers job: contacts and projects) is undone from its
    /// pre-images, judged by the hash of each row as the batch wrote it.
    @Test func updatedRowsAreRestoredExactlyAndAnApplicationEditIsAConflict() throws {
        let db = try TestDatabase(samples: 600)
        #expect(try ferry(["schema", "apply", "mappings/customers.yaml"], db: db).status == 0)
        let contactsBefore =
            "SELECT md5(string_agg(to_jsonb(c)::text, '' ORDER BY c.tenant, c.contact_name_id)) FROM contacts c"
        let projectsBefore = "SELECT md5(string_agg(p::text, '' ORDER BY p.tenant, p.project_id)) FROM projects p"
        let before = (try db.scalar(contactsBefore), try db.scalar(projectsBefore))
        let apply = try ferry(["apply", "mappings/customers.yaml", "--no-progress", "--batch-size", "50"], db: db)
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(try db.count("SELECT count(*) FROM ferry.snapshot_rows WHERE action = 'update'") > 100)
        #expect(
            try db.count(
                "SELECT count(*) FROM ferry.snapshot_rows WHERE action = 'update' AND (after_hash IS NULL OR before IS NULL)"
            )
                == 0)
        // The application edits one project the run gave an organization; another it rewrites unchanged.
        let edited = try #require(
            try db.scalar("SELECT min(project_id::text) FROM projects WHERE customer_organization_id IS NOT NULL"))
        try db.connection.query(
            "UPDATE projects SET title = 'Edited by the application' WHERE project_id = $1::uuid", [edited])
        try db.connection.query(
            "UPDATE projects SET title = title WHERE project_id = (SELECT max(project_id::text)::uuid FROM projects WHERE customer_organization_id IS NOT NULL)"
        )

        let dryRun = try ferry(["rollback", "1", "--dry-run"], db: db)
        #expect(
            try db.count("SELECT count(*) FROM projects WHERE customer_organization_id IS NOT NULL") > 100,
            "the dry run changed nothing")
        #expect(dryRun.stdout.contains("changed since the run (conflicts)                  1"), "\(dryRun.stdout)")
        let rollback = try ferry(["rollback", "1", "--yes"], db: db)
        #expect(
            rollback.stdout.contains("changed since the run (conflicts)                  1"),
            "\(rollback.stdout)\(rollback.stderr)")
        #expect(try db.scalar(contactsBefore) == before.0, "every contact back as it was")
        #expect(
            try db.scalar("SELECT project_id::text FROM projects WHERE customer_organization_id IS NOT NULL") == edited,
            "only the edited project keeps what the run wrote")
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = 1") == "partially_rolled_back")
        #expect(
            try db.count("SELECT count(*) FROM ferry.snapshot_rows WHERE run_id = 1 AND table_name = 'public.projects'")
                == 1)
        #expect(
            try db.count("SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'ferry.rollback%'") == 0,
            "scratch tables dropped")

        let forced = try ferry(["rollback", "1", "--force", "--yes"], db: db)
        #expect(forced.status == 0, "\(forced.stdout)\(forced.stderr)")
        // --force puts the pre-image back over the application's edit too.
        #expect(try db.scalar(projectsBefore) == before.1)
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = 1") == "rolled_back")
    }
}
