-- 0012 passwordless: a code verify is one statement (one round trip, one commit).
--
-- Before, verify was begin / lock the request / sign-in write / profile_sync broadcast / commit: five
-- round trips with the request row locked across all of them. Now hallpass.verify_code does the same
-- steps in one function call: lock, the checks in the same order as before, the attempt counting
-- (committed, since a refusal is a result here, not an error) and, on success, complete_sign_in.

-- Compares two digests in time that depends only on their length (always 32 bytes here): the XOR
-- of the two as bit strings, then a count of its set bits, both over every byte; there is no early
-- exit at the first difference. One expression, so it is inlined into the caller. NULL never matches.
create or replace function hallpass.digests_equal(a bytea, b bytea) returns boolean
language sql immutable parallel safe
as $$
  select case
    when a is null or b is null or length(a) <> length(b) then false
    else bit_count(('x' || encode(a, 'hex'))::varbit # ('x' || encode(b, 'hex'))::varbit) = 0
  end
$$;

-- What a completed sign-in returns: the profile (created: this was the first login) and the session.
create type hallpass.sign_in as (
  id uuid, tenant_id uuid, email text, name text, metadata jsonb, last_login timestamptz,
  created_at timestamptz, updated_at timestamptz, created boolean,
  s_id uuid, s_amr jsonb, s_user_agent text, s_ip text, s_created_at timestamptz,
  s_last_seen_at timestamptz, s_expires_at timestamptz, s_revoked_at timestamptz
);

-- The verified request becomes a session: consume it, sync the profile as service_role (RLS bypassed:
-- no row exists yet on first login), open the session with its first refresh token digest, and log a
-- profile_sync broadcast on the user's private topic. Asks to wake realtime after commit (0011): the
-- caller must do so. Returns no row when the request was already consumed.
create or replace function hallpass.complete_sign_in(
  p_request uuid,
  p_at timestamptz,
  p_amr jsonb,
  p_user_agent text,
  p_ip text,
  p_session_expires timestamptz,
  p_refresh_hash bytea
)
returns setof hallpass.sign_in
language plpgsql volatile
as $$
begin
  perform set_config('hallpass.realtime_wake_after_commit', 'on', true);
  return query
    with consumed as (
      update hallpass.auth_requests r set consumed_at = p_at
       where r.id = p_request and r.consumed_at is null
      returning r.tenant_id, r.email
    ), profile as (
      select p.* from consumed c cross join lateral hallpass.sync_profile_on_login(c.tenant_id, c.email, p_at) p
    ), session as (
      insert into hallpass.sessions as s (profile_id, tenant_id, amr, user_agent, ip, expires_at, created_at, last_seen_at)
      select p.id, p.tenant_id, p_amr, p_user_agent, p_ip, p_session_expires, p_at, p_at from profile p
      returning s.*
    ), token as (
      insert into hallpass.refresh_tokens (token_hash, session_id) select p_refresh_hash, s.id from session s
    ), sync as (
      insert into hallpass.realtime_events (kind, topic, event, payload, private)
      select 'broadcast', 'user:' || p.id, 'profile_sync',
             jsonb_build_object('email', p.email, 'reason', 'login',
                                'at', to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
             true
        from profile p
    )
    select p.id, p.tenant_id, p.email, p.name, p.metadata, p.last_login, p.created_at, p.updated_at, p.created,
           s.id, s.amr, s.user_agent, s.ip, s.created_at, s.last_seen_at, s.expires_at, s.revoked_at
      from profile p cross join session s;
end $$;

-- Verifies a code against request p_request. p_presented is the server's HMAC digest of the presented
-- code (the secret never reaches the database). outcome is 'ok' (with the sign-in row) or the error
-- code the API answers with; attempts_remaining comes with 'otp_invalid', sign_in with 'ok'.
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
  p_refresh_hash bytea
)
returns table (outcome text, attempts_remaining integer, state text, redirect_to text, sign_in hallpass.sign_in)
language plpgsql volatile
as $$
declare
  r hallpass.auth_requests%rowtype;
  window_open boolean;
  failed integer;
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
  if not hallpass.digests_equal(r.code_hash, p_presented) then
    update hallpass.auth_requests a
       set failed_attempts = failed + 1,
           attempts_window_start = case when window_open then r.attempts_window_start else p_now end
     where a.id = r.id;
    outcome := 'otp_invalid';
    attempts_remaining := p_max_attempts - failed - 1;
    return next;
    return;
  end if;

  return query
    select 'ok'::text, null::integer, r.state, r.redirect_to, c
      from hallpass.complete_sign_in(r.id, p_now, p_amr, p_user_agent, p_ip, p_session_expires, p_refresh_hash) c;
end $$;

revoke all on function hallpass.complete_sign_in(uuid, timestamptz, jsonb, text, text, timestamptz, bytea) from public;
revoke all on function hallpass.verify_code(uuid, bytea, timestamptz, integer, integer, jsonb, text, text, timestamptz, bytea) from public;
