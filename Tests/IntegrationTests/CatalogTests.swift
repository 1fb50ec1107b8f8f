import Testing
@testable import FerryKit

@Suite("What ferry reads from the catalog")
struct CatalogTests {
    /// Only a uuid whose default draws a random one may have its keys drawn by ferry instead.
    @Test func aKeyDrawnAtRandomIsAUUIDWithARandomDefault() throws {
        let db = try TestDatabase(empty: true)
        try db.connection.execute(
            script: """
                CREATE SCHEMA "odd schema";
                CREATE TABLE "odd schema".keys (
                    drawn uuid DEFAULT gen_random_uuid(),
                    fixed uuid DEFAULT '00000000-0000-4000-8000-000000000001',
                    bare uuid,
                    counted bigserial,
                    text_drawn text DEFAULT gen_random_uuid()::text
                )
                """)
        let table = TableName(schema: "odd schema", name: "keys")
        #expect(try db.connection.defaultsToRandomUUID(table, column: "drawn"))
        for column in ["fixed", "bare", "counted", "text_drawn", "missing"] {
            #expect(try !db.connection.defaultsToRandomUUID(table, column: column), "\(column)")
        }
        #expect(try !db.connection.defaultsToRandomUUID(TableName(schema: nil, name: "nowhere"), column: "drawn"))
    }
}
