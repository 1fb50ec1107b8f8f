/// Every statement the customers job runs. Identifiers come from the mapping and are quoted; values
/// travel as parameters or through COPY.
struct CustomersSQL {
    let mapping: CustomersMapping
    let types: TableJobKeyTypes
    var engine = DatabaseEngine.postgres
    /// Which writer of a parallel apply the statements are for: on Citus each has its staging table.
    var writer = 0

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
               (SELECT count(*) FROM \(p.table.quoted) y WHERE y.\(q(p.tenant)) = x.\(q(p.tenant)) AND y.\(q(p.customer)) = x.\(q(p.customer))) AS projects_of_contact,
               \(engine.isCitus ? LegacyReads.hash([p.customer], alias: "x") : "NULL::text") AS ferry_legacy_hash
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

    /// Where batches are staged (see `StagingTable`); its tenant has the tenant's own type, so that on
    /// Citus it joins the distributed tables on their distribution column.
    var staging: StagingTable {
        .forEngine(engine, name: "stage_customers", writer: writer)
    }

    /// (Citus) What each batch read of the legacy column, for the contract.
    var legacyReads: LegacyReads { LegacyReads(job: CustomersJob.name, engine: engine, writer: writer) }

    var createStagingTable: [String] {
        staging.create(
            columns: """
                seq integer NOT NULL, tenant \(types.tenant) NOT NULL, project_key text NOT NULL, contact_key text NOT NULL,
                org_kind text NOT NULL, org_value text NOT NULL, org_name text, org_key text,
                role text NOT NULL, sets_project boolean NOT NULL, updates_contact boolean NOT NULL, inserts_point boolean NOT NULL
                """) + [SnapshotTable.createPendingPreImages]
            + legacyReads.create(tenantType: types.tenant, keyType: types.row)
    }

    var copyIntoStaging: String {
        "COPY \(staging.quoted) (seq, tenant, project_key, contact_key, org_kind, org_value, org_name, role, sets_project, updates_contact, inserts_point) FROM STDIN"
    }

    /// The batch's tenant, by default $4 (after the snapshot's run, batch and table): see `StagingTable.sameTenant`.
    private func oneTenant(_ column: String, _ parameter: Int = 4) -> String { staging.sameTenant(column, parameter) }

    /// Staged rows whose project, contact or existing organization was deleted since the batch read it.
    /// $1 (Citus) the batch's tenant.
    var dropStagedRowsGoneSince: String {
        func gone(_ table: TableName, _ tenant: String, _ key: String, _ value: String, _ type: String) -> String {
            """
            NOT EXISTS (SELECT 1 FROM \(table.quoted) x
                        WHERE x.\(q(tenant)) = r.tenant AND x.\(q(key)) = \(value)::\(type)\(oneTenant("x.\(q(tenant))", 1)))
            """
        }
        return """
            DELETE FROM \(staging.quoted) r
            WHERE (\(gone(p.table, p.tenant, p.key, "r.project_key", types.row))
               OR \(gone(c.table, c.tenant, c.key, "r.contact_key", types.contact))
               OR (r.org_kind = 'existing' AND \(gone(o.table, o.tenant, o.key, "r.org_value", types.organization))))\(oneTenant("r.tenant", 1))
            RETURNING r.inserts_point
            """
    }

    /// New organizations get a key derived from what they stand for, so a re-run (or a later batch)
    /// finds the same one; an organization already standing for the email domain is reused. (Every CASE
    /// here is a searched one: Citus 12.1 sends `CASE x WHEN 'a'` to its workers as `WHEN NULL::boolean`.)
    /// $1 (Citus) the batch's tenant.
    var resolveOrganizations: String {
        """
        UPDATE \(staging.quoted) r SET org_key = CASE
            WHEN r.org_kind = 'existing' THEN r.org_value
            WHEN r.org_kind = 'domain' THEN coalesce(
                (SELECT x.\(q(o.key))::text FROM \(o.table.quoted) x
                 WHERE x.\(q(o.tenant)) = r.tenant AND x.\(q(o.emailDomain)) = r.org_value\(oneTenant("x.\(q(o.tenant))", 1))
                 ORDER BY x.\(q(o.key)) LIMIT 1),
                md5('ferry:organization:domain:' || r.tenant::text || ':' || r.org_value)::uuid::text)
            ELSE md5('ferry:organization:individual:' || r.tenant::text || ':' || r.contact_key)::uuid::text END
        WHERE true\(oneTenant("r.tenant", 1))
        """
    }

