/// Every statement of the service-requests job. Identifiers from the mapping are quoted; values travel
/// as parameters or through COPY.
struct ServiceRequestsSQL {
    let mapping: ServiceRequestsMapping
    let types: TableJobKeyTypes
    var engine = DatabaseEngine.postgres
    /// Which writer of a parallel apply the statements are for: on Citus each has its staging table.
    var writer = 0

    private var r: ServiceRequestsMapping.RequestsTable { mapping.requests }
    private var c: ServiceRequestsMapping.ContactsTable { mapping.contacts }
    private func q(_ name: String) -> String { quoteIdentifier(name) }

    /// The contact an email names: its canonical form equals the email; among duplicates, one stored
    /// canonically first, then the smallest key. Extract and load choose alike.
    private func matches(_ email: String, alias: String) -> String {
        """
        LEFT JOIN LATERAL (
            SELECT array_agg(k.\(q(c.key))::text ORDER BY (k.\(q(c.email)) = lower(k.\(q(c.email)))) DESC, k.\(q(c.key))) AS keys,
                   array_agg(k.\(q(c.organization))::text ORDER BY (k.\(q(c.email)) = lower(k.\(q(c.email)))) DESC, k.\(q(c.key))) AS organizations
            FROM \(c.table.quoted) k
            WHERE k.\(q(c.tenant)) = s.\(q(r.tenant)) AND lower(k.\(q(c.email))) = lower(btrim(\(email)))) \(alias) ON true
        """
    }

    /// One keyset page of requests with the contacts their emails match (parameters: `KeysetSource`).
    var extractPage: String {
        """
        SELECT s.\(q(r.tenant))::text AS ferry_tenant, s.\(q(r.key))::text AS ferry_key, s.\(q(r.status))::text AS status,
               s.\(q(r.submittedByEmail))::text AS submitted_by_email, s.\(q(r.assignedToEmail))::text AS assigned_to_email,
               s.\(q(r.submittedByContact))::text AS submitted_by_contact, s.\(q(r.assignedToContact))::text AS assigned_to_contact,
               s.\(q(r.fleetCompany))::text AS fleet_company, s.\(q(r.supplierCompany))::text AS supplier_company,
               s.\(q(r.createdAt))::text AS created_at,
               sm.keys[1] AS submitted_match, sm.organizations[1] AS submitted_match_organization,
               cardinality(sm.keys) AS submitted_match_candidates,
               am.keys[1] AS assigned_match, am.organizations[1] AS assigned_match_organization,
               cardinality(am.keys) AS assigned_match_candidates
        FROM \(r.table.quoted) s
        \(matches("s.\(q(r.submittedByEmail))", alias: "sm"))
        \(matches("s.\(q(r.assignedToEmail))", alias: "am"))
        WHERE ($1::text IS NULL OR (s.\(q(r.tenant)), s.\(q(r.key))) > ($1::\(types.tenant), $2::\(types.row)))
          AND ($4::text[] IS NULL OR s.\(q(r.tenant)) = ANY ($4::text[]::\(types.tenant)[]))
        ORDER BY s.\(q(r.tenant)), s.\(q(r.key))
        LIMIT $3::bigint
        """
    }

    // MARK: Load

    /// Where batches are staged (see `StagingTable`); its tenant has the tenant's own type, so that on
    /// Citus it joins the distributed tables on their distribution column.
    var staging: StagingTable {
        .forEngine(engine, name: "stage_service_requests", writer: writer)
    }

    var createStagingTable: [String] {
        staging.create(
            columns: """
                seq integer NOT NULL, tenant \(types.tenant) NOT NULL, request_key text NOT NULL, new_status text NOT NULL,
                submitted_email text, assigned_email text, seen_at text,
                submitted_key text, submitted_org text, assigned_key text, assigned_org text
                """) + [SnapshotTable.createPendingPreImages]
    }

    var copyIntoStaging: String {
        "COPY \(staging.quoted) (seq, tenant, request_key, new_status, submitted_email, assigned_email, seen_at) FROM STDIN"
    }

