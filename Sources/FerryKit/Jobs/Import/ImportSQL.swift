/// Every statement the CSV import runs, built from the mapping with every identifier quoted.
/// A batch goes: COPY into session staging tables → classify each line (one statement, read-only
/// towards the real tables) → and, unless it is a dry run, write what the classification decided.
struct ImportSQL {
    let mapping: ContactsCSVMapping
    /// SQL types of the keys, read from the catalog: staging tables match the real ones.
    let tenantType: String
    let contactKeyType: String
    let organizationKeyType: String

    private var contacts: ContactsCSVMapping.ContactsTable { mapping.contacts }
    private var organizations: ContactsCSVMapping.OrganizationsTable { mapping.organizations }
    private var phones: PhonesMapping.PhoneNumbersTable { mapping.phoneNumbers }
    private func q(_ name: String) -> String { quoteIdentifier(name) }

    /// Snapshot order: rollback undoes phones, then types, then contacts, then organizations.
    var phoneRows: PhoneRowsSQL {
        PhoneRowsSQL(phones: mapping.phoneNumbers, types: mapping.typeDefinitions, typesOrder: 3, phonesOrder: 4)
    }

    // MARK: Session set-up

    /// Per-batch staging (emptied at commit) and per-run memory (lines seen, organizations and types
    /// a dry run would create), all temporary: a dry run writes to nothing else.
    var createSessionTables: String {
        """
        CREATE TEMP TABLE IF NOT EXISTS ferry_import_rows (
            line integer PRIMARY KEY,
            tenant \(tenantType) NOT NULL,
            email text NOT NULL,
            full_name text NOT NULL,
            organization text,
            role text,
            notes text
        ) ON COMMIT DELETE ROWS;
        CREATE TEMP TABLE IF NOT EXISTS ferry_import_phones (
            line integer NOT NULL,
            seq integer NOT NULL,
            phone_number text NOT NULL,
            extension text,
            canonical_type text,
            custom_label text,
            custom_normalized text,
            is_default boolean NOT NULL,
            display_order integer NOT NULL
        ) ON COMMIT DELETE ROWS;
        CREATE INDEX IF NOT EXISTS ferry_import_phones_line ON ferry_import_phones (line);
        CREATE INDEX IF NOT EXISTS ferry_import_rows_key ON ferry_import_rows (tenant, email);
        CREATE TEMP TABLE IF NOT EXISTS ferry_import_plan (
            line integer PRIMARY KEY,
            action text NOT NULL,
            reason text,
            contact_key \(contactKeyType),
            organization_key \(organizationKeyType),
            new_organization boolean NOT NULL,
            changed text[] NOT NULL,
            phones_added integer NOT NULL
        ) ON COMMIT DELETE ROWS;
        CREATE TEMP TABLE IF NOT EXISTS ferry_import_seen (
            tenant \(tenantType) NOT NULL,
            email text NOT NULL,
            line integer NOT NULL,
            PRIMARY KEY (tenant, email)
        );
        CREATE TEMP TABLE IF NOT EXISTS ferry_import_new_organizations (
            tenant \(tenantType) NOT NULL,
            name_key text NOT NULL,
            PRIMARY KEY (tenant, name_key)
        );
        CREATE TEMP TABLE IF NOT EXISTS ferry_import_new_types (
            tenant \(tenantType) NOT NULL,
            normalized text NOT NULL,
            PRIMARY KEY (tenant, normalized)
        );
        """
    }

    let copyRows = "COPY ferry_import_rows (line, tenant, email, full_name, organization, role, notes) FROM STDIN"
    let copyPhones = """
        COPY ferry_import_phones (line, seq, phone_number, extension, canonical_type, custom_label, custom_normalized, is_default, display_order) FROM STDIN
        """

    // MARK: Classify

