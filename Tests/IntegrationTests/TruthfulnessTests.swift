import Foundation
import Glibc
import TestFiles
import Testing
@testable import FerryKit

/// What ferry says happened is what happened; files it writes replace nothing they must not.
@Suite("Nothing false, nothing clobbered")
struct TruthfulnessTests {
    func shell(_ command: String, database: String) throws -> ProcessResult {
        var environment = ProcessInfo.processInfo.environment
        environment["PGDATABASE"] = database
        environment["FERRY"] = ferryBinary
        return try runProcess(
            "/bin/bash", ["-c", "cd '\(TestDatabase.packageRoot.path)' && \(command)"], environment: environment)
    }

    @Test func aRunWhoseSnapshotsWerePrunedCannotBeRolledBack() throws {
        let db = try importDatabase()
        let first = try db.importFile(try copyOfPartnerFile())
        let contactsAfterFirst = try db.checksum("contacts")
        _ = try db.importFile(
            try temporaryFile("tenant,full name,email\n00000000-0000-4000-8000-000000000002,Kurt,kurt@example.de\n"))

        let dryPrune = try ferryCLI("snapshots prune --older-than 0s --dry-run", database: db.name)
        #expect(dryPrune.status == 0, "\(dryPrune.stderr)")
        #expect(
            dryPrune.stdout.contains("would prune the snapshots of 1 run (nothing was changed)"), "\(dryPrune.stdout)")
        #expect(dryPrune.stdout.contains("run \(first.runId!)"))
        #expect(try db.count("SELECT count(*) FROM ferry.snapshot_rows WHERE run_id = \(first.runId!)") > 0)

        let prune = try ferryCLI("snapshots prune --older-than 0s --yes", database: db.name)
        #expect(prune.status == 0, "\(prune.stderr)")
        #expect(prune.stdout.contains("can no longer be rolled back"), "\(prune.stdout)")

