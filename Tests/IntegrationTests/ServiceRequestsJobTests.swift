import Foundation
import Testing
@testable import FerryKit

@Suite("Service-requests job on a real PostgreSQL")
struct ServiceRequestsJobTests {
    static let tenant = "00000000-0000-4000-8000-000000000001"

    /// Contacts k1…k3 (k2 and k3 share an email but for case), requests r1…r8, one per awkward case.
    func fixture() throws -> (TestDatabase, ServiceRequestsJob) {
        let db = try TestDatabase()
        try db.connection.execute(
            script: """
                INSERT INTO tenants VALUES ('\(Self.tenant)', 'Fleet', 'US');
                INSERT INTO clients (tenant, client_id, client_name) VALUES
                    ('\(Self.tenant)', 'a0000000-0000-4000-8000-00000000000a', 'Fleet Co'),
                    ('\(Self.tenant)', 'a0000000-0000-4000-8000-00000000000b', 'Repair Co');
                INSERT INTO contacts (tenant, contact_name_id, full_name, email, client_id) VALUES
                    ('\(Self.tenant)', 'c0000000-0000-4000-8000-000000000001', 'Dana Driver', 'dana@fleet.example', 'a0000000-0000-4000-8000-00000000000a'),
                    ('\(Self.tenant)', 'c0000000-0000-4000-8000-000000000002', 'Tom Tech', 'Tom@Repair.example', 'a0000000-0000-4000-8000-00000000000b'),
                    ('\(Self.tenant)', 'c0000000-0000-4000-8000-000000000003', 'Tom Tech (twin)', 'tom@repair.example', 'a0000000-0000-4000-8000-00000000000b');
                INSERT INTO service_requests (tenant, request_id, submitted_by_email, assigned_to_email, status, created_at) VALUES
                    ('\(Self.tenant)', 'd0000000-0000-4000-8000-000000000001', 'dana@fleet.example', 'tom@repair.example', 'open', '2024-01-01'),
                    ('\(Self.tenant)', 'd0000000-0000-4000-8000-000000000002', '  DANA@Fleet.example ', NULL, 'Done ', '2024-01-02'),
                    ('\(Self.tenant)', 'd0000000-0000-4000-8000-000000000003', 'new.person@fleet.example', 'TOM@repair.example', 'ack', '2024-01-03'),
                    ('\(Self.tenant)', 'd0000000-0000-4000-8000-000000000004', 'New.Person@fleet.example', NULL, 'in progress', '2024-01-04'),
                    ('\(Self.tenant)', 'd0000000-0000-4000-8000-000000000005', 'dana@fleet.example', NULL, 'on hold', '2024-01-05'),
                    ('\(Self.tenant)', 'd0000000-0000-4000-8000-000000000006', 'dana@', NULL, 'open', '2024-01-06'),
                    ('\(Self.tenant)', 'd0000000-0000-4000-8000-000000000007', NULL, NULL, 'closed', '2024-01-07'),
                    ('\(Self.tenant)', 'd0000000-0000-4000-8000-000000000008', 'dana@fleet.example', NULL, 'new', '2024-01-08');
                """)
        let job = ServiceRequestsJob(
            mapping: try ServiceRequestsMapping.load(
                path: TestDatabase.packageRoot.appendingPathComponent("mappings/service-requests.yaml").path),
            conninfo: db.conninfo)
        _ = try SchemaMigrator(connection: db.connection).apply(try job.schemaSteps(using: db.connection))
        return (db, job)
    }

    func tables(_ db: TestDatabase) throws -> [String] { try ["contacts", "service_requests"].map(db.rowsByName) }

