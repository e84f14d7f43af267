-- 0003 sessions: one row per signed-in device, and the refresh tokens of each (stored as HMAC
-- digests only). A rotated token presented again is reuse: the whole session is revoked.

create table hallpass.sessions (
  id uuid primary key default gen_random_uuid(),
  profile_id uuid not null references public.profiles (id) on delete cascade,
  tenant_id uuid not null references public.tenants (id),
  amr jsonb not null,
  user_agent text,
  ip text,
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  -- The refresh window slides: each refresh pushes it out again.
  expires_at timestamptz not null,
  revoked_at timestamptz,
  revoked_reason text check (revoked_reason in ('logout', 'refresh_token_reuse', 'revoked_by_user', 'revoked_by_admin'))
);
create index sessions_profile_idx on hallpass.sessions (profile_id) where revoked_at is null;

create table hallpass.refresh_tokens (
  token_hash bytea primary key,
  session_id uuid not null references hallpass.sessions (id) on delete cascade,
  created_at timestamptz not null default now(),
  -- Set when exchanged for a new token; presenting it afterwards means it was copied.
  rotated_at timestamptz
);
create index refresh_tokens_session_idx on hallpass.refresh_tokens (session_id);

-- Revocation must reach every instance at once: listeners drop cached sessions and close sockets.
create or replace function hallpass.notify_session_revoked() returns trigger
language plpgsql
as $$
begin
  if new.revoked_at is not null and old.revoked_at is null then
    perform pg_notify('hallpass_session_revoked', new.id::text);
  end if;
  return null;
end $$;

create trigger sessions_notify_revoked after update of revoked_at on hallpass.sessions
  for each row execute function hallpass.notify_session_revoked();
