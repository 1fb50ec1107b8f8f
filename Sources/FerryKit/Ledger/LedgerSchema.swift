/// The `ferry` schema's own tables: runs, their append-only events, committed batches, and row
/// snapshots that make every run undoable. Every job's schema steps start with this one.
public enum LedgerSchema {
    /// What doctor and preflight expect of the ledger's tables: every writing job writes all four.
    static func expectations() -> [TableExpectation] {
        ["runs", "events", "batches", "snapshot_rows"].map { name in
            var table = TableExpectation(TableName(schema: "ferry", name: name), use: .write)
            table.createdBy = step
            return table
        }
    }

    public static let step = SchemaStep(
        name: "ferry/ledger-runs",
        sql: """
            CREATE TABLE IF NOT EXISTS ferry.runs (
                run_id bigserial PRIMARY KEY,
                job text NOT NULL,
                mode text NOT NULL CHECK (mode IN ('apply', 'rollback', 'import', 'contract')),
                status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted', 'rolled_back')),
                mapping_file text NOT NULL,
                mapping_sha256 text NOT NULL,
                tool_version text NOT NULL,
                started_at timestamptz NOT NULL DEFAULT now(),
                finished_at timestamptz,
                db_user text NOT NULL DEFAULT current_user,
                os_user text,
                host text,
                pid integer,
                rollback_of bigint REFERENCES ferry.runs (run_id),
                start_xid bigint,
                counts jsonb NOT NULL DEFAULT '{}',
                error text
            );
            CREATE INDEX IF NOT EXISTS runs_job ON ferry.runs (job, run_id DESC);
            CREATE TABLE IF NOT EXISTS ferry.events (
                event_id bigserial PRIMARY KEY,
                run_id bigint NOT NULL REFERENCES ferry.runs (run_id),
                at timestamptz NOT NULL DEFAULT clock_timestamp(),
                kind text NOT NULL,
                detail jsonb NOT NULL DEFAULT '{}'
            );
            CREATE INDEX IF NOT EXISTS events_run ON ferry.events (run_id, event_id);
            CREATE OR REPLACE FUNCTION ferry.events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'ferry.events is append-only';
            END $$;
            DROP TRIGGER IF EXISTS events_append_only ON ferry.events;
            CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON ferry.events
                FOR EACH ROW EXECUTE FUNCTION ferry.events_are_append_only();
            CREATE TABLE IF NOT EXISTS ferry.batches (
                run_id bigint NOT NULL REFERENCES ferry.runs (run_id),
                batch_no integer NOT NULL,
                first_key text[] NOT NULL,
                last_key text[] NOT NULL,
                rows_inserted integer NOT NULL DEFAULT 0,
                rows_updated integer NOT NULL DEFAULT 0,
                rows_deleted integer NOT NULL DEFAULT 0,
                -- The batch's transaction id: a row it wrote is unchanged since exactly while xmin still equals it.
                xid bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
                committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                PRIMARY KEY (run_id, batch_no)
            );
            CREATE TABLE IF NOT EXISTS ferry.snapshot_rows (
                run_id bigint NOT NULL REFERENCES ferry.runs (run_id),
                batch_no integer NOT NULL,
                table_order integer NOT NULL,
                table_name text NOT NULL,
                action text NOT NULL CHECK (action IN ('insert', 'update', 'delete')),
                key jsonb NOT NULL,
                before jsonb,
                -- For rows not written by a batch transaction: md5 of the row as written.
                after_hash text
            );
            """)
}

extension LedgerSchema {
    /// What a contract step dropped: each column's definition with what went with it (indexes,
    /// constraints), and its values by primary key, so `ferry rollback` re-adds the column with its data.
    /// Snapshot pruning never touches these: they are the only copy of the data.
    public static let contractStep = SchemaStep(
        name: "ferry/ledger-contract",
        sql: """
            CREATE TABLE IF NOT EXISTS ferry.dropped_columns (
                run_id bigint NOT NULL REFERENCES ferry.runs (run_id),
                table_name text NOT NULL,
                column_name text NOT NULL,
                column_type text NOT NULL,
                not_null boolean NOT NULL,
                default_expr text,
                position integer NOT NULL,
                restore_statements text[] NOT NULL DEFAULT '{}',
                PRIMARY KEY (run_id, column_name)
            );
            CREATE TABLE IF NOT EXISTS ferry.dropped_values (
                run_id bigint NOT NULL REFERENCES ferry.runs (run_id),
                table_name text NOT NULL,
                key jsonb NOT NULL,
                "values" jsonb NOT NULL
            );
            CREATE INDEX IF NOT EXISTS dropped_values_run ON ferry.dropped_values (run_id);
            """)

    /// Snapshot rows are written only by ferry, inside the batch transaction that also records the
    /// batch in `ferry.batches`, whose foreign key checks the run once. Checking every snapshot row
    /// against `ferry.runs` as well was a per-row cost every apply and import paid for nothing
    /// (measured in docs/performance.md).
    public static let uncheckedSnapshotRowsStep = SchemaStep(
        name: "ferry/ledger-snapshot-rows-unchecked",
        sql: """
            ALTER TABLE ferry.snapshot_rows DROP CONSTRAINT IF EXISTS snapshot_rows_run_id_fkey;
            """, onlySpeedsUpRuns: true)

    /// What a run was started with (for `ferry resume`), and the statuses a rollback that left conflicts
    /// records: the undone run is `partially_rolled_back`, the rollback run itself `partial`.
    public static let runOptionsAndPartialStatusesStep = SchemaStep(
        name: "ferry/ledger-run-options-partial-statuses",
        sql: """
            ALTER TABLE ferry.runs ADD COLUMN IF NOT EXISTS options jsonb NOT NULL DEFAULT '{}';
            ALTER TABLE ferry.runs DROP CONSTRAINT IF EXISTS runs_status_check;
            ALTER TABLE ferry.runs ADD CONSTRAINT runs_status_check CHECK (status IN
                ('running', 'succeeded', 'failed', 'interrupted', 'rolled_back', 'partially_rolled_back', 'partial'));
            """)

    /// Where xmin judges whether a row is still as a run wrote it, a rollback that restores a row gives
    /// it a new xmin, and the runs before would take the row for changed by someone else. So a
    /// pre-image keeps the row's xmin as it was (`before_xmin`), and a rollback records each row it
    /// restores with the xmin it has now and the one it had then (`RollbackRules.unchanged` reads it).
    public static let restoredRowsStep = SchemaStep(
        name: "ferry/ledger-restored-rows",
        sql: """
            ALTER TABLE ferry.snapshot_rows ADD COLUMN IF NOT EXISTS before_xmin bigint;
            CREATE TABLE IF NOT EXISTS ferry.restored_rows (
                rollback_run_id bigint NOT NULL REFERENCES ferry.runs (run_id),
                table_name text NOT NULL,
                key jsonb NOT NULL,
                restored_xmin bigint NOT NULL,
                original_xmin bigint NOT NULL
            );
            CREATE INDEX IF NOT EXISTS restored_rows_key ON ferry.restored_rows (table_name, key);
            """)

    /// The ledger, in the order every job applies it.
    public static let steps = [
        step, contractStep, uncheckedSnapshotRowsStep, runOptionsAndPartialStatusesStep, restoredRowsStep,
    ]
}
