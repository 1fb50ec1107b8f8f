import Foundation
import TestFiles
import Testing
@testable import FerryKit

/// A fresh database on the throwaway cluster that `make test` starts (PG* variables point at it).
/// Each test gets its own, so tests can run in parallel.
final class TestDatabase: @unchecked Sendable {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let psql = "/usr/lib/postgresql/15/bin/psql"

    let name: String
    let connection: PostgresConnection
    var conninfo: String { "dbname=\(name)" }

    /// `empty`: no sample schema (the test creates its own tables).
    init(samples contacts: Int? = nil, empty: Bool = false) throws {
        guard ProcessInfo.processInfo.environment["PGHOST"] != nil else {
            throw TestSetupError("no PostgreSQL cluster: run the tests with `make test` (PGHOST is not set)")
        }
        name = "ferry_test_\(UUID().uuidString.prefix(8).lowercased())"
        if Self.onCitus {
            let created = try runProcess(
                Self.packageRoot.appendingPathComponent("scripts/citus.sh").path, ["createdb", name])
            guard created.status == 0 else { throw TestSetupError("scripts/citus.sh createdb: \(created.stderr)") }
        } else {
            let admin = try PostgresConnection(conninfo: "dbname=postgres")
            try admin.execute(script: "CREATE DATABASE \(quoteIdentifier(name))")
        }
        connection = try PostgresConnection(conninfo: "dbname=\(name)")
        if empty { return }
        try runPSQL(file: "samples/schema.sql")
        if Self.onCitus { try runPSQL(file: "samples/citus.sql") }
        if let contacts {
            try runPSQL(file: "samples/generate.sql", variables: ["contacts": String(contacts)])
        }
    }

    /// The Citus tier (`make test-citus`): PG* point at a coordinator, FERRY_CITUS_WORKERS lists its
    /// workers' ports, and each test database is created on every node with the sample schema distributed.
    static var onCitus: Bool { ProcessInfo.processInfo.environment["FERRY_CITUS_WORKERS"] != nil }

    static var citusWorkerPorts: [String] {
        (ProcessInfo.processInfo.environment["FERRY_CITUS_WORKERS"] ?? "").split(separator: " ").map(String.init)
    }

    deinit {
        connection.close()
        // Citus 12.1 creates and drops databases on the coordinator only: the workers' copies go one by one.
        for port in [nil] + (Self.onCitus ? Self.citusWorkerPorts : []) {
            if let admin = try? PostgresConnection(conninfo: "dbname=postgres" + (port.map { " port=\($0)" } ?? "")) {
                _ = try? admin.execute(script: "DROP DATABASE IF EXISTS \(quoteIdentifier(name)) WITH (FORCE)")
            }
        }
    }

    /// The path of `name` among this database's files (in the test process's `Scratch` folder).
    func scratchFile(_ name: String) -> String {
        let folder = Scratch.root.appendingPathComponent(self.name)
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder.appendingPathComponent(name).path
    }

    func runPSQL(file: String, variables: [String: String] = [:]) throws {
        var arguments = [
            "-q", "-X", "-v", "ON_ERROR_STOP=1", "-d", name, "-f", Self.packageRoot.appendingPathComponent(file).path,
        ]
        for (key, value) in variables { arguments += ["-v", "\(key)=\(value)"] }
        let result = try runProcess(Self.psql, arguments)
        guard result.status == 0 else { throw TestSetupError("psql \(file) failed: \(result.stderr)") }
    }

    func scalar(_ sql: String, _ parameters: [String?] = []) throws -> String? {
        try connection.query(sql, parameters).scalar
    }

    func count(_ sql: String) throws -> Int {
        Int(try scalar(sql) ?? "") ?? -1
    }

    /// An order-independent fingerprint of a table's rows.
    func checksum(_ table: String) throws -> String {
        try scalar("SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), 'empty') FROM \(table) t") ?? ""
    }

    func mapping(_ path: String = "mappings/phones.yaml") throws -> PhonesMapping {
        try PhonesMapping.load(path: Self.packageRoot.appendingPathComponent(path).path)
    }

    func applySchema(_ mapping: PhonesMapping) throws -> [String] {
        let job = PhonesJob(mapping: mapping, conninfo: conninfo)
        return try SchemaMigrator(connection: connection).apply(try job.schemaSteps(using: connection)).applied
    }
}

