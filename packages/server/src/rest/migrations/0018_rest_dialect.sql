-- 0018 rest dialect: the data API's runner for the whole PostgREST dialect (counts of every kind,
-- tx=rollback, max-affected, upserts that tell inserted from updated), still one round trip.

-- As 0007's runner: invoker rights, called only by the server's own user with a statement its SQL
-- builder made (names from the catalog, quoted; every value in p_params, referenced as $1[i]).
-- The session check runs as the server's user, then hallpass.set_request_claims (0014) switches the
-- role and claims (legacy claim settings included) for this transaction only, and the statement and its count run under that role, so grants and RLS decide.
--   p_count: 'exact' counts p_count_sql's rows; 'planned' takes the planner's estimate of them;
--            'estimated' is exact up to p_max_rows and planned beyond, as PostgREST does.
--   p_expect_one: single(): anything but one row raises HP116 and so undoes a singular write.
--   p_max_affected: handling=strict with max-affected: more rows raise HP124 and undo the write.
--   p_rollback: tx=rollback: the answer leaves in the error HPRBK (detail = body, message = counts),
--               so the statement fails and Postgres undoes every change, with no savepoint.
create function hallpass.rest_run(
  p_role text,
  p_claims text,
  p_session uuid,
  p_profile uuid,
  p_now timestamptz,
  p_sql text,
  p_params text[],
  p_count_sql text,
  p_count text,
  p_expect_one boolean,
  p_max_affected integer,
  p_rollback boolean,
  p_max_rows integer,
  out live boolean,
  out n integer,
  out body text,
  out total bigint,
  out inserted integer
)
language plpgsql volatile
as $$
declare
  v_plan json;
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
  execute p_sql into n, body, inserted using p_params;
  if p_expect_one and n is distinct from 1 then
    raise exception 'Cannot coerce the result to a single JSON object'
      using errcode = 'HP116', detail = coalesce(n, 0)::text;
  end if;
  if p_max_affected is not null and n > p_max_affected then
    raise exception 'Query result exceeds max-affected preference constraint'
      using errcode = 'HP124', detail = n::text;
  end if;
  if p_count_sql is not null then
    if p_count in ('planned', 'estimated') then
      execute 'explain (format json) ' || p_count_sql into v_plan using p_params;
      total := (v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::bigint;
    end if;
    if p_count = 'exact' or (p_count = 'estimated' and total <= p_max_rows) then
      execute 'select count(*) from (' || p_count_sql || ') pgrst_c' into total using p_params;
    end if;
  end if;
  if p_rollback then
    raise exception '%', json_build_object('n', n, 'total', total, 'inserted', inserted)::text
      using errcode = 'HPRBK', detail = coalesce(body, '');
  end if;
end $$;

revoke all on function hallpass.rest_run(text, text, uuid, uuid, timestamptz, text, text[], text, text, boolean, integer, boolean, integer) from public;

drop function hallpass.rest_run(text, text, uuid, uuid, timestamptz, text, text[], text, boolean);
