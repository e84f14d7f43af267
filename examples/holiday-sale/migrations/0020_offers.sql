-- 0020 offers (holiday-sale example): the store's offers, readable by everyone, and redemptions, each
-- visible only to the user who redeemed it. An app's own table under its own RLS policies.

create table public.offers (
  id bigint generated always as identity primary key,
  title text not null check (length(title) <= 120),
  description text not null default '' check (length(description) <= 1000),
  percent_off integer not null check (percent_off between 1 and 90),
  -- 'everyone' offers show to visitors; 'members' offers only to signed-in users.
  audience text not null default 'everyone' check (audience in ('everyone', 'members')),
  ends_at timestamptz not null
);
comment on table public.offers is 'Holiday-sale offers; members-only ones are hidden from anonymous visitors.';

alter table public.offers enable row level security;
alter table public.offers force row level security;

create policy offers_select_public on public.offers for select to anon, authenticated
  using (audience = 'everyone' or (select auth.role()) = 'authenticated');
comment on policy offers_select_public on public.offers is 'Everyone sees public offers; members-only offers need a signed-in user.';
grant select on public.offers to anon, authenticated;
grant select, insert, update, delete on public.offers to service_role;

create table public.redemptions (
  id bigint generated always as identity primary key,
  offer_id bigint not null references public.offers (id) on delete cascade,
  tenant_id uuid not null default coalesce(auth.tenant_id(), '00000000-0000-0000-0000-000000000000'),
  -- Filled from the session's claim, never from the request: a user cannot redeem for another.
  email text not null default (auth.email()),
  redeemed_at timestamptz not null default now(),
  constraint redemptions_once unique (tenant_id, email, offer_id)
);
comment on table public.redemptions is 'Which user redeemed which offer; each user sees only their own.';
create index redemptions_owner_idx on public.redemptions (tenant_id, email);

alter table public.redemptions enable row level security;
alter table public.redemptions force row level security;

create policy redemptions_select_own on public.redemptions for select to authenticated
  using (email = (select auth.email()) and tenant_id = (select auth.tenant_id()));
comment on policy redemptions_select_own on public.redemptions is 'A user sees only the offers they redeemed themselves.';

create policy redemptions_insert_own on public.redemptions for insert to authenticated
  with check (email = (select auth.email()) and tenant_id = (select auth.tenant_id()));
comment on policy redemptions_insert_own on public.redemptions is 'A user redeems only as themselves, in their own tenant.';

grant select on public.redemptions to authenticated;
grant insert (offer_id) on public.redemptions to authenticated;
grant select, insert, update, delete on public.redemptions to service_role;

insert into public.offers (title, description, percent_off, audience, ends_at) values
  ('Winter coats', 'Warm wool coats for the whole family.', 30, 'everyone', now() + interval '60 days'),
  ('Gift wrapping', 'Free gift wrapping on every order.', 10, 'everyone', now() + interval '60 days'),
  ('Early access: boots', 'Members shop the boot sale a day early.', 40, 'members', now() + interval '60 days'),
  ('Members: scarves', 'Hand-knit scarves, members only.', 25, 'members', now() + interval '60 days');
