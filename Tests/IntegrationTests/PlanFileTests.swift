import Foundation
import TestFiles
import Testing
@testable import FerryKit

@Suite("Plan files, drift and plan exit codes")
struct PlanFileTests {
    func planFile() -> String {
        Scratch.path("plan.json")
    }

    @Test func applyWithAnUnchangedPlanRuns() throws {
        let db = try TestDatabase(samples: 200)
        _ = try db.applySchema(try db.mapping())
        let path = planFile()
        let plan = try ferryCLI("plan mappings/phones.yaml --out \(path) --json", database: db.name)
        #expect(plan.status == 0, "\(plan.stderr)")
        // The report names the plan file by the sha256 of its bytes, and the apply bound to it records the same.
        let sha = String(try runProcess("/usr/bin/sha256sum", [path]).stdout.prefix(64))
        #expect(try JSONDecoder().decode(PlanReport.self, from: Data(plan.stdout.utf8)).header.planFile?.sha256 == sha)
        let file = try PlanFile.read(path)
        #expect(file.fingerprint.map(\.rows).reduce(0, +) == 200)
        #expect(file.mappingSHA256 == (try db.mapping().sha256))
        let apply = try ferryCLI("apply mappings/phones.yaml --plan \(path) --no-progress", database: db.name)
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == file.summary.member("rowsToInsert"))
        #expect(try db.scalar("SELECT detail->>'drift' FROM ferry.events WHERE kind = 'plan checked'") == "0")
        #expect(try db.scalar("SELECT detail->>'plan_sha256' FROM ferry.events WHERE kind = 'plan checked'") == sha)
    }

    @Test func changedDataIsRefusedBeforeTheFirstBatchUnlessAllowed() throws {
        let db = try TestDatabase(samples: 200)
        _ = try db.applySchema(try db.mapping())
        let path = planFile()
        #expect(try ferryCLI("plan mappings/phones.yaml --out \(path)", database: db.name).status == 0)
        // The application edits one phone and adds one contact after the DBA approved the plan.
        let tenant = try db.scalar("SELECT tenant::text FROM contacts ORDER BY tenant, contact_name_id LIMIT 1")!
        try db.connection.execute(
            script: """
                UPDATE contacts SET phone_number = '(415) 555-0100'
                WHERE (tenant, contact_name_id) = (SELECT tenant, contact_name_id FROM contacts ORDER BY 1, 2 LIMIT 1);
                INSERT INTO contacts (tenant, contact_name_id, full_name, email, phone_number, country)
                SELECT tenant, gen_random_uuid(), 'New', 'new@x.test', '650 253 0042', 'GB' FROM tenants WHERE country = 'GB';
                """)
        let gbTenant = try db.scalar("SELECT tenant::text FROM tenants WHERE country = 'GB'")!
        let refused = try ferryCLI("apply mappings/phones.yaml --plan \(path)", database: db.name)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("tenant \(tenant): 1 contacts changed since the plan"), "\(refused.stderr)")
        #expect(refused.stderr.contains("tenant \(gbTenant): 1 contacts added since the plan"), "\(refused.stderr)")
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == 0)
        #expect(try db.count("SELECT count(*) FROM ferry.runs") == 0)

        let allowed = try ferryCLI(
            "apply mappings/phones.yaml --plan \(path) --allow-drift --no-progress", database: db.name)
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(try db.count("SELECT count(*) FROM ferry.events WHERE kind = 'drift allowed'") == 2)
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") > 0)
    }

    @Test func aChangedMappingIsRefused() throws {
        let db = try TestDatabase(samples: 50)
        _ = try db.applySchema(try db.mapping())
        let path = planFile()
        #expect(try ferryCLI("plan mappings/phones.yaml --out \(path)", database: db.name).status == 0)
        let edited = URL(fileURLWithPath: Scratch.path("phones.yaml"))
        let text = try String(
            contentsOf: TestDatabase.packageRoot.appendingPathComponent("mappings/phones.yaml"), encoding: .utf8)
        try text.replacingOccurrences(of: "batch_size: 5000", with: "batch_size: 100").write(
            to: edited, atomically: true, encoding: .utf8)
        let refused = try ferryCLI("apply '\(edited.path)' --plan \(path)", database: db.name)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("changed since the plan (sha256"), "\(refused.stderr)")
    }

    @Test func detailedExitCodeSaysWhetherChangesArePending() throws {
        let db = try TestDatabase(samples: 50)
        _ = try db.applySchema(try db.mapping())
        #expect(try ferryCLI("plan mappings/phones.yaml --detailed-exitcode", database: db.name).status == 2)
        #expect(try ferryCLI("apply mappings/phones.yaml --no-progress", database: db.name).status == 0)
        #expect(try ferryCLI("plan mappings/phones.yaml --detailed-exitcode", database: db.name).status == 0)
        #expect(try ferryCLI("plan mappings/phones.yaml", database: db.name).status == 0)
    }

    @Test func planWorksForARoleThatMaySelectOnly() throws {
        let db = try TestDatabase(samples: 80)
        _ = try db.applySchema(try db.mapping())
        let role = "ferry_reader_\(UUID().uuidString.prefix(8).lowercased())"
        try db.connection.execute(
            script: """
                CREATE ROLE \(role) LOGIN;
                GRANT USAGE ON SCHEMA public, ferry TO \(role);
                GRANT SELECT ON ALL TABLES IN SCHEMA public, ferry TO \(role);
                """)
        defer {
            _ = try? db.connection.execute(
                script: "REASSIGN OWNED BY \(role) TO postgres; DROP OWNED BY \(role); DROP ROLE \(role)")
        }
        // Row-level security on the phone tables would hide every row from this role: plan refuses, naming the fix.
        let hidden = try ferryCLI(
            "plan mappings/phones.yaml --db 'dbname=\(db.name) user=\(role)' --json", database: db.name)
        #expect(hidden.status == 1)
        #expect(
            hidden.stderr.contains("row-level security applies to role \(role) on contact_phone_numbers"),
            "\(hidden.stderr)")
        #expect(hidden.stderr.contains("fix: ALTER ROLE \"\(role)\" BYPASSRLS;"), "\(hidden.stderr)")
        try db.connection.execute(script: "ALTER ROLE \(role) BYPASSRLS")
        let plan = try ferryCLI(
            "plan mappings/phones.yaml --db 'dbname=\(db.name) user=\(role)' --json", database: db.name)
        #expect(plan.status == 0, "\(plan.stderr)")
        let report = try JSONDecoder().decode(PlanReport.self, from: Data(plan.stdout.utf8))
        #expect(report.header.database?.user == role)
        #expect(report.tables[0].insert > 0)
        // The same role cannot apply: the preflight names the privileges it lacks, before anything is written.
        let apply = try ferryCLI("apply mappings/phones.yaml --db 'dbname=\(db.name) user=\(role)'", database: db.name)
        #expect(apply.status == 1)
        #expect(apply.stderr.contains("lacks INSERT, UPDATE, DELETE on contact_phone_numbers"), "\(apply.stderr)")
        #expect(try db.count("SELECT count(*) FROM ferry.runs") == 0)
    }
}