struct TestSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

struct ProcessResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil
) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self))
}

/// The built `ferry` executable, for tests of exit codes and output.
var ferryBinary: String {
    ProcessInfo.processInfo.environment["FERRY_BIN"]
        ?? TestDatabase.packageRoot.appendingPathComponent(".build/debug/ferry").path
}

/// The shell command that runs ferry with `arguments` from the package root, as a user runs it from a
/// checkout; the snapshots `schema apply` takes go among the test process's files, not into the checkout.
func ferryCommand(_ arguments: String) -> String {
    let snapshots =
        arguments.hasPrefix("schema apply") && !arguments.contains("--snapshot-dir")
        ? " --snapshot-dir '\(Scratch.root.path)/schema-snapshots'" : ""
    return "cd '\(TestDatabase.packageRoot.path)' && exec '\(ferryBinary)' \(arguments)\(snapshots)"
}

/// Runs ferry (`ferryCommand`) in `environment` (by default the tests'); `database` becomes PGDATABASE.
func ferryCLI(
    _ arguments: String, database: String? = nil, environment given: [String: String]? = nil
) throws -> ProcessResult {
    var environment = given ?? ProcessInfo.processInfo.environment
    if let database { environment["PGDATABASE"] = database }
    return try runProcess("/bin/sh", ["-c", ferryCommand(arguments)], environment: environment)
}

/// An identical copy of a test database (for an uninterrupted run to compare with), dropped when released.
final class DatabaseCopy {
    let name: String
    private let admin: PostgresConnection

    /// Closes `db`'s own session: PostgreSQL copies only a database nobody is connected to.
    init(of db: TestDatabase) throws {
        name = "\(db.name)_copy"
        admin = try PostgresConnection(conninfo: "dbname=postgres")
        db.connection.close()
        try admin.execute(script: "CREATE DATABASE \(quoteIdentifier(name)) TEMPLATE \(quoteIdentifier(db.name))")
    }

    deinit { _ = try? admin.execute(script: "DROP DATABASE IF EXISTS \(quoteIdentifier(name)) WITH (FORCE)") }
}

/// Starts `ferry apply MAPPING --batch-size N` and kills it with SIGKILL once `batches` batches are
/// committed (as `watcher` sees ferry.batches); returns how many were committed at the kill.
func killApply(
    _ mapping: String, conninfo: String, batchSize: Int, after batches: Int, watcher: PostgresConnection
) throws -> Int {
    try signalApply(mapping, conninfo: conninfo, batchSize: batchSize, after: batches, watcher: watcher).committed
}

/// `killApply` with another signal: also returns the process's exit status and standard error.
func signalApply(
    _ mapping: String, conninfo: String, batchSize: Int, after batches: Int, watcher: PostgresConnection,
    signal number: Int32 = SIGKILL
) throws -> (committed: Int, status: Int32, stderr: String) {
    try signalFerry(
        ["apply", mapping, "--batch-size", String(batchSize)], conninfo: conninfo, after: batches, watcher: watcher,
        signal: number)
}

/// Runs ferry with `arguments` and sends it `signal` once `batches` batches are committed (as
/// `watcher` sees ferry.batches); returns how many were committed then, its exit status and stderr.
func signalFerry(
    _ arguments: [String], conninfo: String, after batches: Int, watcher: PostgresConnection, signal number: Int32
) throws -> (committed: Int, status: Int32, stderr: String) {
    try interruptFerry(arguments, conninfo: conninfo, after: batches, watcher: watcher) {
        kill($0.processIdentifier, number)
    }
}

/// Runs ferry with `arguments` (and `--db`, `--no-progress`) until `batches` batches are committed, then
/// calls `interrupt` (a signal, a terminated session) and waits for ferry to exit. Returns the batches
/// committed by then, the exit status and stderr.
func interruptFerry(
    _ arguments: [String], conninfo: String, after batches: Int, watcher: PostgresConnection,
    interrupt: (Process) throws -> Void
) throws -> (committed: Int, status: Int32, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: ferryBinary)
    process.arguments = arguments + ["--db", conninfo, "--no-progress"]
    process.currentDirectoryURL = TestDatabase.packageRoot
    process.standardOutput = FileHandle.nullDevice
    let errors = Pipe()
    process.standardError = errors
    try process.run()
    var committed = 0
    for _ in 0..<1500 where committed < batches {
        Thread.sleep(forTimeInterval: 0.02)
        committed = Int(try watcher.query("SELECT count(*) FROM ferry.batches").scalar ?? "0") ?? 0
    }
    try interrupt(process)
    let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (
        Int(try watcher.query("SELECT count(*) FROM ferry.batches").scalar ?? "0") ?? 0, process.terminationStatus,
        stderr
    )
}

