-- Deterministic sample data at any size: psql -v contacts=N [-v projects=P] [-v requests=R] -f samples/generate.sql
-- The same N always gives the same rows (no random(): every choice is a hash of the row number).
\if :{?contacts}
\else
\set contacts 2000
\endif

INSERT INTO tenants (tenant, name, country) VALUES
    ('00000000-0000-4000-8000-000000000001', 'Acme Field Services', 'US'),
    ('00000000-0000-4000-8000-000000000002', 'Berliner Anlagenbau GmbH', 'DE'),
    ('00000000-0000-4000-8000-000000000003', 'Thames Facilities Ltd', 'GB');

-- One organization per 20 contacts.
INSERT INTO clients (tenant, client_id, client_name, created_at)
SELECT t.tenant,
       md5('client-' || t.n || '-' || g)::uuid,
       (ARRAY['Northwind', 'Contoso', 'Globex', 'Initech', 'Umbrella', 'Stark', 'Wayne', 'Tyrell'])[1 + g % 8]
           || ' ' || (ARRAY['Holdings', 'Industries', 'Logistics', 'Partners', 'Systems'])[1 + g % 5] || ' ' || g,
       timestamptz '2020-01-01 00:00:00+00' + g * interval '1 hour'
FROM (SELECT tenant, row_number() OVER (ORDER BY tenant) - 1 AS n FROM tenants) t,
     generate_series(1, greatest(1, :contacts / 60)) g;

WITH numbered AS (
    SELECT g,
           (g % 3) AS tn,
           abs(hashint4(g)) % 100 AS pick,
           abs(hashint4(g * 7 + 1)) AS h1,
           abs(hashint4(g * 13 + 5)) AS h2
    FROM generate_series(1, :contacts) g
), parts AS (
    SELECT n.*,
           -- US pieces
           (ARRAY['201', '212', '415', '650', '303', '617', '312', '206'])[1 + n.h1 % 8] AS us_area,
           (200 + n.h1 % 700)::text AS us_exchange,
           lpad((n.h2 % 10000)::text, 4, '0') AS us_line,
           (ARRAY['201', '212', '415', '650'])[1 + n.h2 % 4] AS us_area2,
           (200 + n.h2 % 700)::text AS us_exchange2,
           lpad((n.h1 % 10000)::text, 4, '0') AS us_line2,
           -- DE pieces
           (200000 + n.h1 % 700000)::text AS de_local,
           (1000000 + n.h2 % 9000000)::text AS de_mobile,
           -- GB pieces
           lpad((n.h1 % 1000)::text, 3, '0') AS gb_line,
           lpad((n.h2 % 1000000)::text, 6, '0') AS gb_mobile
    FROM numbered n
), phones AS (
    SELECT p.g, p.tn,
        CASE p.tn
        WHEN 0 THEN CASE
            WHEN p.pick < 25 THEN format('(%s) %s-%s', us_area, us_exchange, us_line)
            WHEN p.pick < 35 THEN format('%s.%s.%s', us_area, us_exchange, us_line)
            WHEN p.pick < 43 THEN format('+1 %s %s %s', us_area, us_exchange, us_line)
            WHEN p.pick < 50 THEN format('%s%s%s', us_area, us_exchange, us_line)
            WHEN p.pick < 54 THEN format('%s-%s-%s x%s', us_area, us_exchange, us_line, p.h2 % 900 + 100)
            WHEN p.pick < 58 THEN format('%s-%s-%s / %s-%s-%s', us_area, us_exchange, us_line, us_area2, us_exchange2, us_line2)
            WHEN p.pick < 61 THEN format('Cell: %s-%s-%s', us_area, us_exchange, us_line)
            WHEN p.pick < 64 THEN format('%s-%s-%s (mobile)', us_area, us_exchange, us_line)
            WHEN p.pick < 66 THEN format('H: %s-%s-%s W: %s-%s-%s', us_area, us_exchange, us_line, us_area2, us_exchange2, us_line2)
            WHEN p.pick < 68 THEN format('Pager: %s %s %s', us_area, us_exchange, us_line)
            WHEN p.pick < 69 THEN format('direct line: (%s) %s-%s', us_area, us_exchange, us_line)
            WHEN p.pick < 70 THEN '1-800-FLOWERS'
            WHEN p.pick < 71 THEN format('%s-%s-%s ext. %s', us_area, us_exchange, us_line, p.h1 % 90 + 10)
            WHEN p.pick < 72 THEN format(E'%s-%s-%s\n%s-%s-%s', us_area, us_exchange, us_line, us_area2, us_exchange2, us_line2)
            WHEN p.pick < 80 THEN NULL
            WHEN p.pick < 85 THEN ''
            WHEN p.pick < 87 THEN 'n/a'
            WHEN p.pick < 88 THEN 'call reception'
            WHEN p.pick < 89 THEN '000-000-0000'
            WHEN p.pick < 90 THEN '   '
            WHEN p.pick < 91 THEN format('%s-%s', us_exchange, us_line)
            WHEN p.pick < 92 THEN format('%s-%s-%s (Assistant)', us_area, us_exchange, us_line)
            ELSE format('%s-%s-%s', us_area, us_exchange, us_line)
            END
        WHEN 1 THEN CASE
            WHEN p.pick < 25 THEN format('030 %s', de_local)
            WHEN p.pick < 35 THEN format('+49 30 %s', de_local)
            WHEN p.pick < 43 THEN format('030/%s', de_local)
            WHEN p.pick < 50 THEN format('0151 %s%s', de_mobile, p.h1 % 10)
            WHEN p.pick < 54 THEN format('+49 30 %s App. %s', de_local, p.h2 % 90 + 10)
            WHEN p.pick < 58 THEN format('030 %s / 0171 %s', de_local, de_mobile)
            WHEN p.pick < 61 THEN format('Handy: 0171 %s', de_mobile)
            WHEN p.pick < 64 THEN format('Tel. 030 %s, Fax 030 %s', de_local, (200000 + (p.h1 + 1) % 700000)::text)
            WHEN p.pick < 66 THEN format('089/%s', de_mobile)
            WHEN p.pick < 68 THEN format('030 %s Durchwahl %s', de_local, p.h2 % 90 + 10)
            WHEN p.pick < 70 THEN format('+49 (0) 30 %s', de_local)
            WHEN p.pick < 80 THEN NULL
            WHEN p.pick < 85 THEN ''
            WHEN p.pick < 87 THEN 'keine'
            WHEN p.pick < 89 THEN '-'
            WHEN p.pick < 90 THEN 'bitte Zentrale anrufen'
            ELSE format('0049 30 %s', de_local)
            END
        ELSE CASE
            WHEN p.pick < 25 THEN format('020 7946 0%s', gb_line)
            WHEN p.pick < 35 THEN format('+44 20 7946 0%s', gb_line)
            WHEN p.pick < 43 THEN format('07400 %s', gb_mobile)
            WHEN p.pick < 50 THEN format('+44 (0)7400 %s', gb_mobile)
            WHEN p.pick < 54 THEN format('020 7946 0%s ext. %s', gb_line, p.h2 % 900 + 100)
            WHEN p.pick < 58 THEN format('020 7946 0%s / 07400 %s', gb_line, gb_mobile)
            WHEN p.pick < 61 THEN format('Mobile: 07400 %s', gb_mobile)
            WHEN p.pick < 64 THEN format('+44 20 7946 0%s (w), +44 7400 %s (m)', gb_line, gb_mobile)
            WHEN p.pick < 66 THEN format('0161 496 0%s', gb_line)
            WHEN p.pick < 68 THEN format('07700 900%s', gb_line)
            WHEN p.pick < 70 THEN format('0044 20 7946 0%s', gb_line)
            WHEN p.pick < 80 THEN NULL
            WHEN p.pick < 85 THEN ''
            WHEN p.pick < 87 THEN 'N/A'
            WHEN p.pick < 89 THEN 'TBD'
            WHEN p.pick < 90 THEN 'ask reception'
            ELSE format('020 7946 0%s', gb_line)
            END
        END AS phone_number
    FROM parts p
)
INSERT INTO contacts (tenant, contact_name_id, full_name, email, phone_number, country, client_id, role,
                      contact_type, is_inactive, created_at, updated_at)
