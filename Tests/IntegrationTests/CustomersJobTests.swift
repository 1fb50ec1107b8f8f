import Foundation
import Testing
@testable import FerryKit

extension TestDatabase {
    func customersJob(
        _ path: String = "mappings/customers.yaml", text: ((String) -> String)? = nil
    ) throws -> CustomersJob {
        let file = TestDatabase.packageRoot.appendingPathComponent(path).path
        let mapping =
            try text.map {
                try CustomersMapping(file: "changed.yaml", text: $0(try String(contentsOfFile: file, encoding: .utf8)))
            }
            ?? CustomersMapping.load(path: file)
        let job = CustomersJob(mapping: mapping, conninfo: conninfo)
        return job
    }

    func customerTablesChecksum() throws -> [String] {
        try ["clients", "contacts", "projects", "project_contact_points"].map(rowsByName)
    }
}

@Suite("Customers job on a real PostgreSQL")
struct CustomersJobTests {
    static let tenant = "00000000-0000-4000-8000-000000000001"

    /// One row for each awkward case. Contacts c1…c9, projects p1…p10 (keys spell what they are).
    func fixture() throws -> TestDatabase {
        let db = try TestDatabase()
        try db.connection.execute(
            script: """
                INSERT INTO tenants VALUES ('\(Self.tenant)', 'Acme', 'US');
                INSERT INTO clients (tenant, client_id, client_name) VALUES
                    ('\(Self.tenant)', 'a0000000-0000-4000-8000-00000000000a', 'Initech'),
                    ('\(Self.tenant)', 'a0000000-0000-4000-8000-00000000000b', 'Umbrella');
                INSERT INTO contacts (tenant, contact_name_id, full_name, email, client_id, role, contact_type) VALUES
                    ('\(Self.tenant)', 'c0000000-0000-4000-8000-000000000001', 'Has Org', 'has@initech.example', 'a0000000-0000-4000-8000-00000000000a', 'Senior Buyer', 'customer'),
                    ('\(Self.tenant)', 'c0000000-0000-4000-8000-000000000002', 'No Org One', 'one@acme-tools.com', NULL, 'Lead Engineer', 'customer'),
                    ('\(Self.tenant)', 'c0000000-0000-4000-8000-000000000003', 'No Org Two', 'two@ACME-tools.com', NULL, 'QA', 'customer'),
                    ('\(Self.tenant)', 'c0000000-0000-4000-8000-000000000004', 'Gmail Person', 'person@gmail.com', NULL, NULL, 'customer'),
                    ('\(Self.tenant)', 'c0000000-0000-4000-8000-000000000005', 'Two Projects', 'twice@initech.example', 'a0000000-0000-4000-8000-00000000000a', 'Office manager', 'customer'),
                    ('\(Self.tenant)', 'c0000000-0000-4000-8000-000000000006', 'Already Linked', 'linked@initech.example', 'a0000000-0000-4000-8000-00000000000a', 'Buyer', 'customer'),
                    ('\(Self.tenant)', 'c0000000-0000-4000-8000-000000000007', 'A Vendor', 'vendor@initech.example', 'a0000000-0000-4000-8000-00000000000a', NULL, 'vendor'),
                    ('\(Self.tenant)', 'c0000000-0000-4000-8000-000000000008', 'Other Org', 'other@initech.example', 'a0000000-0000-4000-8000-00000000000a', NULL, 'customer'),
                    ('\(Self.tenant)', 'c0000000-0000-4000-8000-000000000009', 'Known Domain', 'k@globex.example', NULL, 'procurement', 'customer');
                INSERT INTO projects (tenant, project_id, title, customer_id) VALUES
                    ('\(Self.tenant)', 'b0000000-0000-4000-8000-000000000001', 'has org', 'c0000000-0000-4000-8000-000000000001'),
                    ('\(Self.tenant)', 'b0000000-0000-4000-8000-000000000002', 'no org, company domain', 'c0000000-0000-4000-8000-000000000002'),
                    ('\(Self.tenant)', 'b0000000-0000-4000-8000-000000000003', 'no org, same domain other case', 'c0000000-0000-4000-8000-000000000003'),
                    ('\(Self.tenant)', 'b0000000-0000-4000-8000-000000000004', 'no org, public domain', 'c0000000-0000-4000-8000-000000000004'),
                    ('\(Self.tenant)', 'b0000000-0000-4000-8000-000000000005', 'two projects (1)', 'c0000000-0000-4000-8000-000000000005'),
                    ('\(Self.tenant)', 'b0000000-0000-4000-8000-000000000006', 'two projects (2)', 'c0000000-0000-4000-8000-000000000005'),
                    ('\(Self.tenant)', 'b0000000-0000-4000-8000-000000000007', 'already linked', 'c0000000-0000-4000-8000-000000000006'),
                    ('\(Self.tenant)', 'b0000000-0000-4000-8000-000000000008', 'vendor as customer', 'c0000000-0000-4000-8000-000000000007'),
                    ('\(Self.tenant)', 'b0000000-0000-4000-8000-000000000009', 'project has another org', 'c0000000-0000-4000-8000-000000000008'),
                    ('\(Self.tenant)', 'b0000000-0000-4000-8000-00000000000a', 'domain org exists', 'c0000000-0000-4000-8000-000000000009'),
                    ('\(Self.tenant)', 'b0000000-0000-4000-8000-00000000000b', 'no customer', NULL);
                """)
        let job = try db.customersJob()
        _ = try SchemaMigrator(connection: db.connection).apply(try job.schemaSteps(using: db.connection))
        try db.connection.execute(
            script: """
                INSERT INTO clients (tenant, client_id, client_name, email_domain) VALUES
                    ('\(Self.tenant)', 'a0000000-0000-4000-8000-00000000000c', 'Globex', 'globex.example');
                UPDATE projects SET customer_organization_id = 'a0000000-0000-4000-8000-00000000000a' WHERE title = 'already linked';
                INSERT INTO project_contact_points (tenant, project_id, contact_name_id, role, is_primary)
                    VALUES ('\(Self.tenant)', 'b0000000-0000-4000-8000-000000000007', 'c0000000-0000-4000-8000-000000000006', 'purchasing', true);
                UPDATE projects SET customer_organization_id = 'a0000000-0000-4000-8000-00000000000b' WHERE title = 'project has another org';
                """)
        return db
    }

