extension PhonesSchema {
    /// What any job that writes phones expects of the two phone tables. `tenantType`/`keyType` are the
    /// contacts table's key types (nil when it cannot be read: then types are not checked).
    static func expectations(
        phones: PhonesMapping.PhoneNumbersTable, types: PhonesMapping.TypeDefinitionsTable,
        contacts: TableName?, tenantColumn: String, keyColumn: String,
        tenantType: String?, keyType: String?, use: TableExpectation.Use,
        steps: [SchemaStep]
    ) -> [TableExpectation] {
        var typeTable = TableExpectation(types.table, use: use)
        typeTable.column(types.tenant, tenantType)
        typeTable.column(types.id, "uuid")
        typeTable.column(types.label, "text")
        typeTable.column(types.normalizedLabel, "text")
        typeTable.needsPrimaryKey = true
        typeTable.uniqueKeys = [.init(columns: [types.tenant, types.normalizedLabel])]
        typeTable.createdBy = steps.first { $0.name == "phones/\(types.table)" }

        var phoneTable = TableExpectation(phones.table, use: use)
        phoneTable.column(phones.tenant, tenantType)
        phoneTable.column(phones.contactKey, keyType)
        phoneTable.column(phones.phoneNumber, "text")
        if let column = phones.extensionDigits { phoneTable.column(column, "text") }
        phoneTable.column(phones.canonicalType, "text")
        phoneTable.column(phones.customType, "uuid")
        phoneTable.column(phones.isDefault, "boolean")
        phoneTable.column(phones.displayOrder, "integer")
        phoneTable.needsPrimaryKey = true
        phoneTable.uniqueKeys = [
            .init(
                columns: [phones.tenant, phones.contactKey], predicate: quoteIdentifier(phones.isDefault),
                required: false)
        ]
        phoneTable.indexes = [[phones.tenant, phones.contactKey]]
        // nil: a job that reads the phone table alone (in place) does not check its tie to contacts.
        phoneTable.foreignKeys =
            (contacts.map {
                [
                    TableExpectation.ForeignKey(
                        columns: [phones.tenant, phones.contactKey], references: $0,
                        referencedColumns: [tenantColumn, keyColumn])
                ]
            } ?? [])
            + [
                .init(
                    columns: [phones.tenant, phones.customType], references: types.table,
                    referencedColumns: [types.tenant, types.id])
            ]
        phoneTable.createdBy = steps.first { $0.name == "phones/\(phones.table)" }
        return [typeTable, phoneTable]
    }
}

extension PhonesJob {
    /// What the phones job expects of the database; `forApply` adds write privileges and the ledger.
    public func expectations(using connection: PostgresConnection, forApply: Bool) throws -> [TableExpectation] {
        let source = mapping.source
        var read: [String] = []
        for column in [source.tenantColumn, source.keyColumn]
            + [source.regionColumn, source.createdAtColumn, source.updatedAtColumn].compactMap({ $0 })
            + source.columns.map(\.name) + (source.regionLookup?.join.map(\.source) ?? [])
        where !read.contains(column) {
            read.append(column)
        }
        var sourceTable = TableExpectation(source.table, use: .read)
        sourceTable.needsPrimaryKey = true
        sourceTable.uniqueKeys = [
            .init(
                columns: [source.tenantColumn, source.keyColumn],
                reason: "the extraction pages by it, and rows sharing a key at a page boundary would be skipped")
        ]
        var queries: [TableExpectation] = []
        if let query = source.query {
            // The table keeps the key the phone rows refer to; the query returns what the extract reads.
            for column in read.prefix(2) { sourceTable.column(column) }
            var expected = TableExpectation(TableName(schema: nil, name: "source.query"), use: .read)
            expected.query = query
            for column in read { expected.column(column) }
            queries.append(expected)
        } else {
            for column in read { sourceTable.column(column) }
        }
        var lookups: [TableExpectation] = []
        if let lookup = source.regionLookup { lookups.append(lookup.expectation) }
        let types = try sourceKeyTypes(connection)
        let engine = try DatabaseEngine.detect(source: source.table, on: connection)
        let steps =
            types.map { PhonesSchema.steps(for: mapping, tenantType: $0.tenant, keyType: $0.key, engine: engine) } ?? []
        return [sourceTable] + queries + lookups
            + PhonesSchema.expectations(
                phones: mapping.phoneNumbers, types: mapping.typeDefinitions, contacts: source.table,
                tenantColumn: source.tenantColumn, keyColumn: source.keyColumn,
                tenantType: types?.tenant, keyType: types?.key, use: forApply ? .write : .read, steps: steps)
            + (forApply ? LedgerSchema.expectations() : [])
    }
}
