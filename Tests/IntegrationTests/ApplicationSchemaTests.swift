import Foundation
import TestFiles
import Testing
@testable import FerryKit

/// The reference application's tables as they are (no extension column, a generated normalized number,
/// its own checks and indexes), and no country on contacts: the region is per tenant.
enum ApplicationSchema {
    static let us = "00000000-0000-4000-8000-0000000000a1"
    static let gb = "00000000-0000-4000-8000-0000000000b2"
    static let de = "00000000-0000-4000-8000-0000000000c3"
    static let fr = "00000000-0000-4000-8000-0000000000d4"

    static let ddl = """
        CREATE TABLE tenants (tenant uuid PRIMARY KEY, company_name text NOT NULL);
        CREATE TABLE tenant_regions (tenant uuid PRIMARY KEY REFERENCES tenants, region text NOT NULL);
        CREATE TABLE contacts (
            tenant uuid NOT NULL REFERENCES tenants,
            contact_name_id uuid NOT NULL DEFAULT gen_random_uuid(),
            full_name text NOT NULL, email text, phone_number text, role text,
            created_at timestamptz, updated_at timestamptz, is_inactive boolean NOT NULL DEFAULT false, client_id uuid,
            PRIMARY KEY (tenant, contact_name_id), UNIQUE (tenant, email));
        CREATE TABLE contact_phone_type_definitions (
            tenant uuid NOT NULL, contact_phone_type_id uuid NOT NULL DEFAULT gen_random_uuid(),
            label text NOT NULL, normalized_label text NOT NULL, created_at timestamptz, updated_at timestamptz,
            PRIMARY KEY (tenant, contact_phone_type_id), UNIQUE (tenant, normalized_label),
            CHECK (normalized_label = lower(btrim(normalized_label))));
        CREATE TABLE contact_phone_numbers (
            tenant uuid NOT NULL, contact_phone_number_id uuid NOT NULL DEFAULT gen_random_uuid(),
            contact_name_id uuid NOT NULL, phone_number text NOT NULL, canonical_type text, custom_phone_type_id uuid,
            is_default boolean NOT NULL DEFAULT false, display_order integer NOT NULL DEFAULT 0,
            created_at timestamptz, updated_at timestamptz,
            normalized_phone_number text GENERATED ALWAYS AS (regexp_replace(btrim(phone_number), '[^0-9]+', '', 'g')) STORED,
            PRIMARY KEY (tenant, contact_phone_number_id),
            CHECK (canonical_type IS NULL OR canonical_type IN ('work', 'mobile', 'home', 'fax', 'other')),
            CHECK ((canonical_type IS NULL) <> (custom_phone_type_id IS NULL)),
            FOREIGN KEY (tenant, contact_name_id) REFERENCES contacts (tenant, contact_name_id) ON DELETE CASCADE,
            FOREIGN KEY (tenant, custom_phone_type_id) REFERENCES contact_phone_type_definitions (tenant, contact_phone_type_id) ON DELETE RESTRICT);
        CREATE UNIQUE INDEX contact_phone_numbers_one_default ON contact_phone_numbers (tenant, contact_name_id) WHERE is_default;
        INSERT INTO tenants VALUES ('\(us)', 'Acme US'), ('\(gb)', 'Thames Ltd'), ('\(de)', 'Spree GmbH'), ('\(fr)', 'Seine SA');
        -- The US tenant has no region row (the default applies); France's comes from the mapping.
        INSERT INTO tenant_regions VALUES ('\(gb)', 'GB'), ('\(de)', 'de');
        INSERT INTO contacts (tenant, contact_name_id, full_name, phone_number) VALUES
            ('\(us)', '10000000-0000-4000-8000-000000000001', 'US plain', '212-555-0101'),
            ('\(us)', '10000000-0000-4000-8000-000000000002', 'US with extension', '(212) 555-0100 x12'),
            ('\(gb)', '20000000-0000-4000-8000-000000000001', 'London', '020 7946 0958'),
            ('\(de)', '30000000-0000-4000-8000-000000000001', 'Berlin', '030 1234567'),
            ('\(fr)', '40000000-0000-4000-8000-000000000001', 'Paris', '01 42 68 53 00'),
            ('\(fr)', '40000000-0000-4000-8000-000000000002', 'No number', 'n/a');
        """

    /// The phones mapping for these tables; `extra` goes into its `phones:` section.
    static func mapping(source: String = "  table: contacts", extra: String = "") throws -> String {
        try temporaryFile(
            """
            job: phones
            source:
            \(source)
              columns:
                - column: phone_number
                  type: work
            \(targetAndPhones)
            \(extra)
            """, name: "application-phones.yaml")
    }