        for flags in ["--dry-run", "--yes"] {
            let rollback = try ferryCLI("rollback \(first.runId!) \(flags)", database: db.name)
            #expect(rollback.status == 1, "\(flags): \(rollback.stdout)")
            #expect(
                rollback.stderr.contains("run \(first.runId!) cannot be rolled back: its snapshots were pruned"),
                "\(rollback.stderr)")
            #expect(!rollback.stdout.contains("rolled back."))
        }
        #expect(try db.checksum("contacts") != contactsAfterFirst, "the second import changed contacts too")
        #expect(
            try db.count("SELECT count(*) FROM contacts WHERE email = 'ada@analytical.example'") == 1,
            "the first import's rows stay")
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = $1", [String(first.runId!)]) == "succeeded")
        #expect(
            try db.count("SELECT count(*) FROM ferry.runs WHERE mode = 'rollback'") == 0, "no rollback run was recorded"
        )
    }

    @Test func aRunThatWroteNothingHasNothingToUndo() throws {
        let db = try importDatabase()
        let headerOnly = try temporaryFile("tenant,full name,email\n")
        let result = try ferryCLI("import '\(headerOnly)' --no-progress", database: db.name)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("nothing was written, so there is nothing to undo"), "\(result.stdout)")
        #expect(!result.stdout.contains("undo with"))
        let runId = try db.scalar("SELECT max(run_id) FROM ferry.runs") ?? ""
        let rollback = try ferryCLI("rollback \(runId) --yes", database: db.name)
        #expect(rollback.status == 0, "\(rollback.stderr)")
        #expect(rollback.stdout.contains("run \(runId) wrote no rows: there is nothing to undo"), "\(rollback.stdout)")
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = $1", [runId]) == "succeeded")
    }

    @Test func aRealImportsReportSaysItIsARunAndWhatItWrote() throws {
        let db = try importDatabase()
        let file = try copyOfPartnerFile()
        let folder = (file as NSString).deletingLastPathComponent
        let dry = try ferryCLI(
            "import '\(file)' --dry-run --no-progress --report '\(folder)/dry.md'", database: db.name)
        #expect(dry.status == 4, "\(dry.stderr)")
        let dryReport = try String(contentsOfFile: "\(folder)/dry.md", encoding: .utf8)
        #expect(
            dryReport.hasPrefix("# ferry dry run: import contacts-csv\n\nNothing was changed: this was a dry run"),
            "\(dryReport.prefix(200))")

        let real = try ferryCLI("import '\(file)' --no-progress --report '\(folder)/run.json'", database: db.name)
        #expect(real.status == 4, "\(real.stderr)")
        let report = try JSONDecoder().decode(
            PlanReport.self, from: Data(contentsOf: URL(fileURLWithPath: "\(folder)/run.json")))
        let runId = Int64(try db.scalar("SELECT max(run_id) FROM ferry.runs") ?? "")
        #expect(report.header.kind == .run && report.header.runId == runId)
        #expect(
            try report.render(.markdown).contains(
                "This run changed the database as counted below; `ferry rollback \(runId!)` undoes it."))
        #expect(!(try report.render(.html).contains("Nothing was changed")))
        // Tenants are listed, and every line is in one tenant's row.
        #expect(report.tenants.map(\.counts.contactsScanned).reduce(0, +) == report.accounting[0].read)
        #expect(report.tenants.contains { $0.tenant == "00000000-0000-4000-8000-000000000001" })
        // Rejected examples show the line as read, not "".
        let examples = report.anomalies.flatMap(\.examples)
        #expect(!examples.isEmpty && examples.allSatisfy { !$0.raw.isEmpty }, "\(examples)")
    }

    @Test func reportsGoThroughPipesAndDevicesWithoutReplacingThem() throws {
        let db = try importDatabase()
        let file = try copyOfPartnerFile()
        let folder = (file as NSString).deletingLastPathComponent
        // /dev/stdout: the report arrives on standard output, and /dev/stdout stays a symlink.
        let stdout = try shell(
            "\"$FERRY\" import '\(file)' --dry-run --no-progress --json --report /dev/stdout > '\(folder)/out.txt'",
            database: db.name)
        #expect(stdout.status == 4, "\(stdout.stderr)")
        #expect(
            try String(contentsOfFile: "\(folder)/out.txt", encoding: .utf8).contains(
                "Nothing was changed: this was a dry run"))
        var info = stat()
        #expect(lstat("/dev/stdout", &info) == 0 && info.st_mode & S_IFMT == S_IFLNK)
        // A process substitution (/dev/fd/N, a pipe).
        let piped = try shell(
            "\"$FERRY\" import '\(file)' --dry-run --no-progress --report >(wc -c > '\(folder)/bytes.txt') --rejects >(cat > '\(folder)/rejects.csv'); status=$?; sleep 0.5; exit $status",
            database: db.name)
        #expect(piped.status == 4, "\(piped.stderr)")
        #expect(!piped.stderr.contains("NSCocoaErrorDomain"))
        let bytes =
            Int(
                try String(contentsOfFile: "\(folder)/bytes.txt", encoding: .utf8).trimmingCharacters(
                    in: .whitespacesAndNewlines)) ?? 0
        #expect(bytes > 500)
        #expect(try String(contentsOfFile: "\(folder)/rejects.csv", encoding: .utf8).hasPrefix("line,reason,"))
        // A symlinked report stays a symlink to the new content.
        try "old".write(toFile: "\(folder)/target.md", atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: "\(folder)/latest.md", withDestinationPath: "target.md")
        let linked = try ferryCLI(
            "import '\(file)' --dry-run --no-progress --report '\(folder)/latest.md'", database: db.name)
        #expect(linked.status == 4, "\(linked.stderr)")
        #expect(lstat("\(folder)/latest.md", &info) == 0 && info.st_mode & S_IFMT == S_IFLNK)
        #expect(
            try String(contentsOfFile: "\(folder)/target.md", encoding: .utf8).hasPrefix(
                "# ferry dry run: import contacts-csv"))
    }

    @Test func planJSONOnStdoutAndTheJSONReportAreOneDocument() throws {
        let db = try TestDatabase(samples: 300)
        _ = try db.applySchema(try db.mapping())
        let path = try temporaryFile("", name: "plan.json")
        let plan = try ferryCLI("plan mappings/phones.yaml --no-progress --json --report '\(path)'", database: db.name)
        #expect(plan.status == 0, "\(plan.stderr)")
        func withoutTime(_ text: String) -> String {
            text.split(separator: "\n").filter { !$0.contains("\"generatedAt\"") }.joined(separator: "\n")
        }
        let file = try String(contentsOfFile: path, encoding: .utf8)
        #expect(withoutTime(plan.stdout) == withoutTime(file))
        #expect(
            plan.stdout.contains("\"schema\" : \"ferry-report/1\"") && plan.stdout.contains("\"changesPending\" : true")
        )
        #expect(
            plan.stdout.contains("\"port\" : \(ProcessInfo.processInfo.environment["PGPORT"] ?? "?"),"),
            "the port is a number")
        let report = try JSONDecoder().decode(PlanReport.self, from: Data(plan.stdout.utf8))
        #expect(report.anomalies.count > 0, "anomalies are a list in both")
        // The mapping's report.tenant_names names every tenant.
        #expect(
            report.tenants.map(\.name) == ["Acme Field Services", "Berliner Anlagenbau GmbH", "Thames Facilities Ltd"],
            "\(report.tenants)")
        #expect(try report.render(.terminal).contains("Acme Field Services (00000000-0000-4000-8000-000000000001)"))
        // The appendix holds the statements apply runs, the same builders the loader uses.
        let statements = report.statements ?? []
        #expect(
            statements.contains { $0.contains("INSERT INTO \"contact_phone_numbers\"") }
                && statements.contains("COMMIT"), "\(statements)")
        #expect(try report.render(.markdown).contains("## Appendix: the SQL apply runs"))
        // Beside the report, every anomaly: as many rows as the classes count.
        let list = try String(contentsOfFile: PlanReport.anomalyListPath(forReport: path), encoding: .utf8)
        #expect(list.hasPrefix("tenant,contact_key,column,raw,class,detail\r\n"))
        #expect(
            list.components(separatedBy: "\r\n").filter { !$0.isEmpty }.count - 1
                == report.anomalies.map(\.count).reduce(0, +))
    }

    @Test func theGrowthEstimateIsNearWhatTheApplyTakes() throws {
        let db = try TestDatabase(samples: 20_000)
        _ = try db.applySchema(try db.mapping())
        let plan = try ferryCLI("plan mappings/phones.yaml --no-progress --json", database: db.name)
        let report = try JSONDecoder().decode(PlanReport.self, from: Data(plan.stdout.utf8))
        let estimate = Double(report.header.estimatedGrowthBytes ?? 0)
        #expect(try report.render(.terminal).contains("growth: about "))
        let before = Double(try db.scalar("SELECT pg_total_relation_size('contact_phone_numbers')") ?? "0") ?? 0
        #expect(try ferryCLI("apply mappings/phones.yaml --no-progress", database: db.name).status == 0)
        let after = Double(try db.scalar("SELECT pg_total_relation_size('contact_phone_numbers')") ?? "0") ?? 0
        print("growth estimate \(Int(estimate)) bytes, measured \(Int(after - before)) bytes")
        #expect(
            estimate > (after - before) / 2 && estimate < (after - before) * 2,
            "estimate \(estimate), grew \(after - before)")
    }

    @Test func withJSONAnErrorIsJSONOnStandardOutput() throws {
        let db = try TestDatabase()
        let missing = try ferryCLI("plan mappings/no-such-mapping.yaml --json", database: db.name)
        #expect(missing.status == 1)
        struct Failure: Decodable {
            struct Body: Decodable { let message: String; let exitCode: Int }
            let error: Body
        }
        let failure = try JSONDecoder().decode(Failure.self, from: Data(missing.stdout.utf8))
        #expect(failure.error.exitCode == 1)
        #expect(failure.error.message.contains("no-such-mapping.yaml"), "\(failure.error.message)")
        // A usage error is not ferry's to format: ArgumentParser exits 64.
        let usage = try ferryCLI("plan --no-such-flag", database: db.name)
        #expect(usage.status == 64, "\(usage.stderr)")
    }
}

