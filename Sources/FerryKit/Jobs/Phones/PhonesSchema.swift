/// The expand step of the phones job: the normalized tables, created when missing (with tenant
/// row-level security unless the mapping opts out). The legacy column stays.
public enum PhonesSchema {
    public static func steps(
        for mapping: PhonesMapping, tenantType: String, keyType: String, engine: DatabaseEngine = .postgres
    ) -> [SchemaStep] {
        steps(
            phones: mapping.phoneNumbers, types: mapping.typeDefinitions, contacts: mapping.source.table,
            tenantColumn: mapping.source.tenantColumn, keyColumn: mapping.source.keyColumn, tenantType: tenantType,
            keyType: keyType,
            isolation: mapping.isolation, engine: engine)
    }

    /// The phone tables for any job that writes phones of `contacts` rows (the backfill, the CSV import).
    static func steps(
        phones: PhonesMapping.PhoneNumbersTable, types: PhonesMapping.TypeDefinitionsTable, contacts: TableName,
        tenantColumn: String, keyColumn: String, tenantType: String, keyType: String,
        isolation: TenantIsolation, engine: DatabaseEngine = .postgres
    ) -> [SchemaStep] {
        func q(_ name: String) -> String { quoteIdentifier(name) }
        let canonical = CanonicalPhoneType.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
        let typeDefinitions = SchemaStep(
            name: "phones/\(types.table)",
            sql: SchemaStep.whenMissing(
                types.table,
                """
                CREATE TABLE \(types.table.quoted) (
                    \(q(types.tenant)) \(tenantType) NOT NULL,
                    \(q(types.id)) uuid NOT NULL DEFAULT gen_random_uuid(),
                    \(q(types.label)) text NOT NULL,
                    \(q(types.normalizedLabel)) text NOT NULL,\(timestamps(types.createdAt, types.updatedAt))
                    PRIMARY KEY (\(q(types.tenant)), \(q(types.id))),
                    UNIQUE (\(q(types.tenant)), \(q(types.normalizedLabel))),
                    CHECK (\(q(types.normalizedLabel)) = lower(btrim(\(q(types.normalizedLabel))))
                           AND \(q(types.normalizedLabel)) <> '')
                );\(engine.createdTable(types.table, tenantColumn: types.tenant, foreignKeys: []).afterTable)
                \(isolation.policySQL(types.table, tenantColumn: types.tenant, tenantType: tenantType))
                """))
        let foreignKeys = [
            (
                phones.table.name + "_contact_fkey",
                """
                FOREIGN KEY (\(q(phones.tenant)), \(q(phones.contactKey)))
                        REFERENCES \(contacts.quoted) (\(q(tenantColumn)), \(q(keyColumn))) ON DELETE CASCADE
                """
            ),
            (
                phones.table.name + "_custom_type_fkey",
                """
                FOREIGN KEY (\(q(phones.tenant)), \(q(phones.customType)))
                        REFERENCES \(types.table.quoted) (\(q(types.tenant)), \(q(types.id)))
                """
            ),
        ]
        let created = engine.createdTable(phones.table, tenantColumn: phones.tenant, foreignKeys: foreignKeys)
        let phoneNumbers = SchemaStep(
            name: "phones/\(phones.table)",
            sql: SchemaStep.whenMissing(
                phones.table,
                """
                CREATE TABLE \(phones.table.quoted) (
                    \(q(phones.tenant)) \(tenantType) NOT NULL,
                    \(q(phones.id)) uuid NOT NULL DEFAULT gen_random_uuid(),
                    \(q(phones.contactKey)) \(keyType) NOT NULL,
                    \(q(phones.phoneNumber)) text NOT NULL,\(extensionColumns(phones))
                    \(q(phones.canonicalType)) text CHECK (\(q(phones.canonicalType)) IN (\(canonical))),
                    \(q(phones.customType)) uuid,
                    \(q(phones.isDefault)) boolean NOT NULL DEFAULT false,
                    \(q(phones.displayOrder)) integer NOT NULL DEFAULT 0,\(timestamps(phones.createdAt, phones.updatedAt))
                    PRIMARY KEY (\(q(phones.tenant)), \(q(phones.id))),
                    CHECK ((\(q(phones.canonicalType)) IS NULL) <> (\(q(phones.customType)) IS NULL))\(created.inlineKeys)
                );\(created.afterTable)
                CREATE UNIQUE INDEX \(q(phones.table.name + "_one_default_per_contact"))
                    ON \(phones.table.quoted) (\(q(phones.tenant)), \(q(phones.contactKey))) WHERE \(q(phones.isDefault));
                CREATE INDEX \(q(phones.table.name + "_contact_order"))
                    ON \(phones.table.quoted) (\(q(phones.tenant)), \(q(phones.contactKey)), \(q(phones.displayOrder)));\(normalizedIndex(phones))
                \(isolation.policySQL(phones.table, tenantColumn: phones.tenant, tenantType: tenantType))
                """))
        guard engine.isCitus else { return [typeDefinitions, phoneNumbers] }
        let plain = steps(
            phones: phones, types: types, contacts: contacts, tenantColumn: tenantColumn, keyColumn: keyColumn,
            tenantType: tenantType, keyType: keyType, isolation: isolation)
        return SchemaStep.equivalent([typeDefinitions, phoneNumbers], to: plain)
    }

    /// Runs `statements` only when `table` does not exist yet: an existing app's table (and its
    /// indexes) is the app's, and is left exactly as it is.
    // A mapping may declare these columns absent; the SQL for a table that has them all is unchanged,
    // so the recorded checksums of steps applied before stay valid.

    private static func timestamps(_ created: String?, _ updated: String?) -> String {
        [created, updated].compactMap { $0 }.map { "\n    \(quoteIdentifier($0)) timestamptz NOT NULL DEFAULT now()," }
            .joined()
    }

    private static func extensionColumns(_ phones: PhonesMapping.PhoneNumbersTable) -> String {
        (phones.extensionDigits.map { "\n    \(quoteIdentifier($0)) text," } ?? "")
            + (phones.normalizedPhoneNumber.map {
                "\n    \(quoteIdentifier($0)) text\n        GENERATED ALWAYS AS (regexp_replace(\(quoteIdentifier(phones.phoneNumber)), '[^0-9]', '', 'g')) STORED,"
            } ?? "")
    }

    private static func normalizedIndex(_ phones: PhonesMapping.PhoneNumbersTable) -> String {
        phones.normalizedPhoneNumber.map {
            "\nCREATE INDEX \(quoteIdentifier(phones.table.name + "_normalized"))\n    ON \(phones.table.quoted) (\(quoteIdentifier(phones.tenant)), \(quoteIdentifier($0)));"
        } ?? ""
    }
}
