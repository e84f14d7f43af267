-- 0002 profiles: tenants, the guide's profiles table with RLS keyed on the email claim, and the audit
-- trail every profile write leaves. The server syncs profiles as service_role; clients go through RLS.

create table public.tenants (
  id uuid primary key default gen_random_uuid(),
  slug text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name text not null,
  created_at timestamptz not null default now()
);
comment on table public.tenants is 'Isolated groups of users; one email in two tenants is two profiles.';

-- The single default tenant every sign-in uses unless a tenant is named.
insert into public.tenants (id, slug, name)
values ('00000000-0000-0000-0000-000000000000', 'default', 'Default');

create table public.profiles (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null default coalesce(auth.tenant_id(), '00000000-0000-0000-0000-000000000000')
    references public.tenants (id),
  -- Stored normalised (trimmed, lower-case), so the unique key below is case-insensitive.
  email text not null check (email = lower(btrim(email)) and length(email) between 3 and 254),
  name text check (length(name) <= 200),
  metadata jsonb not null default '{}' check (jsonb_typeof(metadata) = 'object' and pg_column_size(metadata) <= 8192),
  last_login timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint profiles_tenant_email_key unique (tenant_id, email)
);
comment on table public.profiles is 'One row per user and tenant: the bridge between a verified email and app data.';

create trigger profiles_set_updated_at before update on public.profiles
  for each row execute function hallpass.set_updated_at();

alter table public.profiles enable row level security;
alter table public.profiles force row level security;

-- (select auth.x()) is evaluated once per statement, not once per row.
create policy profiles_select_own on public.profiles for select to authenticated
  using (email = (select auth.email()) and tenant_id = (select auth.tenant_id()));
comment on policy profiles_select_own on public.profiles is 'A user reads only the profile of their own email, in their own tenant.';

create policy profiles_update_own on public.profiles for update to authenticated
  using (email = (select auth.email()) and tenant_id = (select auth.tenant_id()))
  with check (email = (select auth.email()) and tenant_id = (select auth.tenant_id()));
comment on policy profiles_update_own on public.profiles is 'A user updates only their own profile and cannot move it to another email or tenant.';

create policy profiles_insert_own on public.profiles for insert to authenticated
  with check (email = (select auth.email()) and tenant_id = (select auth.tenant_id()));
comment on policy profiles_insert_own on public.profiles is 'A user may create only the profile of their own email in their own tenant.';
-- No delete policy: clients never delete profiles.

-- Column privileges: clients change only name and metadata; the rest is the server's.
grant select on public.profiles to authenticated;
grant insert (email, name, metadata) on public.profiles to authenticated;
grant update (name, metadata) on public.profiles to authenticated;
grant select, insert, update, delete on public.profiles to service_role;

alter table public.tenants enable row level security;
alter table public.tenants force row level security;
create policy tenants_select_own on public.tenants for select to authenticated
  using (id = (select auth.tenant_id()));
comment on policy tenants_select_own on public.tenants is 'A user sees only their own tenant.';
grant select on public.tenants to authenticated;
grant select, insert, update, delete on public.tenants to service_role;

-- The audit trail: one row per insert, update and delete of a profile, with the actor's claims.
create table public.audit_log (
  id bigint generated always as identity primary key,
  table_name text not null,
  op text not null check (op in ('INSERT', 'UPDATE', 'DELETE')),
  row_id uuid,
  tenant_id uuid,
  subject_email text,
  old_row jsonb,
  new_row jsonb,
  actor_sub text,
  actor_email text,
  actor_role text not null,
  at timestamptz not null default now()
);
create index audit_log_subject_idx on public.audit_log (tenant_id, subject_email, at desc);

alter table public.audit_log enable row level security;
alter table public.audit_log force row level security;
create policy audit_log_select_own on public.audit_log for select to authenticated
  using (subject_email = (select auth.email()) and tenant_id = (select auth.tenant_id()));
comment on policy audit_log_select_own on public.audit_log is 'A user reads the audit entries about their own profile, nobody else''s.';
grant select on public.audit_log to authenticated;
grant select on public.audit_log to service_role;

-- security definer: the trigger writes the audit row whatever the caller may do; callers cannot.
create or replace function hallpass.audit_profile_change() returns trigger
language plpgsql security definer set search_path = pg_catalog, public
as $$
declare
  claims jsonb := auth.jwt();
  subject record;
begin
  if tg_op = 'DELETE' then subject := old; else subject := new; end if;
  insert into public.audit_log (table_name, op, row_id, tenant_id, subject_email, old_row, new_row,
                                actor_sub, actor_email, actor_role)
  values (tg_table_name, tg_op, subject.id, subject.tenant_id, subject.email,
          case when tg_op <> 'INSERT' then to_jsonb(old) end,
          case when tg_op <> 'DELETE' then to_jsonb(new) end,
          claims ->> 'sub', claims ->> 'email',
          coalesce(claims ->> 'role', current_user));
  return null;
end $$;

create trigger profiles_audit after insert or update or delete on public.profiles
  for each row execute function hallpass.audit_profile_change();

-- The sign-in sync: runs as service_role (security definer, owned by it), so the server's own write
-- bypasses RLS as the guide prescribes and the audit trail records role service_role, in one round
-- trip inside the verify transaction.
create or replace function hallpass.sync_profile_on_login(p_tenant uuid, p_email text, p_at timestamptz)
returns table (id uuid, tenant_id uuid, email text, name text, metadata jsonb, last_login timestamptz,
               created_at timestamptz, updated_at timestamptz, created boolean)
language sql security definer
-- The claims say who wrote for the audit trail; they last only while the function runs.
set search_path = pg_catalog, public
set request.jwt.claims = '{"role":"service_role"}'
as $$
  insert into public.profiles as p (tenant_id, email, last_login) values (p_tenant, p_email, p_at)
  on conflict (tenant_id, email) do update set last_login = excluded.last_login
  returning p.id, p.tenant_id, p.email, p.name, p.metadata, p.last_login, p.created_at, p.updated_at, (p.xmax = 0);
$$;
alter function hallpass.sync_profile_on_login(uuid, text, timestamptz) owner to service_role;
revoke all on function hallpass.sync_profile_on_login(uuid, text, timestamptz) from public;
grant usage on schema hallpass to service_role;