@Suite("Resume keeps what the operator said")
struct ResumeOptionsTests {
    @Test func aResumedRunKeepsItsOptionsAndRefusesAChangedMapping() throws {
        let db = try TestDatabase(samples: 30_000)
        _ = try db.applySchema(try db.mapping())
        let folder = Scratch.folder("resume").path
        let mapping = folder + "/phones.yaml"
        try FileManager.default.copyItem(
            atPath: TestDatabase.packageRoot.appendingPathComponent("mappings/phones.yaml").path, toPath: mapping)

        // Started from the mapping's folder with a relative path, small batches and a delay; killed after two batches.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ferryBinary)
        process.arguments = [
            "apply", "phones.yaml", "--db", db.conninfo, "--no-progress", "--batch-size", "1000", "--batch-delay",
            "300ms",
        ]
        process.currentDirectoryURL = URL(fileURLWithPath: folder)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        for _ in 0..<1500 where (Int(try watcher.query("SELECT count(*) FROM ferry.batches").scalar ?? "0") ?? 0) < 2 {
            Thread.sleep(forTimeInterval: 0.02)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let committed = Int(try watcher.query("SELECT count(*) FROM ferry.batches").scalar ?? "0") ?? 0
        #expect(committed >= 2 && committed < 20)
        let runId = try watcher.query("SELECT run_id FROM ferry.runs").scalar ?? ""
        #expect(
            try watcher.query("SELECT mapping_file FROM ferry.runs").scalar == mapping,
            "the mapping is recorded by its absolute path")

        // Resumed from another folder, naming only the run: same batch size, same delay, and it says so.
        let resumed = try runProcess(
            "/bin/sh", ["-c", "cd / && '\(ferryBinary)' resume \(runId) --db '\(db.conninfo)' --no-progress"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(
            resumed.stderr.contains(
                "resuming run \(runId) after batch \(committed) with its options: --batch-delay 300ms --batch-size 1000"
            ),
            "\(resumed.stderr)")
        let contacts = try db.count("SELECT count(*) FROM contacts")
        #expect(
            try db.count("SELECT count(*) FROM ferry.batches") == (contacts + 999) / 1000,
            "every batch held 1,000 contacts")
        #expect(
            try db.count(
                "SELECT count(*) FROM ferry.batches WHERE batch_no > \(committed) AND committed_at - (SELECT committed_at FROM ferry.batches b2 WHERE b2.batch_no = ferry.batches.batch_no - 1) < interval '290 ms'"
            ) == 0,
            "the delay was kept between the resumed batches")

        // A flag given on resume overrides, and the ledger records it; a changed mapping is refused by name.
        try watcher.query("UPDATE ferry.runs SET status = 'interrupted'")
        try (try String(contentsOfFile: mapping, encoding: .utf8) + "\n# edited\n").write(
            toFile: mapping, atomically: true, encoding: .utf8)
        let refused = try runProcess(
            "/bin/sh",
            ["-c", "cd / && '\(ferryBinary)' resume \(runId) --db '\(db.conninfo)' --no-progress --batch-size 500"])
        #expect(refused.status == 1)
        #expect(
            refused.stderr.contains("used another version of \(mapping)")
                && refused.stderr.contains("the mapping changed since the run"),
            "\(refused.stderr)")
        // With the mapping restored, the override is taken and recorded.
        try FileManager.default.removeItem(atPath: mapping)
        try FileManager.default.copyItem(
            atPath: TestDatabase.packageRoot.appendingPathComponent("mappings/phones.yaml").path, toPath: mapping)
        let overridden = try runProcess(
            "/bin/sh",
            ["-c", "cd / && '\(ferryBinary)' resume \(runId) --db '\(db.conninfo)' --no-progress --batch-size 500"])
        #expect(overridden.status == 0, "\(overridden.stderr)")
        #expect(overridden.stderr.contains("--batch-size 500 (the run was started with 1000)"), "\(overridden.stderr)")
        #expect(
            try watcher.query(
                """
                SELECT detail->>'was' || ' -> ' || (detail->>'now') FROM ferry.events WHERE kind = 'option overridden on resume' AND detail->>'option' = 'batch_size'
                """
            ).scalar == "1000 -> 500")
        watcher.close()
    }
}

