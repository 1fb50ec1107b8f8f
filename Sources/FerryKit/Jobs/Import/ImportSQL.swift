/// Every statement the CSV import runs, built from the mapping with every identifier quoted.
/// A batch goes: COPY into session staging tables → classify each line (one statement, read-only
/// towards the real tables) → and, unless it is a dry run, write what the classification decided.
struct ImportSQL {
    let mapping: ContactsCSVMapping
    /// SQL types of the keys, read from the catalog: staging tables match the real ones.
    let tenantType: String
    let contactKeyType: String
    let organizationKeyType: String
    /// On Citus every table a statement reads is distributed by tenant and the batch's statements run
    /// once per tenant of the batch, naming it (`StagingTable.sameTenant`), so Citus runs each on one
    /// shard group.
    var engine = DatabaseEngine.postgres
    /// A dry run: on Citus it stages in tables of its own, so that it never shares them with an apply.
    var dryRun = false

    private var contacts: ContactsCSVMapping.ContactsTable { mapping.contacts }
    private var organizations: ContactsCSVMapping.OrganizationsTable { mapping.organizations }
    private var phones: PhonesMapping.PhoneNumbersTable { mapping.phoneNumbers }
    private func q(_ name: String) -> String { quoteIdentifier(name) }

    /// Snapshot order: rollback undoes phones, then types, then contacts, then organizations.
    var phoneRows: PhoneRowsSQL {
        var rows = PhoneRowsSQL(
            phones: mapping.phoneNumbers, types: mapping.typeDefinitions, typesOrder: 3, phonesOrder: 4)
        // Not the phones job's staging table: the two jobs run at once under their own locks.
        rows.staging = staging("ferry_import_phone_stage")
        return rows
    }

    // MARK: Session set-up

    private func staging(_ name: String) -> StagingTable {
        .forEngine(engine, name: engine.isCitus && dryRun ? name + "_dry_run" : name)
    }

    /// A batch's lines, their phone rows, and what the classification decided for each line.
    var lines: StagingTable { staging("ferry_import_rows") }
    var linePhones: StagingTable { staging("ferry_import_phones") }
    var decisions: StagingTable { staging("ferry_import_plan") }
    /// The run's memory: lines seen, organizations and types it creates (or, dry, would create).
    var seen: StagingTable { staging("ferry_import_seen") }
    var newOrganizations: StagingTable { staging("ferry_import_new_organizations") }
    var newTypes: StagingTable { staging("ferry_import_new_types") }

    /// Emptied before each batch commits (on PostgreSQL: at commit). A dry run stages no phone rows.
    var batchTables: [StagingTable] { [lines, linePhones, decisions] + (dryRun ? [] : [phoneRows.staging]) }
    var runTables: [StagingTable] { [seen, newOrganizations, newTypes] }

    /// " AND column = $n" on Citus (the statement's one tenant), nothing on PostgreSQL.
    private func tenant(_ column: String, _ parameter: Int) -> String { lines.sameTenant(column, parameter) }

    /// A line's key: its number; on Citus a table's keys hold its distribution column too.
    private var lineKey: String { engine.isCitus ? "tenant, line" : "line" }

    /// Per-batch staging (emptied at commit) and per-run memory (lines seen, organizations and types
    /// a dry run would create): temporary on PostgreSQL, so that a dry run writes to nothing else; on
    /// Citus distributed like the contacts (see `StagingTable`).
    var createSessionTables: [String] {
        lines.create(
            columns: """
                line integer NOT NULL,
                tenant \(tenantType) NOT NULL,
                email_as_written text NOT NULL,
                -- Lowercased by the database, as its lookups of contacts by lower(email) are.
                email text GENERATED ALWAYS AS (lower(email_as_written)) STORED,
                full_name text NOT NULL,
                organization text,
                role text,
                notes text,
                PRIMARY KEY (\(lineKey))
                """)
            + linePhones.create(
                columns: """
                    line integer NOT NULL,
                    tenant \(tenantType) NOT NULL,
                    seq integer NOT NULL,
                    \(PhoneRowsSQL.stagedNumberColumns)
                    """)
            + [
                linePhones.index("ferry_import_phones_line", on: "line"),
                lines.index("ferry_import_rows_key", on: "tenant, email"),
            ]
            + decisions.create(
                columns: """
                    line integer NOT NULL,
                    tenant \(tenantType) NOT NULL,
                    action text NOT NULL,
                    reason text,
                    contact_key \(contactKeyType),
                    organization_key \(organizationKeyType),
                    new_organization boolean NOT NULL,
                    changed text[] NOT NULL,
                    phones_added integer NOT NULL,
                    PRIMARY KEY (\(lineKey))
                    """)
            + seen.create(
                columns: """
                    tenant \(tenantType) NOT NULL,
                    email text NOT NULL,
                    line integer NOT NULL,
                    PRIMARY KEY (tenant, email)
                    """, keepsRows: true)
            + newOrganizations.create(
                columns: """
                    tenant \(tenantType) NOT NULL,
                    name_key text NOT NULL,
                    PRIMARY KEY (tenant, name_key)
                    """, keepsRows: true)
            + newTypes.create(
                columns: """
                    tenant \(tenantType) NOT NULL,
                    normalized text NOT NULL,
                    PRIMARY KEY (tenant, normalized)
                    """, keepsRows: true)
    }

