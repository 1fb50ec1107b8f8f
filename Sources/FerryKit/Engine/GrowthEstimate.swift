/// What a run's rows take on disk: each row version written (an insert, or the new version an update
/// leaves until vacuum) at its table's size per row with indexes, and the snapshot row rollback reads
/// for every row written or deleted. Each table's size says where it came from (`bytesPerNewRow`).
enum GrowthEstimate {
    struct Written {
        let table: TableName
        /// Row versions the run writes into the table (inserts and updates).
        let versions: Int
        /// Rows the run records in its snapshot (inserts, updates and deletes).
        let snapshotRows: Int
        /// Of those, the ones holding the row's pre-image (updates and deletes): about a row's size more.
        var beforeImages = 0
    }

    static func of(_ written: [Written], on connection: PostgresConnection) throws -> (bytes: Int, basis: [String]) {
        var bytes = 0.0
        var basis: [String] = []
        let snapshots = written.map(\.snapshotRows).reduce(0, +)
        let rows =
            written.map { ($0.table, $0.versions, $0.beforeImages) }
            + [(TableName(schema: "ferry", name: "snapshot_rows"), snapshots, 0)]
        for (table, count, images) in rows where count + images > 0 {
            let size = try connection.bytesPerNewRow(table)
            bytes += size.bytes * Double(count + images)
            basis.append(
                "\(table): \(formatCount(count)) row versions"
                    + (images > 0 ? " and \(formatCount(images)) pre-images in snapshot rows" : "")
                    + " × \(Int(size.bytes.rounded())) bytes (\(size.basis))")
        }
        return (Int(bytes), basis)
    }
}

extension PlanReport {
    /// The growth estimate from the report's own table counts, for a job that measures none itself.
    mutating func estimateGrowth(using connection: PostgresConnection) throws {
        guard header.estimatedGrowthBytes == nil else { return }
        let written = tables.compactMap { counts -> GrowthEstimate.Written? in
            // The tables are named as the mapping names them: schema.name, or name alone.
            let parts = counts.table.split(separator: ".", maxSplits: 1).map(String.init)
            let table =
                parts.count == 2
                ? TableName(schema: parts[0], name: parts[1]) : TableName(schema: nil, name: counts.table)
            let versions = counts.insert + counts.update
            return versions + counts.delete > 0
                ? GrowthEstimate.Written(
                    table: table, versions: versions, snapshotRows: versions + counts.delete,
                    beforeImages: counts.update + counts.delete) : nil
        }
        guard !written.isEmpty else { return }
        let estimate = try GrowthEstimate.of(written, on: connection)
        header.estimatedGrowthBytes = estimate.bytes
        header.estimateBasis = [header.estimateBasis, "Growth: " + estimate.basis.joined(separator: "; ")]
            .compactMap { $0 }.joined(separator: ". ")
    }
}
