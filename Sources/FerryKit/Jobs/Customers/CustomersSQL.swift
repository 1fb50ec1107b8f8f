/// Every statement the customers job runs. Identifiers come from the mapping and are quoted; values
/// travel as parameters or through COPY.
struct CustomersSQL {
    let mapping: CustomersMapping
    let types: TableJobKeyTypes

    private var p: CustomersMapping.ProjectsTable { mapping.projects }
    private var c: CustomersMapping.ContactsTable { mapping.contacts }
    private var o: CustomersMapping.OrganizationsTable { mapping.organizations }
    private var cp: CustomersMapping.ContactPointsTable { mapping.contactPoints }
    private func q(_ name: String) -> String { quoteIdentifier(name) }

    // MARK: Extract

    /// One keyset page of projects whose customer is a contact, with that contact (parameters: `KeysetSource`).
    var extractPage: String {
        """
        SELECT x.\(q(p.tenant))::text AS ferry_tenant, x.\(q(p.key))::text AS ferry_key,
               x.\(q(p.customer))::text AS customer, x.\(q(p.customerOrganization))::text AS customer_organization,
               k.\(q(c.fullName))::text AS full_name, k.\(q(c.contactType))::text AS contact_type,
               k.\(q(c.email))::text AS email, k.\(q(c.organization))::text AS organization,
               k.\(q(c.role))::text AS role, coalesce(k.\(q(c.isPrimary)), false) AS is_primary,
               EXISTS (SELECT 1 FROM \(cp.table.quoted) t WHERE t.\(q(cp.tenant)) = x.\(q(p.tenant))
                       AND t.\(q(cp.project)) = x.\(q(p.key)) AND t.\(q(cp.contact)) = x.\(q(p.customer))) AS has_contact_point,
               (SELECT count(*) FROM \(p.table.quoted) y WHERE y.\(q(p.tenant)) = x.\(q(p.tenant)) AND y.\(q(p.customer)) = x.\(q(p.customer))) AS projects_of_contact
        FROM \(p.table.quoted) x
        JOIN \(c.table.quoted) k ON k.\(q(c.tenant)) = x.\(q(p.tenant)) AND k.\(q(c.key)) = x.\(q(p.customer))
        WHERE x.\(q(p.customer)) IS NOT NULL
          AND ($1::text IS NULL OR (x.\(q(p.tenant)), x.\(q(p.key))) > ($1::\(types.tenant), $2::\(types.row)))
          AND ($4::text[] IS NULL OR x.\(q(p.tenant)) = ANY ($4::text[]::\(types.tenant)[]))
        ORDER BY x.\(q(p.tenant)), x.\(q(p.key))
        LIMIT $3::bigint
        """
    }

    /// Projects with a customer contact that the join above cannot see (none while the foreign key holds).
    var projectsWithMissingCustomer: String {
        """
        SELECT count(*) FROM \(p.table.quoted) x WHERE x.\(q(p.customer)) IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM \(c.table.quoted) k WHERE k.\(q(c.tenant)) = x.\(q(p.tenant)) AND k.\(q(c.key)) = x.\(q(p.customer)))
        """
    }

    /// Organizations that already stand for an email domain, per tenant: the plan predicts reuse with them.
    var existingDomainOrganizations: String {
        "SELECT \(q(o.tenant))::text AS tenant, \(q(o.emailDomain))::text AS domain FROM \(o.table.quoted) WHERE \(q(o.emailDomain)) IS NOT NULL"
    }

    // MARK: Load

    static let staging = "ferry_customer_rows"

    var createStagingTable: String {
        """
        CREATE TEMP TABLE IF NOT EXISTS \(Self.staging) (
            seq integer NOT NULL, tenant text NOT NULL, project_key text NOT NULL, contact_key text NOT NULL,
            org_kind text NOT NULL, org_value text NOT NULL, org_name text, org_key text,
            role text NOT NULL, sets_project boolean NOT NULL, updates_contact boolean NOT NULL, inserts_point boolean NOT NULL
        ) ON COMMIT DELETE ROWS
        """
    }