    func rows(_ db: TestDatabase, _ sql: String) throws -> [String] {
        try db.connection.query(sql).rows.map { $0.map { $0 ?? "NULL" }.joined(separator: "|") }
    }

    @Test func planShowsEveryAwkwardCaseAndChangesNothing() throws {
        let db = try fixture()
        let before = try db.customerTablesChecksum()
        let summary = try db.customersJob().plan()
        #expect(try db.customerTablesChecksum() == before)
        #expect(summary.projectsRead == 10)
        #expect(summary.projectsToLink == 7)
        #expect(summary.projectsRejected == 2)
        #expect(summary.projectsAlreadyLinked == 1)
        #expect(summary.accountingAddsUp)
        #expect(summary.contactPointsToInsert == 7)
        #expect(summary.contactsToUpdate == 6)  // c1, c2, c3, c4, c5 (once for two projects), c9
        #expect(
            summary.organizationsToCreate == [
                "\(Self.tenant): Acme Tools (company, from acme-tools.com)",
                "\(Self.tenant): Gmail Person (individual, contact c0000000-0000-4000-8000-000000000004)",
            ])
        #expect(summary.organizationsReused == 1)  // globex.example
        let classes = Set(summary.anomalies.keys)
        for expected: CustomerAnomalyClass in [
            .organizationFromEmailDomain, .individualOrganization, .publicEmailDomain, .notACustomerContact,
            .conflictingOrganization, .alreadyLinked, .severalProjects, .defaultRole,
        ] {
            #expect(classes.contains(expected.rawValue), "\(expected)")
        }
        // Samples cover every class, and every format renders them.
        let sampled = Set(summary.samples.flatMap(\.classes))
        #expect(classes.isSubset(of: sampled), "\(classes.subtracting(sampled))")
        let report = PlanReport(customersSummary: summary, mapping: try db.customersJob().mapping)
        // The appendix lists what apply runs, from the loader's own builders.
        #expect(
            report.statements?.contains { $0.contains("UPDATE \"projects\"") } == true, "\(report.statements ?? [])")
        #expect(report.statements?.last == "COMMIT")
        for format in PlanReport.Format.allCases {
            let text = try report.render(format)
            #expect(text.contains("Acme Tools"), "\(format)")
        }
        let json = try JSONSerialization.jsonObject(with: Data(try report.render(.json).utf8)) as? [String: Any]
        #expect((json?["organizationsToCreate"] as? [String])?.count == 2)
        #expect(summary.checks.allSatisfy { $0.violations == 0 }, "\(summary.checks)")
    }

    @Test func applyLinksOrganizationsExactlyThenRollbackRestoresEveryTable() throws {
        let db = try fixture()
        let before = try db.customerTablesChecksum()
        let summary = try db.customersJob().apply(db.quietOptions())
        #expect(summary.applied?.organizationsCreated == 2)
        #expect(summary.applied?.projectsUpdated == 7)
        #expect(summary.applied?.contactPointsInserted == 7)
        #expect(summary.applied?.contactsUpdated == 6)
        #expect(summary.checks.allSatisfy { $0.violations == 0 }, "\(summary.checks)")
        let acme = try #require(
            try db.scalar("SELECT client_id::text FROM clients WHERE email_domain = 'acme-tools.com'"))
        let gmail = try #require(
            try db.scalar(
                "SELECT client_id::text FROM clients WHERE client_name = 'Gmail Person' AND organization_type = 'individual'"
            ))
        #expect(try db.count("SELECT count(*) FROM clients WHERE email_domain = 'gmail.com'") == 0)
        #expect(
            try rows(
                db,
                """
                SELECT p.title, coalesce(o.client_name, '-'), coalesce(cp.role, '-'), coalesce(cp.is_primary::text, '-')
                FROM projects p LEFT JOIN clients o ON (o.tenant, o.client_id) = (p.tenant, p.customer_organization_id)
                LEFT JOIN project_contact_points cp ON (cp.tenant, cp.project_id) = (p.tenant, p.project_id)
                ORDER BY p.project_id
                """) == [
                    "has org|Initech|purchasing|true",
                    "no org, company domain|Acme Tools|engineering|true",
                    "no org, same domain other case|Acme Tools|quality|true",
                    "no org, public domain|Gmail Person|general|true",
                    "two projects (1)|Initech|general|true",
                    "two projects (2)|Initech|general|true",
                    "already linked|Initech|purchasing|true",
                    "vendor as customer|-|-|-",
                    "project has another org|Umbrella|-|-",
                    "domain org exists|Globex|purchasing|true",
                    "no customer|-|-|-",
                ])
        // The contacts without an organization now belong to theirs, and the customers are primary contacts.
        #expect(
            try rows(
                db,
                "SELECT full_name, client_id::text, is_primary_contact::text FROM contacts WHERE client_id IS DISTINCT FROM 'a0000000-0000-4000-8000-00000000000a' OR is_primary_contact ORDER BY contact_name_id"
            ) == [
                "Has Org|a0000000-0000-4000-8000-00000000000a|true",
                "No Org One|\(acme)|true",
                "No Org Two|\(acme)|true",
                "Gmail Person|\(gmail)|true",
                "Two Projects|a0000000-0000-4000-8000-00000000000a|true",
                "Known Domain|a0000000-0000-4000-8000-00000000000c|true",
            ])
        // customer_id is kept (expand).
        #expect(try db.count("SELECT count(*) FROM projects WHERE customer_id IS NOT NULL") == 10)
        // Again: nothing to do.
        let again = try db.customersJob().apply(db.quietOptions())
        #expect(
            again.projectsToLink == 0 && again.applied?.contactPointsInserted == 0
                && again.applied?.organizationsCreated == 0)
        #expect(again.projectsAlreadyLinked == 8)
        // Rollback of the first run (the second wrote nothing) restores all four tables.
        let report = try Rollback(conninfo: db.conninfo).run(summary.runId!, dryRun: false, force: false)
        #expect(report.complete && report.conflicts.isEmpty)
        #expect(try db.customerTablesChecksum() == before)
    }

    /// The application deletes a project after ferry read it and before its batch is written: the
    /// batch is written again without it, the run goes on (it failed on the contact points' foreign key
    /// before), and the summary counts it as skipped.
    @Test func aProjectDeletedBetweenReadAndWriteIsSkippedNotAFailure() throws {
        let db = try fixture()
        let (status, json) = try runWhileTheFirstBatchWaits(
            db,
            [
                "apply", "mappings/customers.yaml", "--no-progress", "--json", "--batch-size", "2", "--lock-timeout",
                "20s",
            ],
            session: "ferry apply customers", lock: "LOCK TABLE clients IN EXCLUSIVE MODE",
            meanwhile: "DELETE FROM projects WHERE title = 'two projects (1)'")
        #expect(status == 0)
        let summary = try JSONDecoder().decode(CustomersSummary.self, from: json)
        #expect(summary.applied?.projectsGoneSinceRead == 1)
        #expect(summary.applied?.contactPointsNotInserted == 0)
        #expect(
            try rows(
                db,
                "SELECT title FROM projects WHERE customer_organization_id = 'a0000000-0000-4000-8000-00000000000a' ORDER BY title"
            )
                == ["already linked", "has org", "two projects (2)"])
    }

    @Test func theRejectPolicyLeavesProjectsWithoutOrganizationUnchanged() throws {
        let db = try fixture()
        let job = try db.customersJob(text: {
            $0.replacingOccurrences(
                of: "without_organization: [create_from_email_domain, create_individual]",
                with: "without_organization: [reject]")
        })
        let summary = try job.apply(db.quietOptions())
        #expect(summary.projectsRejected == 6)  // vendor, other org, and the four contacts without organization
        #expect(summary.anomalies[CustomerAnomalyClass.rejectedNoOrganization.rawValue]?.count == 4)
        #expect(summary.applied?.organizationsCreated == 0)
        #expect(
            try db.count(
                "SELECT count(*) FROM projects WHERE customer_organization_id IS NULL AND customer_id IS NOT NULL") == 5
        )
        #expect(summary.checks.allSatisfy { $0.violations == 0 }, "\(summary.checks)")
        #expect(summary.accountingAddsUp)
    }

    @Test func contractDropsCustomerIdOnceEveryProjectIsLinkedOrAcceptedAndRollbackBringsItBack() throws {
        let db = try fixture()
        let job = try db.customersJob()
        _ = try job.apply(db.quietOptions())
        let before = try db.customerTablesChecksum()
        func contract(_ configure: (inout ContractOptions) -> Void = { _ in }) throws -> ContractReport {
            var options = ContractOptions()
            options.unmigratedFile = db.scratchFile("customers-unmigrated.csv")
            options.log = { _ in }
            configure(&options)
            return try Contract(subject: CustomersContractSubject(mapping: job.mapping), conninfo: db.conninfo).run(
                options)
        }
        // The vendor's project and the project with another organization were rejected: not migrated.
        let checked = try contract { $0.confirm = true }
        #expect(checked.refused && !checked.dropped)
        #expect(checked.checked == 10 && checked.migrated == 8 && checked.unmigrated == 2 && checked.addsUp)
        #expect(
            checked.examples.map(\.row.key) == [
                "b0000000-0000-4000-8000-000000000008", "b0000000-0000-4000-8000-000000000009",
            ])
        #expect(checked.examples[0].reason == "rejected: contact type 'vendor' is not one of customer")
        let header = try String(contentsOfFile: checked.unmigratedFile!, encoding: .utf8).split(separator: "\r\n").first
        #expect(header == "tenant,project_key,reason,legacy_values,changed_since_apply")

        // The application moves a linked project to another customer after the apply: that cannot be accepted.
        try db.connection.execute(
            script: "UPDATE projects SET customer_id = 'c0000000-0000-4000-8000-000000000009' WHERE title = 'has org'")
        let accepted = db.scratchFile("customers-accepted.csv")
        try FileManager.default.copyItem(atPath: checked.unmigratedFile!, toPath: accepted)
        let changed = try contract {
            $0.confirm = true; $0.acceptRejectedFile = accepted
        }
        #expect(changed.changedSinceApply == 1)
        #expect(changed.problems.contains { $0.contains("1 project changed since apply run") })
        try db.connection.execute(
            script: "UPDATE projects SET customer_id = 'c0000000-0000-4000-8000-000000000001' WHERE title = 'has org'")

        let dropped = try contract {
            $0.confirm = true; $0.acceptRejectedFile = accepted
        }
        #expect(dropped.dropped, "\(dropped.problems)")
        #expect(try !db.hasColumn("projects", "customer_id"))
        #expect(dropped.valuesKept == 10)
        let rollback = try Rollback(conninfo: db.conninfo).run(dropped.runId!, dryRun: false, force: false)
        #expect(rollback.complete)
        #expect(try db.customerTablesChecksum() == before)
        // The foreign key to contacts went with the column, and came back with it.
        #expect(
            try db.count(
                "SELECT count(*) FROM pg_constraint WHERE conrelid = 'projects'::regclass AND contype = 'f' AND pg_get_constraintdef(oid) LIKE 'FOREIGN KEY (tenant, customer_id)%'"
            ) == 1)
    }

    /// acme-tools.com and acme-tools.org both give "Acme Tools": the plan says so, with a sample.
    @Test func twoNewOrganizationsOfOneNameAreAnAnomaly() throws {
        let db = try fixture()
        try db.connection.execute(
            script: """
                INSERT INTO contacts (tenant, contact_name_id, full_name, email, client_id, role, contact_type) VALUES
                    ('\(Self.tenant)', 'c0000000-0000-4000-8000-000000000010', 'Other TLD', 'three@acme-tools.org', NULL, 'QA', 'customer');
                INSERT INTO projects (tenant, project_id, title, customer_id) VALUES
                    ('\(Self.tenant)', 'b0000000-0000-4000-8000-00000000000c', 'same name, other domain', 'c0000000-0000-4000-8000-000000000010');
                """)
        let summary = try db.customersJob().plan()
        let name = CustomerAnomalyClass.sameNameAsAnotherNewOrganization.rawValue
        let anomaly = try #require(summary.anomalies[name], "\(summary.anomalies.keys)")
        #expect(anomaly.count == 1)
        #expect(anomaly.examples.first?.detail == "\"Acme Tools\" from acme-tools.org, and from acme-tools.com")
        #expect(summary.organizationsToCreate.filter { $0.contains(": Acme Tools (company") }.count == 2)
        #expect(summary.samples.contains { $0.classes.contains(name) })
    }

    @Test func theCommandLinePlansAndAppliesByTheMappingsJob() throws {
        let db = try fixture()
        let plan = try ferryCLI("plan mappings/customers.yaml --no-progress --detailed-exitcode", database: db.name)
        #expect(plan.status == 2, "\(plan.stdout)\(plan.stderr)")
        #expect(plan.stdout.contains("Organizations to create (2)"))
        let apply = try ferryCLI("apply mappings/customers.yaml --no-progress", database: db.name)
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(apply.stdout.contains("✓ adds up"))
        #expect(
            try ferryCLI("plan mappings/customers.yaml --no-progress --detailed-exitcode", database: db.name).status
                == 0)
    }
}
