/// Whether a run only reads (a plan, in a READ ONLY snapshot) or writes (an apply, through the ledger).
public enum RunMode: String, Codable, Sendable { case plan, apply }

/// What every job's summary carries besides its own counts, so one runner can fill it in.
public protocol MigrationSummary: Encodable, Sendable {
    associatedtype Applied: AppliedCounts
    var database: ConnectionInfo? { get set }
    var checks: [ConstraintCheck] { get set }
    var applied: Applied? { get set }
    var runId: Int64? { get set }
    var elapsedSeconds: Double { get set }
    var peakResidentMegabytes: Double { get set }
    /// (plan) The SQL apply would run, for the report's appendix.
    var applyStatements: [String]? { get set }
    /// (apply --snapshot-file) The file the run's snapshot was written to.
    var snapshotFile: SnapshotFile.Written? { get set }
    /// Whether apply would change anything (`plan --detailed-exitcode` exits 2).
    var changesPending: Bool { get }
}

/// What an apply did, counted batch by batch.
public protocol AppliedCounts: Codable, Sendable {
    init()
    var batchesCommitted: Int { get set }
}

/// One batch as it travels from the transform to a sink: the records read, one decision each, and the
/// keyset positions of its first and last record (the cursor the ledger commits with it).
struct MigrationBatch<Record: Sendable, Decision: Sendable>: Sendable {
    let number: Int
    let records: [Record]
    let decisions: [Decision]
    let firstKey: [String]
    let lastKey: [String]

    /// The batch's one tenant: on Citus the extract reads a tenant at a time, and the batch's statements
    /// name it so that Citus runs each on the one shard group that holds it.
    func onlyTenant() throws -> String {
        guard let first = firstKey.first, first == lastKey.first else {
            throw LedgerError("batch \(number) holds more than one tenant's rows; on Citus a batch holds one")
        }
        return first
    }
}

/// Accumulates a summary from a run's decisions; memory stays bounded by the examples it keeps.
protocol SummaryBuilding {
    associatedtype Record
    associatedtype Decision
    associatedtype Summary
    mutating func add(_ decision: Decision, of record: Record) throws
    /// A whole batch, row by row (see `TableMigration.decide`: one call per batch).
    mutating func add(_ decisions: [Decision], of records: [Record]) throws
    /// The summary once every batch is in (a builder that writes a file closes it here).
    mutating func finish() throws -> Summary
}

extension SummaryBuilding {
    mutating func add(_ decisions: [Decision], of records: [Record]) throws {
        for index in records.indices { try add(decisions[index], of: records[index]) }
    }
}

/// What one committed batch wrote, as `ferry.batches` records it.
protocol BatchWrites: Codable {
    var rowsInserted: Int { get }
    var rowsUpdated: Int { get }
    var rowsDeleted: Int { get }
}

extension BatchWrites {
    var rowsDeleted: Int { 0 }
}

/// The apply sink of one job: writes a batch, its snapshot rows and its cursor in one transaction.
protocol BatchLoader: AnyObject {
    associatedtype Record: Sendable
    associatedtype Decision: Sendable
    associatedtype Result: BatchWrites
    /// Writes the batch in one transaction. `onlyRowsStillThere`: a first try hit a foreign key, because
    /// the application deleted a row the batch read (a contact, a project) after it was read: write the
    /// batch for the rows still there (those gone count as skipped at load).
    func load(_ batch: MigrationBatch<Record, Decision>, onlyRowsStillThere: Bool) throws -> Result
    /// Replaces a lost session (the retry policy calls it before trying the batch again).
    func reconnect() throws
}

/// Where a job's records come from: one table (or view) walked in keyset order by (tenant, key).
/// The job's extract statement returns its keyset first (`ferry_tenant`, `ferry_key`) and takes
/// ($1 tenant, $2 key) to start after (NULL for the first page), $3 the page size (NULL: no limit) and
/// $4 the tenants to read (a text array; NULL: every tenant).
struct KeysetSource: Sendable {
    let table: TableName
    let tenantColumn: String
    /// The key that pages it: unique within a tenant (a table's primary key; a view's declared key,
    /// which the runner checks before reading).
    let keyColumn: String
    /// What one record is, in words ("contacts", "projects").
    let noun: String
    /// A SELECT the records are read from instead of `table` (the mapping's `source.query`).
    var query: String? = nil