    var copyRows: String {
        "COPY \(lines.quoted) (line, tenant, email_as_written, full_name, organization, role, notes) FROM STDIN"
    }
    var copyPhones: String {
        """
        COPY \(linePhones.quoted) (line, tenant, seq, phone_number, extension, canonical_type, custom_label, custom_normalized, is_default, display_order) FROM STDIN
        """
    }

    // MARK: Classify

    /// One action per staged line: insert, update, unchanged, skip or reject (with the reason).
    /// $1 create missing organizations, $2 what an existing, differing contact gets: update, skip or reject,
    /// $3 (Citus) the tenant.
    var classify: String {
        let c = contacts
        let o = organizations
        return """
            INSERT INTO \(decisions.quoted) (line, tenant, action, reason, contact_key, organization_key, new_organization, changed, phones_added)
            SELECT r.line, r.tenant,
                   CASE WHEN s.line IS NOT NULL OR t.present IS NULL OR m.n > 1 OR org.n > 1
                             OR (r.organization IS NOT NULL AND org.key IS NULL AND NOT $1) THEN 'reject'
                        WHEN m.key IS NULL THEN 'insert'
                        WHEN cardinality(d.changed) = 0 AND added.n = 0 THEN 'unchanged'
                        ELSE $2 END,
                   CASE WHEN s.line IS NOT NULL THEN format('duplicate in file: same email as line %s (the first one is imported)', s.line)
                        WHEN t.present IS NULL THEN format('unknown tenant: tenant %s does not exist', r.tenant)
                        WHEN m.n > 1 THEN format('ambiguous contact: %s contacts of this tenant have this email (ignoring case); ferry will not pick one', m.n)
                        WHEN org.n > 1 THEN format('ambiguous organization: %s organizations of this tenant are named %L (ignoring case)', org.n, r.organization)
                        WHEN r.organization IS NOT NULL AND org.key IS NULL AND NOT $1
                             THEN format('unknown organization: %L does not exist in this tenant (the mapping does not create organizations)', r.organization)
                        WHEN m.key IS NOT NULL AND (cardinality(d.changed) > 0 OR added.n > 0) AND $2 = 'reject'
                             THEN format('conflict: contact exists and differs (%s) and --on-conflict is error',
                                         array_to_string(d.changed || CASE WHEN added.n > 0 THEN ARRAY[added.n || ' new phone(s)'] ELSE '{}' END, ', '))
                   END,
                   \(keysDrawnAtClassification ? "coalesce(m.key, gen_random_uuid())" : "m.key"), org.key,
                   r.organization IS NOT NULL AND org.key IS NULL, d.changed, added.n
            FROM \(lines.quoted) r
            -- The first line with this key, in an earlier batch or earlier in this one. OFFSET 0 keeps the
            -- planner from inlining it into each CASE that reads s.line, which looked it up two or three times.
            CROSS JOIN LATERAL (SELECT coalesce(
                                   (SELECT x.line FROM \(seen.quoted) x WHERE x.tenant = r.tenant AND x.email = r.email\(tenant("x.tenant", 3))),
                                   (SELECT min(x.line) FROM \(lines.quoted) x
                                    WHERE x.tenant = r.tenant AND x.email = r.email AND x.line < r.line\(tenant("x.tenant", 3)))) AS line OFFSET 0) s
            LEFT JOIN LATERAL (SELECT true AS present FROM \(mapping.tenants.table.quoted) x
                               WHERE x.\(q(mapping.tenants.key)) = r.tenant\(tenant("x.\(q(mapping.tenants.key))", 3))) t ON true
            LEFT JOIN LATERAL (SELECT count(*) OVER () AS n, x.\(q(c.key)) AS key, x.\(q(c.fullName)) AS full_name,
                                      x.\(q(c.organization)) AS organization_key, x.\(q(c.role)) AS role, x.\(q(c.notes)) AS notes,
                                      x.\(q(c.inactive)) AS inactive
                               FROM \(c.table.quoted) x
                               WHERE x.\(q(c.tenant)) = r.tenant AND lower(x.\(q(c.email))) = r.email\(tenant("x.\(q(c.tenant))", 3)) LIMIT 1) m ON true
            LEFT JOIN LATERAL (SELECT count(*) OVER () AS n, x.\(q(o.key)) AS key FROM \(o.table.quoted) x
                               WHERE r.organization IS NOT NULL AND x.\(q(o.tenant)) = r.tenant
                                 AND lower(x.\(q(o.name))) = lower(r.organization)\(tenant("x.\(q(o.tenant))", 3)) LIMIT 1) org ON true
            CROSS JOIN LATERAL (SELECT array_remove(ARRAY[
                                   CASE WHEN m.full_name IS DISTINCT FROM r.full_name THEN 'full_name' END,
                                   CASE WHEN r.organization IS NOT NULL AND m.organization_key IS DISTINCT FROM org.key THEN 'organization' END,
                                   CASE WHEN r.role IS NOT NULL AND m.role IS DISTINCT FROM r.role THEN 'role' END,
                                   CASE WHEN r.notes IS NOT NULL AND m.notes IS DISTINCT FROM r.notes THEN 'notes' END,
                                   CASE WHEN m.inactive THEN 'reactivated' END], NULL) AS changed) d
            CROSS JOIN LATERAL (SELECT count(*)::int AS n FROM \(linePhones.quoted) f
                                WHERE f.line = r.line AND m.key IS NOT NULL\(tenant("f.tenant", 3))
                                  AND NOT EXISTS (SELECT 1 FROM \(phones.table.quoted) p
                                                  WHERE p.\(q(phones.tenant)) = r.tenant AND p.\(q(phones.contactKey)) = m.key
                                                    AND p.\(q(phones.phoneNumber)) = f.phone_number
                                                    \(phoneRows.sameExtension(table: "p", staged: "f.extension"))\(tenant("p.\(q(phones.tenant))", 3)))) added
            WHERE true\(tenant("r.tenant", 3))
            """
    }