    /// One action per staged line: insert, update, unchanged, skip or reject (with the reason).
    /// $1 create missing organizations, $2 what an existing, differing contact gets: update, skip or reject.
    var classify: String {
        let c = contacts
        let o = organizations
        return """
            INSERT INTO ferry_import_plan (line, action, reason, contact_key, organization_key, new_organization, changed, phones_added)
            SELECT r.line,
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
                   m.key, org.key, r.organization IS NOT NULL AND org.key IS NULL, d.changed, added.n
            FROM ferry_import_rows r
            -- The first line with this key, in an earlier batch or earlier in this one. OFFSET 0 keeps the
            -- planner from inlining it into each CASE that reads s.line, which looked it up two or three times.
            CROSS JOIN LATERAL (SELECT coalesce(
                                   (SELECT x.line FROM ferry_import_seen x WHERE x.tenant = r.tenant AND x.email = r.email),
                                   (SELECT min(x.line) FROM ferry_import_rows x
                                    WHERE x.tenant = r.tenant AND x.email = r.email AND x.line < r.line)) AS line OFFSET 0) s
            LEFT JOIN LATERAL (SELECT true AS present FROM \(mapping.tenants.table.quoted) x
                               WHERE x.\(q(mapping.tenants.key)) = r.tenant) t ON true
            LEFT JOIN LATERAL (SELECT count(*) OVER () AS n, x.\(q(c.key)) AS key, x.\(q(c.fullName)) AS full_name,
                                      x.\(q(c.organization)) AS organization_key, x.\(q(c.role)) AS role, x.\(q(c.notes)) AS notes,
                                      x.\(q(c.inactive)) AS inactive
                               FROM \(c.table.quoted) x
                               WHERE x.\(q(c.tenant)) = r.tenant AND lower(x.\(q(c.email))) = r.email LIMIT 1) m ON true
            LEFT JOIN LATERAL (SELECT count(*) OVER () AS n, x.\(q(o.key)) AS key FROM \(o.table.quoted) x
                               WHERE r.organization IS NOT NULL AND x.\(q(o.tenant)) = r.tenant
                                 AND lower(x.\(q(o.name))) = lower(r.organization) LIMIT 1) org ON true
            CROSS JOIN LATERAL (SELECT array_remove(ARRAY[
                                   CASE WHEN m.full_name IS DISTINCT FROM r.full_name THEN 'full_name' END,
                                   CASE WHEN r.organization IS NOT NULL AND m.organization_key IS DISTINCT FROM org.key THEN 'organization' END,
                                   CASE WHEN r.role IS NOT NULL AND m.role IS DISTINCT FROM r.role THEN 'role' END,
                                   CASE WHEN r.notes IS NOT NULL AND m.notes IS DISTINCT FROM r.notes THEN 'notes' END,
                                   CASE WHEN m.inactive THEN 'reactivated' END], NULL) AS changed) d
            CROSS JOIN LATERAL (SELECT count(*)::int AS n FROM ferry_import_phones f
                                WHERE f.line = r.line AND m.key IS NOT NULL
                                  AND NOT EXISTS (SELECT 1 FROM \(phones.table.quoted) p
                                                  WHERE p.\(q(phones.tenant)) = r.tenant AND p.\(q(phones.contactKey)) = m.key
                                                    AND p.\(q(phones.phoneNumber)) = f.phone_number
                                                    \(phoneRows.sameExtension(table: "p", staged: "f.extension")))) added
            """
    }