SELECT t.tenant,
       md5('contact-' || ph.g)::uuid,
       (ARRAY['Ada', 'Grace', 'Linus', 'Margaret', 'Dennis', 'Barbara', 'Ken', 'Frances', 'Edsger', 'Radia'])[1 + ph.g % 10]
           || ' ' || (ARRAY['Lovelace', 'Hopper', 'Torvalds', 'Hamilton', 'Ritchie', 'Liskov', 'Thompson', 'Allen', 'Dijkstra', 'Perlman'])[1 + (ph.g / 10) % 10],
       -- One contact in 400 has the email of the contact three before it (same tenant) but for case:
       -- the application compared emails case-sensitively.
       CASE WHEN ph.g % 400 = 399
            THEN initcap('contact' || (ph.g - 3) || '@' || (ARRAY['example.com', 'example.org', 'gmail.com', 'northwind.example'])[1 + (ph.g - 3) % 4])
            ELSE 'contact' || ph.g || '@' || (ARRAY['example.com', 'example.org', 'gmail.com', 'northwind.example'])[1 + ph.g % 4] END,
       ph.phone_number,
       CASE WHEN ph.g % 17 = 0 AND ph.tn = 0 THEN NULL ELSE t.country END,
       -- One contact in nine has no organization (the customers job must find or make one).
       CASE WHEN (ph.g / 3) % 9 = 4 THEN NULL
            ELSE md5('client-' || ph.tn || '-' || (1 + (ph.g / 3) % greatest(1, :contacts / 60)))::uuid END,
       (ARRAY['Buyer', 'Procurement lead', 'Engineer', 'QA manager', 'Office manager', NULL])[1 + ph.g % 6],
       (ARRAY['customer', 'customer', 'customer', 'vendor', 'internal'])[1 + (ph.g / 7) % 5],
       ph.g % 23 = 0,
       timestamptz '2021-01-01 00:00:00+00' + ph.g * interval '1 minute',
       timestamptz '2022-01-01 00:00:00+00' + ph.g * interval '1 minute'
