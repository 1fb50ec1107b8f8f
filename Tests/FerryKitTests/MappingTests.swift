import Foundation
import Testing
@testable import FerryKit

@Suite("Mapping files")
struct MappingTests {
    static let minimal = """
        job: phones
        source:
          columns:
            - column: phone_number
              type: work
        phones:
          default_region: US
        """

    @Test func theShippedMappingLoads() throws {
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let mapping = try PhonesMapping.load(path: packageRoot.appendingPathComponent("mappings/phones.yaml").path)
        #expect(mapping.source.columns == [PhoneSourceColumn(name: "phone_number", type: work)])
        #expect(mapping.source.regionColumn == "country")
        #expect(mapping.load.batchSize == 5000)
        #expect(mapping.sha256.count == 64)
    }

    @Test func defaultsFillWhatIsOmitted() throws {
        let mapping = try PhonesMapping(file: "m.yaml", text: Self.minimal)
        #expect(mapping.source.table == TableName(schema: nil, name: "contacts"))
        #expect(mapping.phoneNumbers.table.name == "contact_phone_numbers")
        #expect(mapping.phoneNumbers.customType == "custom_phone_type_id")
        #expect(mapping.load.lockTimeout.text == "2s")
        #expect(mapping.regionAmbiguity == .reject)
        #expect(mapping.acceptance == .valid)
        #expect(
            try PhonesMapping(file: "m.yaml", text: Self.minimal + "\n  accept: possible\n").acceptance == .possible)
        #expect(
            try PhonesMapping(file: "m.yaml", text: Self.minimal + "\n  region_ambiguous: load\n").regionAmbiguity
                == .load)
    }

    @Test func unknownKeysAreErrorsWithALine() {
        let text = Self.minimal + "\nload:\n  batch_sise: 10\n"
        #expect {
            try PhonesMapping(file: "m.yaml", text: text)
        } throws: { error in
            let message = String(describing: error)
            return message.contains("m.yaml:9") && message.contains("batch_sise")
        }
    }

    @Test(arguments: [
        ("type: work", "type: cellphone", "not one of work, mobile, home, fax, other"),
        ("default_region: US", "default_region: XY", "not a region libphonenumber knows"),
        ("job: phones", "job: customers", "job must be 'phones'"),
        ("    - column: phone_number\n      type: work", "    []", "at least one phone column"),
        ("default_region: US", "default_region: US\n  region_ambiguous: guess", "must be reject or load, not 'guess'"),
        ("default_region: US", "default_region: US\n  accept: anything", "must be valid or possible, not 'anything'"),
    ])
    func badValuesAreExplained(_ original: String, _ replacement: String, _ expectedMessage: String) {
        let text = Self.minimal.replacingOccurrences(of: original, with: replacement)
        #expect {
            try PhonesMapping(file: "m.yaml", text: text)
        } throws: { String(describing: $0).contains(expectedMessage) }
    }

    /// A region lookup is a table or a query, never both; a query's own terminator is dropped (it runs as
    /// a subquery) and it goes into the statements as the mapping wrote it.
    @Test func aRegionLookupIsATableOrAQuery() throws {
        func mapping(_ lookup: String) throws -> PhonesMapping {
            try PhonesMapping(
                file: "m.yaml",
                text: Self.minimal.replacingOccurrences(of: "source:\n", with: "source:\n  region_lookup:\n\(lookup)\n")
            )
        }
        let query = try mapping(
            """
                query: |
                  SELECT tenant, client_id, country_code FROM client_locations WHERE is_default;
                join: {tenant: tenant, client_id: client_id}
                column: country_code
            """)
        let lookup = try #require(query.source.regionLookup)
        #expect(
            lookup.fromItem == "(\nSELECT tenant, client_id, country_code FROM client_locations WHERE is_default\n)")
        #expect(
            lookup.expectation.query != nil
                && lookup.expectation.columns.map(\.name) == ["tenant", "client_id", "country_code"])
        let sql = PhonesSQL(mapping: query).extractPage(tenantType: "uuid", keyType: "uuid")
        #expect(
            sql.contains(
                "FROM (\nSELECT tenant, client_id, country_code FROM client_locations WHERE is_default\n) r WHERE"),
            "\(sql)")
        let table = try mapping(
            "    table: tenant_settings\n    schema: app\n    join: {tenant: tenant}\n    column: country")
        #expect(try #require(table.source.regionLookup).fromItem == "\"app\".\"tenant_settings\"")
        for (lookup, message) in [
            (
                "    table: t\n    query: SELECT 1\n    join: {tenant: tenant}\n    column: c",
                "names both a table and a query"
            ),
            ("    join: {tenant: tenant}\n    column: c", "needs a table (with join and column) or a query"),
            ("    query: ' ; '\n    join: {tenant: tenant}\n    column: c", "query is empty"),
            (
                "    query: SELECT 1\n    schema: app\n    join: {tenant: tenant}\n    column: c",
                "schema goes with table"
            ),
        ] {
            #expect(throws: (any Error).self) { try mapping(lookup) }
            do { _ = try mapping(lookup) } catch { #expect(String(describing: error).contains(message), "\(error)") }
        }
    }

    /// `source.query` is read in place of the table, as a subquery; the in-place job's source has none.
    @Test func aSourceQueryIsReadInPlaceOfTheTable() throws {
        let text = Self.minimal.replacingOccurrences(
            of: "source:\n", with: "source:\n  query: SELECT * FROM contacts WHERE NOT is_inactive;\n")
        let mapping = try PhonesMapping(file: "m.yaml", text: text)
        #expect(mapping.source.query == "SELECT * FROM contacts WHERE NOT is_inactive")
        #expect(mapping.source.table == TableName(schema: nil, name: "contacts"), "the table the rows belong to")
        let sql = PhonesSQL(mapping: mapping).extractPage(tenantType: "uuid", keyType: "uuid")
        #expect(sql.contains("FROM (\nSELECT * FROM contacts WHERE NOT is_inactive\n) s"), "\(sql)")
        #expect(throws: (any Error).self) {
            try PhonesMapping(
                file: "m.yaml",
                text: Self.minimal.replacingOccurrences(of: "source:\n", with: "source:\n  query: ';'\n"))
        }
        let inPlace = "job: phones-in-place\nsource:\n  query: SELECT 1\nphones:\n  default_region: US\n"
        #expect { try PhonesMapping(file: "m.yaml", text: inPlace) } throws: {
            "\($0)".contains("unknown key 'source.query'")
        }
    }

    @Test func badDurationsAreRejected() {
        #expect(DurationSetting("2s")?.text == "2s")
        #expect(DurationSetting("500 ms")?.text == "500ms")
        #expect(DurationSetting("2 seconds; DROP TABLE x") == nil)
        #expect(throws: MappingError.self) {
            try PhonesMapping(file: "m", text: Self.minimal + "\nload:\n  lock_timeout: soon\n")
        }
    }

    @Test func renamedTablesAndColumnsAreQuotedInEveryStatement() throws {
        let text =
            Self.minimal + """

                target:
                  schema: crm
                  phone_numbers:
                    table: 'Phone "Numbers"'
                    columns:
                      contact_key: person_id
                """
        let mapping = try PhonesMapping(file: "m", text: text)
        let sql = PhonesSQL(mapping: mapping)
        let snapshot = SnapshotTable(qualifiedName: "crm.phones", keyColumns: [("id", "uuid")])
        #expect(sql.phoneRows.insertPhoneRows(snapshot: snapshot).contains("\"crm\".\"Phone \"\"Numbers\"\"\""))
        #expect(sql.phoneRows.insertPhoneRows(snapshot: snapshot).contains("\"person_id\""))
        #expect(
            sql.extractPage(tenantType: "uuid", keyType: "uuid").contains("p.\"person_id\" = s.\"contact_name_id\""))
        #expect(throws: MappingError.self) {
            try PhonesMapping(
                file: "m", text: Self.minimal + "\ntarget:\n  phone_numbers:\n    columns:\n      colour: x\n")
        }
    }

    @Test func labelsFromTheMappingAreUsed() throws {
        let mapping = try PhonesMapping(
            file: "m",
            text: Self.minimal + "\n  labels:\n    bipper: Pager\n    zentrale: work\n    nebenanschluss: extension\n")
        let parsed = mapping.transform.parser.parse("Bipper: 650-253-0000", region: "US")
        #expect(parsed.numbers.first?.typeHint == .custom("Pager"))
        let ext = mapping.transform.parser.parse("030 123456 Nebenanschluss 12", region: "DE")
        #expect(ext.numbers.first?.extensionDigits == "12")
    }
}

@Suite("COPY text encoding")
struct CopyTextEncoderTests {
    @Test func escapesWhatTheFormatReserves() {
        var encoder = CopyTextEncoder()
        encoder.appendRow(["a\tb", nil, "line\nbreak\r", "back\\slash", "", "ünï"])
        #expect(String(decoding: encoder.bytes, as: UTF8.self) == "a\\tb\t\\N\tline\\nbreak\\r\tback\\\\slash\t\tünï\n")
    }

    @Test func identifiersAreAlwaysQuoted() {
        #expect(quoteIdentifier("contacts") == "\"contacts\"")
        #expect(quoteIdentifier("a\"; DROP TABLE x; --") == "\"a\"\"; DROP TABLE x; --\"")
    }
}
