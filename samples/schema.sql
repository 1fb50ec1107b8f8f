-- The legacy application ferry migrates: a small multi-tenant PSA/CRM schema.
-- contacts.phone_number is free text; customers are contact rows; work is owned by people.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE tenants (
    tenant uuid PRIMARY KEY,
    name text NOT NULL,
    country text NOT NULL
);

-- The organizations.
CREATE TABLE clients (
    tenant uuid NOT NULL REFERENCES tenants,
    client_id uuid NOT NULL,
    client_name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, client_id)
);

CREATE TABLE contacts (
    tenant uuid NOT NULL REFERENCES tenants,
    contact_name_id uuid NOT NULL,
    full_name text NOT NULL,
    email text,
    phone_number text,
    country text,
    client_id uuid,
    role text,
    contact_type text NOT NULL DEFAULT 'customer',
    is_inactive boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    notes text,
    PRIMARY KEY (tenant, contact_name_id),
    UNIQUE (tenant, email),
    FOREIGN KEY (tenant, client_id) REFERENCES clients (tenant, client_id)
);

CREATE TABLE projects (
    tenant uuid NOT NULL REFERENCES tenants,
    project_id uuid NOT NULL,
    title text NOT NULL,
    customer_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, project_id),
    FOREIGN KEY (tenant, customer_id) REFERENCES contacts (tenant, contact_name_id)
);

CREATE TABLE service_requests (
    tenant uuid NOT NULL REFERENCES tenants,
    request_id uuid NOT NULL,
    submitted_by_email text,
    assigned_to_email text,
    status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, request_id)
);