    static let copyIntoStaging = """
        COPY \(staging) (seq, tenant, project_key, contact_key, org_kind, org_value, org_name, role, sets_project, updates_contact, inserts_point) FROM STDIN
        """

    /// New organizations get a key derived from what they stand for, so a re-run (or a later batch)
    /// finds the same one; an organization already standing for the email domain is reused.
    var resolveOrganizations: String {
        """
        UPDATE \(Self.staging) r SET org_key = CASE r.org_kind
            WHEN 'existing' THEN r.org_value
            WHEN 'domain' THEN coalesce(
                (SELECT x.\(q(o.key))::text FROM \(o.table.quoted) x
                 WHERE x.\(q(o.tenant)) = r.tenant::\(types.tenant) AND x.\(q(o.emailDomain)) = r.org_value
                 ORDER BY x.\(q(o.key)) LIMIT 1),
                md5('ferry:organization:domain:' || r.tenant || ':' || r.org_value)::uuid::text)
            ELSE md5('ferry:organization:individual:' || r.tenant || ':' || r.contact_key)::uuid::text END
        """
    }

    /// $1 run, $2 batch, $3 the table's qualified name. Returns the count inserted.
    func insertOrganizations(snapshot: SnapshotTable) -> String {
        """
        WITH fresh AS (
            INSERT INTO \(o.table.quoted) (\(q(o.tenant)), \(q(o.key)), \(q(o.name)), \(q(o.type)), \(q(o.emailDomain)))
            SELECT DISTINCT ON (r.tenant, r.org_key) r.tenant::\(types.tenant), r.org_key::\(types.organization), r.org_name,
                   CASE r.org_kind WHEN 'domain' THEN 'company' ELSE 'individual' END,
                   CASE r.org_kind WHEN 'domain' THEN r.org_value END
            FROM \(Self.staging) r WHERE r.org_kind IN ('domain', 'individual')
            ORDER BY r.tenant, r.org_key, r.seq
            ON CONFLICT DO NOTHING
            RETURNING \(snapshot.returning())
        ), recorded AS (
            \(snapshot.recordInserts(from: "fresh", tableOrder: 1, tableNameParameter: "$3"))
        ) SELECT count(*) FROM fresh
        """
    }

    /// Pre-images of the contacts that change (organization set, marked primary), under row locks.
    func snapshotContacts(snapshot: SnapshotTable) -> String {
        """
        INSERT INTO ferry.snapshot_rows (run_id, batch_no, table_order, table_name, action, key, before)
        SELECT $1, $2, 2, $3, 'update', \(snapshot.keyObject(alias: "x")), to_jsonb(x)
        FROM \(c.table.quoted) x
        WHERE (x.\(q(c.tenant)), x.\(q(c.key))) IN (
            SELECT r.tenant::\(types.tenant), r.contact_key::\(types.contact) FROM \(Self.staging) r WHERE r.updates_contact)
          AND (x.\(q(c.organization)) IS NULL OR x.\(q(c.isPrimary)) IS NOT TRUE)
        FOR UPDATE OF x
        """
    }

    /// The same rows as the pre-images above (same condition, under the same row locks), driven by the
    /// staging table: ferry.snapshot_rows has no index, and a lookup there would grow with the run.
    var updateContacts: String {
        """
        UPDATE \(c.table.quoted) t
        SET \(q(c.organization)) = coalesce(t.\(q(c.organization)), r.org_key::\(types.organization)), \(q(c.isPrimary)) = true
        FROM (SELECT DISTINCT ON (tenant, contact_key) tenant, contact_key, org_key FROM \(Self.staging)
              WHERE updates_contact ORDER BY tenant, contact_key, seq) r
        WHERE t.\(q(c.tenant)) = r.tenant::\(types.tenant) AND t.\(q(c.key)) = r.contact_key::\(types.contact)
          AND (t.\(q(c.organization)) IS NULL OR t.\(q(c.isPrimary)) IS NOT TRUE)
        """
    }

