-- 0014 legacy claim settings: besides request.jwt.claims, set the per-claim settings older PostgREST
-- set (request.jwt.claim.<name>, and jwt.claims.<name>), so policies written that way paste unchanged.

-- Hallpass's own policies read request.jwt.claims through auth.jwt() / auth.email(); the legacy names
-- exist only so that SQL from older guides (the Scalekit + Supabase guide reads
-- current_setting('request.jwt.claim.email') and current_setting('jwt.claims.email')) works as written.
--
-- Every legacy setting is transaction-local, like request.jwt.claims. email, sub and role are always
-- set ('' when the claims lack them), so such a policy evaluated for anon finds no row instead of
-- failing with "unrecognized configuration parameter". The other top-level claims are set when
-- present; the names set are remembered in hallpass.legacy_claim_names and blanked on the next call,
-- so a claim of one subscriber never survives into the next one's check (the realtime check switches
-- claims many times in one transaction).
--
-- The role is switched last: the caller must be allowed to run this function (the server's own user),
-- and nothing after the switch runs as the new role inside it.
create or replace function hallpass.set_request_claims(p_role text, p_claims text) returns void
language plpgsql volatile
as $$
declare
  c jsonb := coalesce(nullif(p_claims, '')::jsonb, '{}'::jsonb);
  previous text := current_setting('hallpass.legacy_claim_names', true);
  names text;
begin
  if p_role is null or p_role not in ('anon', 'authenticated', 'service_role', 'none') then
    raise exception 'unknown role %', p_role using errcode = '22023';
  end if;
  if jsonb_typeof(c) <> 'object' then
    c := '{}'::jsonb;
  end if;
  if previous is not null and previous <> '' then
    perform set_config('request.jwt.claim.' || n, '', true) from unnest(string_to_array(previous, ',')) n;
  end if;
  -- Only names a setting can carry (letters, digits, underscore); others are left to request.jwt.claims.
  select string_agg(key, ',') into names
    from (select key, set_config('request.jwt.claim.' || key, value, true)
            from jsonb_each_text(c) where key ~ '^[A-Za-z_][A-Za-z0-9_]{0,62}$') s;
  perform set_config('hallpass.legacy_claim_names', coalesce(names, ''), true),
          set_config('request.jwt.claim.email', coalesce(c ->> 'email', ''), true),
          set_config('request.jwt.claim.sub', coalesce(c ->> 'sub', ''), true),
          set_config('request.jwt.claim.role', coalesce(c ->> 'role', ''), true),
          set_config('jwt.claims.email', coalesce(c ->> 'email', ''), true),
          set_config('jwt.claims.sub', coalesce(c ->> 'sub', ''), true),
          set_config('jwt.claims.role', coalesce(c ->> 'role', ''), true),
          set_config('request.jwt.claims', coalesce(p_claims, ''), true),
          set_config('role', p_role, true);
end $$;
revoke all on function hallpass.set_request_claims(text, text) from public;

-- The data API's runner (0007), now switching through set_request_claims. Unchanged otherwise.
create or replace function hallpass.rest_run(
  p_role text,
  p_claims text,
  p_session uuid,
  p_profile uuid,
  p_now timestamptz,
  p_sql text,
  p_params text[],
  p_count_sql text,
  p_expect_one boolean,
  out live boolean,
  out n integer,
  out body text,
  out total integer
)
language plpgsql volatile
as $$
begin
  if p_role is null or p_role not in ('anon', 'authenticated', 'service_role') then
    raise exception 'unknown role %', p_role using errcode = '22023';
  end if;
  live := p_session is null or exists (
    select 1 from hallpass.sessions s
     where s.id = p_session and s.profile_id = p_profile and s.revoked_at is null and s.expires_at > p_now);
  if not live then
    return;
  end if;
  perform hallpass.set_request_claims(p_role, p_claims);
  execute p_sql into n, body using p_params;
  -- A singular request (single()) that did not hit exactly one row: undo it, as PostgREST does.
  if p_expect_one and n is distinct from 1 then
    raise exception 'JSON object requested, multiple (or no) rows returned'
      using errcode = 'HP116', detail = coalesce(n, 0)::text;
  end if;
  if p_count_sql is not null then
    execute p_count_sql into total using p_params;
  end if;
end $$;

-- The realtime per-subscriber check (0010), now switching through set_request_claims. Each switch
-- first goes back to the server's own role ('none'), since the subscriber roles may not call it.
create or replace function hallpass.realtime_visible(tables regclass[], pks jsonb[], roles text[], claims text[])
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
revoke all on function hallpass.realtime_visible(regclass[], jsonb[], text[], text[]) from public;