    /// Contacts for emails no contact has yet, one per tenant and canonical email, their key derived from
    /// the email so no run or batch can make two. $1 run, $2 batch, $3 table, $4 the emergent contact type,
    /// $5 (Citus) the batch's tenant.
    func insertEmergentContacts(snapshot: SnapshotTable) -> String {
        """
        WITH wanted AS (
            SELECT e.tenant, e.email, min(e.seen_at) AS seen_at FROM (
                SELECT tenant, submitted_email AS email, seen_at FROM \(staging.quoted) WHERE submitted_email IS NOT NULL\(staging.sameTenant("tenant", 5))
                UNION ALL
                SELECT tenant, assigned_email, seen_at FROM \(staging.quoted) WHERE assigned_email IS NOT NULL\(staging.sameTenant("tenant", 5))) e
            GROUP BY 1, 2
        ), fresh AS (
            INSERT INTO \(c.table.quoted) AS \(SnapshotTable.written) (\(q(c.tenant)), \(q(c.key)), \(q(c.fullName)), \(q(c.email)), \(q(c.contactType)), \(q(c.firstSeenAt)))
            SELECT w.tenant, md5('ferry:contact:' || w.tenant::text || ':' || w.email)::uuid::text::\(types.contact),
                   split_part(w.email, '@', 1), w.email, $4, coalesce(w.seen_at::timestamptz, now())
            FROM wanted w
            WHERE NOT EXISTS (SELECT 1 FROM \(c.table.quoted) k WHERE k.\(q(c.tenant)) = w.tenant AND lower(k.\(q(c.email))) = w.email\(staging.sameTenant("k.\(q(c.tenant))", 5)))
            ORDER BY w.tenant, w.email
            ON CONFLICT DO NOTHING
            RETURNING \(snapshot.returning())
        ), recorded AS (
            \(snapshot.recordInserts(from: "fresh", tableOrder: 1, tableNameParameter: "$3"))
        ) SELECT count(*) FROM fresh
        """
    }

    /// Each staged email's contact and organization, chosen as extract chose. $1 (Citus) the batch's tenant.
    var resolveActors: String {
        func pick(_ column: String) -> String {
            """
            (SELECT ARRAY[k.\(q(c.key))::text, k.\(q(c.organization))::text] FROM \(c.table.quoted) k
             WHERE k.\(q(c.tenant)) = y.tenant AND lower(k.\(q(c.email))) = y.\(column)\(staging.sameTenant("k.\(q(c.tenant))", 1))
             ORDER BY (k.\(q(c.email)) = lower(k.\(q(c.email)))) DESC, k.\(q(c.key)) LIMIT 1)
            """
        }
        return """
            UPDATE \(staging.quoted) x SET submitted_key = m.s[1], submitted_org = m.s[2], assigned_key = m.a[1], assigned_org = m.a[2]
            FROM (SELECT y.tenant, y.seq, \(pick("submitted_email")) AS s, \(pick("assigned_email")) AS a
                  FROM \(staging.quoted) y WHERE true\(staging.sameTenant("y.tenant", 1))) m
            WHERE m.tenant = x.tenant AND m.seq = x.seq\(staging.sameTenant("x.tenant", 1))
            """
    }

    /// The target values a request gets, from the staging row `x`.
    private var differs: String {
        """
        (t.\(q(r.status)) IS DISTINCT FROM x.new_status
         OR t.\(q(r.submittedByContact)) IS DISTINCT FROM x.submitted_key::\(types.contact)
         OR t.\(q(r.assignedToContact)) IS DISTINCT FROM x.assigned_key::\(types.contact)
         OR t.\(q(r.fleetCompany)) IS DISTINCT FROM x.submitted_org::\(types.organization)
         OR t.\(q(r.supplierCompany)) IS DISTINCT FROM x.assigned_org::\(types.organization))
        """
    }

    /// $1 run, $2 batch, $3 table, $4 (Citus) the batch's tenant.
    func snapshotRequests(snapshot: SnapshotTable) -> String {
        """
        INSERT INTO \(snapshot.preImageTable) (run_id, batch_no, table_order, table_name, action, key, \(SnapshotTable.preImageColumns))
        SELECT $1, $2, 2, $3, 'update', \(snapshot.keyObject(alias: "t")), \(snapshot.preImage("t"))
        FROM \(r.table.quoted) t JOIN \(staging.quoted) x
          ON t.\(q(r.tenant)) = x.tenant AND t.\(q(r.key)) = x.request_key::\(types.row)
        WHERE \(differs)\(staging.sameTenant("t.\(q(r.tenant))", 4))\(staging.sameTenant("x.tenant", 4))
        FOR UPDATE OF t
        """
    }

