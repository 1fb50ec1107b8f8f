import Testing
@testable import FerryKit

@Suite("Rows read by column name")
struct RowDecodingTests {
    let result = QueryResult(
        columns: ["run_id", "job", "finished_at", "rows"], rows: [["7", "phones", nil, "x12"]], affectedRows: 0)

    @Test func valuesAreReadByNameIntoTypes() throws {
        let row = result.decoded("ferry.runs", key: "run_id")[0]
        #expect(try row.required("run_id", as: Int64.self) == 7)
        #expect(try row.required("job", as: String.self) == "phones")
        #expect(try row.optional("finished_at", as: String.self) == nil)
    }

    @Test func aNameIsFoundAmongNamesOfTheSameLength() throws {
        let row = QueryResult(columns: ["ab", "ac", "abc", "a"], rows: [["1", "2", "3", "4"]], affectedRows: 0)
            .decoded("pairs")[0]
        #expect(try row.required("ac", as: Int.self) == 2)
        #expect(try row.required("abc", as: Int.self) == 3)
        #expect(try row.required("a", as: Int.self) == 4)
        #expect(throws: RowDecodingError.self) { try row.required("ad", as: Int.self) }
    }

    @Test func aNullOrABadValueOrAMissingColumnThrowsNamingIt() {
        let row = result.decoded("ferry.runs", key: "run_id")[0]
        #expect { _ = try row.required("finished_at", as: String.self) } throws: {
            String(describing: $0) == "reading ferry.runs: column finished_at is NULL (row 7)"
        }
        #expect { _ = try row.required("rows", as: Int.self) } throws: {
            String(describing: $0) == "reading ferry.runs: column rows 'x12' is not a Int (row 7)"
        }
        #expect { _ = try row.optional("status", as: String.self) } throws: {
            String(describing: $0) == "reading ferry.runs: column status is not in the result (row 7)"
        }
    }
}