    /// Per tenant ($1: their ids as text), what the classification reads: the contacts' mapped columns,
    /// the phone numbers they hold and the organizations' names. A plan file binds an import to it. On
    /// Citus it is read a tenant at a time: $1 holds one, $2 names it again for Citus to route by.
    var fingerprint: String {
        let c = contacts, o = organizations, p = phones
        let phoneValue =
            "row(x.\(q(p.contactKey)), x.\(q(p.phoneNumber))\(p.extensionDigits.map { ", x.\(q($0))" } ?? ""))::text"
        func ofTenant(_ column: String) -> String {
            engine.isCitus ? "x.\(q(column)) = $2::\(tenantType)" : "x.\(q(column))::text = t.tenant"
        }
        return """
            SELECT t.tenant, coalesce(k.n, 0) AS records, md5(concat_ws('/', k.sha, ph.sha, org.sha)) AS sha
            FROM unnest($1::text[]) AS t(tenant)
            LEFT JOIN LATERAL (
                SELECT count(*) AS n, md5(string_agg(h, '' ORDER BY h)) AS sha FROM (
                    SELECT md5(row(x.\(q(c.key)), lower(x.\(q(c.email))), x.\(q(c.fullName)), x.\(q(c.organization)),
                                   x.\(q(c.role)), x.\(q(c.notes)), x.\(q(c.inactive)))::text) AS h
                    FROM \(c.table.quoted) x WHERE \(ofTenant(c.tenant))) y) k ON true
            LEFT JOIN LATERAL (
                SELECT md5(string_agg(md5(\(phoneValue)), '' ORDER BY md5(\(phoneValue)))) AS sha
                FROM \(p.table.quoted) x WHERE \(ofTenant(p.tenant))) ph ON true
            LEFT JOIN LATERAL (
                SELECT md5(string_agg(md5(row(x.\(q(o.key)), x.\(q(o.name)))::text), '' ORDER BY x.\(q(o.key))::text)) AS sha
                FROM \(o.table.quoted) x WHERE \(ofTenant(o.tenant))) org ON true
            ORDER BY 1
            """
    }