    /// The same rows as the pre-images above (same condition, under the same row locks), driven by the
    /// staging table: ferry.snapshot_rows has no index, and a lookup there would grow with the run.
    var updateRequests: String {
        """
        UPDATE \(r.table.quoted) t SET
            \(q(r.status)) = x.new_status,
            \(q(r.submittedByContact)) = x.submitted_key::\(types.contact),
            \(q(r.assignedToContact)) = x.assigned_key::\(types.contact),
            \(q(r.fleetCompany)) = x.submitted_org::\(types.organization),
            \(q(r.supplierCompany)) = x.assigned_org::\(types.organization)
        FROM \(staging.quoted) x
        WHERE t.\(q(r.tenant)) = x.tenant AND t.\(q(r.key)) = x.request_key::\(types.row) AND \(differs)\(staging.sameTenant("t.\(q(r.tenant))", 1))\(staging.sameTenant("x.tenant", 1))
        """
    }

    /// (Citus) After `updateRequests`: the pre-images into the ledger with the hash of each row as
    /// written (the staged requests whose pre-image was taken are the rows it updated).
    func recordRequestPreImages(snapshot: SnapshotTable) -> String? {
        snapshot.recordPreImages(
            written: """
                SELECT \(snapshot.keyObject(alias: "t")) AS key, \(SnapshotTable.rowHash("t")) AS ferry_row_hash
                FROM \(r.table.quoted) t JOIN \(staging.quoted) x ON t.\(q(r.tenant)) = x.tenant AND t.\(q(r.key)) = x.request_key::\(types.row)
                WHERE true\(staging.sameTenant("t.\(q(r.tenant))", 2))\(staging.sameTenant("x.tenant", 2))
                """)
    }

    // MARK: Checks

    /// Requests with an email but no contact for it.
    var actorsWithoutContact: String {
        """
        SELECT count(*) FROM \(r.table.quoted)
        WHERE (btrim(coalesce(\(q(r.submittedByEmail)), '')) <> '' AND \(q(r.submittedByContact)) IS NULL)
           OR (btrim(coalesce(\(q(r.assignedToEmail)), '')) <> '' AND \(q(r.assignedToContact)) IS NULL)
        """
    }

    /// Requests whose company columns disagree with their contacts' organizations.
    var companiesDisagreeing: String {
        """
        SELECT count(*) FROM \(r.table.quoted) t
        LEFT JOIN \(c.table.quoted) sk ON sk.\(q(c.tenant)) = t.\(q(r.tenant)) AND sk.\(q(c.key)) = t.\(q(r.submittedByContact))
        LEFT JOIN \(c.table.quoted) ak ON ak.\(q(c.tenant)) = t.\(q(r.tenant)) AND ak.\(q(c.key)) = t.\(q(r.assignedToContact))
        WHERE (t.\(q(r.submittedByContact)) IS NOT NULL AND t.\(q(r.fleetCompany)) IS DISTINCT FROM sk.\(q(c.organization)))
           OR (t.\(q(r.assignedToContact)) IS NOT NULL AND t.\(q(r.supplierCompany)) IS DISTINCT FROM ak.\(q(c.organization)))
        """
    }

    /// Canonical emails that more than one contact of a tenant holds, where one of them was created on first sight.
    var duplicatedEmergentContacts: String {
        """
        SELECT count(*) FROM (
            SELECT 1 FROM \(c.table.quoted) GROUP BY \(q(c.tenant)), lower(\(q(c.email)))
            HAVING count(*) > 1 AND count(\(q(c.firstSeenAt))) > 0) d
        """
    }

    var statusConstraintName: String { r.table.name + "_status_new_set" }

    var statusConstraintExists: String {
        "SELECT count(*) FROM pg_constraint WHERE conrelid = \(sqlLiteral(r.table.quoted))::regclass AND conname = \(sqlLiteral(statusConstraintName))"
    }

    /// NOT VALID first (a short ACCESS EXCLUSIVE), then VALIDATE, which scans under SHARE UPDATE EXCLUSIVE only.
    var addStatusConstraint: String {
        """
        ALTER TABLE \(r.table.quoted) ADD CONSTRAINT \(q(statusConstraintName))
            CHECK (\(q(r.status)) IN (\(ServiceRequestsMapping.newStatuses.map(sqlLiteral).joined(separator: ", ")))) NOT VALID;
        ALTER TABLE \(r.table.quoted) VALIDATE CONSTRAINT \(q(statusConstraintName));
        """
    }

