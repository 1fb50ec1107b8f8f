-- ferry schema snapshot of ferry_test_77b8c83a, 2026-11-22T19:45:22Z
-- tables: contacts
--
-- PostgreSQL database dump
--

\restrict 5MeNrspF13L3rdFkS4MmskCE6rweuBeQO8ZKPKNbWZTBYoj3bZfxendBsDe2vKu

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: contacts; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.contacts (
    tenant uuid NOT NULL,
    contact_name_id uuid NOT NULL,
    full_name text NOT NULL,
    email text,
    phone_number text,
    country text,
    client_id uuid,
    role text,
    contact_type text DEFAULT 'customer'::text NOT NULL,
    is_inactive boolean DEFAULT false NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    notes text
);


ALTER TABLE public.contacts OWNER TO postgres;

--
-- Name: contacts contacts_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.contacts
    ADD CONSTRAINT contacts_pkey PRIMARY KEY (tenant, contact_name_id);


--
-- Name: contacts contacts_tenant_email_key; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.contacts
    ADD CONSTRAINT contacts_tenant_email_key UNIQUE (tenant, email);


--
-- Name: contacts contacts_tenant_client_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.contacts
    ADD CONSTRAINT contacts_tenant_client_id_fkey FOREIGN KEY (tenant, client_id) REFERENCES public.clients(tenant, client_id);


--
-- Name: contacts contacts_tenant_fkey; Type: FK CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.contacts
    ADD CONSTRAINT contacts_tenant_fkey FOREIGN KEY (tenant) REFERENCES public.tenants(tenant);


--
-- PostgreSQL database dump complete
--

\unrestrict 5MeNrspF13L3rdFkS4MmskCE6rweuBeQO8ZKPKNbWZTBYoj3bZfxendBsDe2vKu

