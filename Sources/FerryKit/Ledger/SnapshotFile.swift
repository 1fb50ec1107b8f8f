import Foundation

/// A run's snapshot as a file, for retention outside the database: gzip-compressed JSON lines (a header
/// line describing the run, then one line per snapshot row), with `FILE.sha256` beside it.
public enum SnapshotFile {
    public struct Written: Codable, Equatable, Sendable {
        public let path: String
        public let rows: Int
        public let sha256: String
    }

    public static func write(runId: Int64, ledger: RunLedger, path: String) throws -> Written {
        guard let run = try ledger.run(runId) else {
            throw LedgerError("there is no run \(runId)")
        }
        let connection = ledger.connection
        let writer = try GzipFileWriter(path: path)
        let header = try JSONEncoder.sorted.encode([
            "format": "ferry-snapshot/1", "run": String(runId), "job": run.job,
            "mode": run.mode, "mapping_sha256": run.mappingSHA256,
            "database": connection.info.database, "ferry": FerryVersion.current,
        ])
        try writer.write(String(decoding: header, as: UTF8.self) + "\n")
        var rows = 0
        // COPY takes no parameters; the run id is an integer, not text from outside.
        try connection.copyOut(
            """
            COPY (SELECT json_build_object('batch', s.batch_no, 'batch_xid', b.xid, 'table', s.table_name,
                                           'action', s.action, 'key', s.key, 'before', s.before, 'after_hash', s.after_hash)
                  FROM ferry.snapshot_rows s LEFT JOIN ferry.batches b USING (run_id, batch_no)
                  WHERE s.run_id = \(runId) ORDER BY s.batch_no, s.table_order) TO STDOUT
            """
        ) { line in
            var json = CopyTextDecoder.field(line)
            json.append(0x0A)
            try json.withUnsafeBytes { try writer.write($0) }
            rows += 1
        }
        let sha = try writer.finish()
        try ledger.event(
            runId: runId, kind: "snapshot file written",
            detail: ["path": path, "rows": String(rows), "sha256": sha])
        return Written(path: path, rows: rows, sha256: sha)
    }
}