    @Test func planListsEveryCaseAndChangesNothing() throws {
        let (db, job) = try fixture()
        let before = try tables(db)
        let summary = try job.plan()
        #expect(try tables(db) == before)
        #expect(summary.requestsRead == 8)
        #expect(summary.requestsRejected == 2)  // on hold; dana@
        #expect(summary.requestsToUpdate == 6)
        #expect(summary.accountingAddsUp)
        #expect(summary.contactsToCreate == 1)  // new.person@fleet.example, once for two requests
        #expect(
            summary.duplicateContacts == [
                "\(Self.tenant): tom@repair.example (2 contacts; c0000000-0000-4000-8000-000000000003 is used)"
            ])
        #expect(
            summary.anomalies[ServiceRequestAnomalyClass.unmappedStatus.rawValue]?.examples.first?.detail
                == "status 'on hold' is not in the mapping's statuses")
        #expect(
            summary.anomalies[ServiceRequestAnomalyClass.malformedEmail.rawValue]?.examples.first?.detail
                == "submitted_by_email 'dana@': email domain '' is not a domain name")
        let report = PlanReport(serviceRequestsSummary: summary, mapping: job.mapping)
        #expect(
            report.statements?.contains { $0.contains("UPDATE \"service_requests\"") } == true,
            "\(report.statements ?? [])")
        for format in PlanReport.Format.allCases {
            #expect(try report.render(format).contains("tom@repair.example"), "\(format)")
        }
        // Contacts that share an email are listed for the reviewer, not counted as a broken check.
        #expect(report.listings?.first?.entries == summary.duplicateContacts)
        #expect(report.checks.allSatisfy { $0.violations == 0 }, "\(report.checks)")
        #expect(report.summaryLines.contains("constraint checks: 4 held"), "\(report.summaryLines)")
        let sampled = Set(summary.samples.flatMap(\.classes))
        #expect(Set(summary.anomalies.keys).isSubset(of: sampled))
    }

    @Test func applyResolvesActorsOnceAndRollbackRestoresBothTables() throws {
        let (db, job) = try fixture()
        let before = try tables(db)
        let summary = try job.apply(db.quietOptions())
        #expect(summary.applied?.contactsCreated == 1)
        #expect(summary.applied?.requestsUpdated == 6)
        #expect(summary.checks.allSatisfy { $0.violations == 0 }, "\(summary.checks)")
        let emergent = try #require(
            try db.scalar("SELECT contact_name_id::text FROM contacts WHERE email = 'new.person@fleet.example'"))
        #expect(
            try db.scalar(
                "SELECT full_name || '|' || contact_type || '|' || (client_id IS NULL) || '|' || first_seen_at::date FROM contacts WHERE email = 'new.person@fleet.example'"
            )
                == "new.person|external|true|2024-01-03")
        #expect(try db.count("SELECT count(*) FROM contacts WHERE lower(email) = 'new.person@fleet.example'") == 1)
        let rows = try db.connection.query(
            """
            SELECT right(request_id::text, 1), status, coalesce(right(submitted_by_contact_id::text, 1), '-'),
                   coalesce(right(assigned_to_contact_id::text, 1), '-'), coalesce(right(fleet_company_id::text, 1), '-'),
                   coalesce(right(supplier_company_id::text, 1), '-')
            FROM service_requests ORDER BY request_id
            """
        ).rows.map { $0.map { $0 ?? "NULL" }.joined(separator: " ") }
        let e = String(emergent.suffix(1))
        #expect(
            rows == [
                "1 new 1 3 a b",  // open → new; the twin stored in canonical form is used
                "2 completed 1 - a -",  // padded, upper-case email; 'Done ' → completed
                "3 acknowledged \(e) 3 - b",  // first sight: a new contact without organization
                "4 in_progress \(e) - - -",  // the same new person, not created twice
                "5 on hold - - - -",  // unmapped status: unchanged
                "6 open - - - -",  // malformed email: unchanged
                "7 completed - - - -",  // no actors
                "8 new 1 - a -",  // already the new status, actor linked
            ])
        // The email columns are kept (expand).
        #expect(
            try db.scalar(
                "SELECT submitted_by_email FROM service_requests WHERE request_id = 'd0000000-0000-4000-8000-000000000002'"
            ) == "  DANA@Fleet.example ")
        let again = try job.apply(db.quietOptions())
        #expect(again.requestsToUpdate == 0 && again.requestsUnchanged == 6 && again.applied?.contactsCreated == 0)
        let rollback = try Rollback(conninfo: db.conninfo).run(summary.runId!, dryRun: false, force: false)
        #expect(rollback.complete && rollback.conflicts.isEmpty)
        #expect(try tables(db) == before)
    }

    @Test func theStatusConstraintComesOnceNoOtherStatusIsLeftAndGoesWithARollback() throws {
        let (db, plain) = try fixture()
        let text = try String(
            contentsOfFile: TestDatabase.packageRoot.appendingPathComponent("mappings/service-requests.yaml").path,
            encoding: .utf8
        )
        .replacingOccurrences(of: "status_constraint: false", with: "status_constraint: true")
        let job = ServiceRequestsJob(
            mapping: try ServiceRequestsMapping(file: "sr.yaml", text: text), conninfo: plain.conninfo)
        // 'on hold' (unmapped) and 'open' (the request with a malformed email) are left: no constraint.
        let first = try job.apply(db.quietOptions())
        #expect(first.statusConstraint == "not added: 2 requests have statuses outside the new set")
        #expect(
            try db.count("SELECT count(*) FROM pg_constraint WHERE conname = 'service_requests_status_new_set'") == 0)
        // The data is fixed by hand; the next apply adds and validates it.
        try db.connection.execute(
            script:
                "UPDATE service_requests SET status = 'declined' WHERE status = 'on hold'; UPDATE service_requests SET status = 'new', submitted_by_email = NULL WHERE status = 'open'"
        )
        let second = try job.apply(db.quietOptions())
        #expect(second.statusConstraint == "added: service_requests_status_new_set")
        #expect(
            try db.scalar(
                "SELECT convalidated::text FROM pg_constraint WHERE conname = 'service_requests_status_new_set'")
                == "true")
        #expect {
            try db.connection.execute(
                script:
                    "INSERT INTO service_requests (tenant, request_id, status) VALUES ('\(Self.tenant)', gen_random_uuid(), 'open')"
            )
        } throws: { ($0 as? PostgresError)?.sqlState == "23514" }
        #expect(try job.apply(db.quietOptions()).statusConstraint == "already present")
        // Rolling back the run that added it drops it first, then restores the rows.
        let rollback = try Rollback(conninfo: db.conninfo).run(second.runId!, dryRun: false, force: false)
        #expect(rollback.complete)
        #expect(
            try db.count("SELECT count(*) FROM pg_constraint WHERE conname = 'service_requests_status_new_set'") == 0)
    }

    @Test func aKilledApplyResumesToTheSameRowsAsAnUninterruptedOne() throws {
        let db = try TestDatabase(samples: 30_000)
        let job = ServiceRequestsJob(
            mapping: try ServiceRequestsMapping.load(
                path: TestDatabase.packageRoot.appendingPathComponent("mappings/service-requests.yaml").path),
            conninfo: db.conninfo)
        _ = try SchemaMigrator(connection: db.connection).apply(try job.schemaSteps(using: db.connection))
        let copyHolder = try DatabaseCopy(of: db)
        defer { withExtendedLifetime(copyHolder) {} }
        let copy = copyHolder.name
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        let atKill = try killApply(
            "mappings/service-requests.yaml", conninfo: db.conninfo, batchSize: 500, after: 5, watcher: watcher)
        #expect(atKill >= 5 && atKill < 60, "killed after \(atKill) of 60 batches")

        // Resumed by its run id, as the interrupted run's message says.
        let resumed = try ferryCLI("resume 1 --batch-size 500 --wait --no-progress", database: db.name)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("service-requests apply, run 1"), "\(resumed.stdout)")
        #expect(
            try watcher.query("SELECT count(*) = max(batch_no) AND max(batch_no) = 60 FROM ferry.batches").scalar == "t"
        )
        #expect(try watcher.query("SELECT status FROM ferry.runs").scalar == "succeeded")
        let again = try ferryCLI("resume 1 --no-progress", database: db.name)
        #expect(again.status == 1)
        #expect(
            again.stderr.contains("run 1 is succeeded; only an interrupted or failed run can be resumed"),
            "\(again.stderr)")

        let uninterrupted = try ferryCLI(
            "apply mappings/service-requests.yaml --batch-size 500 --no-progress", database: copy)
        #expect(uninterrupted.status == 0, "\(uninterrupted.stderr)")
        let copyConnection = try PostgresConnection(conninfo: "dbname=\(copy)")
        defer { copyConnection.close() }
        for table in ["service_requests", "contacts"] {
            // created_at and updated_at of contacts created on first sight are the time of each run.
            let sql =
                "SELECT md5(string_agg(v, '|' ORDER BY v)) FROM (SELECT (to_jsonb(t) - 'created_at' - 'updated_at')::text AS v FROM \(table) t) x"
            #expect(try watcher.query(sql).scalar == copyConnection.query(sql).scalar, "\(table)")
        }
    }

    @Test func aMappingStatusOutsideTheNewSetIsAnErrorWithALine() throws {
        let text = try String(
            contentsOfFile: TestDatabase.packageRoot.appendingPathComponent("mappings/service-requests.yaml").path,
            encoding: .utf8
        )
        .replacingOccurrences(of: "  wip: in_progress", with: "  wip: working")
        #expect { try ServiceRequestsMapping(file: "sr.yaml", text: text) } throws: {
            String(describing: $0).contains("sr.yaml:")
                && String(describing: $0).contains("working is not one of new, acknowledged")
        }
    }
}
