-- 0021 guide-backend: the Scalekit + Supabase guide's profile policies, pasted verbatim (both of its
-- styles), on Hallpass's own public.profiles. They read the legacy claim settings that Hallpass sets
-- on every request under RLS (request.jwt.claim.<name> and jwt.claims.<name>, migration 0014).
--
-- The guide's `create table public.profiles` is Hallpass's table already (plus tenant_id and
-- metadata); only the column its backend writes after a verify is added.
alter table public.profiles add column if not exists last_verified timestamptz;

-- Enable RLS
alter table public.profiles enable row level security;
-- Read own profile
create policy "Users can view their own profile"
on public.profiles
for select
using (email = current_setting('request.jwt.claim.email'));
-- Update own profile
create policy "Users can update their own profile"
on public.profiles
for update
using (email = current_setting('request.jwt.claim.email'))
with check (email = current_setting('request.jwt.claim.email'));

-- Enable RLS
alter table public.profiles enable row level security;
-- Select own profile
create policy select_own_profile
on public.profiles
for select using (email = current_setting('jwt.claims.email'));
-- Update own profile
create policy update_own_profile
on public.profiles
for update using (email = current_setting('jwt.claims.email'));
-- Insert own profile
create policy insert_own_profile
on public.profiles
for insert with check (email = current_setting('jwt.claims.email'));