    /// $1 run, $2 batch, $3 the table's qualified name, $4 (Citus) the batch's tenant. Returns the count inserted.
    func insertOrganizations(snapshot: SnapshotTable) -> String {
        """
        WITH fresh AS (
            INSERT INTO \(o.table.quoted) AS \(SnapshotTable.written) (\(q(o.tenant)), \(q(o.key)), \(q(o.name)), \(q(o.type)), \(q(o.emailDomain)))
            SELECT DISTINCT ON (r.tenant, r.org_key) r.tenant, r.org_key::\(types.organization), r.org_name,
                   CASE WHEN r.org_kind = 'domain' THEN 'company' ELSE 'individual' END,
                   CASE WHEN r.org_kind = 'domain' THEN r.org_value END
            FROM \(staging.quoted) r WHERE r.org_kind IN ('domain', 'individual')\(oneTenant("r.tenant"))
            ORDER BY r.tenant, r.org_key, r.seq
            ON CONFLICT DO NOTHING
            RETURNING \(snapshot.returning())
        ), recorded AS (
            \(snapshot.recordInserts(from: "fresh", tableOrder: 1, tableNameParameter: "$3"))
        ) SELECT count(*) FROM fresh
        """
    }

    /// The contacts this batch changes (organization set, marked primary), by key.
    private func contactsToUpdate(tenant: Int) -> String {
        "SELECT r.tenant, r.contact_key::\(types.contact) FROM \(staging.quoted) r WHERE r.updates_contact\(oneTenant("r.tenant", tenant))"
    }

    /// Pre-images of the contacts that change, under row locks.
    func snapshotContacts(snapshot: SnapshotTable) -> String {
        """
        INSERT INTO \(snapshot.preImageTable) (run_id, batch_no, table_order, table_name, action, key, \(SnapshotTable.preImageColumns))
        SELECT $1, $2, 2, $3, 'update', \(snapshot.keyObject(alias: "x")), \(snapshot.preImage("x"))
        FROM \(c.table.quoted) x
        WHERE (x.\(q(c.tenant)), x.\(q(c.key))) IN (\(contactsToUpdate(tenant: 4)))
          AND (x.\(q(c.organization)) IS NULL OR x.\(q(c.isPrimary)) IS NOT TRUE)\(oneTenant("x.\(q(c.tenant))"))
        FOR UPDATE OF x
        """
    }

    /// The same rows as the pre-images above (same condition, under the same row locks), driven by the
    /// staging table: ferry.snapshot_rows has no index, and a lookup there would grow with the run.
    var updateContacts: String {
        """
        UPDATE \(c.table.quoted) t
        SET \(q(c.organization)) = coalesce(t.\(q(c.organization)), r.org_key::\(types.organization)), \(q(c.isPrimary)) = true
        FROM (SELECT DISTINCT ON (tenant, contact_key) tenant, contact_key, org_key FROM \(staging.quoted)
              WHERE updates_contact\(oneTenant("tenant", 1)) ORDER BY tenant, contact_key, seq) r
        WHERE t.\(q(c.tenant)) = r.tenant AND t.\(q(c.key)) = r.contact_key::\(types.contact)
          AND (t.\(q(c.organization)) IS NULL OR t.\(q(c.isPrimary)) IS NOT TRUE)\(oneTenant("t.\(q(c.tenant))", 1))
        """
    }