    func snapshotProjects(snapshot: SnapshotTable) -> String {
        """
        INSERT INTO ferry.snapshot_rows (run_id, batch_no, table_order, table_name, action, key, before)
        SELECT $1, $2, 3, $3, 'update', \(snapshot.keyObject(alias: "x")), to_jsonb(x)
        FROM \(p.table.quoted) x
        WHERE (x.\(q(p.tenant)), x.\(q(p.key))) IN (
            SELECT r.tenant::\(types.tenant), r.project_key::\(types.row) FROM \(Self.staging) r WHERE r.sets_project)
          AND x.\(q(p.customerOrganization)) IS NULL
        FOR UPDATE OF x
        """
    }

    /// The same rows as the pre-images above, driven by the staging table.
    var updateProjects: String {
        """
        UPDATE \(p.table.quoted) t SET \(q(p.customerOrganization)) = r.org_key::\(types.organization)
        FROM \(Self.staging) r
        WHERE r.sets_project AND t.\(q(p.tenant)) = r.tenant::\(types.tenant) AND t.\(q(p.key)) = r.project_key::\(types.row)
          AND t.\(q(p.customerOrganization)) IS NULL
        """
    }

    func insertContactPoints(snapshot: SnapshotTable) -> String {
        """
        WITH fresh AS (
            INSERT INTO \(cp.table.quoted) (\(q(cp.tenant)), \(q(cp.project)), \(q(cp.contact)), \(q(cp.role)), \(q(cp.isPrimary)))
            SELECT r.tenant::\(types.tenant), r.project_key::\(types.row), r.contact_key::\(types.contact), r.role, true
            FROM \(Self.staging) r WHERE r.inserts_point
            ORDER BY r.seq
            ON CONFLICT DO NOTHING
            RETURNING \(snapshot.returning())
        ), recorded AS (
            \(snapshot.recordInserts(from: "fresh", tableOrder: 4, tableNameParameter: "$3"))
        ) SELECT count(*) FROM fresh
        """
    }

    // MARK: Checks after apply (and, in the plan, on the data as it is)

    /// Projects with a customer contact but no customer organization.
    var projectsWithoutOrganization: String {
        "SELECT count(*) FROM \(p.table.quoted) WHERE \(q(p.customer)) IS NOT NULL AND \(q(p.customerOrganization)) IS NULL"
    }

    /// Contact points whose contact does not belong to the project's customer organization.
    var contactPointsOutsideTheirOrganization: String {
        """
        SELECT count(*) FROM \(cp.table.quoted) t
        JOIN \(p.table.quoted) x ON x.\(q(p.tenant)) = t.\(q(cp.tenant)) AND x.\(q(p.key)) = t.\(q(cp.project))
        JOIN \(c.table.quoted) k ON k.\(q(c.tenant)) = t.\(q(cp.tenant)) AND k.\(q(c.key)) = t.\(q(cp.contact))
        WHERE k.\(q(c.organization)) IS DISTINCT FROM x.\(q(p.customerOrganization))
        """
    }

    /// What apply runs, in order: once per session, then for every batch in one transaction. For the
    /// plan report's appendix; the loader runs these same builders.
    func applyStatements(
        organizations: SnapshotTable, contacts: SnapshotTable, projects: SnapshotTable,
        points: SnapshotTable
    ) -> [String] {
        [
            createStagingTable, "BEGIN", SessionSettings.setLocalTimeoutsForReport, Self.copyIntoStaging,
            resolveOrganizations,
            insertOrganizations(snapshot: organizations), snapshotContacts(snapshot: contacts), updateContacts,
            snapshotProjects(snapshot: projects), updateProjects, insertContactPoints(snapshot: points),
            LedgerRun.recordBatch(.key), "COMMIT",
        ]
    }
}
