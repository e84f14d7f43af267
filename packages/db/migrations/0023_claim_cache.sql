-- 0023 claims: the claim helpers read a parsed copy of request.jwt.claims when one is there, and
-- realtime's per-subscriber check runs a batch as one statement per table instead of a PL/pgSQL loop.
--
-- A realtime fan-out is thousands of RLS decisions, each one subscriber's role and claims set and the
-- table's checker run as them. Measured on the 2-core box (10,000 decisions, one backend, the
-- holiday-sale offers with the bench's members-only policy): 0021's loop took about 43 us a decision;
-- of that, auth.role() and auth.uid() (called three times by those policies) parse the ~400-byte
-- claims three times and enter a subtransaction each time (about 16 us), and the loop's EXECUTE of a
-- query string per check and its extra statements most of the rest. The checker itself is ~9 us.
--
-- 1. A claims cache keyed by the claims text. A trusted switch (realtime_visible below) stores the
--    values the helpers return next to the exact text they come from: hallpass.claims_for (the
--    text), hallpass.claim_role, _email, _uid, _tenant. A helper uses them only while
--    hallpass.claims_for equals request.jwt.claims byte for byte, so whoever sets the claims any
--    other way (asUser, set_request_claims, a psql session, PostgREST) gets the parse as before.
--    Anyone able to set these settings could set request.jwt.claims itself, so they grant nothing
--    new. The values are computed here from one parse per row, or handed in by the realtime hub,
--    which prepares them once per subscriber (packages/server/src/realtime/realtime.claims.ts,
--    checked against this parse by realtime-claims.test.ts); a null uid there means "not cached".
--    The helpers become SQL functions the planner inlines; the parse path keeps auth.jwt(), which
--    still never errors (null for missing or malformed claims).
-- 2. realtime_visible, when nothing reads the legacy per-claim settings, decides a batch with one
--    statement per table: each row switches role and claims with set_config and calls the table's
--    checker, a PL/pgSQL function, so each decision is a fresh execution of the checker's query with
--    its own InitPlans (a policy's `(select auth.uid())` is evaluated for that subscriber, never
--    reused from the previous one). If the statement fails (a policy erroring for someone, claims
--    that are not JSON), the batch is redone by 0021's loop, which isolates each check.
--
-- psql, same 10,000 decisions: 0021's loop 43 us each; set-based with the parse here about 20 us;
-- with the values handed in about 12 us.

-- A uuid from a claim, or null when it is not one (as auth.uid() and auth.tenant_id() have always
-- answered). PL/pgSQL, not SQL: a SQL function whose argument appears twice is not inlined, and a SQL
-- function that is not inlined is planned again on every call of the query that calls it.
create or replace function auth.claim_uuid(v text) returns uuid
language plpgsql immutable
as $$
begin
  if v is null or v !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return null;
  end if;
  return v::uuid;
end $$;

create or replace function auth.uid() returns uuid
language sql stable
as $$
  select case when current_setting('hallpass.claims_for', true) = current_setting('request.jwt.claims', true)
              then nullif(current_setting('hallpass.claim_uid', true), '')::uuid
              else auth.claim_uuid(auth.jwt() ->> 'sub') end
$$;

create or replace function auth.email() returns text
language sql stable
as $$
  select case when current_setting('hallpass.claims_for', true) = current_setting('request.jwt.claims', true)
              then substr(nullif(current_setting('hallpass.claim_email', true), ''), 2)
              else auth.jwt() ->> 'email' end
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select case when current_setting('hallpass.claims_for', true) = current_setting('request.jwt.claims', true)
              then substr(nullif(current_setting('hallpass.claim_role', true), ''), 2)
              else auth.jwt() ->> 'role' end
$$;

create or replace function auth.tenant_id() returns uuid
language sql stable
as $$
  select case when current_setting('hallpass.claims_for', true) = current_setting('request.jwt.claims', true)
              then nullif(current_setting('hallpass.claim_tenant', true), '')::uuid
              else auth.claim_uuid(auth.jwt() -> 'app_metadata' ->> 'tenant_id') end
$$;

grant execute on function auth.claim_uuid(text), auth.uid(), auth.email(), auth.role(), auth.tenant_id()
  to anon, authenticated, service_role;

