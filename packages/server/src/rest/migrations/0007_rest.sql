-- 0007 rest: the data API's statement runner. One round trip per request: check the session, switch
-- to the caller's role and claims, run the catalog-checked statement, all inside one statement.

-- Called only by the server's own user with a statement its SQL builder made (names from the catalog,
-- quoted; every value in p_params, referenced as $1[i]). It is invoker-rights on purpose: the session
-- check runs as the server's user, then set_config switches role and claims exactly as asUser does,
-- and the statement runs under that role, so grants and RLS decide. Both settings are local to the
-- transaction, which is this one statement's implicit transaction (or the caller's): they cannot
-- outlive it. Nothing runs when the session is not live.
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
  perform set_config('role', p_role, true);
  perform set_config('request.jwt.claims', p_claims, true);
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

revoke all on function hallpass.rest_run(text, text, uuid, uuid, timestamptz, text, text[], text, boolean) from public;