    /// A batch's `ImportBatchTally`, in the batch's transaction. $1 run, $2 the tally (JSON).
    static let recordTally = "INSERT INTO ferry.events (run_id, kind, detail) VALUES ($1, 'import batch', $2::jsonb)"

    /// The tallies of a run's committed batches, in batch order. $1 run.
    static let tallies = """
        SELECT (detail->>'batch')::int AS batch, detail::text AS tally FROM ferry.events
        WHERE run_id = $1 AND kind = 'import batch' ORDER BY 1
        """

    /// Remembers every line's key (rejected ones too, so --deactivate-missing never hits their contacts).
    /// $1 (Citus) the tenant.
    var rememberSeen: String {
        """
        INSERT INTO \(seen.quoted) (tenant, email, line)
        SELECT tenant, email, line FROM \(lines.quoted) WHERE true\(tenant("tenant", 1)) ORDER BY line ON CONFLICT DO NOTHING
        """
    }

    /// The classification's decisions in numbers ($1 (Citus) the tenant): which writes have lines to write.
    var decisionCounts: String {
        """
        SELECT count(*) FILTER (WHERE action = 'insert') AS inserts,
               count(*) FILTER (WHERE action = 'update' AND cardinality(changed) > 0) AS contact_updates,
               count(*) FILTER (WHERE action IN ('insert', 'update')) AS writes,
               count(*) FILTER (WHERE new_organization AND action IN ('insert', 'update')) AS new_organizations
        FROM \(decisions.quoted) WHERE true\(tenant("tenant", 1))
        """
    }

    /// Organizations and custom types this run will create, counted once per run (dry run and apply alike).
    /// $1 (Citus) the tenant.
    var countNewOrganizations: String {
        """
        WITH fresh AS (
            INSERT INTO \(newOrganizations.quoted) (tenant, name_key)
            SELECT DISTINCT r.tenant, lower(r.organization) FROM \(decisions.quoted) p JOIN \(lines.quoted) r USING (line)
            WHERE p.new_organization AND p.action IN ('insert', 'update')\(tenant("p.tenant", 1))\(tenant("r.tenant", 1))
            ON CONFLICT DO NOTHING RETURNING 1
        ) SELECT count(*) FROM fresh
        """
    }

    /// Organizations this batch decided to create that exist now ($1 (Citus) the tenant): another
    /// session of the run created them since the classification.
    var newOrganizationsCreatedSince: String {
        let o = organizations
        return """
            SELECT count(*) FROM \(decisions.quoted) p JOIN \(lines.quoted) r USING (line)
            WHERE p.new_organization AND p.action IN ('insert', 'update')\(tenant("p.tenant", 1))\(tenant("r.tenant", 1))
              AND EXISTS (SELECT 1 FROM \(o.table.quoted) x
                          WHERE x.\(q(o.tenant)) = r.tenant AND lower(x.\(q(o.name))) = lower(r.organization)\(tenant("x.\(q(o.tenant))", 1)))
            """
    }

    var countNewTypes: String {
        let types = mapping.typeDefinitions
        return """
            WITH fresh AS (
                INSERT INTO \(newTypes.quoted) (tenant, normalized)
                SELECT DISTINCT r.tenant, f.custom_normalized
                FROM \(linePhones.quoted) f JOIN \(decisions.quoted) p USING (line) JOIN \(lines.quoted) r USING (line)
                WHERE f.custom_normalized IS NOT NULL AND p.action IN ('insert', 'update')\(tenant("f.tenant", 1))\(tenant("p.tenant", 1))\(tenant("r.tenant", 1))
                  AND NOT EXISTS (SELECT 1 FROM \(types.table.quoted) t
                                  WHERE t.\(q(types.tenant)) = r.tenant AND t.\(q(types.normalizedLabel)) = f.custom_normalized\(tenant("t.\(q(types.tenant))", 1)))
                ON CONFLICT DO NOTHING RETURNING 1
            ) SELECT count(*) FROM fresh
            """
    }

