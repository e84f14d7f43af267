-- 0006 RLS hardening: anon is refused user data explicitly (not by omission), and the audit trail
-- records the role the write really ran as, so a service-role sync can never pass as a user.

-- Nothing granted to anon or PUBLIC on user data, whatever grants a default or an operator added.
revoke all on public.profiles, public.tenants, public.audit_log from anon, public;
-- Identity columns of the audit log are never written by anyone but the trigger.
revoke insert, update, delete, truncate on public.audit_log from authenticated, service_role;
-- Clients read; they never truncate or reference (references would let them probe values by FK).
revoke truncate, references, trigger on public.profiles, public.tenants from authenticated;

-- The actor's role: the role the transaction switched to (set local role), which claims cannot
-- fake; the claims' role when the connection's own user wrote; the login user otherwise.
create or replace function hallpass.audit_profile_change() returns trigger
language plpgsql security definer set search_path = pg_catalog, public
as $$
declare
  claims jsonb := auth.jwt();
  effective text := current_setting('role', true);
  subject record;
begin
  if tg_op = 'DELETE' then subject := old; else subject := new; end if;
  if effective is null or effective not in ('anon', 'authenticated', 'service_role') then
    effective := coalesce(claims ->> 'role', session_user);
  end if;
  insert into public.audit_log (table_name, op, row_id, tenant_id, subject_email, old_row, new_row,
                                actor_sub, actor_email, actor_role)
  values (tg_table_name, tg_op, subject.id, subject.tenant_id, subject.email,
          case when tg_op <> 'INSERT' then to_jsonb(old) end,
          case when tg_op <> 'DELETE' then to_jsonb(new) end,
          claims ->> 'sub', claims ->> 'email', effective);
  return null;
end $$;