    /// (Citus) After `updateContacts`: the pre-images into the ledger with the hash of each row as written.
    func recordContactPreImages(snapshot: SnapshotTable) -> String? {
        snapshot.recordPreImages(
            written: """
                SELECT \(snapshot.keyObject(alias: "x")) AS key, \(SnapshotTable.rowHash("x")) AS ferry_row_hash
                FROM \(c.table.quoted) x WHERE (x.\(q(c.tenant)), x.\(q(c.key))) IN (\(contactsToUpdate(tenant: 2)))\(oneTenant("x.\(q(c.tenant))", 2))
                """)
    }

    /// The projects this batch gives an organization, by key.
    private func projectsToUpdate(tenant: Int) -> String {
        "SELECT r.tenant, r.project_key::\(types.row) FROM \(staging.quoted) r WHERE r.sets_project\(oneTenant("r.tenant", tenant))"
    }

    func snapshotProjects(snapshot: SnapshotTable) -> String {
        """
        INSERT INTO \(snapshot.preImageTable) (run_id, batch_no, table_order, table_name, action, key, \(SnapshotTable.preImageColumns))
        SELECT $1, $2, 3, $3, 'update', \(snapshot.keyObject(alias: "x")), \(snapshot.preImage("x"))
        FROM \(p.table.quoted) x
        WHERE (x.\(q(p.tenant)), x.\(q(p.key))) IN (\(projectsToUpdate(tenant: 4)))
          AND x.\(q(p.customerOrganization)) IS NULL\(oneTenant("x.\(q(p.tenant))"))
        FOR UPDATE OF x
        """
    }

    /// The same rows as the pre-images above, driven by the staging table.
    var updateProjects: String {
        """
        UPDATE \(p.table.quoted) t SET \(q(p.customerOrganization)) = r.org_key::\(types.organization)
        FROM \(staging.quoted) r
        WHERE r.sets_project AND t.\(q(p.tenant)) = r.tenant AND t.\(q(p.key)) = r.project_key::\(types.row)
          AND t.\(q(p.customerOrganization)) IS NULL\(oneTenant("t.\(q(p.tenant))", 1))\(oneTenant("r.tenant", 1))
        """
    }

    /// (Citus) After `updateProjects`, as `recordContactPreImages`.
    func recordProjectPreImages(snapshot: SnapshotTable) -> String? {
        snapshot.recordPreImages(
            written: """
                SELECT \(snapshot.keyObject(alias: "x")) AS key, \(SnapshotTable.rowHash("x")) AS ferry_row_hash
                FROM \(p.table.quoted) x WHERE (x.\(q(p.tenant)), x.\(q(p.key))) IN (\(projectsToUpdate(tenant: 2)))\(oneTenant("x.\(q(p.tenant))", 2))
                """)
    }

    func insertContactPoints(snapshot: SnapshotTable) -> String {
        """
        WITH fresh AS (
            INSERT INTO \(cp.table.quoted) AS \(SnapshotTable.written) (\(q(cp.tenant)), \(q(cp.project)), \(q(cp.contact)), \(q(cp.role)), \(q(cp.isPrimary)))
            SELECT r.tenant, r.project_key::\(types.row), r.contact_key::\(types.contact), r.role, true
            FROM \(staging.quoted) r WHERE r.inserts_point\(oneTenant("r.tenant"))
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
        createStagingTable
            + [
                "BEGIN", SessionSettings.setLocalBatchSettingsForReport, copyIntoStaging, resolveOrganizations,
                insertOrganizations(snapshot: organizations), snapshotContacts(snapshot: contacts), updateContacts,
            ] + [recordContactPreImages(snapshot: contacts)].compactMap { $0 }
            + [snapshotProjects(snapshot: projects), updateProjects]
            + [recordProjectPreImages(snapshot: projects)].compactMap { $0 }
            + [insertContactPoints(snapshot: points), LedgerRun.recordBatch(.key, withResult: true)]
            + [staging.emptyBeforeCommit].compactMap { $0 } + ["COMMIT"]
    }
}