    /// $1 (Citus) the tenant.
    var outcomes: String {
        """
        SELECT p.line, p.action, p.reason, array_to_string(p.changed, ',') AS changed,
               CASE WHEN p.action = 'insert' THEN coalesce(f.n, 0) ELSE p.phones_added END AS phone_rows
        FROM \(decisions.quoted) p
        LEFT JOIN (SELECT line, count(*) AS n FROM \(linePhones.quoted) WHERE true\(tenant("tenant", 1)) GROUP BY line) f USING (line)
        WHERE true\(tenant("p.tenant", 1))
        ORDER BY p.line
        """
    }

    // MARK: Write

    /// A new contact's uuid key is drawn when its line is classified (`contact_key`), so the insert
    /// needs no second pass over the batch to learn it; other keys come from the column's default.
    private var keysDrawnAtClassification: Bool { contactKeyType == "uuid" }

    /// A new key: generated here for uuid keys, otherwise the column's default.
    private func keyColumn(_ name: String, type: String) -> (column: String, value: String)? {
        type == "uuid" ? (", " + q(name), ", gen_random_uuid()") : nil
    }

    /// The lines of the statement's tenant that the classification decided to write (`p`, `r`).
    /// $`parameter` (Citus) the tenant.
    private func decided(_ actions: String, _ parameter: Int) -> String {
        """
        FROM \(decisions.quoted) p JOIN \(lines.quoted) r USING (line)
                WHERE p.action IN (\(actions))\(tenant("p.tenant", parameter))\(tenant("r.tenant", parameter))
        """
    }

    /// Organizations named in the file that the tenant lacks; the first spelling wins.
    /// $1 run, $2 batch, $3 the table's qualified name, $4 (Citus) the tenant.
    func createOrganizations(snapshot: SnapshotTable) -> String {
        let o = organizations
        let key = keyColumn(o.key, type: organizationKeyType)
        return """
            WITH created AS (
                INSERT INTO \(o.table.quoted) AS \(SnapshotTable.written) (\(q(o.tenant)), \(q(o.name))\(key?.column ?? ""))
                SELECT DISTINCT ON (r.tenant, lower(r.organization)) r.tenant, r.organization\(key?.value ?? "")
                \(decided("'insert', 'update'", 4)) AND p.new_organization
                ORDER BY r.tenant, lower(r.organization), r.line
                RETURNING \(snapshot.returning([o.tenant, o.key, o.name]))
            ), snapshot AS (
                \(snapshot.recordInserts(from: "created", tableOrder: 1, tableNameParameter: "$3"))
            ), linked AS (
                UPDATE \(decisions.quoted) p SET organization_key = c.\(q(o.key))
                FROM created c, \(lines.quoted) r
                WHERE r.line = p.line AND p.new_organization AND c.\(q(o.tenant)) = r.tenant AND lower(c.\(q(o.name))) = lower(r.organization)\(tenant("p.tenant", 4))\(tenant("r.tenant", 4))
            )
            SELECT count(*) FROM created
            """
    }