@Suite("Plan and apply agree on what fuzzing found")
struct FuzzFindingsTests {
    @Test func aLabelInTwoUnicodeFormsIsOneTypeInThePlanAndAfterApply() throws {
        let db = try TestDatabase(samples: 10)
        _ = try db.applySchema(try db.mapping())
        try db.connection.execute(
            script: """
                INSERT INTO contacts (tenant, contact_name_id, full_name, email, phone_number, country)
                SELECT tenant, gen_random_uuid(), 'Composed', 'c@x.test', 'Pag' || U&'\\00E9' || ': 650 253 0000', 'US'
                FROM tenants WHERE country = 'US' ORDER BY tenant LIMIT 1;
                INSERT INTO contacts (tenant, contact_name_id, full_name, email, phone_number, country)
                SELECT tenant, gen_random_uuid(), 'Decomposed', 'd@x.test', 'Page' || U&'\\0301' || ': 650 253 0001', 'US'
                FROM tenants WHERE country = 'US' ORDER BY tenant LIMIT 1;
                """)
        let plan = try db.job().plan()
        #expect(
            plan.customTypesToCreate.filter { $0.lowercased().contains("pag") }.count == 1,
            "\(plan.customTypesToCreate)")
        _ = try db.job().apply(db.quietOptions())
        #expect(
            try db.count("SELECT count(*) FROM contact_phone_type_definitions WHERE normalized_label LIKE 'pag%'") == 1)
        #expect(
            try db.count(
                """
                SELECT count(*) FROM contact_phone_numbers p JOIN contact_phone_type_definitions t
                  ON t.tenant = p.tenant AND t.contact_phone_type_id = p.custom_phone_type_id WHERE t.normalized_label LIKE 'pag%'
                """) == 2)
    }

    @Test func oneRecordOfMillionsOfFieldsIsRejectedWithoutTakingTheMemory() throws {
        let db = try importDatabase()
        var bytes = Array("tenant,full name,email\n".utf8)
        bytes += [UInt8](repeating: UInt8(ascii: ","), count: 8_388_608)
        bytes += Array("\n00000000-0000-4000-8000-000000000001,Ada,ada@x.test\n".utf8)
        let path = try temporaryFile(Data(bytes))
        let result = try ferryCLI("import '\(path)' --dry-run --no-progress --json", database: db.name)
        #expect(result.status == 4, "\(result.stderr)")
        let summary = try JSONDecoder().decode(ImportSummary.self, from: Data(result.stdout.utf8))
        #expect(summary.rowsRead == 2 && summary.rejected == 1 && summary.inserted == 1 && summary.addsUp)
        #expect(summary.rejectExamples.first?.line == 2)
        #expect(
            summary.rejectExamples.first?.reason.hasPrefix(
                "record too large: the record has more than 1,000 fields (8,388,609 fields") == true,
            "\(summary.rejectExamples)")
        #expect(
            summary.peakResidentMegabytes < 150, "peak RSS \(summary.peakResidentMegabytes) MB (693 MB before the cap)")
    }

    @Test func aPlanThatPredictsAConstraintViolationExitsSix() throws {
        let db = try TestDatabase(samples: 200)
        _ = try db.applySchema(try db.mapping())
        // The application's own rule that ferry's rows break: no mobile numbers.
        try db.connection.execute(
            script:
                "ALTER TABLE contact_phone_numbers ADD CONSTRAINT no_mobiles CHECK (canonical_type IS DISTINCT FROM 'mobile')"
        )
        let report = try temporaryFile("", name: "plan.md")
        let plan = try ferryCLI("plan mappings/phones.yaml --no-progress --report '\(report)'", database: db.name)
        #expect(plan.status == 6, "\(plan.stdout)\n\(plan.stderr)")
        #expect(plan.stderr.contains("the plan predicts") && plan.stderr.contains("no_mobiles"), "\(plan.stderr)")
        let markdown = try String(contentsOfFile: report, encoding: .utf8)
        #expect(markdown.contains("VIOLATED of") && markdown.contains("(apply would fail)"), "\(markdown.prefix(800))")
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == 0)
    }
}

