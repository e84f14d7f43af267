-- 0017 scalekit: API clients for Scalekit's passwordless API (/oauth/token and the gRPC
-- PasswordlessService), their access tokens, and the sign-in requests they started (verified headless).

-- A backend that calls Hallpass as it would call Scalekit. The secret is stored only as an HMAC digest.
create table hallpass.api_clients (
  id text primary key check (id ~ '^skc_[0-9a-f]{24}$'),
  name text not null check (length(name) between 1 and 100),
  tenant_id uuid not null references public.tenants (id),
  secret_hash bytea not null,
  created_at timestamptz not null default now(),
  revoked_at timestamptz
);

-- Opaque access tokens from /oauth/token, stored as HMAC digests. Issuing one never ends the client's
-- other tokens: the SDK fetches one per concurrent first call and keeps whichever it got last.
create table hallpass.api_client_tokens (
  token_hash bytea primary key,
  client_id text not null references hallpass.api_clients (id) on delete cascade,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  revoked_at timestamptz
);
create index api_client_tokens_client_idx on hallpass.api_client_tokens (client_id);
create index api_client_tokens_expires_idx on hallpass.api_client_tokens (expires_at);

-- The requests a client started, with what a resend and the headless verify need: the mail template,
-- its variables, where the magic link points and how long codes live. Only that client may verify or
-- resend them through the Scalekit API.
create table hallpass.api_client_requests (
  auth_request_id uuid primary key references hallpass.auth_requests (id) on delete cascade,
  client_id text not null references hallpass.api_clients (id) on delete cascade,
  template text check (template in ('SIGNIN', 'SIGNUP')),
  template_variables jsonb not null default '{}',
  magiclink_auth_uri text,
  expires_in integer not null check (expires_in between 60 and 3600)
);
create index api_client_requests_client_idx on hallpass.api_client_requests (client_id);

-- No client role may see API clients, their tokens or their requests: nothing is granted to anon,
-- authenticated or PUBLIC, and RLS is forced with a policy only for the server's own database user
-- (the one running this migration) and service_role (which bypasses RLS anyway).
revoke all on hallpass.api_clients, hallpass.api_client_tokens, hallpass.api_client_requests from public, anon, authenticated;
grant select, insert, update, delete on hallpass.api_clients, hallpass.api_client_tokens, hallpass.api_client_requests to service_role;
alter table hallpass.api_clients enable row level security;
alter table hallpass.api_clients force row level security;
alter table hallpass.api_client_tokens enable row level security;
alter table hallpass.api_client_tokens force row level security;
alter table hallpass.api_client_requests enable row level security;
alter table hallpass.api_client_requests force row level security;
do $$
declare t text;
begin
  foreach t in array array['api_clients', 'api_client_tokens', 'api_client_requests'] loop
    execute format('create policy server_only on hallpass.%I to %I using (true) with check (true)', t, current_user);
    execute format('comment on policy server_only on hallpass.%I is %L', t,
      'Only the Hallpass server''s own database user reads and writes API clients; client roles have no grant either.');
  end loop;
end $$;

-- Headless consume: the request is used up and the profile synced as on any sign-in (the same row,
-- last_login and audit trail, written as service_role by hallpass.sync_profile_on_login), but no
-- session is opened and no profile_sync is broadcast: the calling backend makes its own session and
-- sends its own broadcast, as the guide's backend does. No row when the request was already consumed.
create or replace function hallpass.consume_headless(p_request uuid, p_at timestamptz)
returns table (email text, state text, passwordless_type text, profile_id uuid, created boolean)
language sql volatile
as $$
  with consumed as (
    update hallpass.auth_requests r set consumed_at = p_at
     where r.id = p_request and r.consumed_at is null
    returning r.tenant_id, r.email, r.state, r.passwordless_type
  )
  select c.email, c.state, c.passwordless_type, p.id, p.created
    from consumed c cross join lateral hallpass.sync_profile_on_login(c.tenant_id, c.email, p_at) p;
$$;

-- Headless code verifies in one statement, item by item in the order given (the server sorts by
-- request id, so concurrent batches lock in one order). The checks and the attempt counting are
-- hallpass.verify_code's (0012): lock, used, locked, expired, the attempt window, the constant-time
-- digest compare; a wrong code is counted and committed with the refusal.
create or replace function hallpass.verify_codes_headless(
  p_request uuid[],
  p_presented bytea[],
  p_now timestamptz,
  p_max_attempts integer,
  p_window_seconds integer
)
returns table (item integer, outcome text, attempts_remaining integer, email text, state text,
               passwordless_type text, profile_id uuid, created boolean)
language plpgsql volatile
as $$
declare
  i integer;
  r hallpass.auth_requests%rowtype;
  window_open boolean;
  failed integer;
begin
  for i in 1 .. coalesce(array_length(p_request, 1), 0) loop
    item := i; outcome := null; attempts_remaining := null; email := null; state := null;
    passwordless_type := null; profile_id := null; created := null;
    select * into r from hallpass.auth_requests a where a.id = p_request[i] for update;
    if not found then
      outcome := 'auth_request_not_found';
    elsif r.consumed_at is not null then
      outcome := 'auth_request_used';
    elsif r.locked_at is not null then
      outcome := 'too_many_attempts';
    elsif r.expires_at <= p_now then
      outcome := 'otp_expired';
    end if;
    if outcome is null then
      window_open := r.attempts_window_start is not null
                 and p_now - r.attempts_window_start < make_interval(secs => p_window_seconds);
      failed := case when window_open then r.failed_attempts else 0 end;
      if failed >= p_max_attempts then
        update hallpass.auth_requests a set locked_at = p_now where a.id = r.id and a.locked_at is null;
        outcome := 'too_many_attempts';
      elsif not hallpass.digests_equal(r.code_hash, p_presented[i]) then
        update hallpass.auth_requests a
           set failed_attempts = failed + 1,
               attempts_window_start = case when window_open then r.attempts_window_start else p_now end
         where a.id = r.id;
        outcome := 'otp_invalid';
        attempts_remaining := p_max_attempts - failed - 1;
      else
        select 'ok', c.email, c.state, c.passwordless_type, c.profile_id, c.created
          into outcome, email, state, passwordless_type, profile_id, created
          from hallpass.consume_headless(r.id, p_now) c;
      end if;
    end if;
    return next;
  end loop;
end $$;

revoke all on function hallpass.consume_headless(uuid, timestamptz) from public;
revoke all on function hallpass.verify_codes_headless(uuid[], bytea[], timestamptz, integer, integer) from public;