    /// New contacts. A contact the application inserted meanwhile wins (ON CONFLICT): that line is then
    /// reported, never silently dropped. $1 run, $2 batch, $3 the table's qualified name, $4 (Citus) the tenant.
    func insertContacts(snapshot: SnapshotTable) -> String {
        let c = contacts
        guard !keysDrawnAtClassification else {
            return """
                WITH inserted AS (
                    INSERT INTO \(c.table.quoted) AS \(SnapshotTable.written) (\(q(c.tenant)), \(q(c.fullName)), \(q(c.email)), \(q(c.organization)), \(q(c.role)), \(q(c.notes)), \(q(c.key)))
                    SELECT r.tenant, r.full_name, r.email, p.organization_key, r.role, r.notes, p.contact_key
                    \(decided("'insert'", 4))
                    ORDER BY r.line
                    ON CONFLICT DO NOTHING
                    RETURNING \(snapshot.returning([c.tenant, c.key]))
                ), snapshot AS (
                    \(snapshot.recordInserts(from: "inserted", tableOrder: 2, tableNameParameter: "$3"))
                )
                SELECT count(*) FROM inserted
                """
        }
        // Other keys come from the column's default: the insert returns them, matched back by email.
        return """
            WITH inserted AS (
                INSERT INTO \(c.table.quoted) AS \(SnapshotTable.written) (\(q(c.tenant)), \(q(c.fullName)), \(q(c.email)), \(q(c.organization)), \(q(c.role)), \(q(c.notes)))
                SELECT r.tenant, r.full_name, r.email, p.organization_key, r.role, r.notes
                \(decided("'insert'", 4))
                ORDER BY r.line
                ON CONFLICT DO NOTHING
                RETURNING \(snapshot.returning([c.tenant, c.key, c.email]))
            ), snapshot AS (
                \(snapshot.recordInserts(from: "inserted", tableOrder: 2, tableNameParameter: "$3"))
            ), linked AS (
                UPDATE \(decisions.quoted) p SET contact_key = i.\(q(c.key))
                FROM inserted i, \(lines.quoted) r
                WHERE r.line = p.line AND p.action = 'insert' AND i.\(q(c.tenant)) = r.tenant AND i.\(q(c.email)) = r.email\(tenant("p.tenant", 4))\(tenant("r.tenant", 4))
            )
            SELECT count(*) FROM inserted
            """
    }

    /// Lines whose insert lost to a concurrent writer become rejects with a reason. $1 (Citus) the tenant.
    /// (OFFSET 0: a probe of the contacts' key per line; as an anti-join the planner hashed the whole
    /// contacts table for every batch.)
    var markLostInserts: String {
        let c = contacts
        let lost =
            keysDrawnAtClassification
            ? """
            NOT EXISTS (SELECT 1 FROM \(c.table.quoted) x
                                                WHERE x.\(q(c.tenant)) = p.tenant AND x.\(q(c.key)) = p.contact_key\(tenant("x.\(q(c.tenant))", 1))
                                                OFFSET 0)
            """ : "p.contact_key IS NULL"
        return """
            UPDATE \(decisions.quoted) p SET action = 'reject',
                   reason = 'concurrent insert: a contact with this email was created by someone else during the import; run the import again'
            WHERE p.action = 'insert' AND \(lost)\(tenant("p.tenant", 1))
            """
    }

    /// The contacts the batch updates, as (tenant, key) rows. $`parameter` (Citus) the tenant.
    private func contactsToUpdate(_ parameter: Int) -> String {
        "SELECT r.tenant, p.contact_key \(decided("'update'", parameter)) AND cardinality(p.changed) > 0"
    }

    /// Pre-images of the contacts about to change, taken under row locks. $1 run, $2 batch, $3 table,
    /// $4 (Citus) the tenant.
    func snapshotUpdatedContacts(snapshot: SnapshotTable) -> String {
        let c = contacts
        return """
            INSERT INTO \(snapshot.preImageTable) (run_id, batch_no, table_order, table_name, action, key, \(SnapshotTable.preImageColumns))
            SELECT $1, $2, 2, $3, 'update', \(snapshot.keyObject(alias: "x")), \(snapshot.preImage("x"))
            FROM \(c.table.quoted) x
            WHERE (x.\(q(c.tenant)), x.\(q(c.key))) IN (\(contactsToUpdate(4)))\(tenant("x.\(q(c.tenant))", 4))
            FOR UPDATE OF x
            """
    }

    /// Only values the file has and the contact lacks or holds differently; an empty cell never erases.
    /// $1 (Citus) the tenant.
    var updateContacts: String {
        let c = contacts
        return """
            UPDATE \(c.table.quoted) x SET
                \(q(c.fullName)) = r.full_name,
                \(q(c.organization)) = coalesce(p.organization_key, x.\(q(c.organization))),
                \(q(c.role)) = coalesce(r.role, x.\(q(c.role))),
                \(q(c.notes)) = coalesce(r.notes, x.\(q(c.notes))),
                \(q(c.inactive)) = false,
                \(q(c.updatedAt)) = now()
            \(decided("'update'", 1)) AND cardinality(p.changed) > 0
              AND x.\(q(c.tenant)) = r.tenant AND x.\(q(c.key)) = p.contact_key\(tenant("x.\(q(c.tenant))", 1))
            """
    }