@Suite("doctor's fixes never damage the application")
struct DoctorSuggestionTests {
    @Test func aMisspeltColumnGetsTheClosestNameNotDDL() throws {
        let db = try TestDatabase(samples: 20)
        _ = try db.applySchema(try db.mapping())
        let original = try String(
            contentsOfFile: TestDatabase.packageRoot.appendingPathComponent("mappings/phones.yaml").path,
            encoding: .utf8)
        #expect(original.contains("column: phone_number"))
        let mapping = try temporaryFile(
            original.replacingOccurrences(of: "column: phone_number", with: "column: phone_numbr"), name: "phones.yaml")
        let doctor = try ferryCLI("doctor '\(mapping)'", database: db.name)
        #expect(doctor.status == 1)
        #expect(
            doctor.stdout.contains(
                "column contacts.phone_numbr does not exist (named in \(mapping)) (did you mean phone_number?)"),
            "\(doctor.stdout)")
        #expect(!doctor.stdout.contains("ADD COLUMN"), "no DDL for an application's column: \(doctor.stdout)")
    }

    @Test func aColumnFerryAddsPointsToSchemaApplyWithItsType() throws {
        let db = try TestDatabase()
        let doctor = try ferryCLI("doctor mappings/customers.yaml", database: db.name)
        #expect(doctor.status == 1)
        #expect(
            doctor.stdout.contains("column projects.customer_organization_id does not exist (schema step"),
            "\(doctor.stdout)")
        #expect(doctor.stdout.contains("ferry schema apply mappings/customers.yaml"))
        #expect(doctor.stdout.contains("\"customer_organization_id\" uuid"), "the step's own type, not text")
        #expect(!doctor.stdout.contains("\"customer_organization_id\" text"))
    }
}

@Suite("Replica-lag throttle against a real standby")
struct ReplicaLagTests {
    @Test func applyPausesWhileTheStandbyLagsAndGoesOnWhenItCatchesUp() throws {
        guard let port = ProcessInfo.processInfo.environment["PGPORT"] else {
            throw TestSetupError("PGPORT is not set")
        }
        let db = try TestDatabase(samples: 40_000)
        _ = try db.applySchema(try db.mapping())
        let folder = Scratch.folder("standby").path
        let script = TestDatabase.packageRoot.appendingPathComponent("scripts/pg.sh").path
        let started = try runProcess(script, ["standby", folder, port])
        #expect(started.status == 0, "\(started.stderr)")
        defer { _ = try? runProcess(script, ["stop", folder]) }
        let env = try String(contentsOfFile: folder + "/env", encoding: .utf8)
        let standbyPort =
            env.split(separator: "=").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        let standby = try PostgresConnection(conninfo: "host=127.0.0.1 port=\(standbyPort) dbname=postgres")
        defer { standby.close() }
        // Wait until the primary sees the standby streaming.
        for _ in 0..<200 where try db.count("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") < 1 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(try db.count("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") >= 1)
        try standby.query("SELECT pg_wal_replay_pause()")

        let process = Process()
        process.executableURL = URL(fileURLWithPath: ferryBinary)
        process.arguments = [
            "apply", "mappings/phones.yaml", "--db", db.conninfo, "--no-progress", "--batch-size", "1000",
            "--max-replica-lag", "1s",
        ]
        process.currentDirectoryURL = TestDatabase.packageRoot
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        // While replay is paused the lag only grows: ferry must stop within one batch of passing the bound.
        let watcher = try PostgresConnection(conninfo: db.conninfo)
        defer { watcher.close() }
        func batches() throws -> Int { Int(try watcher.query("SELECT count(*) FROM ferry.batches").scalar ?? "0") ?? 0 }
        var overBound: Int?
        var lastCount = 0
        for _ in 0..<300 {
            Thread.sleep(forTimeInterval: 0.05)
            lastCount = try batches()
            let lag =
                Double(
                    try watcher.query(
                        """
                        SELECT coalesce(max(extract(epoch FROM greatest(replay_lag, write_lag, flush_lag))), 0) FROM pg_stat_replication
                        """
                    ).scalar ?? "0") ?? 0
            if overBound == nil, lag > 1 { overBound = lastCount }
            if let overBound, lastCount > overBound + 1 { break }
        }
        Thread.sleep(forTimeInterval: 2)
        let whilePaused = try batches()
        #expect(overBound != nil, "the lag never passed the bound: nothing was tested")
        #expect(
            whilePaused <= (overBound ?? 0) + 1,
            "batches went on while the standby lagged: \(overBound ?? -1) → \(whilePaused)")
        #expect(whilePaused < 40, "the run finished while the standby lagged")
        print(
            "replica-lag test: the lag passed 1 s with \(overBound ?? -1) batches committed; \(whilePaused) while replay stayed paused"
        )
        #expect(process.isRunning)

