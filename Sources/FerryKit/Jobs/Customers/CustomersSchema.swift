/// The expand steps of the customers job: target columns on the application's tables (added when
/// missing; customer_id stays), and the contact points table.
enum CustomersSchema {
    static func steps(for mapping: CustomersMapping, types: TableJobKeyTypes) -> [SchemaStep] {
        func q(_ name: String) -> String { quoteIdentifier(name) }
        let p = mapping.projects, c = mapping.contacts, o = mapping.organizations, cp = mapping.contactPoints
        let contacts = SchemaStep(
            name: "customers/\(c.table)-target-columns",
            sql: """
                ALTER TABLE \(c.table.quoted)
                    ADD COLUMN IF NOT EXISTS \(q(c.isPrimary)) boolean NOT NULL DEFAULT false,
                    ADD COLUMN IF NOT EXISTS \(q("description")) text;
                """)
        let organizations = SchemaStep(
            name: "customers/\(o.table)-type-and-domain",
            sql: """
                ALTER TABLE \(o.table.quoted)
                    ADD COLUMN IF NOT EXISTS \(q(o.type)) text NOT NULL DEFAULT 'company' CHECK (\(q(o.type)) IN ('company', 'individual')),
                    ADD COLUMN IF NOT EXISTS \(q(o.emailDomain)) text;
                CREATE UNIQUE INDEX IF NOT EXISTS \(q(o.table.name + "_email_domain"))
                    ON \(o.table.quoted) (\(q(o.tenant)), \(q(o.emailDomain))) WHERE \(q(o.emailDomain)) IS NOT NULL;
                """)
        let foreignKey = p.table.name + "_customer_organization_fkey"
        let projects = SchemaStep(
            name: "customers/\(p.table)-customer-organization",
            sql: """
                ALTER TABLE \(p.table.quoted) ADD COLUMN IF NOT EXISTS \(q(p.customerOrganization)) \(types.organization);
                DO $ferry$
                BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = \(sqlLiteral(p.table.quoted))::regclass AND conname = \(sqlLiteral(foreignKey))) THEN
                    ALTER TABLE \(p.table.quoted) ADD CONSTRAINT \(q(foreignKey))
                        FOREIGN KEY (\(q(p.tenant)), \(q(p.customerOrganization))) REFERENCES \(o.table.quoted) (\(q(o.tenant)), \(q(o.key)));
                END IF;
                END
                $ferry$;
                CREATE INDEX IF NOT EXISTS \(q(p.table.name + "_customer")) ON \(p.table.quoted) (\(q(p.tenant)), \(q(p.customer)));
                CREATE INDEX IF NOT EXISTS \(q(p.table.name + "_customer_organization")) ON \(p.table.quoted) (\(q(p.tenant)), \(q(p.customerOrganization)));
                """)
        let points = SchemaStep(
            name: "customers/\(cp.table)",
            sql: PhonesSchema.whenMissing(
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
                    UNIQUE (\(q(cp.tenant)), \(q(cp.project)), \(q(cp.contact))),
                    FOREIGN KEY (\(q(cp.tenant)), \(q(cp.project))) REFERENCES \(p.table.quoted) (\(q(p.tenant)), \(q(p.key))) ON DELETE CASCADE,
                    FOREIGN KEY (\(q(cp.tenant)), \(q(cp.contact))) REFERENCES \(c.table.quoted) (\(q(c.tenant)), \(q(c.key))) ON DELETE CASCADE
                );
                CREATE UNIQUE INDEX \(q(cp.table.name + "_one_primary_per_project"))
                    ON \(cp.table.quoted) (\(q(cp.tenant)), \(q(cp.project))) WHERE \(q(cp.isPrimary));
                CREATE INDEX \(q(cp.table.name + "_contact")) ON \(cp.table.quoted) (\(q(cp.tenant)), \(q(cp.contact)));
                CREATE INDEX \(q(cp.table.name + "_role")) ON \(cp.table.quoted) (\(q(cp.tenant)), \(q(cp.role)));
                \(mapping.isolation.policySQL(cp.table, tenantColumn: cp.tenant, tenantType: types.tenant))
                """))
        return [contacts, organizations, projects, points]
    }
}
