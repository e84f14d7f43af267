-- 0020 passwordless: one check of a presented code for both front doors, so Scalekit's headless
-- verify (0017) obeys the per-address wrong-code budget (0015) exactly as Hallpass's own verify does.
--
-- verify_codes_headless (0017) copied verify_code's checks from 0012, before 0015 added the budget:
-- wrong codes sent through an API client's verify were neither refused past the budget nor counted
-- against it. Both verifies now lock the request, then call hallpass.check_code; only what follows a
-- right code differs (a Hallpass session, or the headless consume).

-- The checks, in order: used, locked, expired, the request's attempt window (locks it at the limit),
-- the address's budget (refuses, leaves the request unlocked so its link still works), then the
-- constant-time digest comparison; a wrong code is counted on the request and spent from the budget,
-- committed with the refusal. 'ok' means the code is right and the caller may complete the sign-in.
-- `r` must be the request row locked FOR UPDATE by the caller.
create function hallpass.check_code(
  r hallpass.auth_requests,
  p_presented bytea,
  p_now timestamptz,
  p_max_attempts integer,
  p_window_seconds integer,
  p_budget_limit integer,
  p_budget_period integer,
  out outcome text,
  out attempts_remaining integer,
  out retry_after double precision
)
language plpgsql volatile
as $$
declare
  window_open boolean;
  failed integer;
  budget_left integer;
begin
  if r.consumed_at is not null then
    outcome := 'auth_request_used';
    return;
  elsif r.locked_at is not null then
    outcome := 'too_many_attempts';
    return;
  elsif r.expires_at <= p_now then
    outcome := 'otp_expired';
    return;
  end if;
  window_open := r.attempts_window_start is not null
             and p_now - r.attempts_window_start < make_interval(secs => p_window_seconds);
  failed := case when window_open then r.failed_attempts else 0 end;
  if failed >= p_max_attempts then
    update hallpass.auth_requests a set locked_at = p_now where a.id = r.id and a.locked_at is null;
    outcome := 'too_many_attempts';
    return;
  end if;
  -- Past the address's budget even the right code is refused (else an attacker would keep guessing
  -- and only the refusals would change); the request stays unlocked.
  retry_after := hallpass.code_budget_retry_after(r.tenant_id, r.email, p_now, p_budget_limit, p_budget_period);
  if retry_after > 0 then
    outcome := 'too_many_attempts';
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
    return;
  end if;
  outcome := 'ok';
end $$;

-- Hallpass's own verify (0015's signature and answers, unchanged): lock, check, sign in.
create or replace function hallpass.verify_code(
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
  c record;
begin
  -- The row lock makes concurrent verifies of one code run one after another: exactly one consumes it.
  select * into r from hallpass.auth_requests a where a.id = p_request for update;
  if not found then
    outcome := 'auth_request_not_found';
    return next;
    return;
  end if;
  c := hallpass.check_code(r, p_presented, p_now, p_max_attempts, p_window_seconds, p_budget_limit, p_budget_period);
  if c.outcome <> 'ok' then
    outcome := c.outcome;
    attempts_remaining := c.attempts_remaining;
    retry_after := c.retry_after;
    return next;
    return;
  end if;
  return query
    select 'ok'::text, null::integer, null::double precision, r.state, r.redirect_to, s
      from hallpass.complete_sign_in(r.id, p_now, p_amr, p_user_agent, p_ip, p_session_expires, p_refresh_hash) s;
end $$;

-- Scalekit's headless verify (0017) through the same check, now with the budget's two arguments and
-- its retry_after.
drop function hallpass.verify_codes_headless(uuid[], bytea[], timestamptz, integer, integer);
create function hallpass.verify_codes_headless(
  p_request uuid[],
  p_presented bytea[],
  p_now timestamptz,
  p_max_attempts integer,
  p_window_seconds integer,
  p_budget_limit integer,
  p_budget_period integer
)
returns table (item integer, outcome text, attempts_remaining integer, retry_after double precision, email text,
               state text, passwordless_type text, profile_id uuid, created boolean)
language plpgsql volatile
as $$
declare
  i integer;
  r hallpass.auth_requests%rowtype;
  c record;
begin
  for i in 1 .. coalesce(array_length(p_request, 1), 0) loop
    item := i; outcome := null; attempts_remaining := null; retry_after := null; email := null; state := null;
    passwordless_type := null; profile_id := null; created := null;
    select * into r from hallpass.auth_requests a where a.id = p_request[i] for update;
    if not found then
      outcome := 'auth_request_not_found';
    else
      c := hallpass.check_code(r, p_presented[i], p_now, p_max_attempts, p_window_seconds, p_budget_limit, p_budget_period);
      outcome := c.outcome;
      attempts_remaining := c.attempts_remaining;
      retry_after := c.retry_after;
      if outcome = 'ok' then
        select 'ok', h.email, h.state, h.passwordless_type, h.profile_id, h.created
          into outcome, email, state, passwordless_type, profile_id, created
          from hallpass.consume_headless(r.id, p_now) h;
      end if;
    end if;
    return next;
  end loop;
end $$;

revoke all on function hallpass.check_code(hallpass.auth_requests, bytea, timestamptz, integer, integer, integer, integer) from public;
revoke all on function hallpass.verify_codes_headless(uuid[], bytea[], timestamptz, integer, integer, integer, integer) from public;
