-- 0026 claims: hallpass.set_request_claims sets the legacy per-claim settings only while something
-- reads them, and knows it the moment that changes.
--
-- The legacy names (request.jwt.claim.<name>, jwt.claims.<name>; 0014) exist so the guide's SQL
-- pastes unchanged. Setting them is about a quarter of a data API read's database CPU (about 28 of
-- 118 µs, docs/contributing.md), paid by every request whether or not any policy reads them. 0021
-- let realtime skip them after a catalog scan every few seconds, failing closed in between; a data
-- API request cannot wait for a poll. Now the answer is the body of hallpass.legacy_claims_needed(),
-- an immutable SQL function PostgreSQL folds into every plan that calls it, and an event trigger
-- rewrites that body at the end of every DDL command that can add or remove a reader (a policy, a
-- function or procedure, a view, a table's defaults and checks, an extension, or a drop that takes
-- some with it). Redefining a function
-- invalidates the plans it was folded into, in every session, so the first statement after the DDL
-- commits sees the new answer, and a DDL that rolls back takes its rewrite with it.
--
-- What can still miss: a reader that builds the setting's name at run time (format('request.jwt.%s',
-- ...)), which no scan can see, and a statement already running when the DDL commits. Both fail
-- closed: current_setting(name, true) is null, so such a policy grants nothing. Where the event
-- trigger cannot be created (the migrations' role is not a superuser), the answer stays true and
-- every switch sets the legacy names, as before.

-- 0021's scan, which also looks at views, column defaults and check constraints now: SQL outside
-- policies and functions can read a setting too (a view with security_invoker, say).
create or replace function hallpass.legacy_claims_in_use() returns boolean
language sql stable
as $$
  with user_schemas as (
    select oid from pg_namespace
     where nspname not in ('pg_catalog', 'information_schema', 'hallpass', 'hallpass_realtime')
       and nspname !~ '^pg_(toast|temp)')
  select exists (
           select 1 from pg_policy p
            where concat(pg_get_expr(p.polqual, p.polrelid), ' ', pg_get_expr(p.polwithcheck, p.polrelid))
                  ~ '(request\.jwt\.claim\.|jwt\.claims\.)')
      or exists (
           select 1 from pg_proc f
            where f.pronamespace in (select oid from user_schemas)
              and f.prolang <> 12 -- internal
              and f.prosrc ~ '(request\.jwt\.claim\.|jwt\.claims\.)')
      or exists (
           select 1 from pg_class c
            where c.relkind in ('v', 'm') and c.relnamespace in (select oid from user_schemas)
              and pg_get_viewdef(c.oid) ~ '(request\.jwt\.claim\.|jwt\.claims\.)')
      or exists (
           select 1 from pg_attrdef d join pg_class c on c.oid = d.adrelid
            where c.relnamespace in (select oid from user_schemas)
              and pg_get_expr(d.adbin, d.adrelid) ~ '(request\.jwt\.claim\.|jwt\.claims\.)')
      or exists (
           select 1 from pg_constraint k
            where k.contype = 'c' and k.connamespace in (select oid from user_schemas)
              and pg_get_constraintdef(k.oid) ~ '(request\.jwt\.claim\.|jwt\.claims\.)')
$$;
revoke all on function hallpass.legacy_claims_in_use() from public;

create or replace function hallpass.legacy_claims_needed() returns boolean
language sql immutable parallel safe
as $$ select true $$;
grant execute on function hallpass.legacy_claims_needed() to public;

-- Rewrites legacy_claims_needed() when the answer changed. Security definer: the DDL may be an app
-- role's, which may not replace Hallpass's function. Redefinitions are serialised by an advisory
-- lock, so two sessions' DDL never race on the function's catalog row; the rewrite's own CREATE
-- fires this trigger once more, which then finds nothing to change.
create or replace function hallpass.refresh_legacy_claims_needed() returns event_trigger
language plpgsql security definer set search_path = pg_catalog
as $$
declare
  used boolean := hallpass.legacy_claims_in_use();
begin
  if used is distinct from hallpass.legacy_claims_needed() then
    perform pg_advisory_xact_lock(hashtext('hallpass.legacy_claims_needed'));
    execute format('create or replace function hallpass.legacy_claims_needed() returns boolean '
                   'language sql immutable parallel safe as %L', 'select ' || used::text);
  end if;
end $$;
revoke all on function hallpass.refresh_legacy_claims_needed() from public;

do $$
begin
  if not (select rolsuper from pg_roles where rolname = current_user) then
    raise notice 'hallpass: not a superuser, so the legacy claim settings stay always on (see 0026)';
    return;
  end if;
  drop event trigger if exists hallpass_legacy_claims;
  create event trigger hallpass_legacy_claims on ddl_command_end
    when tag in ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY',
                 'CREATE FUNCTION', 'ALTER FUNCTION', 'DROP FUNCTION',
                 'CREATE PROCEDURE', 'ALTER PROCEDURE', 'DROP PROCEDURE',
                 'CREATE VIEW', 'ALTER VIEW', 'DROP VIEW',
                 'CREATE MATERIALIZED VIEW', 'ALTER MATERIALIZED VIEW', 'DROP MATERIALIZED VIEW',
                 'CREATE TABLE', 'ALTER TABLE', 'DROP TABLE',
                 'CREATE EXTENSION', 'ALTER EXTENSION', 'DROP EXTENSION',
                 'DROP SCHEMA', 'DROP OWNED')
    execute function hallpass.refresh_legacy_claims_needed();
  -- The answer for the database as it stands.
  if not hallpass.legacy_claims_in_use() then
    create or replace function hallpass.legacy_claims_needed() returns boolean
    language sql immutable parallel safe as $f$ select false $f$;
  end if;