    /// What the extract reads, as a FROM item: the table's name, or the query as a subquery.
    var fromItem: String { query.map(subquery) ?? table.quoted }

    /// What keyset paging stands on is not proved by an index: a view's or a query's declared key.
    func keyIsOnlyDeclared(_ connection: PostgresConnection) throws -> Bool {
        try query != nil || connection.isView(table)
    }

    /// How a refusal names it: the view, or the mapping's query.
    var described: String { query == nil ? "view \(table)" : "the query source.query" }
}

/// `text` (a SELECT) as a FROM item.
func subquery(_ text: String) -> String { "(\n\(text)\n)" }

/// What the engine reads of every job's mapping file.
public protocol JobMapping: Sendable {
    var file: String { get }
    var sha256: String { get }
    var load: LoadSettings { get }
    var report: ReportSettings { get }
}

/// A job that migrates rows already in the database: only what is the job's own. `JobRunner` gives
/// every such job plan, plan files with drift refusal, apply, resume, `--tenant`, snapshot files,
/// pacing, retries, progress and summaries, the same way.
protocol TableMigration: JobSchema {
    associatedtype Record: Sendable
    associatedtype Decision: Sendable
    associatedtype Summary: MigrationSummary
    associatedtype Builder: SummaryBuilding
    where Builder.Record == Record, Builder.Decision == Decision, Builder.Summary == Summary
    associatedtype Loader: BatchLoader where Loader.Record == Record, Loader.Decision == Decision
    /// The job's statements, built once per session from the mapping and the live key types.
    associatedtype Statements: Sendable
    associatedtype Mapping: JobMapping

    static var name: String { get }
    var conninfo: String { get }
    var mapping: Mapping { get }
    var source: KeysetSource { get }

    func statements(_ reader: PostgresConnection) throws -> Statements
    /// One keyset page (see `KeysetSource` for its parameters).
    func extractPage(_ sql: Statements) -> String
    /// The page statement when $4 names exactly one tenant (Citus reads a tenant at a time): that tenant
    /// named in every table it reads, so Citus runs it on one shard. nil: `extractPage` serves.
    func extractTenantPage(_ sql: Statements) -> String?
    /// A row of the extract statement as the job's typed record.
    func record(_ row: Row) throws -> Record
    /// The record's keyset position: tenant, key.
    func key(of record: Record) -> [String]
    /// The pure transform: one record in, one decision out.
    func makeTransform() -> @Sendable (Record) -> Decision
    /// A batch's decisions, spread over every core. The engine calls it once per batch, so that the
    /// per-row work runs in code compiled for the job's own types: called from the generic runner row by
    /// row, Swift looked their metadata up at run time for every record.
    func decide(_ records: [Record], with transform: @escaping @Sendable (Record) -> Decision) -> [Decision]
    /// How many records the run will read, for progress and ETA (nil when unknown); `tenants` as the
    /// extract statement's $4. By default an exact count of the extract statement's rows.
    func recordCount(_ sql: Statements, _ reader: PostgresConnection, tenants: String?) throws -> Int?
    func summaryBuilder(
        mode: RunMode, settings: RunSettings, sql: Statements, reader: PostgresConnection
    ) throws -> Builder
    func loader(_ sql: Statements, run: LedgerRun.Context) throws -> Loader
    /// Adds what one committed batch did to the apply's counts.
    func count(_ result: Loader.Result, of batch: MigrationBatch<Record, Decision>, into applied: inout Summary.Applied)
    /// The checks on live data: after apply, what it left; in a plan (`predicted`), what apply would leave.
    func checks(
        _ summary: Summary, sql: Statements, reader: PostgresConnection, predicted: Bool
    ) throws -> [ConstraintCheck]
    /// The statements apply runs, for the plan report's appendix.
    func applyStatements(_ sql: Statements, reader: PostgresConnection) throws -> [String]
    /// `ferry doctor`'s checks before the first batch: errors refuse the run, warnings go to `warn`.
    func preflight(_ connection: PostgresConnection, forApply: Bool, warn: (String) -> Void) throws