    var statusesOutsideTheNewSet: String {
        "SELECT count(*) FROM \(r.table.quoted) WHERE \(q(r.status)) NOT IN (\(ServiceRequestsMapping.newStatuses.map(sqlLiteral).joined(separator: ", ")))"
    }
    /// What apply runs, in order: once per session, then for every batch in one transaction. For the
    /// plan report's appendix; the loader runs these same builders.
    func applyStatements(contacts: SnapshotTable, requests: SnapshotTable) -> [String] {
        createStagingTable
            + [
                "BEGIN", SessionSettings.setLocalBatchSettingsForReport, copyIntoStaging,
                insertEmergentContacts(snapshot: contacts), resolveActors, snapshotRequests(snapshot: requests),
                updateRequests,
            ] + [recordRequestPreImages(snapshot: requests)].compactMap { $0 }
            + [LedgerRun.recordBatch(.key, withResult: true)] + [staging.emptyBeforeCommit].compactMap { $0 } + [
                "COMMIT"
            ]
    }
}

/// The expand step of the service-requests job: the target columns (the email columns stay), the
/// contacts' first-seen time, and the lookup by canonical email.
enum ServiceRequestsSchema {
    static func steps(for mapping: ServiceRequestsMapping, types: TableJobKeyTypes) -> [SchemaStep] {
        func q(_ name: String) -> String { quoteIdentifier(name) }
        let r = mapping.requests, c = mapping.contacts, o = mapping.organizations
        let contacts = SchemaStep(
            name: "service-requests/\(c.table)-first-seen",
            statements: [
                "ALTER TABLE \(c.table.quoted) ADD COLUMN IF NOT EXISTS \(q(c.firstSeenAt)) timestamptz",
                "CREATE INDEX IF NOT EXISTS \(q("ferry_" + c.table.name + "_tenant_lower_email")) ON \(c.table.quoted) (\(q(c.tenant)), lower(\(q(c.email))))",
            ])
        func foreignKey(_ column: String, _ target: TableName, _ targetTenant: String, _ targetKey: String) -> String {
            let name = r.table.name + "_" + column + "_fkey"
            return """
                IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = \(sqlLiteral(r.table.quoted))::regclass AND conname = \(sqlLiteral(name))) THEN
                    ALTER TABLE \(r.table.quoted) ADD CONSTRAINT \(q(name))
                        FOREIGN KEY (\(q(r.tenant)), \(q(column))) REFERENCES \(target.quoted) (\(q(targetTenant)), \(q(targetKey)));
                END IF;
                """
        }
        let requests = SchemaStep(
            name: "service-requests/\(r.table)-target-columns",
            statements: [
                """
                ALTER TABLE \(r.table.quoted)
                    ADD COLUMN IF NOT EXISTS \(q(r.submittedByContact)) \(types.contact),
                    ADD COLUMN IF NOT EXISTS \(q(r.assignedToContact)) \(types.contact),
                    ADD COLUMN IF NOT EXISTS \(q(r.fleetCompany)) \(types.organization),
                    ADD COLUMN IF NOT EXISTS \(q(r.supplierCompany)) \(types.organization)
                """,
                """
                DO $ferry$
                BEGIN
                \(foreignKey(r.submittedByContact, c.table, c.tenant, c.key))
                \(foreignKey(r.assignedToContact, c.table, c.tenant, c.key))
                \(foreignKey(r.fleetCompany, o.table, o.tenant, o.key))
                \(foreignKey(r.supplierCompany, o.table, o.tenant, o.key))
                END
                $ferry$
                """,
                "CREATE INDEX IF NOT EXISTS \(q(r.table.name + "_submitted_by")) ON \(r.table.quoted) (\(q(r.tenant)), \(q(r.submittedByContact)))",
                "CREATE INDEX IF NOT EXISTS \(q(r.table.name + "_assigned_to")) ON \(r.table.quoted) (\(q(r.tenant)), \(q(r.assignedToContact)))",
                "CREATE INDEX IF NOT EXISTS \(q(r.table.name + "_fleet_company")) ON \(r.table.quoted) (\(q(r.tenant)), \(q(r.fleetCompany)))",
                "CREATE INDEX IF NOT EXISTS \(q(r.table.name + "_supplier_company")) ON \(r.table.quoted) (\(q(r.tenant)), \(q(r.supplierCompany)))",
            ])
        return [contacts, requests]
    }
}