/// Runs ferry with `arguments` (and `--db`) while another session holds `lock` in an open transaction
/// (a LOCK TABLE statement, or an uncommitted row with a key the batch writes): once the first batch
/// waits for it (and, with `readAhead`, the next pages have been read), `meanwhile` runs in that
/// transaction, which then commits. As an application that changes rows after ferry read them and
/// before their batch is written. Returns the exit status and stdout.
func runWhileTheFirstBatchWaits(
    _ db: TestDatabase, _ arguments: [String], session: String, lock: String, meanwhile: String = "",
    readAhead: Bool = true
) throws -> (status: Int32, stdout: Data) {
    let application = try PostgresConnection(conninfo: db.conninfo)
    defer { application.close() }
    try application.execute(script: "BEGIN; \(lock)")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: ferryBinary)
    process.arguments = arguments + ["--db", db.conninfo]
    process.currentDirectoryURL = TestDatabase.packageRoot
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let watcher = try PostgresConnection(conninfo: db.conninfo)
    defer { watcher.close() }
    var waiting = false
    for _ in 0..<1000 where !waiting {
        Thread.sleep(forTimeInterval: 0.01)
        waiting =
            try watcher.query(
                """
                SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'
                """,
                [session]
            ).scalar != "0"
    }
    #expect(waiting, "the first batch never waited for the lock")
    // The extractor reads ahead while the first batch waits.
    if readAhead { Thread.sleep(forTimeInterval: 1) }
    try application.execute(script: meanwhile + "; COMMIT")
    let stdout = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, stdout)
}

/// Runs `body` while another session holds `lock` in an open transaction. Once a session named
/// `session` waits for that lock, `meanwhile` runs on a session of its own (a DBA's
/// `pg_terminate_backend`, say), then the transaction commits and `body` goes on. Returns how `body`
/// ended and whether the session was seen waiting.
func whileASessionWaits<T>(
    _ db: TestDatabase, session: String, lock: String, meanwhile: String, _ body: () throws -> T
) throws -> (outcome: Result<T, Error>, waited: Bool) {
    let application = try PostgresConnection(conninfo: db.conninfo)
    defer { application.close() }
    try application.execute(script: "BEGIN; \(lock)")
    let watcher = try PostgresConnection(conninfo: db.conninfo)
    defer { watcher.close() }
    let waited = Flag()
    let released = DispatchSemaphore(value: 0)
    Thread {
        defer { released.signal() }
        for _ in 0..<2000 where !waited.value {
            Thread.sleep(forTimeInterval: 0.01)
            let waiting = try? watcher.query(
                """
                SELECT count(*) FROM pg_stat_activity
                WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'
                """, [session]
            ).scalar
            if let waiting, waiting != "0" { waited.set() }
        }
        if waited.value { _ = try? watcher.execute(script: meanwhile) }
        _ = try? application.execute(script: "COMMIT")
    }.start()
    let outcome = Result { try body() }
    released.wait()
    return (outcome, waited.value)
}

/// A flag one thread sets and another reads.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false
    var value: Bool { lock.withLock { raised } }
    func set() { lock.withLock { raised = true } }
}

/// Runs `query` every 10 ms on a session of its own until `stop()`, which returns every value it returned.
final class SessionSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var values = Set<String>()
    private var running = true
    private let finished = DispatchSemaphore(value: 0)

    init(conninfo: String, query: String) {
        Thread { [self] in
            defer { finished.signal() }
            guard let connection = try? PostgresConnection(conninfo: conninfo) else { return }
            defer { connection.close() }
            while lock.withLock({ running }) {
                if let rows = try? connection.query(query).rows {
                    let found = rows.compactMap { $0.first ?? nil }
                    lock.withLock { values.formUnion(found) }
                }
                Thread.sleep(forTimeInterval: 0.01)
            }
        }.start()
    }

    func stop() -> Set<String> {
        lock.withLock { running = false }
        finished.wait()
        return lock.withLock { values }
    }
}