    /// (Citus) The updated contacts' pre-images into the ledger with the hash of each row as written.
    func recordUpdatedContacts(snapshot: SnapshotTable) -> String? {
        let c = contacts
        return snapshot.recordPreImages(
            written: """
                SELECT \(snapshot.keyObject(alias: "x")) AS key, \(SnapshotTable.rowHash("x")) AS ferry_row_hash
                FROM \(c.table.quoted) x
                WHERE (x.\(q(c.tenant)), x.\(q(c.key))) IN (\(contactsToUpdate(2)))\(tenant("x.\(q(c.tenant))", 2))
                """)
    }

    /// The phones of inserted and updated lines, now that their contacts have keys. Returns how many
    /// belong to contacts that existed before the batch (only those need comparing with the phone
    /// table), then how many to contacts the batch created. $1 (Citus) the tenant.
    var stagePhones: String {
        """
        WITH staged AS (
            INSERT INTO \(phoneRows.staging.quoted) (seq, tenant, contact_key, phone_number, extension, canonical_type, custom_label,
                                           custom_normalized, is_default, display_order, contact_is_new)
            SELECT f.seq, r.tenant, p.contact_key, f.phone_number, f.extension, f.canonical_type, f.custom_label,
                   f.custom_normalized, f.is_default, f.display_order, p.action = 'insert'
            FROM \(linePhones.quoted) f JOIN \(decisions.quoted) p USING (line) JOIN \(lines.quoted) r USING (line)
            WHERE p.action IN ('insert', 'update') AND p.contact_key IS NOT NULL\(tenant("f.tenant", 1))\(tenant("p.tenant", 1))\(tenant("r.tenant", 1))
            RETURNING contact_is_new
        )
        SELECT count(*) FILTER (WHERE NOT contact_is_new) AS of_existing, count(*) FILTER (WHERE contact_is_new) AS of_new FROM staged
        """
    }

    // MARK: After the file

    /// The tenants the run's lines named (--deactivate-missing works in them), a tenant at a time on Citus.
    var tenantsSeen: String { "SELECT DISTINCT tenant::text AS tenant FROM \(seen.quoted) ORDER BY 1" }

    /// --deactivate-missing: active contacts of the file's tenants whose email no line had. On Citus, of
    /// the one tenant $`parameter`.
    private func missingContacts(_ parameter: Int) -> String {
        let c = contacts
        let inTenants =
            engine.isCitus
            ? "x.\(q(c.tenant)) = $\(parameter)" : "x.\(q(c.tenant)) IN (SELECT DISTINCT tenant FROM \(seen.quoted))"
        return """
            FROM \(c.table.quoted) x
            WHERE \(inTenants)
              AND NOT x.\(q(c.inactive))
              AND NOT EXISTS (SELECT 1 FROM \(seen.quoted) s WHERE s.tenant = x.\(q(c.tenant)) AND s.email = lower(x.\(q(c.email)))\(tenant("s.tenant", parameter)))
            """
    }

    /// $1 (Citus) the tenant.
    var countMissingContacts: String { "SELECT count(*) \(missingContacts(1))" }

    /// Pre-images first (under row locks); the update is then driven by exactly those rows. $1 run,
    /// $2 batch, $3 table, $4 (Citus) the tenant.
    func snapshotMissingContacts(snapshot: SnapshotTable) -> String {
        """
        INSERT INTO \(snapshot.preImageTable) (run_id, batch_no, table_order, table_name, action, key, \(SnapshotTable.preImageColumns))
        SELECT $1, $2, 2, $3, 'update', \(snapshot.keyObject(alias: "x")), \(snapshot.preImage("x"))
        \(missingContacts(4))
        FOR UPDATE OF x
        """
    }

    /// $1 run, $2 batch, $3 table: the rows whose pre-images the batch took.
    func deactivateSnapshotted(snapshot: SnapshotTable) -> String {
        let c = contacts
        return """
            UPDATE \(c.table.quoted) t SET \(q(c.inactive)) = true, \(q(c.updatedAt)) = now()
            FROM ferry.snapshot_rows s
            WHERE s.run_id = $1 AND s.batch_no = $2 AND s.table_name = $3 AND \(snapshot.keyMatch(table: "t", snapshot: "s"))
            """
    }

    /// (Citus) The keys of the pre-images waiting in the session ($1 table), as one JSON array.
    static let pendingKeys = """
        SELECT coalesce(jsonb_agg(key), '[]')::text FROM \(SnapshotTable.pendingPreImages) WHERE table_name = $1
        """

