import Foundation
import Testing
@testable import FerryKit

extension TestDatabase {
    /// Every row of a table as JSON by column name: equal after a column is dropped and re-added at the end.
    func rowsByName(_ table: String) throws -> String {
        try scalar(
            "SELECT coalesce(md5(string_agg(to_jsonb(t)::text, '|' ORDER BY to_jsonb(t)::text)), 'empty') FROM \(table) t"
        ) ?? ""
    }

    func hasColumn(_ table: String, _ column: String) throws -> Bool {
        try scalar(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2 AND NOT attisdropped",
            [table, column]) == "1"
    }

    func contract(_ configure: (inout ContractOptions) -> Void = { _ in }) throws -> ContractReport {
        var options = ContractOptions()
        options.unmigratedFile = scratchFile("unmigrated.csv")
        options.log = { _ in }
        configure(&options)
        return try Contract(subject: PhonesContractSubject(mapping: try mapping()), conninfo: conninfo).run(options)
    }
}

/// Reads the keys (tenant/contact) of a contract key file, with its changed_since_apply column.
func contractKeyFile(_ path: String) throws -> [(key: String, changed: String)] {
    let reader = try CSVReader(path: path)
    var rows: [(String, String)] = []
    while case .record(let record)? = try reader.next() {
        let fields = (0..<record.count).map { String(decoding: record[$0], as: UTF8.self) }
        rows.append(("\(fields[0])/\(fields[1])", fields[4]))
    }
    return Array(rows.dropFirst())
}

@Suite("Schema lifecycle: contract, its rollback, drift, snapshots, row-level security, doctor")
struct LifecycleTests {
    func appliedDatabase(contacts: Int = 300) throws -> TestDatabase {
        let db = try TestDatabase(samples: contacts)
        _ = try db.applySchema(try db.mapping())
        _ = try db.job().apply(db.quietOptions())
        return db
    }

    @Test func contractRefusesUntilTheExactUnmigratedListIsAcceptedThenRollbackRestoresTheValues() throws {
        let db = try appliedDatabase()
        // Things PostgreSQL drops with the column, which the rollback must rebuild.
        try db.connection.execute(
            script: """
                CREATE INDEX contacts_legacy_phone ON contacts (tenant, phone_number);
                ALTER TABLE contacts ALTER COLUMN phone_number SET DEFAULT 'unknown';
                ALTER TABLE contacts ADD CONSTRAINT legacy_phone_short CHECK (length(phone_number) < 200);
                """)
        let before = try db.rowsByName("contacts")
        let expectedUnmigrated = try db.count(
            """
            SELECT count(*) FROM contacts c WHERE coalesce(c.phone_number, '') <> ''
              AND NOT EXISTS (SELECT 1 FROM contact_phone_numbers p WHERE (p.tenant, p.contact_name_id) = (c.tenant, c.contact_name_id))
              AND btrim(lower(c.phone_number)) NOT IN ('', 'n/a', '-', 'none', 'unknown', 'tbd', '?')
            """)

        // Checks only: refused (unmigrated values exist), the list written, nothing dropped, no run recorded.
        let checked = try db.contract()
        #expect(checked.refused)
        #expect(checked.addsUp)
        #expect(
            try checked.migrated
                == db.count("SELECT count(DISTINCT (tenant, contact_name_id)) FROM contact_phone_numbers"))
        #expect(checked.unmigrated > 0)
        #expect(checked.unmigrated <= expectedUnmigrated)
        let listed = try contractKeyFile(checked.unmigratedFile!)
        #expect(listed.count == checked.unmigrated)
        #expect(listed.allSatisfy { $0.changed == "no" })
        #expect(try db.hasColumn("contacts", "phone_number"))
        #expect(try db.count("SELECT count(*) FROM ferry.runs WHERE mode = 'contract'") == 0)

        // --confirm without accepting: refused, nothing dropped.
        let unaccepted = try db.contract { $0.confirm = true }
        #expect(unaccepted.refused && !unaccepted.dropped)
        #expect(unaccepted.problems.contains { $0.contains("not migrated") && $0.contains("--accept-rejected") })
        #expect(try db.hasColumn("contacts", "phone_number"))