FROM phones ph
JOIN (SELECT tenant, country, row_number() OVER (ORDER BY tenant) - 1 AS n FROM tenants) t ON t.n = ph.tn;

-- Projects whose customer is a person: a contact of the same tenant (several projects may share one),
-- one project in ten without a customer. Default: one project per two contacts.
\if :{?projects}
\else
SELECT greatest(1, :contacts / 2) AS projects \gset
\endif
INSERT INTO projects (tenant, project_id, title, customer_id, created_at)
SELECT t.tenant,
       md5('project-' || g)::uuid,
       (ARRAY['Roof repair', 'HVAC service', 'Fleet maintenance', 'Network upgrade', 'Office move', 'Audit'])[1 + g % 6] || ' #' || g,
       CASE WHEN g % 10 = 0 OR :contacts < 3 THEN NULL
            ELSE md5('contact-' || (CASE WHEN c.pick = 0 THEN 3 ELSE c.pick END))::uuid END,
       timestamptz '2023-01-01 00:00:00+00' + g * interval '7 minutes'
FROM generate_series(1, :projects) g
CROSS JOIN LATERAL (SELECT 3 * (abs(hashint4(g * 31 + 7)) % greatest(1, :contacts / 3)) + g % 3 AS pick) c
JOIN (SELECT tenant, row_number() OVER (ORDER BY tenant) - 1 AS n FROM tenants) t ON t.n = g % 3;

-- Service requests name people by email strings: mostly existing contacts (some upper-cased or padded
-- with spaces), people no contact has yet (drivers and technicians, several requests each), malformed
-- addresses, none; legacy statuses, a few the mapping does not know. Default: one request per contact.
\if :{?requests}
\else
SELECT :contacts AS requests \gset
\endif
INSERT INTO service_requests (tenant, request_id, submitted_by_email, assigned_to_email, status, created_at)
SELECT t.tenant,
       md5('request-' || g)::uuid,
       CASE WHEN g % 50 = 7 THEN NULL
            WHEN g % 97 = 3 THEN 'not-an-email'
            WHEN g % 89 = 5 THEN 'someone@'
            WHEN g % 11 = 2 THEN 'driver' || (g % 200) || '@fleet' || (g % 3 + 1) || '.example'
            WHEN g % 7 = 1 THEN upper(sub.email)
            WHEN g % 13 = 4 THEN '  ' || sub.email || ' '
            ELSE sub.email END,
       CASE WHEN g % 5 = 0 THEN NULL
            WHEN g % 9 = 2 THEN 'tech' || (g % 150) || '@repairs' || (g % 3 + 1) || '.example'
            ELSE asg.email END,
       CASE WHEN st.pick < 20 THEN 'open' WHEN st.pick < 25 THEN 'Open ' WHEN st.pick < 35 THEN 'new'
            WHEN st.pick < 42 THEN 'ack' WHEN st.pick < 52 THEN 'in progress' WHEN st.pick < 56 THEN 'WIP'
            WHEN st.pick < 72 THEN 'done' WHEN st.pick < 85 THEN 'closed' WHEN st.pick < 97 THEN 'declined'
            ELSE 'on hold' END,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '3 minutes'
FROM generate_series(1, :requests) g
CROSS JOIN LATERAL (SELECT abs(hashint4(g * 17 + 1)) % 100 AS pick) st
CROSS JOIN LATERAL (
    SELECT 'contact' || n || '@' || (ARRAY['example.com', 'example.org', 'gmail.com', 'northwind.example'])[1 + n % 4] AS email
    FROM (SELECT CASE WHEN x = 0 THEN 3 ELSE x END AS n FROM (SELECT 3 * (abs(hashint4(g * 11 + 3)) % greatest(1, :contacts / 3)) + g % 3 AS x) p) q
) sub
CROSS JOIN LATERAL (
    SELECT 'contact' || n || '@' || (ARRAY['example.com', 'example.org', 'gmail.com', 'northwind.example'])[1 + n % 4] AS email
    FROM (SELECT CASE WHEN x = 0 THEN 3 ELSE x END AS n FROM (SELECT 3 * (abs(hashint4(g * 23 + 9)) % greatest(1, :contacts / 3)) + g % 3 AS x) p) q
) asg
JOIN (SELECT tenant, row_number() OVER (ORDER BY tenant) - 1 AS n FROM tenants) t ON t.n = g % 3;

ANALYZE tenants, clients, contacts, projects, service_requests;
