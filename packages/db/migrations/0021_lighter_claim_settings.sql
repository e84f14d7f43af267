-- 0021 claims: a lighter hallpass.set_request_claims, and realtime's per-subscriber check skips the
-- legacy per-claim settings when nothing in the database reads them.
--
-- 0014 set request.jwt.claim.<name> for every claim through jsonb_each_text, and blanked the names
-- of the previous call: measured at about 30 times the cost of the two set_config calls it replaced,
-- which doubled a realtime RLS decision (docs/realtime.md). Now the claims Hallpass and Supabase
-- tokens carry are set by name in one expression (as '' when absent, which also blanks a previous
-- caller's), and only claims beyond that list take the per-name loop.
--
-- Realtime decides visibility for thousands of subscribers in one call. realtime_visible gains an
-- argument saying whether anything reads the legacy names: the realtime hub asks
-- hallpass.legacy_claims_in_use() (about a millisecond: a catalog scan) at most every few seconds and
-- passes the answer. When nothing does, set_request_claims sets the role and request.jwt.claims only,
-- as before 0014. A policy that starts reading them is served within that window; until then its
-- checks fail (the setting is missing) and count as "not visible": it fails closed. The data API and
-- asUser always set everything (one switch per request; the scan would cost more than the settings).

-- Does a policy, or a function outside Hallpass's and the system's schemas, read a legacy claim
-- setting? Policies are read through pg_get_expr (their stored form holds constants as bytes).
create or replace function hallpass.legacy_claims_in_use() returns boolean
language sql stable
as $$
  select exists (
           select 1 from pg_policy p
            where concat(pg_get_expr(p.polqual, p.polrelid), ' ', pg_get_expr(p.polwithcheck, p.polrelid))
                  ~ '(request\.jwt\.claim\.|jwt\.claims\.)')
      or exists (
           select 1 from pg_proc f join pg_namespace n on n.oid = f.pronamespace
            where n.nspname not in ('pg_catalog', 'information_schema', 'hallpass', 'hallpass_realtime')
              and f.prolang <> 12 -- internal
              and f.prosrc ~ '(request\.jwt\.claim\.|jwt\.claims\.)')
$$;
revoke all on function hallpass.legacy_claims_in_use() from public;

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
  -- A caller that found no reader of the legacy names (realtime_visible) asked for the plain switch.
  if current_setting('hallpass.legacy_claims', true) = 'off' then
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

-- 0014's realtime_visible, told by its caller whether the legacy settings are needed.
drop function hallpass.realtime_visible(regclass[], jsonb[], text[], text[]);
create function hallpass.realtime_visible(tables regclass[], pks jsonb[], roles text[], claims text[],
                                          legacy_claims boolean default true)
returns boolean[]
language plpgsql
as $$
declare
  result boolean[];
  visible boolean;
  queries text[] := array(
    select d.q from unnest(tables) with ordinality as u (t, ord)
      join (select x.t, hallpass.realtime_pk_query(x.t) as q from (select distinct t from unnest(tables) t) x) d on d.t = u.t
     order by u.ord);
  isolate boolean;
  i int;
begin
  perform set_config('hallpass.legacy_claims', case when legacy_claims then 'on' else 'off' end, true);
  foreach isolate in array array[false, true] loop
    result := '{}';
    begin
      for i in 1 .. coalesce(array_length(tables, 1), 0) loop
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
revoke all on function hallpass.realtime_visible(regclass[], jsonb[], text[], text[], boolean) from public;
