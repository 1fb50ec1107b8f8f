import Foundation

/// Where one batch's rows wait between the COPY and the set-based statements that write them.
/// On PostgreSQL a temporary table, emptied at commit. On Citus the batch statements join the staged rows
/// with distributed tables on the tenant, which Citus runs only between tables colocated on it: the
/// staging table is an unlogged table in ferry's schema distributed like the job's source, one per job
/// and writer (the job's run lock keeps each to one session), emptied of the batch's tenant before each
/// commit.
struct StagingTable: Sendable {
    /// As statements name it.
    let quoted: String
    private let colocatedWith: TableName?
    private let tenantColumn: String

    static func temporary(_ name: String) -> StagingTable {
        StagingTable(quoted: quoteIdentifier(name), colocatedWith: nil, tenantColumn: "tenant")
    }

    /// `name` gets a table per engine: temporary on PostgreSQL, `ferry.name` distributed on Citus, where
    /// each writer of a parallel apply (`writer` > 0) stages in a table of its own.
    static func forEngine(
        _ engine: DatabaseEngine, name: String, writer: Int = 0, tenantColumn: String = "tenant"
    ) -> StagingTable {
        guard case .citus(_, let source, _) = engine else { return .temporary(name) }
        return StagingTable(
            quoted: TableName(schema: "ferry", name: writer == 0 ? name : "\(name)_\(writer)").quoted,
            colocatedWith: source, tenantColumn: tenantColumn)
    }

    var isDistributed: Bool { colocatedWith != nil }

    /// An index of the table, created with it (`name` unqualified: it lives in the table's schema).
    func index(_ name: String, on columns: String) -> String {
        "CREATE INDEX IF NOT EXISTS \(quoteIdentifier(name)) ON \(quoted) (\(columns))"
    }

    /// After a run on Citus: what the run staged there is personal data, not left behind (a temporary
    /// table goes with its session).
    var emptyAfterRun: String? { isDistributed ? "DELETE FROM \(quoted)" : nil }

    /// The statements that make it exist in this session; `columns` is the body of its CREATE TABLE.
    /// A table that `keepsRows` holds what a whole run remembers (the import's lines seen): a commit
    /// does not empty it.
    func create(columns: String, keepsRows: Bool = false) -> [String] {
        guard let source = colocatedWith else {
            return [
                "CREATE TEMP TABLE IF NOT EXISTS \(quoted) (\(columns))\(keepsRows ? "" : " ON COMMIT DELETE ROWS")"
            ]
        }
        // The table outlives the session, and so a ferry that defines it otherwise: its definition's
        // digest, kept as the table's comment, tells a table of another shape, which goes (it holds no
        // rows between runs) and is made again.
        let shape = sqlLiteral("ferry staging " + SHA256.hash(data: Data(columns.utf8)).hexString)
        return [
            """
            DO $ferry$
            BEGIN
            IF to_regclass(\(sqlLiteral(quoted))) IS NOT NULL
               AND obj_description(to_regclass(\(sqlLiteral(quoted))), 'pg_class') IS DISTINCT FROM \(shape) THEN
                DROP TABLE \(quoted);
            END IF;
            END
            $ferry$
            """,
            "CREATE UNLOGGED TABLE IF NOT EXISTS \(quoted) (\(columns))",
            """
            DO $ferry$
            BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_dist_partition WHERE logicalrelid = \(sqlLiteral(quoted))::regclass) THEN
                PERFORM create_distributed_table(\(sqlLiteral(quoted)), \(sqlLiteral(tenantColumn)), colocate_with => \(sqlLiteral(source.quoted)));
            END IF;
            END
            $ferry$
            """,
            "COMMENT ON TABLE \(quoted) IS \(shape)",
            // A batch that died between its COPY and its commit left nothing (it rolled back); rows of
            // a session killed after an older ferry's commit would be: start empty.
            "DELETE FROM \(quoted)",
        ]
    }

    /// On Citus a batch holds one tenant's rows: " AND `column` = $`parameter`" names it, so that Citus runs
    /// the statement on the one shard group that holds the tenant (said for every table a statement
    /// reads). Nothing elsewhere.
    func sameTenant(_ column: String, _ parameter: Int) -> String {
        isDistributed ? " AND \(column) = $\(parameter)" : ""
    }

    /// Before a batch commits (nil: the table empties itself at commit); $1 the batch's one tenant.
    var emptyBeforeCommit: String? { isDistributed ? "DELETE FROM \(quoted) WHERE tenant = $1" : nil }
}