end $$;

-- 0021's set_request_claims with one more way to the plain switch: nothing reads the legacy names.
create or replace function hallpass.set_request_claims(p_role text, p_claims text) returns void
language plpgsql volatile
as $$
declare
  c jsonb;
  extra jsonb;
  previous text;
  names text := '';
begin
  if p_role is null or p_role not in ('anon', 'authenticated', 'service_role', 'none') then
    raise exception 'unknown role %', p_role using errcode = '22023';
  end if;
  -- Nothing reads the legacy names (0026), or a caller that found no reader asked for the plain
  -- switch (realtime_visible, 0021).
  if not hallpass.legacy_claims_needed() or current_setting('hallpass.legacy_claims', true) = 'off' then
    perform set_config('request.jwt.claims', coalesce(p_claims, ''), true), set_config('role', p_role, true);
    return;
  end if;
  c := coalesce(nullif(p_claims, '')::jsonb, '{}'::jsonb);
  if jsonb_typeof(c) <> 'object' then
    c := '{}'::jsonb;
  end if;
  -- Names beyond the fixed list that the previous call set are blanked; the fixed ones are all
  -- rewritten below.
  previous := current_setting('hallpass.legacy_claim_names', true);
  if previous is not null and previous <> '' then
    perform set_config('request.jwt.claim.' || n, '', true) from unnest(string_to_array(previous, ',')) n;
  end if;
  extra := c - '{sub,email,phone,role,aud,iss,iat,exp,nbf,jti,session_id,aal,amr,app_metadata,user_metadata,is_anonymous}'::text[];
  if extra <> '{}'::jsonb then
    -- Only names a setting can carry (letters, digits, underscore); others stay in request.jwt.claims.
    select coalesce(string_agg(key, ','), '') into names
      from (select key, set_config('request.jwt.claim.' || key, value, true)
              from jsonb_each_text(extra) where key ~ '^[A-Za-z_][A-Za-z0-9_]{0,62}$') s;
  end if;
  perform set_config('hallpass.legacy_claim_names', names, true),
          set_config('request.jwt.claim.sub', coalesce(c ->> 'sub', ''), true),
          set_config('request.jwt.claim.email', coalesce(c ->> 'email', ''), true),
          set_config('request.jwt.claim.phone', coalesce(c ->> 'phone', ''), true),
          set_config('request.jwt.claim.role', coalesce(c ->> 'role', ''), true),
          set_config('request.jwt.claim.aud', coalesce(c ->> 'aud', ''), true),
          set_config('request.jwt.claim.iss', coalesce(c ->> 'iss', ''), true),
          set_config('request.jwt.claim.iat', coalesce(c ->> 'iat', ''), true),
          set_config('request.jwt.claim.exp', coalesce(c ->> 'exp', ''), true),
          set_config('request.jwt.claim.nbf', coalesce(c ->> 'nbf', ''), true),
          set_config('request.jwt.claim.jti', coalesce(c ->> 'jti', ''), true),
          set_config('request.jwt.claim.session_id', coalesce(c ->> 'session_id', ''), true),
          set_config('request.jwt.claim.aal', coalesce(c ->> 'aal', ''), true),
          set_config('request.jwt.claim.amr', coalesce(c ->> 'amr', ''), true),
          set_config('request.jwt.claim.app_metadata', coalesce(c ->> 'app_metadata', ''), true),
          set_config('request.jwt.claim.user_metadata', coalesce(c ->> 'user_metadata', ''), true),
          set_config('request.jwt.claim.is_anonymous', coalesce(c ->> 'is_anonymous', ''), true),
          set_config('jwt.claims.email', coalesce(c ->> 'email', ''), true),
          set_config('jwt.claims.sub', coalesce(c ->> 'sub', ''), true),
          set_config('jwt.claims.role', coalesce(c ->> 'role', ''), true),
          set_config('request.jwt.claims', coalesce(p_claims, ''), true),
          set_config('role', p_role, true);
end $$;
revoke all on function hallpass.set_request_claims(text, text) from public;
