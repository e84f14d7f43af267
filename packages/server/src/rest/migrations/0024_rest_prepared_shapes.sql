-- 0024 rest: the data API's statement is planned once per shape and connection, as PostgREST's
-- prepared statements are, instead of parsed and planned again on every request.
--
-- 0018's runner ran the builder's text with a dynamic EXECUTE: parse, analyse, rewrite (the RLS
-- policies) and plan on every call, about 45 % of the database's CPU for an own-profile read (perf,
-- docs/contributing.md). Requests of one shape (the same select, filters and order; values differ)
-- send the same text, since every value travels in the one text[] parameter. Now each text is
-- PREPAREd once per connection under a name derived from its SHA-256 and then EXECUTEd, so
-- PostgreSQL's plan cache keeps it. What is cached is a plan, never a result: the statement runs
-- every time, after the session check and the switch to the caller's role and claims, in this
-- transaction. Safety of the cached plan rests on PostgreSQL's plan cache, as it does for PostgREST:
-- a plan that depends on row security is re-analysed when it runs under another role (or another
-- row_security), the policies read the claims through auth.*() at execution (stable functions are
-- not folded into a plan), privileges are checked at every execution, and DDL on anything the plan
-- uses invalidates it.
--
-- The names this connection prepared are kept in the session setting hallpass.rest_prepared (a
-- comma list), so a hit costs a string search. A setting written in a transaction that then fails
-- (tx=rollback, an error) is undone while the PREPARE is not; a miss therefore looks in
-- pg_prepared_statements before preparing. At most rest_prepared_max shapes stay prepared per
-- connection: beyond that, ours are deallocated and the list starts again, so a client that sends
-- endless distinct shapes costs planning, not memory. The count statement (Prefer: count) stays a
-- plain EXECUTE.
create or replace function hallpass.rest_run(
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
  rest_prepared_max constant integer := 200;
  v_plan json;
  v_name text;
  v_known text;
  v_old text;
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
  -- 54 characters, under the 63 of an identifier: 'hallpass_rest_' and 160 bits of the digest.
  v_name := 'hallpass_rest_' || left(encode(sha256(convert_to(p_sql, 'UTF8')), 'hex'), 40);
  v_known := coalesce(current_setting('hallpass.rest_prepared', true), '');
  if position(v_name in v_known) = 0 then
    if length(v_known) >= rest_prepared_max * 55 then
      for v_old in select x from unnest(string_to_array(v_known, ',')) x
                    where x in (select name from pg_prepared_statements) loop
        execute format('deallocate %I', v_old);
      end loop;
      v_known := '';
    end if;
    if not exists (select 1 from pg_prepared_statements where name = v_name) then
      -- Prepared as the caller's role, like the EXECUTE it replaces: names the role may not see fail here.
      execute format('prepare %I(text[]) as %s', v_name, p_sql);
    end if;
    perform set_config('hallpass.rest_prepared', v_known || v_name || ',', false);
  end if;
  -- SQL EXECUTE takes no $n from here: the values go as one text[] literal, which array_in reads
  -- back exactly (quote_literal escapes it).
  execute format('execute %I(%L)', v_name, p_params) into n, body, inserted;
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
