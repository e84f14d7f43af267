-- 0013 passwordless: sends and code verifies in batches, one statement and one commit for many.
--
-- At a sale peak many sign-ins arrive at once. Each instance now gathers the sends (and the verifies)
-- that arrive while its previous batch is in the database and runs them together: one round trip and
-- one WAL flush instead of one each. Every item keeps its own outcome; the statements per item are
-- the ones a single call runs (hallpass.rate_limit_take, the request and mail inserts,
-- hallpass.verify_code), so the rules do not change.

-- Sends: the rate limits of every item (three rules each, p_rule_* are n x 3 arrays), taken in item
-- order, then the requests and their sealed mail for the items the limits allowed. Every counter the
-- batch touches is locked once up front, in key order, so concurrent batches cannot deadlock.
--
-- The mail rows are written already leased to the sending instance ('sending', attempt 1, for
-- p_lease_seconds): it delivers them straight from memory, with no claim statement. If it dies first,
-- the lease runs out and any worker claims them as usual. mail_id and known (the address has a
-- profile in that tenant: sign-in or sign-up mail) come back for each allowed item; the answer to the
-- client is the same either way.
create or replace function hallpass.send_requests(
  p_id uuid[],
  p_tenant uuid[],
  p_email text[],
  p_type text[],
  p_code_hash bytea[],
  p_link_hash bytea[],
  p_binding_hash bytea[],
  p_state text[],
  p_redirect_to text[],
  p_expires_at timestamptz[],
  p_ip text[],
  p_user_agent text[],
  p_mail bytea[],
  p_rule_key text[],
  p_rule_limit integer[],
  p_rule_period double precision[],
  p_lease_seconds double precision
)
returns table (item integer, rejected_index integer, retry_after double precision, mail_id bigint, known boolean)
language plpgsql volatile
as $$
declare
  n integer := coalesce(array_length(p_id, 1), 0);
  rejected integer[] := array_fill(0, array[n]);
  retry double precision[] := array_fill(0::double precision, array[n]);
  i integer;
  taken record;
begin
  insert into hallpass.rate_limits (key, tat)
    select distinct k, clock_timestamp() from unnest(p_rule_key) as k order by 1
    on conflict (key) do nothing;
  perform 1 from hallpass.rate_limits l where l.key = any (p_rule_key) order by l.key for update;
  for i in 1 .. n loop
    select * into taken from hallpass.rate_limit_take(
      array(select unnest(p_rule_key[i:i][:])),
      array(select unnest(p_rule_limit[i:i][:])),
      array(select unnest(p_rule_period[i:i][:])));
    rejected[i] := taken.rejected_index;
    retry[i] := taken.retry_after;
  end loop;

  return query
  with r as (
    select * from unnest(p_id, p_tenant, p_email, p_type, p_code_hash, p_link_hash, p_binding_hash, p_state,
                         p_redirect_to, p_expires_at, p_ip, p_user_agent, p_mail)
             with ordinality as r(id, tenant_id, email, passwordless_type, code_hash, link_hash, binding_hash, state,
                                  redirect_to, expires_at, ip, user_agent, mail, ord)
     where rejected[ord::integer] = 0
  ), request as (
    insert into hallpass.auth_requests
      (id, tenant_id, email, passwordless_type, code_hash, link_hash, binding_hash, state, redirect_to, expires_at, ip, user_agent)
    select r.id, r.tenant_id, r.email, r.passwordless_type, r.code_hash, r.link_hash, r.binding_hash, r.state,
           r.redirect_to, r.expires_at, r.ip, r.user_agent
      from r
    returning auth_requests.id
  ), mail as (
    insert into hallpass.mail_outbox (auth_request_id, to_email, payload, status, attempts, locked_until)
    select r.id, r.email, r.mail, 'sending', 1, now() + make_interval(secs => p_lease_seconds)
      from request join r on r.id = request.id
    returning mail_outbox.id, mail_outbox.auth_request_id
  )
  select g.k, rejected[g.k], retry[g.k], m.id,
         case when m.id is null then null
              else exists (select 1 from public.profiles p where p.tenant_id = r.tenant_id and p.email = r.email) end
    from generate_series(1, n) as g(k)
    left join r on r.ord = g.k
    left join mail m on m.auth_request_id = r.id
   order by g.k;
end $$;

-- Verifies: hallpass.verify_code for each item, in the order given (the server sorts by request id,
-- so two batches lock shared requests in the same order). A request that appears twice is consumed
-- by the first and refused to the second, exactly as two calls in a row would be.
create or replace function hallpass.verify_codes(
  p_request uuid[],
  p_presented bytea[],
  p_now timestamptz,
  p_max_attempts integer,
  p_window_seconds integer,
  p_amr jsonb[],
  p_user_agent text[],
  p_ip text[],
  p_session_expires timestamptz[],
  p_refresh_hash bytea[]
)
returns table (item integer, outcome text, attempts_remaining integer, state text, redirect_to text, sign_in hallpass.sign_in)
language plpgsql volatile
as $$
declare
  i integer;
begin
  for i in 1 .. coalesce(array_length(p_request, 1), 0) loop
    return query
      select i, v.* from hallpass.verify_code(p_request[i], p_presented[i], p_now, p_max_attempts, p_window_seconds,
                                               p_amr[i], p_user_agent[i], p_ip[i], p_session_expires[i], p_refresh_hash[i]) v;
  end loop;
end $$;

revoke all on function hallpass.send_requests(uuid[], uuid[], text[], text[], bytea[], bytea[], bytea[], text[], text[],
  timestamptz[], text[], text[], bytea[], text[], integer[], double precision[], double precision) from public;
revoke all on function hallpass.verify_codes(uuid[], bytea[], timestamptz, integer, integer, jsonb[], text[], text[],
  timestamptz[], bytea[]) from public;