    /// The application's own backfill, in the release that created the phone tables.
    static let naiveBackfill = """
        INSERT INTO contact_phone_numbers (tenant, contact_phone_number_id, contact_name_id, phone_number, canonical_type,
                                           custom_phone_type_id, is_default, display_order, created_at, updated_at)
        SELECT tenant, gen_random_uuid(), contact_name_id, BTRIM(phone_number), 'work', NULL, true, 0,
               COALESCE(created_at, NOW()), COALESCE(updated_at, created_at, NOW())
        FROM contacts WHERE phone_number IS NOT NULL AND BTRIM(phone_number) <> '';
        """

    /// The target and phones sections every mapping of these tables shares.
    static let targetAndPhones = """
        target:
          phone_numbers:
            columns:
              extension: null
        phones:
          default_region: US
          region_by_tenant:
            \(fr): FR
        """

    static let lookup = """
          table: contacts
          region_lookup:
            table: tenant_regions
            join: {tenant: tenant}
            column: region
        """

    /// schema apply; a plan that says `planSays` and changes no phone row; then apply --json. Returns
    /// the phone table's checksum before, and apply's JSON.
    static func planAndApply(
        _ mapping: String, _ db: TestDatabase, planSays: String
    ) throws -> (before: String, json: Data) {
        let schema = try ferryCLI("schema apply \(mapping)", database: db.name)
        #expect(schema.status == 0, "\(schema.stderr)")
        let before = try db.checksum("contact_phone_numbers")
        let plan = try ferryCLI("plan \(mapping) --no-progress", database: db.name)
        #expect(plan.status == 0, "\(plan.stdout)\(plan.stderr)")
        #expect(plan.stdout.contains(planSays), "\(plan.stdout)")
        #expect(try db.checksum("contact_phone_numbers") == before)
        let apply = try ferryCLI("apply \(mapping) --no-progress --json", database: db.name)
        #expect(apply.status == 0, "\(apply.stderr)")
        return (before, Data(apply.stdout.utf8))
    }

    /// `ferry arguments` exits 1 and says `text` (doctor on standard output, the others on standard error).
    static func expectRefusal(
        _ arguments: String, _ db: TestDatabase, says text: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let result = try ferryCLI(arguments, database: db.name)
        #expect(result.status == 1, sourceLocation: sourceLocation)
        #expect(
            (result.stdout + result.stderr).contains(text), "\(result.stdout)\(result.stderr)",
            sourceLocation: sourceLocation)
    }

    static func database() throws -> TestDatabase {
        let db = try TestDatabase(empty: true)
        try db.connection.execute(script: ddl)
        return db
    }

    static func rows(_ db: TestDatabase) throws -> [[String?]] {
        try db.connection.query(
            "SELECT contact_name_id::text, phone_number, canonical_type, is_default::text FROM contact_phone_numbers ORDER BY 1"
        ).rows
    }
}

