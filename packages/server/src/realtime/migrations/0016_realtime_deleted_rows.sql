-- 0016 realtime: a DELETE event reaches only a subscriber who could have read the row before it was
-- deleted, decided by the table's SELECT policies evaluated against the old row image.

-- The row is gone, so "is this primary key visible?" (realtime_visible) cannot answer. Instead the
-- old image is turned back into a row of the table's type and the subscriber's applicable SELECT
-- policies are evaluated on it, combined as Postgres combines them: any permissive policy, and
-- every restrictive one. No applicable permissive policy, or no SELECT on the primary key columns
-- (what realtime_visible's query needs as well), means not visible. Built as the server's role,
-- before any role switch; the policy expressions come from the catalog, never from a client.
create or replace function hallpass.realtime_old_query(tbl regclass, p_role text) returns text
language plpgsql stable
as $$
declare
  rel pg_class;
  permissive text;
  restrictive text;
  readable boolean;
begin
  select * into rel from pg_class where oid = tbl;
  select coalesce(bool_and(has_column_privilege(p_role, tbl, a.attname, 'SELECT')), false) into readable
    from pg_index x join pg_attribute a on a.attrelid = x.indrelid and a.attnum = any (x.indkey)
   where x.indrelid = tbl and x.indisprimary;
  if not readable then
    return 'select false';
  end if;
  if not rel.relrowsecurity then
    return 'select true';
  end if;
  select string_agg(format('(%s)', pg_get_expr(p.polqual, p.polrelid)), ' or ') filter (where p.polpermissive),
         string_agg(format('(%s)', pg_get_expr(p.polqual, p.polrelid)), ' and ') filter (where not p.polpermissive)
    into permissive, restrictive
    from pg_policy p
   where p.polrelid = tbl and p.polcmd in ('r', '*') and p.polqual is not null
     and (0 = any (p.polroles) or exists (select 1 from unnest(p.polroles) r (oid) where pg_has_role(p_role, r.oid, 'MEMBER')));
  if permissive is null then
    return 'select false';
  end if;
  -- Aliased as the table itself, so a policy naming its columns with the table's name still reads them.
  return format('select exists (select 1 from jsonb_populate_record(null::%s, $1) as %I where (%s)%s)',
                tbl, rel.relname, permissive, case when restrictive is null then '' else format(' and (%s)', restrictive) end);
end $$;

-- Was old row `olds[i]` of `tables[i]` visible to role `roles[i]` with claims `claims[i]`? Each check
-- runs in its own subtransaction (deletes are rare; no batch-first pass as in realtime_visible): a
-- policy that errors counts as "not visible" for that subscriber only.
create or replace function hallpass.realtime_visible_old(tables regclass[], olds jsonb[], roles text[], claims text[])
returns boolean[]
language plpgsql
as $$
declare
  result boolean[] := '{}';
  visible boolean;
  queries text[] := array(
    select d.q from unnest(tables, roles) with ordinality as u (t, r, ord)
      join (select x.t, x.r, hallpass.realtime_old_query(x.t, x.r) as q
              from (select distinct t, r from unnest(tables, roles) as y (t, r)
                     where r in ('anon', 'authenticated', 'service_role')) x) d on d.t = u.t and d.r = u.r
     order by u.ord);
  i int;
  k int := 0;
begin
  for i in 1 .. coalesce(array_length(tables, 1), 0) loop
    visible := false;
    if roles[i] in ('anon', 'authenticated', 'service_role') then
      k := k + 1;
      begin
        -- Back to the server's own role first: the subscriber roles may not call set_request_claims.
        perform set_config('role', 'none', true);
        perform hallpass.set_request_claims(roles[i], claims[i]);
        execute queries[k] into visible using olds[i];
      exception when others then
        visible := false;
      end;
    end if;
    result := result || coalesce(visible, false);
  end loop;
  perform set_config('role', 'none', true);
  perform hallpass.set_request_claims('none', '');
  return result;
end $$;
revoke all on function hallpass.realtime_old_query(regclass, text) from public;
revoke all on function hallpass.realtime_visible_old(regclass[], jsonb[], text[], text[]) from public;