    /// Per tenant ($1: their ids as text), what the classification reads: the contacts' mapped columns,
    /// the phone numbers they hold and the organizations' names. A plan file binds an import to it.
    var fingerprint: String {
        let c = contacts, o = organizations, p = phones
        let phoneValue =
            "row(x.\(q(p.contactKey)), x.\(q(p.phoneNumber))\(p.extensionDigits.map { ", x.\(q($0))" } ?? ""))::text"
        return """
            SELECT t.tenant, coalesce(k.n, 0) AS records, md5(concat_ws('/', k.sha, ph.sha, org.sha)) AS sha
            FROM unnest($1::text[]) AS t(tenant)
            LEFT JOIN LATERAL (
                SELECT count(*) AS n, md5(string_agg(h, '' ORDER BY h)) AS sha FROM (
                    SELECT md5(row(x.\(q(c.key)), lower(x.\(q(c.email))), x.\(q(c.fullName)), x.\(q(c.organization)),
                                   x.\(q(c.role)), x.\(q(c.notes)), x.\(q(c.inactive)))::text) AS h
                    FROM \(c.table.quoted) x WHERE x.\(q(c.tenant))::text = t.tenant) y) k ON true
            LEFT JOIN LATERAL (
                SELECT md5(string_agg(md5(\(phoneValue)), '' ORDER BY md5(\(phoneValue)))) AS sha
                FROM \(p.table.quoted) x WHERE x.\(q(p.tenant))::text = t.tenant) ph ON true
            LEFT JOIN LATERAL (
                SELECT md5(string_agg(md5(row(x.\(q(o.key)), x.\(q(o.name)))::text), '' ORDER BY x.\(q(o.key))::text)) AS sha
                FROM \(o.table.quoted) x WHERE x.\(q(o.tenant))::text = t.tenant) org ON true
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
    let rememberSeen = """
        INSERT INTO ferry_import_seen (tenant, email, line)
        SELECT tenant, email, line FROM ferry_import_rows ORDER BY line ON CONFLICT DO NOTHING
        """

    /// Organizations and custom types this run will create, counted once per run (dry run and apply alike).
    var countNewOrganizations: String {
        """
        WITH fresh AS (
            INSERT INTO ferry_import_new_organizations (tenant, name_key)
            SELECT DISTINCT r.tenant, lower(r.organization) FROM ferry_import_plan p JOIN ferry_import_rows r USING (line)
            WHERE p.new_organization AND p.action IN ('insert', 'update')
            ON CONFLICT DO NOTHING RETURNING 1
        ) SELECT count(*) FROM fresh
        """
    }

    var countNewTypes: String {
        let types = mapping.typeDefinitions
        return """
            WITH fresh AS (
                INSERT INTO ferry_import_new_types (tenant, normalized)
                SELECT DISTINCT r.tenant, f.custom_normalized
                FROM ferry_import_phones f JOIN ferry_import_plan p USING (line) JOIN ferry_import_rows r USING (line)
                WHERE f.custom_normalized IS NOT NULL AND p.action IN ('insert', 'update')
                  AND NOT EXISTS (SELECT 1 FROM \(types.table.quoted) t
                                  WHERE t.\(q(types.tenant)) = r.tenant AND t.\(q(types.normalizedLabel)) = f.custom_normalized)
                ON CONFLICT DO NOTHING RETURNING 1
            ) SELECT count(*) FROM fresh
            """
    }

    let outcomes = """
        SELECT p.line, p.action, p.reason, array_to_string(p.changed, ',') AS changed,
               CASE WHEN p.action = 'insert' THEN coalesce(f.n, 0) ELSE p.phones_added END AS phone_rows
        FROM ferry_import_plan p
        LEFT JOIN (SELECT line, count(*) AS n FROM ferry_import_phones GROUP BY line) f USING (line)
        ORDER BY p.line
        """

    // MARK: Write

    /// A new key: generated here for uuid keys, otherwise the column's default.
    private func keyColumn(_ name: String, type: String) -> (column: String, value: String)? {
        type == "uuid" ? (", " + q(name), ", gen_random_uuid()") : nil
    }

    /// Organizations named in the file that the tenant lacks; the first spelling wins.
    /// $1 run, $2 batch, $3 the table's qualified name.
    func createOrganizations(snapshot: SnapshotTable) -> String {
        let o = organizations
        let key = keyColumn(o.key, type: organizationKeyType)
        return """
            WITH created AS (
                INSERT INTO \(o.table.quoted) (\(q(o.tenant)), \(q(o.name))\(key?.column ?? ""))
                SELECT DISTINCT ON (r.tenant, lower(r.organization)) r.tenant, r.organization\(key?.value ?? "")
                FROM ferry_import_plan p JOIN ferry_import_rows r USING (line)
                WHERE p.new_organization AND p.action IN ('insert', 'update')
                ORDER BY r.tenant, lower(r.organization), r.line
                RETURNING \(snapshot.returning([o.tenant, o.key, o.name]))
            ), snapshot AS (
                \(snapshot.recordInserts(from: "created", tableOrder: 1, tableNameParameter: "$3"))
            ), linked AS (
                UPDATE ferry_import_plan p SET organization_key = c.\(q(o.key))
                FROM created c, ferry_import_rows r
                WHERE r.line = p.line AND p.new_organization AND c.\(q(o.tenant)) = r.tenant AND lower(c.\(q(o.name))) = lower(r.organization)
            )
            SELECT count(*) FROM created
            """
    }

    /// New contacts. A contact the application inserted meanwhile wins (ON CONFLICT): that line is then
    /// reported, never silently dropped. $1 run, $2 batch, $3 the table's qualified name.
    func insertContacts(snapshot: SnapshotTable) -> String {
        let c = contacts
        let key = keyColumn(c.key, type: contactKeyType)
        return """
            WITH inserted AS (
                INSERT INTO \(c.table.quoted) (\(q(c.tenant)), \(q(c.fullName)), \(q(c.email)), \(q(c.organization)), \(q(c.role)), \(q(c.notes))\(key?.column ?? ""))
                SELECT r.tenant, r.full_name, r.email, p.organization_key, r.role, r.notes\(key?.value ?? "")
                FROM ferry_import_plan p JOIN ferry_import_rows r USING (line)
                WHERE p.action = 'insert'
                ORDER BY r.line
                ON CONFLICT DO NOTHING
                RETURNING \(snapshot.returning([c.tenant, c.key, c.email]))
            ), snapshot AS (
                \(snapshot.recordInserts(from: "inserted", tableOrder: 2, tableNameParameter: "$3"))
            ), linked AS (
                UPDATE ferry_import_plan p SET contact_key = i.\(q(c.key))
                FROM inserted i, ferry_import_rows r
                WHERE r.line = p.line AND p.action = 'insert' AND i.\(q(c.tenant)) = r.tenant AND i.\(q(c.email)) = r.email
            )
            SELECT count(*) FROM inserted
            """
    }

    /// Lines whose insert lost to a concurrent writer become rejects with a reason.
    let markLostInserts = """
        UPDATE ferry_import_plan p SET action = 'reject',
               reason = 'concurrent insert: a contact with this email was created by someone else during the import; run the import again'
        WHERE p.action = 'insert' AND p.contact_key IS NULL
        """

    /// Pre-images of the contacts about to change, taken under row locks. $1 run, $2 batch, $3 table.
    func snapshotUpdatedContacts(snapshot: SnapshotTable) -> String {
        let c = contacts
        return """
            INSERT INTO ferry.snapshot_rows (run_id, batch_no, table_order, table_name, action, key, before)
            SELECT $1, $2, 2, $3, 'update', \(snapshot.keyObject(alias: "x")), to_jsonb(x)
            FROM \(c.table.quoted) x
            WHERE (x.\(q(c.tenant)), x.\(q(c.key))) IN (
                SELECT r.tenant, p.contact_key FROM ferry_import_plan p JOIN ferry_import_rows r USING (line)
                WHERE p.action = 'update' AND cardinality(p.changed) > 0)
            FOR UPDATE OF x
            """
    }

    /// Only values the file has and the contact lacks or holds differently; an empty cell never erases.
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
            FROM ferry_import_plan p JOIN ferry_import_rows r USING (line)
            WHERE p.action = 'update' AND cardinality(p.changed) > 0
              AND x.\(q(c.tenant)) = r.tenant AND x.\(q(c.key)) = p.contact_key
            """
    }

