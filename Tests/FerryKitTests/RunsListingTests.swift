import Foundation
import Testing
@testable import FerryKit

@Suite("ferry runs as a table")
struct RunsListingTests {
    func run(_ id: Int64, job: String, inserted: Int) throws -> RunRecord {
        try JSONDecoder().decode(
            RunRecord.self,
            from: Data(
                """
                {"runId": \(id), "job": "\(job)", "mode": "apply", "status": "succeeded", "mappingFile": "mappings/\(job).yaml",
                 "mappingSHA256": "x", "toolVersion": "x", "startedAt": "2026-12-05T12:35:26Z", "durationSeconds": 0.2,
                 "databaseUser": "postgres", "counts": {}, "options": {}, "batches": 1,
                 "rowsInserted": \(inserted), "rowsUpdated": 0, "rowsDeleted": 0}
                """.utf8))
    }

    /// Each column starts at the same place on every line, its widest cell included (a job name as wide
    /// as the column once pushed the rest of its line one place right).
    @Test func everyColumnStartsAtTheSamePlaceOnEveryLine() throws {
        let lines = RunsListing.render([
            try run(12, job: "customers", inserted: 852), try run(1, job: "phones", inserted: 1_234_567),
        ]).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        func start(of cell: String, in line: String) -> Int? {
            line.range(of: cell).map { line.distance(from: line.startIndex, to: $0.lowerBound) }
        }
        #expect(start(of: "mode", in: lines[0]) == start(of: "apply", in: lines[1]))
        #expect(start(of: "apply", in: lines[1]) == start(of: "apply", in: lines[2]))
        #expect(start(of: "status", in: lines[0]) == start(of: "succeeded", in: lines[2]))
        // Numbers end where their column ends.
        let end = { (cell: String, line: String) in start(of: cell, in: line).map { $0 + cell.count } }
        #expect(end("inserted", lines[0]) == end("852", lines[1]))
        #expect(end("852", lines[1]) == end("1,234,567", lines[2]))
        #expect(end("run", lines[0]) == end("12", lines[1]))
    }
}
