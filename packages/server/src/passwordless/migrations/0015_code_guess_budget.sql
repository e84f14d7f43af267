-- 0015 passwordless: a budget of wrong codes per address across all its sign-in requests.
--
-- Each request allows 5 wrong codes, and the send limits allow 10 requests an hour, so one address
-- could take about 1,200 guesses a day. Now wrong codes are also counted per address (tenant and
-- email) across all its requests: p_budget_limit per p_budget_period seconds (default 20 per 24 h),
-- refilling evenly (GCRA, like the send limits: one more every 72 minutes by default). Past it,
-- codes for that address are refused with too_many_attempts and a Retry-After, and the request is
-- not locked, so its magic link keeps working: an attacker cannot lock the owner out.
--
-- Cost: a wrong code writes one more row (its upsert). A right code reads the budget row by primary
-- key (none exists for an address without recent wrong codes) and writes nothing; no lock is taken.
-- A check and its spend are not atomic, so guesses sent at the same instant may all pass the check;
-- each still adds its interval to the row, so the address goes into debt and the long-run rate stays
-- p_budget_limit per period.

create table hallpass.code_budgets (
  tenant_id uuid not null,
  email text not null,
  -- GCRA's theoretical arrival time: every wrong code moves it one interval (period / limit) on.
  tat timestamptz not null,
  primary key (tenant_id, email)
);
comment on table hallpass.code_budgets is
  'Wrong-code budget per address (migration 0015). No row means the full budget; a row whose tat has passed is full again and may be deleted at any time.';

-- Seconds until the address may try a code again; 0 when it may now.
create function hallpass.code_budget_retry_after(
  p_tenant uuid, p_email text, p_now timestamptz, p_limit integer, p_period integer
)
returns double precision
language sql stable parallel safe
as $$
  select coalesce((
    select greatest(0, extract(epoch from b.tat - p_now) - (p_period - p_period::double precision / p_limit))
      from hallpass.code_budgets b
     where b.tenant_id = p_tenant and b.email = p_email
  ), 0)
$$;

-- Counts one wrong code; returns how many more wrong codes the address may try now.
create function hallpass.code_budget_spend(
  p_tenant uuid, p_email text, p_now timestamptz, p_limit integer, p_period integer
)
returns integer
language sql volatile
as $$
  insert into hallpass.code_budgets as b (tenant_id, email, tat)
  values (p_tenant, p_email, p_now + make_interval(secs => p_period::double precision / p_limit))
  on conflict (tenant_id, email) do update
    set tat = greatest(b.tat, p_now) + make_interval(secs => p_period::double precision / p_limit)
  returning greatest(0, floor((p_period - extract(epoch from b.tat - p_now)) / (p_period::double precision / p_limit)))::integer
$$;

-- verify_code and verify_codes (0012, 0013) with the budget: two more arguments, and retry_after
-- (seconds) beside a too_many_attempts that comes from the budget. Unchanged otherwise.
drop function hallpass.verify_codes(uuid[], bytea[], timestamptz, integer, integer, jsonb[], text[], text[], timestamptz[], bytea[]);
drop function hallpass.verify_code(uuid, bytea, timestamptz, integer, integer, jsonb, text, text, timestamptz, bytea);

create function hallpass.verify_code(
  p_request uuid,
  p_presented bytea,
  p_now timestamptz,
  p_max_attempts integer,
  p_window_seconds integer,
  p_amr jsonb,
  p_user_agent text,
  p_ip text,
  p_session_expires timestamptz,
  p_refresh_hash bytea,
  p_budget_limit integer,
  p_budget_period integer
)
returns table (outcome text, attempts_remaining integer, retry_after double precision, state text, redirect_to text, sign_in hallpass.sign_in)
language plpgsql volatile
as $$
declare
  r hallpass.auth_requests%rowtype;
  window_open boolean;
  failed integer;
  budget_left integer;
begin
  -- The row lock makes concurrent verifies of one code run one after another: exactly one consumes it.
  select * into r from hallpass.auth_requests a where a.id = p_request for update;
  if not found then
    outcome := 'auth_request_not_found';
  elsif r.consumed_at is not null then
    outcome := 'auth_request_used';
  elsif r.locked_at is not null then
    outcome := 'too_many_attempts';
  elsif r.expires_at <= p_now then
    outcome := 'otp_expired';
  end if;
  if outcome is not null then
    return next;
    return;
  end if;

  window_open := r.attempts_window_start is not null
             and p_now - r.attempts_window_start < make_interval(secs => p_window_seconds);
  failed := case when window_open then r.failed_attempts else 0 end;
  if failed >= p_max_attempts then
    update hallpass.auth_requests a set locked_at = p_now where a.id = r.id and a.locked_at is null;
    outcome := 'too_many_attempts';
    return next;
    return;
  end if;
  -- The address's budget, before the comparison: past it even the right code is refused (else an
  -- attacker would keep guessing and only the refusals would change). The request stays unlocked.
  retry_after := hallpass.code_budget_retry_after(r.tenant_id, r.email, p_now, p_budget_limit, p_budget_period);
  if retry_after > 0 then
    outcome := 'too_many_attempts';
    return next;
    return;
  end if;
  retry_after := null;
  if not hallpass.digests_equal(r.code_hash, p_presented) then
    update hallpass.auth_requests a
       set failed_attempts = failed + 1,
           attempts_window_start = case when window_open then r.attempts_window_start else p_now end
     where a.id = r.id;
    budget_left := hallpass.code_budget_spend(r.tenant_id, r.email, p_now, p_budget_limit, p_budget_period);
    outcome := 'otp_invalid';
    attempts_remaining := least(p_max_attempts - failed - 1, budget_left);
    return next;
    return;
  end if;

  return query
    select 'ok'::text, null::integer, null::double precision, r.state, r.redirect_to, c
      from hallpass.complete_sign_in(r.id, p_now, p_amr, p_user_agent, p_ip, p_session_expires, p_refresh_hash) c;
end $$;

create function hallpass.verify_codes(
  p_request uuid[],
  p_presented bytea[],
  p_now timestamptz,
  p_max_attempts integer,
  p_window_seconds integer,
  p_amr jsonb[],
  p_user_agent text[],
  p_ip text[],
  p_session_expires timestamptz[],
  p_refresh_hash bytea[],
  p_budget_limit integer,
  p_budget_period integer
)
returns table (item integer, outcome text, attempts_remaining integer, retry_after double precision, state text, redirect_to text, sign_in hallpass.sign_in)
language plpgsql volatile
as $$
declare
  i integer;
begin
  for i in 1 .. coalesce(array_length(p_request, 1), 0) loop
    return query
      select i, v.* from hallpass.verify_code(p_request[i], p_presented[i], p_now, p_max_attempts, p_window_seconds,
                                               p_amr[i], p_user_agent[i], p_ip[i], p_session_expires[i], p_refresh_hash[i],
                                               p_budget_limit, p_budget_period) v;
  end loop;
end $$;

revoke all on function hallpass.code_budget_retry_after(uuid, text, timestamptz, integer, integer) from public;
revoke all on function hallpass.code_budget_spend(uuid, text, timestamptz, integer, integer) from public;
revoke all on function hallpass.verify_code(uuid, bytea, timestamptz, integer, integer, jsonb, text, text, timestamptz, bytea, integer, integer) from public;
revoke all on function hallpass.verify_codes(uuid[], bytea[], timestamptz, integer, integer, jsonb[], text[], text[],
  timestamptz[], bytea[], integer, integer) from public;