    /// (Citus) The ledger is local to the coordinator, so the rows to deactivate arrive as the keys of
    /// their pre-images ($2, `pendingKeys`); $1 the tenant.
    func deactivateByKeys(snapshot: SnapshotTable) -> String {
        let c = contacts
        return """
            UPDATE \(c.table.quoted) t SET \(q(c.inactive)) = true, \(q(c.updatedAt)) = now()
            FROM \(snapshot.keyRecordset(parameter: 2, alias: "s"))
            WHERE \(snapshot.keyColumns.map { "t.\(q($0.name)) = s.\(q($0.name))" }.joined(separator: " AND "))\(tenant("t.\(q(c.tenant))", 1))
            """
    }

    /// (Citus) The deactivated contacts' pre-images into the ledger with each row's hash as written:
    /// $1 table, $2 tenant, $3 the keys (`pendingKeys`).
    func recordDeactivated(snapshot: SnapshotTable) -> String? {
        let c = contacts
        return snapshot.recordPreImages(
            written: """
                SELECT \(snapshot.keyObject(alias: "t")) AS key, \(SnapshotTable.rowHash("t")) AS ferry_row_hash
                FROM \(c.table.quoted) t JOIN \(snapshot.keyRecordset(parameter: 3, alias: "s"))
                  ON \(snapshot.keyColumns.map { "t.\(q($0.name)) = s.\(q($0.name))" }.joined(separator: " AND "))
                WHERE true\(tenant("t.\(q(c.tenant))", 2))
                """)
    }

    /// Index the import's lookups need: by tenant and lower-cased email, and organizations by lower-cased name.
    var lookupIndexes: [SchemaStep] {
        let c = contacts, o = organizations
        return [
            SchemaStep(
                name: "contacts-csv/contacts-email-lookup",
                sql: """
                    CREATE INDEX IF NOT EXISTS \(q("ferry_" + c.table.name + "_tenant_lower_email"))
                        ON \(c.table.quoted) (\(q(c.tenant)), lower(\(q(c.email))))
                    """),
            SchemaStep(
                name: "contacts-csv/organizations-name-lookup",
                sql: """
                    CREATE INDEX IF NOT EXISTS \(q("ferry_" + o.table.name + "_tenant_lower_name"))
                        ON \(o.table.quoted) (\(q(o.tenant)), lower(\(q(o.name))))
                    """),
        ]
    }

    /// What a real import runs, in order: once per session, then per batch in one transaction ($1 run,
    /// $2 batch, $3 the table's name for its snapshot rows; on Citus the statements from the
    /// classification on run once per tenant of the batch, $4 or the last parameter naming it). For the
    /// report's appendix.
    func applyStatements(
        organizations: SnapshotTable, contacts: SnapshotTable, types: SnapshotTable, phones: SnapshotTable,
        createMissingOrganizations: Bool
    ) -> [String] {
        let citus = engine.isCitus
        return createSessionTables + phoneRows.createStagingTable(tenantType: tenantType, keyType: contactKeyType)
            + ["BEGIN", SessionSettings.setLocalBatchSettingsForReport, copyRows, copyPhones]
            + (citus ? [] : ["ANALYZE \(lines.quoted), \(linePhones.quoted)"])
            + [classify] + (citus ? [] : ["ANALYZE \(decisions.quoted)"])
            + [rememberSeen, decisionCounts, countNewOrganizations, countNewTypes]
            + (createMissingOrganizations ? [createOrganizations(snapshot: organizations)] : [])
            + [
                insertContacts(snapshot: contacts), markLostInserts, snapshotUpdatedContacts(snapshot: contacts),
                updateContacts,
            ] + [recordUpdatedContacts(snapshot: contacts)].compactMap { $0 }
            + [
                stagePhones, phoneRows.insertCustomTypes(snapshot: types), phoneRows.mergePhoneRows(snapshot: phones),
                phoneRows.insertPhoneRows(snapshot: phones, for: .existing),
                phoneRows.insertPhoneRows(snapshot: phones, for: .new), outcomes,
            ] + batchTables.compactMap(\.emptyBeforeCommit) + [LedgerRun.recordBatch(.line), "COMMIT"]
    }
}
