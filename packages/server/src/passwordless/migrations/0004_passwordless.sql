-- 0004 passwordless: auth requests (codes and link tokens stored only as HMAC-SHA256 digests) and
-- the send rate limits, kept here so they hold across instances and restarts.

create table hallpass.auth_requests (
  id uuid primary key,
  tenant_id uuid not null references public.tenants (id),
  email text not null,
  passwordless_type text not null check (passwordless_type in ('OTP', 'LINK', 'LINK_OTP')),
  code_hash bytea,
  link_hash bytea,
  -- Digest of the same-browser binding cookie set at send time.
  binding_hash bytea,
  state text,
  redirect_to text,
  expires_at timestamptz not null,
  failed_attempts integer not null default 0,
  attempts_window_start timestamptz,
  locked_at timestamptz,
  consumed_at timestamptz,
  sends integer not null default 1,
  ip text,
  user_agent text,
  created_at timestamptz not null default now()
);
create unique index auth_requests_link_hash_key on hallpass.auth_requests (link_hash) where link_hash is not null;
create index auth_requests_expires_idx on hallpass.auth_requests (expires_at);

-- Generic cell rate limiting (GCRA): one row per key holding its theoretical arrival time.
-- Unlogged: taking a unit writes no WAL and waits for no fsync, so one hot key (many users behind one
-- NAT) does not serialise sign-ins on disk flushes. The counters survive server restarts and clean
-- database restarts; only a database crash resets them, which costs one window of extra allowance.
create unlogged table hallpass.rate_limits (
  key text primary key,
  tat timestamptz not null
);

-- Takes one unit from every (key, limit, period) at once, or from none: if any would be exceeded it
-- returns the index (1-based) of the first that is and the seconds until it allows again; else (0, 0).
-- Rows are locked in key order so concurrent callers cannot deadlock.
create or replace function hallpass.rate_limit_take(keys text[], limits integer[], periods double precision[])
returns table (rejected_index integer, retry_after double precision)
language plpgsql
as $$
declare
  n integer := coalesce(array_length(keys, 1), 0);
  now_ts timestamptz := clock_timestamp();
  tats timestamptz[] := array[]::timestamptz[];
  i integer;
  t timestamptz;
  interval_s double precision;
  new_tat timestamptz;
  over double precision;
begin
  insert into hallpass.rate_limits (key, tat)
    select k, now_ts from unnest(keys) as k order by k
    on conflict (key) do nothing;
  perform 1 from hallpass.rate_limits where key = any (keys) order by key for update;
  for i in 1 .. n loop
    select r.tat into t from hallpass.rate_limits r where r.key = keys[i];
    interval_s := periods[i] / limits[i];
    new_tat := greatest(t, now_ts) + make_interval(secs => interval_s);
    over := extract(epoch from (new_tat - now_ts)) - periods[i];
    if over > 0 then
      return query select i, over;
      return;
    end if;
    tats := tats || new_tat;
  end loop;
  for i in 1 .. n loop
    update hallpass.rate_limits set tat = tats[i] where key = keys[i];
  end loop;
  return query select 0, 0::double precision;
end $$;