    /// What a plan adds to its sink and summary beyond the shared run (the phones job checks the
    /// target's constraints on the planned rows and estimates the apply).
    func planExtras(_ sql: Statements, reader: PostgresConnection) throws -> PlanExtras<Self>
    /// Called in apply before the first batch (the phones job records each contact's default row).
    func beforeApply(_ sql: Statements, run: LedgerRun.Context) throws
    /// Called in apply after the last batch and the checks (a job may add a constraint here).
    func afterApply(_ summary: inout Summary, sql: Statements, run: LedgerRun.Context) throws

    func planReport(_ summary: Summary) -> PlanReport
    /// The summary on a terminal (a plan's or an apply's).
    func terminalText(_ summary: Summary, colour: Bool) -> String
    /// Whether the plan's checks are the target's constraints, so that a predicted violation makes the
    /// plan exit 6 (a job whose checks list what it leaves alone says no).
    static var planChecksAreConstraints: Bool { get }
    /// Whether the job's summary builder writes every anomaly to `RunSettings.anomalyFile`.
    static var writesAnomalyList: Bool { get }
    /// Whether two writers may take rows of one tenant at once (`TenantSlice`): true where what a record
    /// writes depends on no other record of its tenant (rows a batch creates for later ones, a contact
    /// matched by email, make a job's writers take whole tenants).
    static var writesTenantsInSlices: Bool { get }
}

/// A plan's job-specific sink (it sees every batch) and finishing step.
struct PlanExtras<Job: TableMigration> {
    var consume: (MigrationBatch<Job.Record, Job.Decision>) throws -> Void = { _ in }
    var finish: (inout Job.Summary, PostgresConnection) throws -> Void = { _, _ in }
    init() {}
}

extension TableMigration {
    func sourceEngine(using connection: PostgresConnection) throws -> DatabaseEngine {
        try DatabaseEngine.detect(source: source.table, on: connection)
    }

    var mappingFile: String { mapping.file }
    var mappingSHA256: String { mapping.sha256 }
    var load: LoadSettings { mapping.load }
    var tenantNames: TenantNameSource? { mapping.report.tenantNames }

    func planExtras(_ sql: Statements, reader: PostgresConnection) throws -> PlanExtras<Self> {
        PlanExtras()
    }
    func decide(_ records: [Record], with transform: @escaping @Sendable (Record) -> Decision) -> [Decision] {
        parallelMap(records, transform)
    }
    static var planChecksAreConstraints: Bool { false }
    static var writesAnomalyList: Bool { false }
    static var writesTenantsInSlices: Bool { false }
    func extractTenantPage(_ sql: Statements) -> String? { nil }
    func beforeApply(_ sql: Statements, run: LedgerRun.Context) throws {}
    func afterApply(_ summary: inout Summary, sql: Statements, run: LedgerRun.Context) throws {}

    func preflight(_ connection: PostgresConnection, forApply: Bool, warn: (String) -> Void) throws {
        try Doctor(connection: connection).check(
            try expectations(using: connection, forApply: forApply),
            ownSteps: (try? schemaSteps(using: connection)) ?? [], mappingFile: mappingFile,
            engine: try engine(using: connection)
        )
        .requireNoErrors(warn: warn)
    }
}

/// What the command line decides for a run, whatever the job.
public struct RunSettings: Sendable {
    /// Draw the progress line (only ever on a terminal).
    public var showProgress = true
    /// Only these tenants (their text form); empty: every tenant.
    public var tenants: [String] = []
    /// (plan) Every anomaly of every record, beside the report.
    public var anomalyFile: String?

    public init() {}

    /// The tenants as the extract statements' $4 (NULL reads every tenant).
    var tenantsParameter: String? { tenants.isEmpty ? nil : textArrayLiteral(tenants) }
}