        try standby.query("SELECT pg_wal_replay_resume()")
        process.waitUntilExit()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(stderr)")
        #expect(stderr.contains("exceeds 1.0 s: pausing before batch"), "\(stderr)")
        #expect(try batches() == 40, "every batch committed once replay went on")
    }
}

@Suite("Destructive commands ask first")
struct ConfirmationTests {
    /// Runs ferry on a pseudo-terminal (util-linux `script`), typing `answer`.
    func onTerminal(_ arguments: String, answer: String, database: String) throws -> ProcessResult {
        var environment = ProcessInfo.processInfo.environment
        environment["PGDATABASE"] = database
        let command = ferryCommand(arguments)
        return try runProcess(
            "/bin/sh", ["-c", "printf '\(answer)\\n' | script -qec \"\(command)\" /dev/null"], environment: environment)
    }

    @Test func rollbackAsksOnATerminalAndRefusesWithoutOneUnlessYes() throws {
        let db = try importDatabase()
        let run = try db.importFile(try copyOfPartnerFile()).runId!
        let before = try db.checksum("contacts")
        let unattended = try ferryCLI("rollback \(run)", database: db.name)
        #expect(unattended.status == 1)
        #expect(
            unattended.stderr.contains("pass --yes to confirm when not running on a terminal"), "\(unattended.stderr)")
        let pruneUnattended = try ferryCLI("snapshots prune --older-than 0s --all", database: db.name)
        #expect(pruneUnattended.status == 1 && pruneUnattended.stderr.contains("--yes"), "\(pruneUnattended.stderr)")
        #expect(try db.checksum("contacts") == before)
        #expect(try db.count("SELECT count(*) FROM ferry.snapshot_rows WHERE run_id = \(run)") > 0)

        let declined = try onTerminal("rollback \(run)", answer: "n", database: db.name)
        #expect(declined.stdout.contains("Roll back run \(run)? [y/N]"), "\(declined.stdout)")
        #expect(declined.stdout.contains("to undo"), "the prompt shows what will happen: \(declined.stdout)")
        #expect(declined.stdout.contains("nothing was changed"))
        #expect(try db.checksum("contacts") == before)
        #expect(try db.count("SELECT count(*) FROM ferry.runs WHERE mode = 'rollback'") == 0)

        let accepted = try onTerminal("rollback \(run)", answer: "y", database: db.name)
        #expect(accepted.stdout.contains("run \(run) is rolled back."), "\(accepted.stdout)")
        #expect(try db.checksum("contacts") != before)
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = $1", [String(run)]) == "rolled_back")
    }
}

@Suite("What ferry says about itself and its sessions")
struct IdentityTests {
    @Test func versionNamesTheCommitTheLibrariesAndTheServer() throws {
        let db = try TestDatabase()
        let result = try ferryCLI("--version", database: db.name)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let head = try runProcess(
            "/usr/bin/git", ["-C", TestDatabase.packageRoot.path, "rev-parse", "--short=12", "HEAD"]
        ).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(lines.first?.hasPrefix("ferry \(FerryVersion.current) (commit \(head)") == true, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("libpq 15.") })
        #expect(lines.contains("libphonenumber 8.12.57+ds-3 (RE2)"), "\(lines)")
        #expect(
            lines.contains { $0.hasPrefix("server PostgreSQL 15.") && $0.contains("(database \(db.name), user ") },
            "\(lines)")
    }

    @Test func theDBAsApplicationNameIsKeptWithFerrysAfterIt() throws {
        #expect(
            PostgresConnection.applicationName("ferry apply phones", conninfo: "", environment: [:])
                == "ferry apply phones")
        #expect(
            PostgresConnection.applicationName("ferry ledger", conninfo: "", environment: ["PGAPPNAME": "nightly-etl"])
                == "nightly-etl (ferry ledger)")
        #expect(
            PostgresConnection.applicationName(
                "ferry ledger", conninfo: "postgresql://h/db?application_name=etl", environment: ["PGAPPNAME": "x"])
                == "etl (ferry ledger)")
        let db = try TestDatabase()
        let connection = try PostgresConnection(
            conninfo: "dbname=\(db.name) application_name=nightly", applicationName: "ferry apply phones")
        #expect(try connection.query("SHOW application_name").scalar == "nightly (ferry apply phones)")
    }
}