    /// The phones of inserted and updated lines, now that their contacts have keys. Returns how many
    /// belong to contacts that existed before the batch (only those need comparing with the phone
    /// table), then how many to contacts the batch created.
    let stagePhones = """
        WITH staged AS (
            INSERT INTO ferry_phone_stage (seq, tenant, contact_key, phone_number, extension, canonical_type, custom_label,
                                           custom_normalized, is_default, display_order, contact_is_new)
            SELECT f.seq, r.tenant, p.contact_key, f.phone_number, f.extension, f.canonical_type, f.custom_label,
                   f.custom_normalized, f.is_default, f.display_order, p.action = 'insert'
            FROM ferry_import_phones f JOIN ferry_import_plan p USING (line) JOIN ferry_import_rows r USING (line)
            WHERE p.action IN ('insert', 'update') AND p.contact_key IS NOT NULL
            RETURNING contact_is_new
        )
        SELECT count(*) FILTER (WHERE NOT contact_is_new) AS of_existing, count(*) FILTER (WHERE contact_is_new) AS of_new FROM staged
        """

    // MARK: After the file

    /// --deactivate-missing: active contacts of the file's tenants whose email no line had.
    private var missingContacts: String {
        let c = contacts
        return """
            FROM \(c.table.quoted) x
            WHERE x.\(q(c.tenant)) IN (SELECT DISTINCT tenant FROM ferry_import_seen)
              AND NOT x.\(q(c.inactive))
              AND NOT EXISTS (SELECT 1 FROM ferry_import_seen s WHERE s.tenant = x.\(q(c.tenant)) AND s.email = lower(x.\(q(c.email))))
            """
    }

