-- The sample schema as the application runs it on Citus: every tenant table hash-distributed on
-- `tenant` and colocated with `tenants`. Referenced tables first: a foreign key between distributed
-- tables needs its target distributed already.
SELECT create_distributed_table('tenants', 'tenant');
SELECT create_distributed_table('clients', 'tenant', colocate_with => 'tenants');
SELECT create_distributed_table('contacts', 'tenant', colocate_with => 'tenants');
SELECT create_distributed_table('projects', 'tenant', colocate_with => 'tenants');
SELECT create_distributed_table('service_requests', 'tenant', colocate_with => 'tenants');