@Suite("Output conventions: quiet, verbose, colour, JSON logs")
struct OutputConventionTests {
    @Test func jsonLogsAreOneObjectPerEventOnStderr() throws {
        let db = try TestDatabase(samples: 2_500)
        _ = try db.applySchema(try db.mapping())
        let apply = try ferryCLI(
            "apply mappings/phones.yaml --batch-size 1000 --no-progress --log-format json", database: db.name)
        #expect(apply.status == 0, "\(apply.stderr)")
        let events = try apply.stderr.split(separator: "\n").map { line in
            try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
        }
        #expect(
            events.map { $0["event"] as? String ?? "?" } == [
                "run started", "batch committed", "batch committed", "batch committed", "run finished",
            ],
            "\(apply.stderr)")
        #expect(events.allSatisfy { $0["time"] is String && $0["level"] is String })
        // Numbers are JSON numbers; the last event carries the run's totals, which add up to its batches'.
        #expect(events[1]["batch"] as? Int == 1 && events[1]["run"] as? Int == 1 && events[1]["rows_inserted"] is Int)
        #expect(events.last?["status"] as? String == "succeeded")
        let batchRows = events.dropLast().compactMap { $0["rows_inserted"] as? Int }.reduce(0, +)
        #expect(batchRows > 0 && events.last?["rows_inserted"] as? Int == batchRows, "\(apply.stderr)")
        #expect(events.last?["batches"] as? Int == 3 && events.last?["seconds"] is Double, "\(apply.stderr)")
        #expect(
            try db.count(
                "SELECT (SELECT count(*) FROM contact_phone_numbers) + (SELECT count(*) FROM contact_phone_type_definitions)"
            )
                == batchRows, "the totals are the rows written")
        let failed = try ferryCLI("plan mappings/no-such.yaml --log-format json", database: db.name)
        #expect(failed.status == 1)
        let error = try JSONSerialization.jsonObject(with: Data(failed.stderr.utf8)) as? [String: Any]
        #expect(
            error?["level"] as? String == "error" && (error?["event"] as? String ?? "").contains("no-such.yaml"),
            "\(failed.stderr)")
    }

    @Test func quietPrintsNothingVerboseNotesEveryBatchAndColourFollowsTheFlagAndNoColor() throws {
        let db = try TestDatabase(samples: 3_000)
        _ = try db.applySchema(try db.mapping())
        let quiet = try ferryCLI("plan mappings/phones.yaml -q", database: db.name)
        #expect(quiet.status == 0 && quiet.stdout.isEmpty && quiet.stderr.isEmpty, "\(quiet.stdout)\(quiet.stderr)")
        let verbose = try ferryCLI("apply mappings/phones.yaml --batch-size 1000 -v --no-progress", database: db.name)
        #expect(verbose.status == 0, "\(verbose.stderr)")
        #expect(verbose.stderr.components(separatedBy: "ferry: batch committed (").count - 1 == 3, "\(verbose.stderr)")
        #expect(
            verbose.stderr.contains("ferry: batch committed (batch=1 job=phones records=1000 "), "\(verbose.stderr)")
        #expect(!verbose.stdout.contains("\u{1B}["), "no colour when stdout is not a terminal")
        let coloured = try ferryCLI("plan mappings/phones.yaml --color always --no-progress", database: db.name)
        #expect(coloured.stdout.contains("\u{1B}[1mContacts\u{1B}[0m"), "\(coloured.stdout.prefix(300))")
        // On a terminal colour is on by default, and NO_COLOR turns it off.
        var environment = ProcessInfo.processInfo.environment
        environment["PGDATABASE"] = db.name
        environment.removeValue(forKey: "NO_COLOR")
        let command = ferryCommand("plan mappings/phones.yaml --no-progress")
        let onTerminal = try runProcess("/usr/bin/script", ["-qec", command, "/dev/null"], environment: environment)
        #expect(onTerminal.stdout.contains("\u{1B}[1mContacts"))
        environment["NO_COLOR"] = "1"
        let noColour = try runProcess("/usr/bin/script", ["-qec", command, "/dev/null"], environment: environment)
        #expect(
            noColour.stdout.contains("Contacts") && !noColour.stdout.contains("\u{1B}[1m"),
            "\(noColour.stdout.prefix(300))")
    }
}

