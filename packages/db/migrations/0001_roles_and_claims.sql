-- 0001 roles and claims: the Supabase roles (anon, authenticated, service_role) and the auth.* helpers
-- that read request.jwt.claims, so policies written for Supabase work unchanged here.

-- Roles are cluster-wide and several databases (tests, instances) may create them at once, so each
-- creation tolerates having lost the race.
do $$
declare r text;
begin
  foreach r in array array['anon', 'authenticated', 'service_role'] loop
    if not exists (select 1 from pg_roles where rolname = r) then
      begin
        execute format('create role %I nologin noinherit', r);
      exception when duplicate_object or unique_violation then null;
      end;
    end if;
  end loop;
end $$;

do $$
begin
  alter role service_role bypassrls;
exception when insufficient_privilege then
  raise warning 'could not give service_role BYPASSRLS; run as a superuser: alter role service_role bypassrls';
end $$;

-- The server connects as its own user and switches role per transaction; that user must be a member
-- of the three roles (a superuser already may switch to any role).
do $$
begin
  if not (select rolsuper from pg_roles where rolname = current_user) then
    execute format('grant anon, authenticated, service_role to %I', current_user);
  end if;
end $$;

create schema if not exists auth;
create schema if not exists hallpass;
grant usage on schema auth to anon, authenticated, service_role;
grant usage on schema public to anon, authenticated, service_role;
-- Internal tables (sessions, auth requests, outbox) live in hallpass: no client role may touch them.
revoke all on schema hallpass from public;

-- auth.jwt(): the claims of the current request, or null when missing or malformed. Never an error:
-- a broken setting must make policies deny, not fail.
create or replace function auth.jwt() returns jsonb
language plpgsql stable
as $$
declare
  raw text := current_setting('request.jwt.claims', true);
  claims jsonb;
begin
  if raw is null or raw = '' then
    return null;
  end if;
  begin
    claims := raw::jsonb;
  exception when others then
    return null;
  end;
  if jsonb_typeof(claims) <> 'object' then
    return null;
  end if;
  return claims;
end $$;

create or replace function auth.uid() returns uuid
language plpgsql stable
as $$
declare sub text := auth.jwt() ->> 'sub';
begin
  if sub is null or sub !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return null;
  end if;
  return sub::uuid;
end $$;

create or replace function auth.email() returns text
language sql stable
as $$ select auth.jwt() ->> 'email' $$;

create or replace function auth.role() returns text
language sql stable
as $$ select auth.jwt() ->> 'role' $$;

-- The tenant of the session (app_metadata.tenant_id), or null.
create or replace function auth.tenant_id() returns uuid
language plpgsql stable
as $$
declare t text := auth.jwt() -> 'app_metadata' ->> 'tenant_id';
begin
  if t is null or t !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return null;
  end if;
  return t::uuid;
end $$;

grant execute on function auth.jwt(), auth.uid(), auth.email(), auth.role(), auth.tenant_id()
  to anon, authenticated, service_role;

-- Keeps updated_at true on every update, whoever writes.
create or replace function hallpass.set_updated_at() returns trigger
language plpgsql
as $$
begin
  new.updated_at := now();
  return new;
end $$;