@Suite("Plan reports on a real database")
struct PlanReportIntegrationTests {
    @Test func theLiveConstraintsOfTheTargetAreCheckedBeforeAnythingIsWritten() throws {
        let db = try TestDatabase(samples: 300)
        _ = try db.applySchema(try db.mapping())
        // The application's own constraints, which ferry's schema step knows nothing of.
        let live = try db.connection.query(
            "SELECT tenant::text, contact_name_id::text FROM contacts ORDER BY 1, 2 LIMIT 1"
        ).rows[0]
        try db.connection.execute(
            script: """
                ALTER TABLE contact_phone_numbers ADD CONSTRAINT app_short CHECK (length(phone_number) < 13);
                CREATE UNIQUE INDEX app_one_owner_per_number ON contact_phone_numbers (tenant, phone_number);
                CREATE TABLE app_verified_contacts (tenant uuid, contact_name_id uuid, PRIMARY KEY (tenant, contact_name_id));
                INSERT INTO app_verified_contacts SELECT tenant, contact_name_id FROM contacts WHERE contact_name_id::text < '8';
                ALTER TABLE contact_phone_numbers ADD CONSTRAINT app_verified FOREIGN KEY (tenant, contact_name_id) REFERENCES app_verified_contacts NOT VALID;
                """)
        let summary = try db.job().plan()
        let short = try #require(summary.checks.first { $0.constraint.hasPrefix("check app_short") })
        let unique = try #require(
            summary.checks.first { $0.constraint.hasPrefix("unique index app_one_owner_per_number") })
        let verified = try #require(summary.checks.first { $0.constraint.hasPrefix("foreign key app_verified") })
        #expect(short.violations > 0)
        #expect(short.examples.count == min(5, short.violations))
        // The key to contacts is the one the plan read each row from: it holds by construction, and the
        // report says so. The same columns referencing another table are counted row by row.
        let toContacts = try #require(
            summary.checks.first {
                $0.constraint.hasPrefix("foreign key contact_phone_numbers_tenant_contact_name_id_fkey")
            })
        #expect(toContacts.violations == 0 && toContacts.heldBecause?.contains("in the plan's snapshot") == true)
        #expect(toContacts.explanationText?.hasPrefix("none by construction: ") == true)
        #expect(verified.heldBecause == nil && verified.violations > 0 && verified.examples.count == 5)
        // A planned number that a live row already has is a violation too.
        let taken = try #require(short.examples.first.map { String($0.split(separator: " ").last!) })
        let uniqueBefore = unique.violations
        try db.connection.query(
            "INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type) VALUES ($1, $2, $3, 'other')",
            [live[0], live[1], "+1" + taken.dropFirst(2).prefix(3) + "0000000"])
        let withLive = try db.job().plan()
        #expect(
            withLive.checks.first { $0.constraint.hasPrefix("unique index app_one_owner_per_number") }!.violations
                >= uniqueBefore)
        // The prediction holds: apply fails on the same constraint, and nothing of the failed batch is written.
        let before = try db.count("SELECT count(*) FROM contact_phone_numbers")
        #expect { try db.job().apply(db.quietOptions()) } throws: {
            ["23514", "23505", "23503"].contains(($0 as? PostgresError)?.sqlState)
        }
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == before)
        // Without the application's constraints, exactly the predicted rows break the rules.
        try db.connection.execute(
            script: """
                ALTER TABLE contact_phone_numbers DROP CONSTRAINT app_short, DROP CONSTRAINT app_verified; DROP INDEX app_one_owner_per_number
                """)
        #expect(try db.scalar("SELECT status FROM ferry.runs ORDER BY run_id DESC LIMIT 1") == "failed")
        _ = try db.job().apply(db.quietOptions())
        #expect(
            try db.count("SELECT count(*) FROM contact_phone_numbers WHERE length(phone_number) >= 13")
                == short.violations)
        #expect(
            try db.count(
                """
                SELECT count(*) FROM contact_phone_numbers p
                WHERE NOT EXISTS (SELECT 1 FROM app_verified_contacts v WHERE v.tenant = p.tenant AND v.contact_name_id = p.contact_name_id)
                """) == verified.violations)
    }

    /// The planned rows leave out columns no check reads; a constraint that reads a default or a generated
    /// column still sees the value the real insert would give it.
    @Test func checksReadingDefaultsAndGeneratedColumnsSeeTheirValues() throws {
        let db = try TestDatabase(samples: 300)
        _ = try db.applySchema(try db.mapping())
        // Three contacts of one tenant share a number, so the unique index below has something to find.
        try db.connection.execute(
            script: """
                WITH number AS (SELECT tenant, phone_number FROM contacts WHERE phone_number ~ '^[(]?[0-9][0-9 ().-]+$' ORDER BY 1, contact_name_id LIMIT 1)
                UPDATE contacts c SET phone_number = n.phone_number FROM number n
                WHERE c.tenant = n.tenant AND c.contact_name_id IN (SELECT contact_name_id FROM contacts WHERE tenant = n.tenant ORDER BY 1 LIMIT 2);
                ALTER TABLE contact_phone_numbers ADD CONSTRAINT app_created_long_ago CHECK (created_at < '2000-01-01') NOT VALID;
                CREATE UNIQUE INDEX app_one_row_per_number ON contact_phone_numbers (tenant, normalized_phone_number) WHERE updated_at > '2000-01-01';
                CREATE UNIQUE INDEX app_lower_number ON contact_phone_numbers (tenant, lower(phone_number));
                ALTER TABLE contact_phone_numbers ADD CONSTRAINT app_no_shared_number EXCLUDE USING btree (phone_number WITH =);
                """)
        let summary = try db.job().plan()
        // What the planned rows cannot answer is listed as not checked, with the reason.
        #expect(
            summary.checks.first { $0.constraint.hasPrefix("unique index app_lower_number") }?.notChecked?.contains(
                "expression") == true)
        #expect(
            summary.checks.first { $0.constraint.hasPrefix("exclusion constraint app_no_shared_number") }?.notChecked
                != nil)
        let createdLongAgo = try #require(
            summary.checks.first { $0.constraint.hasPrefix("check app_created_long_ago") })
        let onePerNumber = try #require(
            summary.checks.first { $0.constraint.hasPrefix("unique index app_one_row_per_number") })
        try db.connection.execute(
            script: """
                ALTER TABLE contact_phone_numbers DROP CONSTRAINT app_created_long_ago, DROP CONSTRAINT app_no_shared_number;
                DROP INDEX app_one_row_per_number, app_lower_number
                """)
        _ = try db.job().apply(db.quietOptions())
        #expect(createdLongAgo.violations == summary.rowsToInsert)
        #expect(createdLongAgo.violations == (try db.count("SELECT count(*) FROM contact_phone_numbers")))
        let shared = try db.count(
            """
            SELECT count(*) FROM (SELECT count(*) OVER (PARTITION BY tenant, normalized_phone_number) AS rows FROM contact_phone_numbers) x WHERE rows > 1
            """)
        try #require(shared >= 3)
        #expect(onePerNumber.violations == shared)
    }

    /// A unique index that includes the contact key can only be broken by two rows of one contact; the
    /// plan groups just the contacts with several planned rows, and still finds every such pair.
    @Test func uniqueIndexesOnTheContactKeyFindDuplicatesWithinAContact() throws {
        let db = try TestDatabase(samples: 300)
        _ = try db.applySchema(try db.mapping())
        // Two contacts get two work numbers in one field; the application allows one row per type.
        try db.connection.execute(
            script: """
                UPDATE contacts SET phone_number = '650-253-0000 / 650-253-0001', country = 'US'
                WHERE (tenant, contact_name_id) IN (SELECT tenant, contact_name_id FROM contacts ORDER BY 1, 2 LIMIT 2);
                CREATE UNIQUE INDEX app_one_row_per_type ON contact_phone_numbers (tenant, contact_name_id, canonical_type);
                """)
        let summary = try db.job().plan()
        let perType = try #require(
            summary.checks.first { $0.constraint.hasPrefix("unique index app_one_row_per_type") })
        #expect(perType.violations >= 4 && perType.examples.count == min(5, perType.violations))
        #expect { try db.job().apply(db.quietOptions()) } throws: { ($0 as? PostgresError)?.sqlState == "23505" }
        try db.connection.execute(script: "DROP INDEX app_one_row_per_type")
        _ = try db.job().apply(db.quietOptions())
        #expect(
            try db.count(
                """
                SELECT count(*) FROM (SELECT count(*) OVER (PARTITION BY tenant, contact_name_id, canonical_type) AS rows FROM contact_phone_numbers) x
                WHERE rows > 1
                """) == perType.violations)
    }

    /// A NOT NULL the planned rows would break is reported with its rows, not a failed COPY.
    @Test func notNullColumnsAreCheckedOnThePlannedRows() throws {
        let db = try TestDatabase(samples: 300)
        _ = try db.applySchema(try db.mapping())
        try db.connection.execute(
            script: """
                ALTER TABLE contact_phone_numbers ADD COLUMN app_source text NOT NULL, ALTER COLUMN extension SET NOT NULL;
                """)
        let summary = try db.job().plan()
        let unfilled = try #require(
            summary.checks.first { $0.constraint.hasPrefix("not null app_source: ferry does not fill it") })
        let extensions = try #require(summary.checks.first { $0.constraint == "not null extension, live" })
        #expect(unfilled.violations == summary.rowsToInsert && unfilled.examples.count == 5)
        #expect(summary.checks.first { $0.constraint == "not null phone_number, live" }?.violations == 0)
        // The prediction holds: apply fails on it and writes nothing; without the two rules, exactly the
        // predicted rows have no extension.
        #expect { try db.job().apply(db.quietOptions()) } throws: { ($0 as? PostgresError)?.sqlState == "23502" }
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == 0)
        try db.connection.execute(
            script: "ALTER TABLE contact_phone_numbers DROP COLUMN app_source, ALTER COLUMN extension DROP NOT NULL")
        _ = try db.job().apply(db.quietOptions())
        try #require(extensions.violations > 0)
        #expect(
            try db.count("SELECT count(*) FROM contact_phone_numbers WHERE extension IS NULL") == extensions.violations)
    }

    @Test func everyFormatIsWrittenAndTheJSONAgreesWithTheData() throws {
        let db = try TestDatabase(samples: 1500)
        _ = try db.applySchema(try db.mapping())
        let directory = Scratch.folder("reports")
        for name in ["r.md", "r.json", "r.html", "r.txt"] {
            let result = try ferryCLI(
                "plan mappings/phones.yaml --report '\(directory.path)/\(name)'", database: db.name)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path))
        }
        let report = try JSONDecoder().decode(
            PlanReport.self, from: Data(contentsOf: directory.appendingPathComponent("r.json")))
        #expect(report.header.database?.database == db.name)
        #expect(report.tenants.map(\.counts.contactsScanned).reduce(0, +) == 1500)
        // 5 rules ferry knows; from the live catalog 2 unique indexes (the primary key not checked: its id
        // comes from a default), 2 foreign keys, 5 NOT NULL columns, 2 CHECKs.
        #expect(report.checks.count == 16 && report.checks.allSatisfy { $0.violations == 0 })
        let primaryKey = try #require(
            report.checks.first { $0.constraint.hasPrefix("unique index contact_phone_numbers_pkey") })
        #expect(primaryKey.notChecked?.contains("contact_phone_number_id") == true)
        for name in ["r.md", "r.html", "r.txt"] {
            let text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            #expect(text.contains("not checked: it reads contact_phone_number_id"), "\(name)")
        }
        let sampled = Set(report.samples.flatMap(\.classes))
        #expect(report.anomalies.allSatisfy { sampled.contains($0.name) })
        #expect(report.accounting.first?.addsUp == true)
        // No apply has run here yet: the estimate's load rate comes from the plan's own sample load.
        #expect(
            report.header.estimateBasis?.contains("a sample load of \(formatCount(min(5000, report.tables[0].insert))) rows")
                == true, "\(report.header.estimateBasis ?? "")")
        // What the report predicts is what apply does.
        let apply = try ferryCLI("apply mappings/phones.yaml --batch-size 200 --no-progress", database: db.name)
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == report.tables[0].insert)
        #expect(try db.count("SELECT count(*) FROM contact_phone_type_definitions") == report.tables[1].insert)
        // The ledger now knows this database's load rate, and the next plan's estimate says so.
        let next = try ferryCLI("plan mappings/phones.yaml --report '\(directory.path)/again.json'", database: db.name)
        #expect(next.status == 0)
        let again = try JSONDecoder().decode(
            PlanReport.self, from: Data(contentsOf: directory.appendingPathComponent("again.json")))
        #expect(
            again.header.estimateBasis?.contains("measured on earlier applies") == true,
            "\(again.header.estimateBasis ?? "")")
        #expect(again.changesPending == false)
    }
}

extension JSONValue {
    /// An object's member as an integer (nil when absent or not a number).
    func member(_ name: String) -> Int? {
        guard case .object(let object) = self, case .number(let value)? = object[name] else { return nil }
        return Int(value)
    }
}