-- One table's share of a batch, as one statement. Text claims are cached as 'v' || value, '' when
-- absent, so a claim of "" stays '' and a missing one stays null, exactly as the parse answers; a
-- uuid claim is its text or '' (null). The values come either from the caller (`uids`, `emails`,
-- `claim_roles`, `tenants`: the realtime hub has each subscriber's claims parsed already, and a null
-- uid there means "do not cache this one") or, when those are null, from one parse per row here.
create or replace function hallpass.realtime_visible_set(checker text, pks jsonb[], roles text[], claims text[],
                                                         uids text[], emails text[], claim_roles text[], tenants text[])
returns boolean[]
language plpgsql
as $$
declare
  result boolean[];
begin
  -- CASE fixes the order: every setting is in place before the checker runs, and the checker is a
  -- PL/pgSQL function, so each call is a new execution of its query (its InitPlans, such as a
  -- policy's `(select auth.uid())`, are evaluated for this subscriber, never kept from the last).
  if uids is not null then
    execute format($q$
      select array_agg(
               case
                 when u.r is null or u.r not in ('anon', 'authenticated', 'service_role') then false
                 when set_config('request.jwt.claims', coalesce(u.c, ''), true) is null
                   or set_config('hallpass.claim_role', coalesce(u.cr, ''), true) is null
                   or set_config('hallpass.claim_email', coalesce(u.e, ''), true) is null
                   or set_config('hallpass.claim_uid', coalesce(u.id, ''), true) is null
                   or set_config('hallpass.claim_tenant', coalesce(u.tn, ''), true) is null
                   or set_config('hallpass.claims_for', case when u.id is null then '' else coalesce(u.c, '') end, true) is null
                   or set_config('role', u.r, true) is null
                 then false
                 else coalesce(hallpass_realtime.%I(u.pk), false)
               end order by u.k)
        from unnest($1, $2, $3, $4, $5, $6, $7) with ordinality as u (pk, r, c, id, e, cr, tn, k)
    $q$, checker)
      into result
      using pks, roles, claims, uids, emails, claim_roles, tenants;
    return result;
  end if;
  -- The claims are parsed once a row (o); text that is not JSON fails the statement and the caller
  -- falls back to the loop.
  execute format($q$
    select array_agg(
             case
               when u.r is null or u.r not in ('anon', 'authenticated', 'service_role') then false
               when set_config('request.jwt.claims', coalesce(u.c, ''), true) is null
                 or set_config('hallpass.claim_role', coalesce('v' || (x.o ->> 'role'), ''), true) is null
                 or set_config('hallpass.claim_email', coalesce('v' || (x.o ->> 'email'), ''), true) is null
                 or set_config('hallpass.claim_uid', coalesce(auth.claim_uuid(x.o ->> 'sub')::text, ''), true) is null
                 or set_config('hallpass.claim_tenant', coalesce(auth.claim_uuid(x.o -> 'app_metadata' ->> 'tenant_id')::text, ''), true) is null
                 or set_config('hallpass.claims_for', coalesce(u.c, ''), true) is null
                 or set_config('role', u.r, true) is null
               then false
               else coalesce(hallpass_realtime.%I(u.pk), false)
             end order by u.k)
      from unnest($1, $2, $3) with ordinality as u (pk, r, c, k)
      -- offset 0 keeps each subquery from being pulled up: flattened, the parse would be repeated
      -- at every use of o (eight parses a row instead of one).
      cross join lateral (select case when jsonb_typeof(y.j) = 'object' then y.j end as o
                            from (select nullif(u.c, '')::jsonb as j offset 0) y offset 0) x
  $q$, checker)
    into result
    using pks, roles, claims;
  return result;
end $$;
revoke all on function hallpass.realtime_visible_set(text, jsonb[], text[], text[], text[], text[], text[], text[]) from public;

-- 0021's signature gains the cached claim values (all null: parsed here).
drop function hallpass.realtime_visible(regclass[], jsonb[], text[], text[], boolean);
create function hallpass.realtime_visible(tables regclass[], pks jsonb[], roles text[], claims text[],
                                          legacy_claims boolean default true, uids text[] default null,
                                          emails text[] default null, claim_roles text[] default null,
                                          tenants text[] default null)
returns boolean[]
language plpgsql
as $$
declare
  n int := coalesce(array_length(tables, 1), 0);
  result boolean[] := array_fill(false, array[n]);
  part boolean[];
  tbl regclass;
  checker text;
  items int[];
  i int;
  isolate boolean;
  visible boolean;
  queries text[];
begin
  if n = 0 then
    return '{}';
  end if;
  -- The set-based path sets request.jwt.claims and the cache only; a policy reading the legacy
  -- per-claim settings needs the loop's set_request_claims.
  if not legacy_claims then
    begin
      for tbl in select distinct x from unnest(tables) x loop
        select p.proname into checker from pg_proc p join pg_namespace ns on ns.oid = p.pronamespace
         where ns.nspname = 'hallpass_realtime' and p.proname = 'visible_' || tbl::oid;
        if checker is null then
          raise exception 'no checker' using errcode = 'HP001';
        end if;
        -- Back to the server's role: the subscriber roles may not call realtime_visible_set.
        perform set_config('role', 'none', true);
        if tables = array_fill(tbl, array[n]) then
          -- One table (a fan-out): the arrays as they are.
          items := null;
          part := hallpass.realtime_visible_set(checker, pks, roles, claims, uids, emails, claim_roles, tenants);
        else
          items := array(select k::int from unnest(tables) with ordinality as u (x, k) where u.x = tbl order by k);
          part := hallpass.realtime_visible_set(checker,
                    array(select pks[i] from unnest(items) i), array(select roles[i] from unnest(items) i),
                    array(select claims[i] from unnest(items) i),
                    case when uids is null then null else array(select uids[i] from unnest(items) i) end,
                    case when uids is null then null else array(select emails[i] from unnest(items) i) end,
                    case when uids is null then null else array(select claim_roles[i] from unnest(items) i) end,
                    case when uids is null then null else array(select tenants[i] from unnest(items) i) end);
        end if;
        for i in 1 .. coalesce(array_length(part, 1), 0) loop
          result[coalesce(items[i], i)] := coalesce(part[i], false);
        end loop;
      end loop;
      perform set_config('role', 'none', true), set_config('request.jwt.claims', '', true),
              set_config('hallpass.claims_for', '', true), set_config('hallpass.claim_role', '', true),
              set_config('hallpass.claim_email', '', true), set_config('hallpass.claim_uid', '', true),
              set_config('hallpass.claim_tenant', '', true);
      return result;
    exception when others then
      -- Undone with the subtransaction (settings included); the loop below answers instead.
      null;
    end;
  end if;

  -- 0021's loop: the batch in one go, then, if a check errors, each check in its own subtransaction.
  queries := array(
    select d.q from unnest(tables) with ordinality as u (t, ord)
      join (select x.t, hallpass.realtime_pk_query(x.t) as q from (select distinct t from unnest(tables) t) x) d on d.t = u.t
     order by u.ord);
  perform set_config('hallpass.legacy_claims', case when legacy_claims then 'on' else 'off' end, true);
  foreach isolate in array array[false, true] loop
    result := '{}';
    begin
      for i in 1 .. n loop
        visible := false;
        if roles[i] in ('anon', 'authenticated', 'service_role') then
          if not isolate then
            perform set_config('role', 'none', true);
            perform hallpass.set_request_claims(roles[i], claims[i]);
            execute queries[i] into visible using pks[i];
          else
            begin
              perform set_config('role', 'none', true);
              perform hallpass.set_request_claims(roles[i], claims[i]);
              execute queries[i] into visible using pks[i];
            exception when others then
              visible := false;
            end;
          end if;
        end if;
        result := result || coalesce(visible, false);
      end loop;
      perform set_config('role', 'none', true);
      perform set_config('hallpass.legacy_claims', '', true);
      perform hallpass.set_request_claims('none', '');
      return result;
    exception when others then
      if isolate then
        raise;
      end if;
    end;
  end loop;
  return result;
end $$;
revoke all on function hallpass.realtime_visible(regclass[], jsonb[], text[], text[], boolean, text[], text[], text[], text[]) from public;