        // An accepted list that misses one key, or names one that is migrated: refused, naming the difference.
        let full = try String(contentsOfFile: checked.unmigratedFile!, encoding: .utf8).split(separator: "\r\n").map(
            String.init)
        let short = db.scratchFile("short.csv")
        try (full.dropLast().joined(separator: "\r\n") + "\r\n").write(toFile: short, atomically: true, encoding: .utf8)
        let missingOne = try db.contract {
            $0.confirm = true; $0.acceptRejectedFile = short
        }
        #expect(
            missingOne.refused
                && missingOne.problems.contains { $0.contains("1 contact not migrated is not named in \(short)") })
        let migratedKey = try db.connection.query(
            "SELECT tenant::text, contact_name_id::text FROM contact_phone_numbers LIMIT 1"
        ).rows[0]
        let extra = db.scratchFile("extra.csv")
        try (full.joined(separator: "\r\n") + "\r\n\(migratedKey[0]!),\(migratedKey[1]!),,,\r\n").write(
            toFile: extra, atomically: true, encoding: .utf8)
        let extraOne = try db.contract {
            $0.confirm = true; $0.acceptRejectedFile = extra
        }
        #expect(
            extraOne.refused
                && extraOne.problems.contains {
                    $0.contains("that is not an unmigrated one") && $0.contains(migratedKey[1]!)
                })
        #expect(try db.hasColumn("contacts", "phone_number"))

        // The exact list: the column is dropped, its values kept in the ledger.
        let accepted = db.scratchFile("accepted.csv")
        try FileManager.default.copyItem(atPath: checked.unmigratedFile!, toPath: accepted)
        let dropped = try db.contract {
            $0.confirm = true; $0.acceptRejectedFile = accepted
        }
        #expect(!dropped.refused, "\(dropped.problems)")
        #expect(dropped.dropped)
        #expect(dropped.accepted == checked.unmigrated)
        #expect(try !db.hasColumn("contacts", "phone_number"))
        #expect(
            try db.count("SELECT count(*) FROM ferry.dropped_values WHERE run_id = \(dropped.runId!)")
                == dropped.valuesKept)
        #expect(dropped.valuesKept > 0)
        #expect(
            try db.scalar("SELECT mode || ':' || status FROM ferry.runs WHERE run_id = \(dropped.runId!)")
                == "contract:succeeded")
        // The phones job itself now refuses before reading: its legacy column is gone.
        #expect { try db.job().plan() } throws: {
            String(describing: $0).contains("column contacts.phone_number does not exist")
        }
        // A second contract says where the column went.
        #expect { try db.contract() } throws: {
            String(describing: $0).contains("dropped by contract run \(dropped.runId!)")
        }

        // Rollback re-adds the column with every value, its default, check constraint and index.
        let report = try Rollback(conninfo: db.conninfo).run(dropped.runId!, dryRun: false, force: false)
        #expect(report.complete)
        #expect(report.tables.first?.undone == dropped.valuesKept)
        #expect(try db.rowsByName("contacts") == before)
        #expect(
            try db.scalar(
                "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'contacts'::regclass AND adnum = (SELECT attnum FROM pg_attribute WHERE attrelid = 'contacts'::regclass AND attname = 'phone_number')"
            ) == "'unknown'::text")
        #expect(try db.count("SELECT count(*) FROM pg_indexes WHERE indexname = 'contacts_legacy_phone'") == 1)
        #expect(try db.count("SELECT count(*) FROM pg_constraint WHERE conname = 'legacy_phone_short'") == 1)
        #expect(try db.count("SELECT count(*) FROM ferry.dropped_values") == 0)
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = \(dropped.runId!)") == "rolled_back")
        // The data is whole again: the phones job plans as before (nothing left to insert).
        #expect(try db.job().plan().rowsToInsert == 0)
    }

    /// A contract undone and made again: the rows its rollback put back are ferry's own writes, not
    /// changes since the apply, so the same list is accepted without another apply; an application edit
    /// after the rollback still counts as a change.
    @Test func aContractAgainAfterItsRollbackAcceptsTheSameListButNotALaterEdit() throws {
        let db = try appliedDatabase(contacts: 200)
        let checked = try db.contract()
        #expect(checked.unmigrated > 0 && checked.changedSinceApply == 0)
        let accepted = db.scratchFile("accepted-again.csv")
        try? FileManager.default.removeItem(atPath: accepted)
        try FileManager.default.copyItem(atPath: checked.unmigratedFile!, toPath: accepted)
        let dropped = try db.contract {
            $0.confirm = true; $0.acceptRejectedFile = accepted
        }
        #expect(dropped.dropped, "\(dropped.problems)")
        #expect(try Rollback(conninfo: db.conninfo).run(dropped.runId!, dryRun: false, force: false).complete)

        let again = try db.contract()
        #expect(again.changedSinceApply == 0)
        #expect(again.unmigrated == checked.unmigrated)

        let edited = try contractKeyFile(accepted)[0].key.split(separator: "/").map(String.init)
        try db.connection.query(
            "UPDATE contacts SET phone_number = '555-0000' WHERE tenant = $1 AND contact_name_id = $2",
            [edited[0], edited[1]])
        let refused = try db.contract {
            $0.confirm = true; $0.acceptRejectedFile = accepted
        }
        #expect(refused.refused && !refused.dropped)
        #expect(refused.changedSinceApply == 1)
        #expect(
            refused.problems.contains { $0.contains("1 contact changed since apply run") && $0.contains(edited[1]) })
        #expect(try db.hasColumn("contacts", "phone_number"))

    }

    @Test func aLegacyValueChangedSinceTheApplyMustBeMigratedNotAccepted() throws {
        let db = try appliedDatabase(contacts: 200)
        let contact = try db.connection.query(
            "SELECT tenant::text, contact_name_id::text FROM contact_phone_numbers ORDER BY 1, 2 LIMIT 1"
        ).rows[0]
        try db.connection.query(
            "UPDATE contacts SET phone_number = '+1 415 555 0199' WHERE tenant = $1 AND contact_name_id = $2",
            [contact[0], contact[1]])
        let first = try db.contract()
        #expect(first.changedSinceApply == 1)
        let changedLine = try contractKeyFile(first.unmigratedFile!).first { $0.key == "\(contact[0]!)/\(contact[1]!)" }
        #expect(changedLine?.changed == "yes")
        // Even a list that names it cannot accept it: the apply never saw this value.
        let accepted = db.scratchFile("accept-all.csv")
        try FileManager.default.copyItem(atPath: first.unmigratedFile!, toPath: accepted)
        let refused = try db.contract {
            $0.confirm = true; $0.acceptRejectedFile = accepted
        }
        #expect(refused.refused && !refused.dropped)
        #expect(
            refused.problems.contains {
                $0.contains("1 contact changed since apply run") && $0.contains("+14155550199")
            })
        #expect(try db.hasColumn("contacts", "phone_number"))

        // After another apply the value has been seen (the contact keeps its phones, so it stays unmigrated):
        // now it is an ordinary unmigrated value, and an exact list may accept it.
        _ = try db.job().apply(db.quietOptions())
        let second = try db.contract()
        #expect(second.changedSinceApply == 0)
        let exact = db.scratchFile("exact.csv")
        try FileManager.default.copyItem(atPath: second.unmigratedFile!, toPath: exact)
        let dropped = try db.contract {
            $0.confirm = true; $0.acceptRejectedFile = exact
        }
        #expect(dropped.dropped, "\(dropped.problems)")
        #expect(
            try db.scalar(
                "SELECT \"values\"->>'phone_number' FROM ferry.dropped_values WHERE key->>'contact_name_id' = $1",
                [contact[1]]) == "+1 415 555 0199")
    }

    @Test func contractWithoutASuccessfulApplyIsRefused() throws {
        let db = try TestDatabase(samples: 50)
        _ = try db.applySchema(try db.mapping())
        let report = try db.contract { $0.confirm = true }
        #expect(
            report.refused
                && report.problems == [
                    "no successful `ferry apply` of the phones job on this database: apply first, then contract"
                ])
        #expect(try db.hasColumn("contacts", "phone_number"))
    }

    @Test func theTableLockIsRetriedWithinItsTimeoutAndGivesUpCleanly() throws {
        let db = try appliedDatabase(contacts: 120)
        try db.connection.execute(
            script:
                "UPDATE contacts SET phone_number = NULL WHERE NOT EXISTS (SELECT 1 FROM contact_phone_numbers p WHERE (p.tenant, p.contact_name_id) = (contacts.tenant, contacts.contact_name_id))"
        )
        _ = try db.job().apply(db.quietOptions())  // the NULLs are now older than the newest apply

        // The application reads the table for 1.5 s: the contract's lock attempts time out after 200 ms and are retried.
        let app = try PostgresConnection(conninfo: db.conninfo)
        try app.execute(script: "BEGIN; LOCK TABLE contacts IN ACCESS SHARE MODE")
        let release = Thread {
            Thread.sleep(forTimeInterval: 1.5); _ = try? app.execute(script: "COMMIT")
        }
        release.start()
        let messages = MessageLog()
        let report = try db.contract {
            $0.confirm = true
            $0.lockTimeout = DurationSetting("200ms")
            $0.retry.attempts = 8
            $0.log = { messages.append($0) }
        }
        #expect(report.dropped, "\(report.problems)")
        #expect(messages.lines.contains { $0.contains("is busy (lock_timeout 200ms)") })

        // Held longer than every retry: the contract gives up, nothing is dropped, the run is failed.
        let rolledBack = try Rollback(conninfo: db.conninfo).run(report.runId!, dryRun: false, force: false)
        #expect(rolledBack.complete)
        try app.execute(script: "BEGIN; LOCK TABLE contacts IN ACCESS SHARE MODE")
        defer { _ = try? app.execute(script: "COMMIT") }
        #expect(throws: PostgresError.self) {
            try db.contract {
                $0.confirm = true
                $0.lockTimeout = DurationSetting("100ms")
                $0.retry.attempts = 2
                $0.retry.baseDelay = 0.05
            }
        }
        #expect(try db.hasColumn("contacts", "phone_number"))
        #expect(
            try db.scalar("SELECT status FROM ferry.runs WHERE mode = 'contract' ORDER BY run_id DESC LIMIT 1")
                == "failed")
    }

    /// The session holding the job's lock ends while the contract waits for the table (a run of the job
    /// could then start beside it): the contract drops nothing and says so; run again, it drops.
    @Test func aContractWhoseLockSessionIsLostDropsNothing() throws {
        let db = try appliedDatabase(contacts: 120)
        try db.connection.execute(
            script:
                "UPDATE contacts SET phone_number = NULL WHERE NOT EXISTS (SELECT 1 FROM contact_phone_numbers p WHERE (p.tenant, p.contact_name_id) = (contacts.tenant, contacts.contact_name_id))"
        )
        _ = try db.job().apply(db.quietOptions())
        let (outcome, waited) = try whileASessionWaits(
            db, session: "ferry contract phones", lock: "LOCK TABLE contacts IN ACCESS SHARE MODE",
            meanwhile:
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'ferry lock phones'"
        ) {
            try db.contract {
                $0.confirm = true
                $0.lockTimeout = DurationSetting("60s")
            }
        }
        #expect(waited, "the contract never waited for the table")
        #expect(throws: LedgerError.self) { try outcome.get() }
        if case .failure(let error) = outcome {
            #expect("\(error)".contains("lock was lost"), "\(error)")
            #expect("\(error)".contains("no column was dropped"), "\(error)")
        }
        #expect(try db.hasColumn("contacts", "phone_number"))
        #expect(try db.count("SELECT count(*) FROM ferry.dropped_values") == 0)
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE mode = 'contract'") == "failed")

        let again = try db.contract { $0.confirm = true }
        #expect(again.dropped, "\(again.problems)")
        #expect(try !db.hasColumn("contacts", "phone_number"))
    }

    @Test func eachTenantSeesOnlyItsOwnRowsInTheNewTablesAndNoneWithoutTheSetting() throws {
        let db = try appliedDatabase(contacts: 300)
        let role = "ferry_app_\(UUID().uuidString.prefix(8).lowercased())"
        try db.connection.execute(
            script: """
                CREATE ROLE \(role) LOGIN;
                GRANT SELECT, INSERT ON contact_phone_numbers, contact_phone_type_definitions, contacts TO \(role);
                """)
        defer { _ = try? db.connection.execute(script: "DROP OWNED BY \(role); DROP ROLE \(role)") }
        let app = try PostgresConnection(conninfo: "dbname=\(db.name) user=\(role)")
        defer { app.close() }
        let tenants = try db.connection.query("SELECT DISTINCT tenant::text FROM contact_phone_numbers ORDER BY 1").rows
            .map { $0[0]! }
        #expect(tenants.count >= 2)
        for table in ["contact_phone_numbers", "contact_phone_type_definitions"] {
            #expect(try app.query("SELECT count(*) FROM \(table)").scalar == "0", "\(table) without the setting")
        }
        for tenant in tenants {
            try app.query("SELECT set_config('app.current_tenant', $1, false)", [tenant])
            let seen = try app.query(
                "SELECT count(*), count(*) FILTER (WHERE tenant::text <> $1) FROM contact_phone_numbers", [tenant]
            ).rows[0]
            #expect(
                seen[0] == String(try db.count("SELECT count(*) FROM contact_phone_numbers WHERE tenant = '\(tenant)'"))
            )
            #expect(seen[1] == "0")
            let types = try app.query(
                "SELECT count(*) FILTER (WHERE tenant::text <> $1) FROM contact_phone_type_definitions", [tenant]
            ).scalar
            #expect(types == "0")
        }
        // Writing another tenant's row is refused by the policy.
        try app.query("SELECT set_config('app.current_tenant', $1, false)", [tenants[0]])
        let other = try db.connection.query(
            "SELECT contact_name_id::text FROM contacts WHERE tenant = $1 LIMIT 1", [tenants[1]]
        ).rows[0][0]!
        #expect {
            try app.query(
                "INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type) VALUES ($1, $2, '+14155550100', 'work')",
                [tenants[1], other])
        } throws: { ($0 as? PostgresError)?.sqlState == "42501" }
        // An empty setting sees nothing, like no setting.
        try app.query("SELECT set_config('app.current_tenant', '', false)")
        #expect(try app.query("SELECT count(*) FROM contact_phone_numbers").scalar == "0")
        // ferry runs as the owner: it sees every tenant.
        #expect(try db.count("SELECT count(DISTINCT tenant) FROM contact_phone_numbers") == tenants.count)
    }

    @Test func aMappingCanOptOutOfRowLevelSecurity() throws {
        let db = try TestDatabase(samples: 20)
        let text = try String(
            contentsOfFile: TestDatabase.packageRoot.appendingPathComponent("mappings/phones.yaml").path,
            encoding: .utf8
        )
        .replacingOccurrences(of: "row_level_security: true", with: "row_level_security: false")
        let mapping = try PhonesMapping(file: "opt-out.yaml", text: text)
        _ = try db.applySchema(mapping)
        #expect(
            try db.count(
                "SELECT count(*) FROM pg_class WHERE relname LIKE 'contact_phone%' AND relkind = 'r' AND relrowsecurity"
            ) == 0)
        #expect(try db.count("SELECT count(*) FROM pg_policy") == 0)
    }

    @Test func aChangedStepIsReportedAsDriftAndNeverReRun() throws {
        let db = try TestDatabase(samples: 20)
        _ = try db.applySchema(try db.mapping())
        let text = try String(
            contentsOfFile: TestDatabase.packageRoot.appendingPathComponent("mappings/phones.yaml").path,
            encoding: .utf8
        )
        .replacingOccurrences(of: "tenant_setting: app.current_tenant", with: "tenant_setting: crm.tenant")
        let changed = PhonesJob(mapping: try PhonesMapping(file: "changed.yaml", text: text), conninfo: db.conninfo)
        let migrator = SchemaMigrator(connection: db.connection)
        let result = try migrator.apply(try changed.schemaSteps(using: db.connection))
        #expect(result.applied.isEmpty)
        let drifted = result.status.filter { if case .drifted = $0.state { return true } else { return false } }.map(
            \.step.name)
        #expect(drifted == ["phones/contact_phone_type_definitions", "phones/contact_phone_numbers"])
        // Not re-run: the policies still read the setting they were created with.
        #expect(
            try db.count(
                "SELECT count(*) FROM pg_policy WHERE pg_get_expr(polqual, polrelid) LIKE '%app.current_tenant%'") == 2)
        let findings = try Doctor(connection: db.connection).check(
            try changed.expectations(using: db.connection, forApply: true),
            steps: try changed.schemaSteps(using: db.connection), mappingFile: "changed.yaml")
        #expect(findings.filter { $0.problem.contains("changed since it was applied") }.count == 2)
        #expect(findings.allSatisfy { $0.severity == .warning })
    }

    @Test func schemaApplySnapshotsTheAffectedTablesFirstWithPgDumpOrTheCatalog() throws {
        for method in [SchemaSnapshot.Method.pgDump, .catalog] {
            let db = try TestDatabase(samples: 10)
            try db.connection.execute(script: "CREATE INDEX contacts_by_name ON contacts (full_name)")
            let directory = db.scratchFile("snapshots-\(method == .pgDump ? "dump" : "catalog")")
            let job = try db.job()
            let steps = try job.schemaSteps(using: db.connection)
            let tables = try job.expectations(using: db.connection, forApply: false).map(\.table)
            let take = {
                try SchemaSnapshot.write(
                    tables: tables, connection: db.connection, conninfo: db.conninfo, directory: directory,
                    method: method)
            }
            let first = try SchemaMigrator(connection: db.connection).apply(steps, snapshot: take)
            let snapshot = try #require(first.snapshot)
            #expect(snapshot.method == method)
            #expect(snapshot.tables == ["contacts"])  // the phone tables did not exist yet
            let text = try String(contentsOfFile: snapshot.path, encoding: .utf8)
            #expect(
                text.contains("CREATE TABLE public.contacts (") || text.contains("CREATE TABLE contacts ("),
                "\(text.prefix(400))")
            #expect(text.contains("contacts_by_name"))
            #expect(text.contains("PRIMARY KEY (tenant, contact_name_id)"))
            #expect(!text.contains("contact_phone_numbers"))
            // Nothing pending: no snapshot.
            #expect(try SchemaMigrator(connection: db.connection).apply(steps, snapshot: take).snapshot == nil)
            // Taken again by hand: the phone tables, with their row-level security, and a new file name.
            let later = try take()
            #expect(later.path != snapshot.path)
            #expect(try String(contentsOfFile: later.path, encoding: .utf8).contains("ferry_tenant_isolation"))
        }
    }

    @Test func doctorFindsWhatIsMissingAndItsFixesRepairIt() throws {
        let db = try appliedDatabase(contacts: 40)
        let job = try db.job()
        func findings() throws -> [DoctorFinding] {
            try Doctor(connection: db.connection).check(
                try job.expectations(using: db.connection, forApply: true),
                steps: try job.schemaSteps(using: db.connection), mappingFile: "mappings/phones.yaml")
        }
        #expect(try findings().isEmpty)
        try db.connection.execute(
            script: """
                ALTER TABLE contact_phone_type_definitions DROP CONSTRAINT contact_phone_type_definitions_tenant_normalized_label_key;
                DROP INDEX contact_phone_numbers_contact_order;
                ALTER TABLE contact_phone_numbers ALTER COLUMN display_order TYPE bigint;
                """)
        let broken = try findings()
        #expect(broken.map(\.severity) == [.error, .error, .warning], "\(broken.map(\.problem))")
        #expect(broken[0].problem.contains("no unique index on (tenant, normalized_label)"))
        #expect(broken[1].problem == "column contact_phone_numbers.display_order is bigint, expected integer")
        #expect(
            broken[2].fix.hasPrefix(
                "CREATE INDEX CONCURRENTLY ON \"contact_phone_numbers\" (\"tenant\", \"contact_name_id\")"))
        // The apply refuses before its first batch, naming the problems.
        #expect { try job.apply(db.quietOptions()) } throws: {
            String(describing: $0).contains("no unique index on (tenant, normalized_label)")
        }
        // Running the printed fixes repairs the database.
        for finding in broken { try db.connection.execute(script: finding.fix) }
        #expect(try findings().isEmpty)
    }

    /// The extraction pages by the source's (tenant, key): rows sharing a key at a page boundary would
    /// be skipped, so without a unique index on it plan and apply refuse, naming it.
    @Test func aSourceKeyWithoutAUniqueIndexIsRefused() throws {
        let db = try TestDatabase(samples: 40)
        _ = try db.applySchema(try db.mapping())
        try db.connection.execute(
            script: """
                ALTER TABLE contacts DROP CONSTRAINT contacts_pkey CASCADE;
                ALTER TABLE contacts ADD COLUMN row_id bigserial PRIMARY KEY;
                """)
        let plan = try ferryCLI("plan mappings/phones.yaml --no-progress", database: db.name)
        #expect(plan.status == 1)
        #expect(
            plan.stderr.contains("no unique index on (tenant, contact_name_id): the extraction pages by it"),
            "\(plan.stderr)")
        #expect { try db.job().apply(db.quietOptions()) } throws: {
            String(describing: $0).contains("the extraction pages by it")
        }
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == 0)
    }

    @Test func aLedgerFromBeforeTheSnapshotStepStillRunsAndIsWarnedAbout() throws {
        let db = try TestDatabase(samples: 40)
        _ = try db.applySchema(try db.mapping())
        // The ledger as the previous ferry left it: the step not recorded, the per-row foreign key in place.
        try db.connection.execute(
            script: """
                DELETE FROM ferry.schema_steps WHERE name = 'ferry/ledger-snapshot-rows-unchecked';
                ALTER TABLE ferry.snapshot_rows ADD CONSTRAINT snapshot_rows_run_id_fkey FOREIGN KEY (run_id) REFERENCES ferry.runs (run_id);
                """)
        let doctor = try ferryCLI("doctor mappings/phones.yaml", database: db.name)
        #expect(doctor.status == 0, "\(doctor.stdout)\(doctor.stderr)")
        #expect(
            doctor.stdout.contains("warning: schema step ferry/ledger-snapshot-rows-unchecked is not applied"),
            "\(doctor.stdout)")
        let apply = try ferryCLI("apply mappings/phones.yaml --no-progress", database: db.name)
        #expect(apply.status == 0, "\(apply.stdout)\(apply.stderr)")
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") > 0)
        #expect(try db.count("SELECT count(*) FROM ferry.snapshot_rows") > 0)
        // schema apply then drops the check, and the doctor is content.
        let schema = try ferryCLI("schema apply mappings/phones.yaml", database: db.name)
        #expect(schema.status == 0, "\(schema.stdout)\(schema.stderr)")
        #expect(try db.count("SELECT count(*) FROM pg_constraint WHERE conname = 'snapshot_rows_run_id_fkey'") == 0)
        #expect(try ferryCLI("doctor mappings/phones.yaml", database: db.name).stdout.contains("✓ no problems found"))
    }

    @Test func doctorOnTheCommandLineExitsOneAndNamesTheGrant() throws {
        let db = try appliedDatabase(contacts: 20)
        let role = "ferry_doc_\(UUID().uuidString.prefix(8).lowercased())"
        try db.connection.execute(
            script: "CREATE ROLE \(role) LOGIN BYPASSRLS; GRANT SELECT ON contacts, contact_phone_numbers TO \(role)")
        defer { _ = try? db.connection.execute(script: "DROP OWNED BY \(role); DROP ROLE \(role)") }
        let healthy = try ferryCLI("doctor mappings/phones.yaml", database: db.name)
        #expect(healthy.status == 0, "\(healthy.stdout)\(healthy.stderr)")
        #expect(healthy.stdout.contains("✓ no problems found"))
        let plan = try ferryCLI(
            "doctor mappings/phones.yaml --for-plan --db 'dbname=\(db.name) user=\(role)'", database: db.name)
        #expect(plan.status == 1)
        #expect(
            plan.stdout.contains("fix: GRANT SELECT ON \"contact_phone_type_definitions\" TO \"\(role)\";"),
            "\(plan.stdout)")
        #expect(plan.stdout.contains("1 error, 0 warnings"), "\(plan.stdout)")
    }

    @Test func contractOnTheCommandLineExitsFiveWhenRefused() throws {
        let db = try appliedDatabase(contacts: 60)
        let list = db.scratchFile("cli-unmigrated.csv")
        let result = try ferryCLI(
            "contract mappings/phones.yaml --confirm --unmigrated-out '\(list)'", database: db.name)
        #expect(result.status == 5, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("refused: nothing was dropped"))
        let dropped = try ferryCLI(
            "contract mappings/phones.yaml --confirm --accept-rejected '\(list)' --unmigrated-out '\(list).again'",
            database: db.name)
        #expect(dropped.status == 0, "\(dropped.stdout)\(dropped.stderr)")
        #expect(dropped.stdout.contains("undo with: ferry rollback"))
        #expect(try !db.hasColumn("contacts", "phone_number"))
    }

    /// Putting a contract's kept values back updates every contact that had one, through the
    /// application's BEFORE UPDATE trigger that re-stamps updated_at: the rollback says so (exit 3),
    /// or with --disable-before-triggers leaves every other column as it was.
    @Test func aContractRollbackThroughAnUpdatedAtTriggerSaysSoOrDisablesIt() throws {
        let db = try appliedDatabase(contacts: 60)
        try db.connection.execute(
            script: """
                CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at = now(); RETURN NEW; END $$;
                CREATE TRIGGER contacts_touch BEFORE UPDATE ON contacts FOR EACH ROW EXECUTE FUNCTION touch();
                """)
        let withoutLegacy =
            "SELECT md5(string_agg((to_jsonb(t) - 'phone_number')::text, '|' ORDER BY contact_name_id)) FROM contacts t"
        func contract() throws -> Int {
            let list = db.scratchFile("touch-unmigrated-\(UUID().uuidString).csv")
            let first = try ferryCLI(
                "contract mappings/phones.yaml --confirm --unmigrated-out '\(list)'", database: db.name)
            let dropped = try ferryCLI(
                "contract mappings/phones.yaml --confirm --accept-rejected '\(list)' --unmigrated-out '\(list).again'",
                database: db.name)
            #expect(dropped.status == 0, "\(dropped.stdout)\(dropped.stderr)\(first.stdout)")
            return try db.count("SELECT max(run_id) FROM ferry.runs WHERE mode = 'contract'")
        }
        let before = try db.scalar(withoutLegacy)
        let first = try contract()
        let dry = try ferryCLI("rollback \(first) --dry-run", database: db.name)
        #expect(dry.status == 3, "\(dry.stdout)\(dry.stderr)")
        #expect(dry.stdout.contains("would be put back through trigger contacts_touch"), "\(dry.stdout)")
        let exact = try ferryCLI("rollback \(first) --yes --disable-before-triggers", database: db.name)
        #expect(exact.status == 0, "\(exact.stdout)\(exact.stderr)")
        #expect(try db.hasColumn("contacts", "phone_number"))
        #expect(try db.scalar(withoutLegacy) == before, "only the legacy column came back")
        #expect(try db.scalar("SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'contacts_touch'") == "O")

        // The values put back are new row versions: the contract wants an apply after them.
        #expect(try ferryCLI("apply mappings/phones.yaml --no-progress", database: db.name).status == 0)
        let second = try contract()
        let through = try ferryCLI("rollback \(second) --yes", database: db.name)
        #expect(through.status == 3, "\(through.stdout)\(through.stderr)")
        #expect(through.stdout.contains("restored rows differ from the pre-image in updated_at"), "\(through.stdout)")
        #expect(try db.hasColumn("contacts", "phone_number"))
        #expect(try db.scalar(withoutLegacy) != before)
    }
}
