-- 0019 sign-in hot path: lighter writes per sign-in, every feature kept.
--
-- Every sign-in wrote three rows that reference public.tenants: the auth request, the profile (on
-- first login) and the session. Each foreign key check takes FOR KEY SHARE on the tenant's row, and
-- with one tenant (the usual case) that is the same row for every concurrent sign-in: a row lock on
-- one hot tuple per insert (a WAL record each), and a MultiXact once two transactions hold it at
-- once. The profile keeps its foreign key (a profile belongs to a tenant that exists; a tenant with
-- profiles cannot be deleted). The other two do not need their own:
--  - a session's tenant is its profile's (complete_sign_in copies it from the profile row, and the
--    session's profile_id foreign key, on delete cascade, ties the session to that profile);
--  - an auth request lives minutes, its tenant is the default one or was just resolved by slug, and
--    nothing joins it to tenants.
alter table hallpass.auth_requests drop constraint if exists auth_requests_tenant_id_fkey;
alter table hallpass.sessions drop constraint if exists sessions_tenant_id_fkey;