@Suite("The application's real tables: no extension column, regions per tenant, a view as the source")
struct ApplicationSchemaTests {
    @Test func regionsComeFromTheLookupTheTenantMapAndTheDefaultAndExtensionsAreRejectedWithTheirReason() throws {
        let db = try ApplicationSchema.database()
        let mapping = try ApplicationSchema.mapping(source: ApplicationSchema.lookup)
        let schema = try ferryCLI("schema apply \(mapping)", database: db.name)
        #expect(schema.status == 0, "\(schema.stderr)")
        let before = try db.checksum("contact_phone_numbers")

        let plan = try ferryCLI("plan \(mapping) --no-progress --json", database: db.name)
        #expect(plan.status == 0, "\(plan.stdout)\(plan.stderr)")
        #expect(try db.checksum("contact_phone_numbers") == before)
        let text = try ferryCLI("plan \(mapping) --no-progress", database: db.name).stdout
        for line in ["GB (lookup)", "DE (lookup)", "FR (tenant map)", "US (default)"] {
            #expect(text.contains(line), "\(line) in \(text)")
        }
        #expect(text.contains("has an extension, and the phone table has no extension column"), "\(text)")

        let apply = try ferryCLI("apply \(mapping) --no-progress", database: db.name)
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(
            try ApplicationSchema.rows(db) == [
                ["10000000-0000-4000-8000-000000000001", "+12125550101", "work", "true"],
                ["20000000-0000-4000-8000-000000000001", "+442079460958", "work", "true"],
                ["30000000-0000-4000-8000-000000000001", "+49301234567", "work", "true"],
                ["40000000-0000-4000-8000-000000000001", "+33142685300", "work", "true"],
            ])
        // The application's generated column computed itself from what ferry wrote.
        #expect(
            try db.scalar(
                "SELECT normalized_phone_number FROM contact_phone_numbers WHERE phone_number = '+33142685300'")
                == "33142685300")
        let again = try ferryCLI("apply \(mapping) --no-progress", database: db.name)
        #expect(again.status == 0)
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == 4)
        #expect(try ferryCLI("rollback 1 --yes", database: db.name).status == 0)
        #expect(try db.checksum("contact_phone_numbers") == before)
    }

    @Test func rfc3966KeepsTheExtensionInTheNumber() throws {
        let db = try ApplicationSchema.database()
        let mapping = try ApplicationSchema.mapping(extra: "  extension_without_column: rfc3966")
        #expect(try ferryCLI("schema apply \(mapping)", database: db.name).status == 0)
        let apply = try ferryCLI("apply \(mapping) --no-progress", database: db.name)
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(
            try db.scalar(
                "SELECT phone_number FROM contact_phone_numbers WHERE contact_name_id = '10000000-0000-4000-8000-000000000002'"
            ) == "+12125550100;ext=12")
        // Without the lookup, the GB tenant's number is read as a US one and rejected: regions matter.
        #expect(
            try db.count(
                "SELECT count(*) FROM contact_phone_numbers WHERE tenant = '\(ApplicationSchema.gb)'") == 0)
    }

    @Test func anExtensionPolicyNeedsATableWithoutTheColumnAndANullRoleMustBeOptional() throws {
        let withColumn = """
            job: phones
            source:
              columns: [{column: phone_number, type: work}]
            phones:
              default_region: US
              extension_without_column: reject
            """
        #expect {
            try PhonesMapping(file: "m.yaml", text: withColumn)
        } throws: { "\($0)".contains("applies only when target.phone_numbers.columns.extension is null") }
        let nullTenant = """
            job: phones
            source:
              columns: [{column: phone_number, type: work}]
            target:
              phone_numbers:
                columns: {tenant: null}
            phones:
              default_region: US
            """
        #expect {
            try PhonesMapping(file: "m.yaml", text: nullTenant)
        } throws: { "\($0)".contains("column role 'tenant' cannot be null") }
    }

    @Test func aViewIsASourceWhenItsDeclaredKeyIsUnique() throws {
        let db = try ApplicationSchema.database()
        try db.connection.execute(
            script: """
                CREATE VIEW contacts_with_region AS
                    SELECT c.tenant, c.contact_name_id, c.phone_number, r.region
                    FROM contacts c LEFT JOIN tenant_regions r USING (tenant);
                CREATE VIEW contacts_twice AS
                    SELECT tenant, contact_name_id, phone_number, NULL::text AS region FROM contacts
                    UNION ALL SELECT tenant, contact_name_id, phone_number, NULL FROM contacts;
                """)
        let view = try ApplicationSchema.mapping(source: "  table: contacts_with_region\n  region_column: region")
        #expect(try ferryCLI("schema apply \(view)", database: db.name).status == 0)
        let doctor = try ferryCLI("doctor \(view)", database: db.name)
        #expect(!doctor.stdout.contains("has no primary key"), "\(doctor.stdout)")
        let apply = try ferryCLI("apply \(view) --no-progress", database: db.name)
        #expect(apply.status == 0, "\(apply.stderr)")
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers") == 4)

        let twice = try ApplicationSchema.mapping(source: "  table: contacts_twice")
        let refused = try ferryCLI("plan \(twice) --no-progress", database: db.name)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("view contacts_twice repeats its declared key"), "\(refused.stderr)")
    }

    /// The region from a query, not a table: a contact's client's default location (the application keeps
    /// locations per client, several per client, one the default), else its tenant's region. `ferry doctor`
    /// runs the query and names what is wrong with it.
    @Test func aQueryGivesEachContactItsClientsRegionAndDoctorChecksIt() throws {
        let db = try ApplicationSchema.database()
        let us = ApplicationSchema.us
        let client = "50000000-0000-4000-8000-000000000001"
        try db.connection.execute(
            script: """
                CREATE TABLE client_locations (
                    tenant uuid NOT NULL, location_id uuid NOT NULL DEFAULT gen_random_uuid(), client_id uuid NOT NULL,
                    country_code text, is_default boolean NOT NULL DEFAULT false, PRIMARY KEY (tenant, location_id));
                INSERT INTO client_locations (tenant, client_id, country_code, is_default)
                    VALUES ('\(us)', '\(client)', 'DE', true), ('\(us)', '\(client)', 'FR', false);
                INSERT INTO contacts (tenant, contact_name_id, full_name, phone_number, client_id) VALUES
                    ('\(us)', '10000000-0000-4000-8000-000000000009', 'Berlin office of a US client', '030 1234568', '\(client)');
                """)
        func lookup(_ query: String, column: String = "region") -> String {
            """
              table: contacts
              region_lookup:
                query: |
                  \(query)
                join: {tenant: tenant, contact_name_id: contact_name_id}
                column: \(column)
            """
        }
        let regions = """
            SELECT c.tenant, c.contact_name_id, coalesce(l.country_code, t.region) AS region
                  FROM contacts c
                  LEFT JOIN client_locations l ON l.tenant = c.tenant AND l.client_id = c.client_id AND l.is_default
                  LEFT JOIN tenant_regions t ON t.tenant = c.tenant;
            """
        let mapping = try ApplicationSchema.mapping(source: lookup(regions))
        let (before, _) = try ApplicationSchema.planAndApply(mapping, db, planSays: "DE (lookup)")
        let fine = try ferryCLI("doctor \(mapping)", database: db.name)
        #expect(fine.status == 0, "\(fine.stdout)")
        #expect(
            try db.scalar(
                "SELECT phone_number FROM contact_phone_numbers WHERE contact_name_id = '10000000-0000-4000-8000-000000000009'"
            ) == "+49301234568", "read in its client's region, not its tenant's")
        #expect(
            try db.scalar(
                "SELECT phone_number FROM contact_phone_numbers WHERE contact_name_id = '20000000-0000-4000-8000-000000000001'"
            ) == "+442079460958", "the tenant's region where the contact has no client")
        #expect(try ferryCLI("rollback 1 --yes", database: db.name).status == 0)
        #expect(try db.checksum("contact_phone_numbers") == before)

        // A query that does not return the mapping's column, and one that does not run: doctor and plan refuse.
        let renamed = try ApplicationSchema.mapping(source: lookup(regions, column: "country"))
        try ApplicationSchema.expectRefusal(
            "doctor \(renamed)", db,
            says:
                "source.region_lookup.query in \(renamed) returns no column country (it returns tenant, contact_name_id, region)"
        )
        let broken = try ApplicationSchema.mapping(
            source: lookup("SELECT tenant, contact_name_id, region FROM tenant_region"))
        try ApplicationSchema.expectRefusal(
            "plan \(broken) --no-progress", db,
            says: "source.region_lookup.query in \(broken) does not run: relation \"tenant_region\" does not exist")
        #expect(try db.checksum("contact_phone_numbers") == before, "nothing written by the refused runs")
    }

    /// The contacts read from a query (the region joined in, inactive contacts left out), without a
    /// view in the application's database: paged by its declared key, which is counted first.
    @Test func aQueryIsASourceWhenItsDeclaredKeyIsUnique() throws {
        let db = try ApplicationSchema.database()
        try db.connection.execute(
            script:
                "UPDATE contacts SET is_inactive = true WHERE contact_name_id = '30000000-0000-4000-8000-000000000001'")
        func source(_ query: String) -> String {
            """
              table: contacts
              query: |
                \(query)
              region_column: region
            """
        }
        let active = """
            SELECT c.tenant, c.contact_name_id, c.phone_number, r.region
                FROM contacts c LEFT JOIN tenant_regions r USING (tenant) WHERE NOT c.is_inactive;
            """
        let mapping = try ApplicationSchema.mapping(source: source(active))
        let (before, json) = try ApplicationSchema.planAndApply(mapping, db, planSays: "GB (row)")
        let summary = try JSONDecoder().decode(PhonesSummary.self, from: json)
        #expect(
            summary.contactsScanned == 5 && summary.accountingAddsUp, "the inactive contact is not read: \(summary)")
        #expect(
            try ApplicationSchema.rows(db).map { $0[1] } == ["+12125550101", "+442079460958", "+33142685300"],
            "London by the region the query joined in; Berlin (inactive) left alone")
        let doctor = try ferryCLI("doctor \(mapping)", database: db.name)
        #expect(doctor.status == 0, "\(doctor.stdout)")
        let after = try db.checksum("contact_phone_numbers")
        #expect(try ferryCLI("apply \(mapping) --no-progress", database: db.name).status == 0)
        #expect(try db.checksum("contact_phone_numbers") == after, "a second apply changes nothing")
        #expect(try ferryCLI("rollback 1 --yes", database: db.name).status == 0)
        #expect(try db.checksum("contact_phone_numbers") == before)

        // A query's keys need not be the table's: the plan counts the foreign key instead of assuming it.
        let stranger = try ApplicationSchema.mapping(
            source: source(
                """
                SELECT tenant, contact_name_id, phone_number, region FROM (\(active.dropLast())) a
                    UNION ALL SELECT '\(ApplicationSchema.us)', '90000000-0000-4000-8000-000000000001', '212-555-0199', NULL
                """))
        let predicted = try ferryCLI("plan \(stranger) --no-progress --json", database: db.name)
        #expect(predicted.status == 6, "\(predicted.stderr)")
        let checks = try JSONDecoder().decode(PlanReport.self, from: Data(predicted.stdout.utf8)).checks
        #expect(
            checks.contains { $0.constraint.contains("→ contacts") && $0.violations == 1 && $0.heldBecause == nil },
            "\(checks)")

        let twice = try ApplicationSchema.mapping(
            source: source(
                "SELECT tenant, contact_name_id, phone_number, NULL::text AS region FROM contacts, generate_series(1, 2)"
            ))
        try ApplicationSchema.expectRefusal(
            "plan \(twice) --no-progress", db, says: "the query source.query repeats its declared key")
        let short = try ApplicationSchema.mapping(
            source: source("SELECT tenant, contact_name_id, NULL::text AS region FROM contacts"))
        try ApplicationSchema.expectRefusal(
            "doctor \(short)", db,
            says: "source.query in \(short) returns no column phone_number (it returns tenant, contact_name_id, region)"
        )
        #expect(try db.checksum("contact_phone_numbers") == before, "nothing written by the refused runs")
    }

    /// Progress and ETA for a query source count what the query returns, not the table it reads.
    @Test func aQuerySourcesProgressTotalIsWhatTheQueryReturns() throws {
        let db = try ApplicationSchema.database()
        try db.connection.execute(
            script: """
                INSERT INTO contacts (tenant, contact_name_id, full_name, phone_number, is_inactive)
                    SELECT '\(ApplicationSchema.us)', gen_random_uuid(), 'Contact ' || n, '212-555-0100', n > 100
                    FROM generate_series(1, 2000) n;
                ANALYZE contacts;
                """)
        func total(_ source: String) throws -> Int? {
            let file = try ApplicationSchema.mapping(source: source)
            let job = PhonesJob(
                mapping: try PhonesMapping(file: file, text: String(contentsOfFile: file, encoding: .utf8)),
                conninfo: db.conninfo)
            return try job.recordCount(try job.statements(db.connection), db.connection, tenants: nil)
        }
        let table = try #require(try total("  table: contacts"))
        #expect(table > 1900, "the table's estimate: \(table)")
        let active = try #require(
            try total(
                """
                  table: contacts
                  query: SELECT tenant, contact_name_id, phone_number FROM contacts WHERE NOT is_inactive
                """))
        let counted = try db.count("SELECT count(*) FROM contacts WHERE NOT is_inactive")
        #expect(
            (counted / 2...counted * 2).contains(active),
            "the planner's estimate of the query's rows (\(counted) counted), not the table's: \(active)")
    }

    @Test func naiveRowsTheApplicationsBackfillWroteAreReplacedInPlaceAndRollbackRestoresThem() throws {
        let db = try ApplicationSchema.database()
        let us = ApplicationSchema.us
        try db.connection.execute(
            script: """
                INSERT INTO contacts (tenant, contact_name_id, full_name, phone_number) VALUES
                    ('\(us)', '10000000-0000-4000-8000-000000000003', 'Two numbers', '212-555-0102 / 212-555-0103'),
                    ('\(us)', '10000000-0000-4000-8000-000000000004', 'Tab only', E'\\t'),
                    ('\(us)', '10000000-0000-4000-8000-000000000005', 'Edited by the app', '212-555-0105'),
                    ('\(us)', '10000000-0000-4000-8000-000000000006', 'Second row added', '212-555-0106');
                -- The application's own backfill, in the release that created the tables.
                \(ApplicationSchema.naiveBackfill)
                -- Since then the application changed two contacts' rows.
                UPDATE contact_phone_numbers SET phone_number = '+1 212 555 0199'
                WHERE contact_name_id = '10000000-0000-4000-8000-000000000005';
                INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default, display_order)
                VALUES ('\(us)', '10000000-0000-4000-8000-000000000006', '+12125550177', 'mobile', false, 1);
                """)
        let mapping = try ApplicationSchema.mapping(
            source: ApplicationSchema.lookup, extra: "  existing_rows: replace_naive")
        let ids = try db.connection.query(
            "SELECT contact_name_id::text, contact_phone_number_id::text FROM contact_phone_numbers WHERE is_default"
        ).rows.reduce(into: [String: String]()) { $0[$1[0]!] = $1[1]! }
        let (before, json) = try ApplicationSchema.planAndApply(mapping, db, planSays: "naive rows replaced in place")
        let summary = try JSONDecoder().decode(PhonesSummary.self, from: json)
        // Plain, London, Berlin, Paris and "Two numbers" are rewritten; "n/a", the tab-only value and the
        // number with an extension (the table has no column for it) leave no row: rejected, with the
        // legacy column still holding them.
        #expect(summary.applied?.naiveRowsReplaced == 5 && summary.applied?.naiveRowsDeleted == 3, "\(summary)")
        #expect(summary.values.rejected == 3)
        #expect(summary.contactsSkippedExisting == 2, "the two contacts the application changed are left alone")
        let rows = try db.connection.query(
            """
            SELECT contact_name_id::text, contact_phone_number_id::text, phone_number, canonical_type, is_default::text, display_order::text
            FROM contact_phone_numbers WHERE tenant = '\(us)' ORDER BY contact_name_id, display_order
            """
        ).rows
        let plain = [
            "10000000-0000-4000-8000-000000000001", ids["10000000-0000-4000-8000-000000000001"]!, "+12125550101",
            "work", "true", "0",
        ]
        #expect(rows.first == plain, "rewritten in place, its key kept")
        let two = rows.filter { $0[0] == "10000000-0000-4000-8000-000000000003" }
        #expect(
            two.map { [$0[2], $0[4], $0[5]] } == [["+12125550102", "true", "0"], ["+12125550103", "false", "1"]])
        #expect(two.first?[1] == ids["10000000-0000-4000-8000-000000000003"])
        #expect(
            !rows.contains {
                $0[0] == "10000000-0000-4000-8000-000000000002" || $0[0] == "10000000-0000-4000-8000-000000000004"
            })
        #expect(rows.contains { $0[0] == "10000000-0000-4000-8000-000000000005" && $0[2] == "+1 212 555 0199" })
        #expect(rows.filter { $0[0] == "10000000-0000-4000-8000-000000000006" }.count == 2)

        let after = try db.checksum("contact_phone_numbers")
        #expect(try ferryCLI("apply \(mapping) --no-progress", database: db.name).status == 0)
        #expect(try db.checksum("contact_phone_numbers") == after, "a second apply changes nothing")

        // The contract judges the replaced rows: the five rewritten contacts are migrated, "n/a" holds
        // nothing to migrate, and the rest (the tab-only value's and the extension's rejected values,
        // the two contacts the application changed) are unmigrated: it refuses, dropping nothing.
        let unmigrated = (mapping as NSString).deletingLastPathComponent + "/unmigrated.csv"
        let contract = try ferryCLI("contract \(mapping) --json --unmigrated-out \(unmigrated)", database: db.name)
        #expect(contract.status == 5, "\(contract.stdout)\(contract.stderr)")
        let judged = try JSONDecoder().decode(ContractReport.self, from: Data(contract.stdout.utf8))
        #expect(judged.addsUp && judged.migrated == 5 && !judged.dropped, "\(contract.stdout)")
        #expect(judged.unmigrated + judged.nothingToMigrate == judged.checked - 5, "\(contract.stdout)")
        #expect(
            judged.examples.contains { $0.values.contains("212-555-0105") }
                && judged.examples.contains { $0.values.contains("212-555-0106") }, "\(contract.stdout)")
        #expect(try db.count("SELECT count(*) FROM contacts WHERE phone_number IS NOT NULL") > 0, "nothing dropped")
        #expect(try readAllRecords(unmigrated) == 1 + judged.unmigrated, "the list names every unmigrated contact")
        let rollback = try ferryCLI("rollback 1 --yes", database: db.name)
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        #expect(try db.checksum("contact_phone_numbers") == before, "the naive rows are back exactly")
    }

    /// The release after: the legacy column is dropped, the naive rows are the only copy.
    func legacyColumnDropped() throws -> TestDatabase {
        let db = try ApplicationSchema.database()
        let us = ApplicationSchema.us
        try db.connection.execute(
            script: """
                INSERT INTO contacts (tenant, contact_name_id, full_name, phone_number) VALUES
                    ('\(us)', '10000000-0000-4000-8000-000000000003', 'Two numbers', '212-555-0102 / 212-555-0103');
                \(ApplicationSchema.naiveBackfill)
                INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default, display_order)
                VALUES ('\(us)', '10000000-0000-4000-8000-000000000001', '+12125550177', 'mobile', false, 1);
                ALTER TABLE contacts DROP COLUMN phone_number;
                """)
        return db
    }

    static func inPlaceMapping(_ extra: String = "") throws -> String {
        try temporaryFile(
            """
            job: phones-in-place
            source:
              region_lookup:
                table: tenant_regions
                join: {tenant: tenant}
                column: region
            \(ApplicationSchema.targetAndPhones)
            \(extra)
            """, name: "in-place.yaml")
    }

    /// The application's BEFORE UPDATE trigger writes a column the rewrite does not name: the
    /// pre-images keep the whole row, and a rollback with the trigger disabled puts every column back.
    @Test func aRewriteThroughAnApplicationTriggerIsUndoneExactly() throws {
        let db = try legacyColumnDropped()
        try db.connection.execute(
            script: """
                ALTER TABLE contact_phone_numbers ADD COLUMN revision int NOT NULL DEFAULT 0;
                CREATE FUNCTION bump_revision() RETURNS trigger LANGUAGE plpgsql
                    AS $$ BEGIN NEW.revision = OLD.revision + 1; RETURN NEW; END $$;
                CREATE TRIGGER phone_revision BEFORE UPDATE ON contact_phone_numbers
                    FOR EACH ROW EXECUTE FUNCTION bump_revision();
                """)
        let mapping = try Self.inPlaceMapping()
        let (before, _) = try ApplicationSchema.planAndApply(mapping, db, planSays: "✓ adds up")
        #expect(try db.count("SELECT count(*) FROM contact_phone_numbers WHERE revision > 0") > 0, "the trigger fired")
        let rollback = try ferryCLI("rollback 1 --yes --disable-before-triggers", database: db.name)
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        #expect(try db.checksum("contact_phone_numbers") == before, "every column as it was, revision included")
    }

    @Test func withTheLegacyColumnGoneRowsAreNormalizedWhereTheyStand() throws {
        let db = try legacyColumnDropped()
        let mapping = try Self.inPlaceMapping()
        let ids = try db.connection.query(
            "SELECT phone_number, contact_phone_number_id::text FROM contact_phone_numbers"
        ).rows.reduce(into: [String: String]()) { $0[$1[0]!] = $1[1]! }
        let (before, json) = try ApplicationSchema.planAndApply(mapping, db, planSays: "✓ adds up")
        let summary = try JSONDecoder().decode(PhonesInPlaceSummary.self, from: json)
        // 8 rows: the mobile one is already stored; plain, London, Berlin, Paris and the two-number row
        // are rewritten (one number added); the extension and "n/a" are unusable and stay.
        #expect(summary.rowsRead == 8 && summary.rowsUnchanged == 1 && summary.rowsToRewrite == 5, "\(summary)")
        #expect(summary.rowsUnusable == 2 && summary.applied?.rowsAdded == 1 && summary.applied?.rowsRewritten == 5)
        #expect(summary.accountingAddsUp)
        let rows = try db.connection.query(
            "SELECT contact_phone_number_id::text, phone_number, is_default::text, display_order::text FROM contact_phone_numbers"
        ).rows
        let byId = Dictionary(uniqueKeysWithValues: rows.map { ($0[0]!, $0) })
        #expect(byId[ids["212-555-0101"]!]?[1] == "+12125550101", "rewritten where it stands, key kept")
        #expect(byId[ids["020 7946 0958"]!]?[1] == "+442079460958")
        #expect(byId[ids["030 1234567"]!]?[1] == "+49301234567")
        #expect(byId[ids["01 42 68 53 00"]!]?[1] == "+33142685300")
        #expect(byId[ids["212-555-0102 / 212-555-0103"]!]?[1] == "+12125550102")
        #expect(rows.contains { $0[1] == "+12125550103" && $0[2] == "false" && $0[3] == "1" })
        #expect(byId[ids["n/a"]!]?[1] == "n/a", "an unusable value stays as it is")
        #expect(byId[ids["(212) 555-0100 x12"]!]?[1] == "(212) 555-0100 x12")

        let after = try db.checksum("contact_phone_numbers")
        let again = try ferryCLI("apply \(mapping) --no-progress", database: db.name)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try db.checksum("contact_phone_numbers") == after, "a second apply changes nothing")
        // No legacy column is left for a contract to drop, and ferry says so.
        let contract = try ferryCLI("contract \(mapping)", database: db.name)
        #expect(contract.status == 1 && contract.stderr.contains("no legacy column left to drop"), "\(contract.stderr)")
        #expect(try ferryCLI("rollback 1 --yes", database: db.name).status == 0)
        #expect(try db.checksum("contact_phone_numbers") == before, "rollback restores the rows exactly")
    }

    /// The fixture without a legacy column, normalized in place with `unusable_rows: delete`; with the
    /// phone table's checksum from before the apply.
    private func appliedInPlaceDeletingUnusableRows() throws -> (db: TestDatabase, before: String) {
        let db = try legacyColumnDropped()
        let mapping = try Self.inPlaceMapping("  unusable_rows: delete")
        #expect(try ferryCLI("schema apply \(mapping)", database: db.name).status == 0)
        let before = try db.checksum("contact_phone_numbers")
        let apply = try ferryCLI("apply \(mapping) --no-progress", database: db.name)
        #expect(apply.status == 0, "\(apply.stderr)")
        return (db, before)
    }

    @Test func unusableRowsAreDeletedOnlyWhenTheMappingSaysSoAndComeBackOnRollback() throws {
        let (db, before) = try appliedInPlaceDeletingUnusableRows()
        #expect(
            try db.count(
                "SELECT count(*) FROM contact_phone_numbers WHERE phone_number IN ('n/a', '(212) 555-0100 x12')") == 0)
        #expect(try ferryCLI("rollback 1 --yes", database: db.name).status == 0)
        #expect(try db.checksum("contact_phone_numbers") == before)
    }

    /// The application deletes a contact whose unusable row the apply deleted: that row cannot go back
    /// (its contact is gone). The rollback puts back everything else, keeps that row's pre-image in the
    /// ledger, says so (exit 3, partially rolled back); once the contact is back, a second rollback
    /// finishes exactly.
    @Test func aDeletedRowWhoseContactTheApplicationDeletedStaysInTheLedgerUntilItCanGoBack() throws {
        let (db, before) = try appliedInPlaceDeletingUnusableRows()
        let deleted = try db.connection.query(
            """
            SELECT before->>'contact_name_id' AS contact FROM ferry.snapshot_rows WHERE action = 'delete'
            ORDER BY key::text LIMIT 1
            """
        ).value("a deleted row's contact", as: String.self)
        let contactBefore = try db.checksum("contacts")
        let contact = try db.connection.query(
            "SELECT to_jsonb(c)::text FROM contacts c WHERE contact_name_id = $1", [deleted]
        ).value("the contact", as: String.self)
        try db.connection.query(
            "DELETE FROM contacts WHERE contact_name_id = $1", [deleted])

        let dry = try ferryCLI("rollback 1 --dry-run", database: db.name)
        #expect(dry.status == 3, "\(dry.stdout)\(dry.stderr)")
        #expect(dry.stdout.contains("cannot go back (conflicts, below)"), "\(dry.stdout)")
        let partial = try ferryCLI("rollback 1 --yes", database: db.name)
        #expect(partial.status == 3, "\(partial.stdout)\(partial.stderr)")
        #expect(partial.stdout.contains("cannot be put back: a row it references was deleted since the run"))
        #expect(partial.stdout.contains("partially rolled back"))
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = 1") == "partially_rolled_back")
        #expect(
            try db.count("SELECT count(*) FROM ferry.snapshot_rows WHERE run_id = 1 AND action = 'delete'") >= 1)
        // Nothing else of the run is left to undo: only that contact's deleted rows wait in the ledger.
        #expect(
            try db.scalar(
                "SELECT count(*) FROM ferry.snapshot_rows WHERE run_id = 1 AND (action <> 'delete' OR before->>'contact_name_id' <> $1)",
                [deleted]) == "0")

        try db.connection.query(
            "INSERT INTO contacts SELECT * FROM jsonb_populate_record(NULL::contacts, $1::jsonb)", [contact])
        #expect(try db.checksum("contacts") == contactBefore)
        let finished = try ferryCLI("rollback 1 --yes", database: db.name)
        #expect(finished.status == 0, "\(finished.stdout)\(finished.stderr)")
        #expect(try db.checksum("contact_phone_numbers") == before)
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = 1") == "rolled_back")
    }

    /// The application gives a contact whose unusable default row the apply deleted a new default: the
    /// old row cannot go back beside it (one default per contact). The rollback leaves it in the ledger,
    /// says so (exit 3), and finishes once the application's row is gone.
    @Test func aDeletedDefaultRowWhoseContactHasANewDefaultWaitsInTheLedger() throws {
        let (db, before) = try appliedInPlaceDeletingUnusableRows()
        let deleted = try db.connection.query(
            """
            SELECT before->>'contact_name_id' AS contact FROM ferry.snapshot_rows
            WHERE action = 'delete' AND (before->>'is_default')::boolean ORDER BY key::text LIMIT 1
            """
        ).value("a deleted default row's contact", as: String.self)
        try db.connection.query(
            """
            INSERT INTO contact_phone_numbers (tenant, contact_name_id, phone_number, canonical_type, is_default)
            SELECT tenant, contact_name_id, '+12125550111', 'mobile', true FROM contacts WHERE contact_name_id = $1
            """, [deleted])
        let partial = try ferryCLI("rollback 1 --yes", database: db.name)
        #expect(partial.status == 3, "\(partial.stdout)\(partial.stderr)")
        #expect(partial.stdout.contains("a row written since the run holds the same unique key"), "\(partial.stdout)")
        #expect(try db.scalar("SELECT status FROM ferry.runs WHERE run_id = 1") == "partially_rolled_back")

        try db.connection.query("DELETE FROM contact_phone_numbers WHERE phone_number = '+12125550111'")
        let finished = try ferryCLI("rollback 1 --yes", database: db.name)
        #expect(finished.status == 0, "\(finished.stdout)\(finished.stderr)")
        #expect(try db.checksum("contact_phone_numbers") == before)
    }

    /// The application's next release adds columns between the apply and the rollback: the rows restored
    /// keep what the new columns hold, the rows put back get the columns' defaults; never NULL.
    @Test func columnsTheApplicationAddsAfterTheApplyKeepTheirValuesThroughTheRollback() throws {
        let (db, before) = try appliedInPlaceDeletingUnusableRows()
        #expect(try db.count("SELECT count(*) FROM ferry.snapshot_rows WHERE action = 'update'") > 0)
        #expect(try db.count("SELECT count(*) FROM ferry.snapshot_rows WHERE action = 'delete'") > 0)
        try db.connection.execute(
            script: """
                ALTER TABLE contact_phone_numbers ADD COLUMN verified boolean NOT NULL DEFAULT false;
                ALTER TABLE contact_phone_numbers ADD COLUMN source text DEFAULT 'application';
                """)
        let rollback = try ferryCLI("rollback 1 --yes", database: db.name)
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        #expect(
            try db.count(
                "SELECT count(*) FROM contact_phone_numbers WHERE verified OR source IS DISTINCT FROM 'application'")
                == 0)
        try db.connection.execute(script: "ALTER TABLE contact_phone_numbers DROP COLUMN verified, DROP COLUMN source")
        #expect(try db.checksum("contact_phone_numbers") == before)
    }
}
