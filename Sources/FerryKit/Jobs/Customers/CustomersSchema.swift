/// The expand steps of the customers job: target columns on the application's tables (added when
/// missing; customer_id stays), and the contact points table.
enum CustomersSchema {
    static func steps(
        for mapping: CustomersMapping, types: TableJobKeyTypes, engine: DatabaseEngine = .postgres
    ) -> [SchemaStep] {
        func q(_ name: String) -> String { quoteIdentifier(name) }
        let p = mapping.projects, c = mapping.contacts, o = mapping.organizations, cp = mapping.contactPoints
        let contacts = SchemaStep(
            name: "customers/\(c.table)-target-columns",
            sql: """
                ALTER TABLE \(c.table.quoted)
                    ADD COLUMN IF NOT EXISTS \(q(c.isPrimary)) boolean NOT NULL DEFAULT false,
                    ADD COLUMN IF NOT EXISTS \(q("description")) text;
                """)
        // Citus wants every constraint named: the type's CHECK is added apart from its column there.
        let typeCheck = "\(q(o.type)) IN ('company', 'individual')"
        let typeCheckName = o.table.name + "_" + o.type + "_check"
        let emailDomainIndex = """
            CREATE UNIQUE INDEX IF NOT EXISTS \(q(o.table.name + "_email_domain"))
                ON \(o.table.quoted) (\(q(o.tenant)), \(q(o.emailDomain))) WHERE \(q(o.emailDomain)) IS NOT NULL
            """
        let organizations = SchemaStep(
            name: "customers/\(o.table)-type-and-domain",
            statements: [
                """
                ALTER TABLE \(o.table.quoted)
                    ADD COLUMN IF NOT EXISTS \(q(o.type)) text NOT NULL DEFAULT 'company' CHECK (\(typeCheck)),
                    ADD COLUMN IF NOT EXISTS \(q(o.emailDomain)) text
                """,
                emailDomainIndex,
            ])
        let organizationsOnCitus = SchemaStep(
            name: organizations.name,
            statements: [
                """
                ALTER TABLE \(o.table.quoted)
                    ADD COLUMN IF NOT EXISTS \(q(o.type)) text NOT NULL DEFAULT 'company',
                    ADD COLUMN IF NOT EXISTS \(q(o.emailDomain)) text
                """,
                """
                DO $ferry$
                BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = \(sqlLiteral(o.table.quoted))::regclass AND conname = \(sqlLiteral(typeCheckName))) THEN
                    ALTER TABLE \(o.table.quoted) ADD CONSTRAINT \(q(typeCheckName)) CHECK (\(typeCheck));
                END IF;
                END
                $ferry$
                """,
                emailDomainIndex,
            ]
        ).equivalent(to: organizations)
        let foreignKey = p.table.name + "_customer_organization_fkey"
        let projects = SchemaStep(
            name: "customers/\(p.table)-customer-organization",
            statements: [
                "ALTER TABLE \(p.table.quoted) ADD COLUMN IF NOT EXISTS \(q(p.customerOrganization)) \(types.organization)",
                """
                DO $ferry$
                BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = \(sqlLiteral(p.table.quoted))::regclass AND conname = \(sqlLiteral(foreignKey))) THEN
                    ALTER TABLE \(p.table.quoted) ADD CONSTRAINT \(q(foreignKey))
                        FOREIGN KEY (\(q(p.tenant)), \(q(p.customerOrganization))) REFERENCES \(o.table.quoted) (\(q(o.tenant)), \(q(o.key)));
                END IF;
                END
                $ferry$
                """,
                "CREATE INDEX IF NOT EXISTS \(q(p.table.name + "_customer")) ON \(p.table.quoted) (\(q(p.tenant)), \(q(p.customer)))",
                "CREATE INDEX IF NOT EXISTS \(q(p.table.name + "_customer_organization")) ON \(p.table.quoted) (\(q(p.tenant)), \(q(p.customerOrganization)))",
            ])
        let created = engine.createdTable(
            cp.table, tenantColumn: cp.tenant,
            foreignKeys: [
                (
                    cp.table.name + "_project_fkey",
                    "FOREIGN KEY (\(q(cp.tenant)), \(q(cp.project))) REFERENCES \(p.table.quoted) (\(q(p.tenant)), \(q(p.key))) ON DELETE CASCADE"
                ),
                (
                    cp.table.name + "_contact_fkey",
                    "FOREIGN KEY (\(q(cp.tenant)), \(q(cp.contact))) REFERENCES \(c.table.quoted) (\(q(c.tenant)), \(q(c.key))) ON DELETE CASCADE"
                ),
            ])
        let points = SchemaStep(
            name: "customers/\(cp.table)",
            sql: SchemaStep.whenMissing(
                cp.table,
                """
                CREATE TABLE \(cp.table.quoted) (
                    \(q(cp.tenant)) \(types.tenant) NOT NULL,
                    \(q(cp.id)) uuid NOT NULL DEFAULT gen_random_uuid(),
                    \(q(cp.project)) \(types.row) NOT NULL,
                    \(q(cp.contact)) \(types.contact) NOT NULL,
                    \(q(cp.role)) text NOT NULL,
                    \(q(cp.isPrimary)) boolean NOT NULL DEFAULT false,
                    \(q(cp.createdAt)) timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (\(q(cp.tenant)), \(q(cp.id))),
                    UNIQUE (\(q(cp.tenant)), \(q(cp.project)), \(q(cp.contact)))\(created.inlineKeys)
                );\(created.afterTable)
                CREATE UNIQUE INDEX \(q(cp.table.name + "_one_primary_per_project"))
                    ON \(cp.table.quoted) (\(q(cp.tenant)), \(q(cp.project))) WHERE \(q(cp.isPrimary));
                CREATE INDEX \(q(cp.table.name + "_contact")) ON \(cp.table.quoted) (\(q(cp.tenant)), \(q(cp.contact)));
                CREATE INDEX \(q(cp.table.name + "_role")) ON \(cp.table.quoted) (\(q(cp.tenant)), \(q(cp.role)));
                \(mapping.isolation.policySQL(cp.table, tenantColumn: cp.tenant, tenantType: types.tenant))
                """))
        guard engine.isCitus else { return [contacts, organizations, projects, points] }
        return SchemaStep.equivalent(
            [contacts, organizationsOnCitus, projects, points], to: steps(for: mapping, types: types))
    }
}