    var countMissingContacts: String { "SELECT count(*) \(missingContacts)" }

    /// Pre-images first (under row locks); the update is then driven by exactly those snapshot rows.
    func snapshotMissingContacts(snapshot: SnapshotTable) -> String {
        """
        INSERT INTO ferry.snapshot_rows (run_id, batch_no, table_order, table_name, action, key, before)
        SELECT $1, $2, 2, $3, 'update', \(snapshot.keyObject(alias: "x")), to_jsonb(x)
        \(missingContacts)
        FOR UPDATE OF x
        """
    }

    func deactivateSnapshotted(snapshot: SnapshotTable) -> String {
        let c = contacts
        return """
            UPDATE \(c.table.quoted) t SET \(q(c.inactive)) = true, \(q(c.updatedAt)) = now()
            FROM ferry.snapshot_rows s
            WHERE s.run_id = $1 AND s.batch_no = $2 AND s.table_name = $3 AND \(snapshot.keyMatch(table: "t", snapshot: "s"))
            """
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
    /// $2 batch, $3 the table's name for its snapshot rows). For the report's appendix.
    func applyStatements(
        organizations: SnapshotTable, contacts: SnapshotTable, types: SnapshotTable, phones: SnapshotTable,
        createMissingOrganizations: Bool
    ) -> [String] {
        [createSessionTables] + phoneRows.createStagingTable(tenantType: tenantType, keyType: contactKeyType) + [
            "BEGIN",
            SessionSettings.setLocalTimeoutsForReport, copyRows, copyPhones,
            "ANALYZE ferry_import_rows, ferry_import_phones",
            classify, "ANALYZE ferry_import_plan", rememberSeen, countNewOrganizations, countNewTypes,
        ] + (createMissingOrganizations ? [createOrganizations(snapshot: organizations)] : []) + [
            insertContacts(snapshot: contacts), markLostInserts, snapshotUpdatedContacts(snapshot: contacts),
            updateContacts, stagePhones, phoneRows.insertCustomTypes(snapshot: types),
            phoneRows.mergePhoneRows(snapshot: phones), phoneRows.insertPhoneRows(snapshot: phones, for: .existing),
            phoneRows.insertPhoneRows(snapshot: phones, for: .new), outcomes, LedgerRun.recordBatch(.line), "COMMIT",
        ]
    }
}