@Suite("The progress line on a real terminal")
struct ProgressLineTests {
    /// Under a pseudo-terminal 32 columns wide (script(1), as a tmux pane would be), every frame of the
    /// progress line fits the width: cut with "…", never wrapped onto a second line.
    @Test func everyFrameFitsTheTerminalsWidth() throws {
        let db = try TestDatabase(samples: 20_000)
        _ = try db.applySchema(try db.mapping())
        var environment = ProcessInfo.processInfo.environment
        environment["PGDATABASE"] = db.name
        let command = "stty cols 32; " + ferryCommand("apply mappings/phones.yaml --batch-size 500 >/dev/null")
        let run = try runProcess("/usr/bin/script", ["-qec", command, "/dev/null"], environment: environment)
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        let plain = run.stdout.replacingOccurrences(
            of: "\u{1B}\\[[0-9;?]*[A-Za-z]", with: "", options: .regularExpression)
        let frames = plain.split(whereSeparator: { $0 == "\r" || $0 == "\n" || $0 == "\r\n" }).map(String.init)
            .filter { $0.hasPrefix("apply phones:") }
        #expect(frames.count >= 2, "\(plain)")
        #expect(frames.allSatisfy { $0.count <= 31 }, "\(frames)")
        #expect(frames.contains { $0.hasSuffix("…") }, "a frame wider than the terminal is cut: \(frames)")
        #expect(try db.count("SELECT count(*) FROM ferry.runs WHERE status = 'succeeded'") == 1)
    }
}

@Suite("The manual page")
struct ManualPageTests {
    @Test func theCommittedManPageRendersAndCoversEveryCommand() throws {
        let page = TestDatabase.packageRoot.appendingPathComponent("docs/man/ferry.1").path
        let rendered = try runProcess("/usr/bin/groff", ["-man", "-Tutf8", "-P", "-c", "-P", "-b", "-P", "-u", page])
        #expect(rendered.status == 0, "\(rendered.stderr)")
        let help = try runProcess(ferryBinary, ["--help"]).stdout
        // Every subcommand `ferry --help` lists is in the page (regenerate with `make man` when one is added).
        let commands =
            help.components(separatedBy: "SUBCOMMANDS:").last?.split(separator: "\n")
            .compactMap { $0.split(separator: " ").first.map(String.init) }.filter { !$0.isEmpty && $0 != "See" } ?? []
        #expect(commands.count >= 12, "\(commands)")
        for command in commands {
            #expect(rendered.stdout.contains(command), "\(command) is missing from docs/man/ferry.1")
        }
        #expect(rendered.stdout.contains("--yes"), "the page predates rollback's --yes: run make man")
    }
}

@Suite("The password prompt")
struct PasswordPromptTests {
    @Test func aPasswordIsAskedOnATerminalNeverEchoedAndRequiredElsewhere() throws {
        let folder = Scratch.folder("password-cluster").path
        let script = TestDatabase.packageRoot.appendingPathComponent("scripts/pg.sh").path
        var environment = ProcessInfo.processInfo.environment
        environment["FERRY_PG_PASSWORD"] = "s3cret pw"
        let started = try runProcess(script, ["start", folder], environment: environment)
        #expect(started.status == 0, "\(started.stderr)")
        defer { _ = try? runProcess(script, ["stop", folder]) }
        let env = try String(contentsOfFile: folder + "/env", encoding: .utf8)
        let port =
            env.split(separator: "\n").first { $0.contains("PGPORT=") }?.split(separator: "=").last.map(String.init)
            ?? ""
        environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "FERRY_PG_PASSWORD")
        environment.removeValue(forKey: "PGPASSWORD")
        environment["PGPORT"] = port
        environment["PGDATABASE"] = "postgres"
        environment["PGHOST"] = "127.0.0.1"

        let unattended = try runProcess(ferryBinary, ["runs"], environment: environment)
        #expect(unattended.status == 1)
        #expect(
            unattended.stderr.contains("the server wants a password: put it in ~/.pgpass or PGPASSWORD"),
            "\(unattended.stderr)")

        func typed(_ answer: String, _ arguments: String = "runs") throws -> ProcessResult {
            // Typed after the prompt is up, as a person would (typed-ahead input would be echoed by the pty).
            try runProcess(
                "/bin/sh",
                ["-c", "(sleep 1; printf '\(answer)\\n') | script -qec \"'\(ferryBinary)' \(arguments)\" /dev/null"],
                environment: environment)
        }
        let right = try typed("s3cret pw")
        #expect(right.stdout.contains("Password for user postgres: "), "\(right.stdout)")
        #expect(!right.stdout.contains("s3cret"), "the password was echoed: \(right.stdout)")
        #expect(right.stdout.contains("this database has no ferry ledger"), "connected: \(right.stdout)")
        let wrong = try typed("nope")
        #expect(
            wrong.stdout.contains("password authentication failed") && !wrong.stdout.contains("nope"), "\(wrong.stdout)"
        )
        let forced = try typed("s3cret pw", "runs -W")
        #expect(
            forced.stdout.contains("Password: ") && forced.stdout.contains("this database has no ferry ledger"),
            "\(forced.stdout)")
    }
}
