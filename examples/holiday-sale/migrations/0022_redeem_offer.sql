-- 0022 redeem_offer (holiday-sale example): redeem an offer in one call, as supabase-js's
-- rpc('redeem_offer', { offer_id }) does; checked and recorded in one transaction.

-- Invoker rights on purpose: it runs as the caller, so the offers it can see (members-only ones need
-- a signed-in user) and the redemption it writes (its own, by redemptions' RLS and the email default)
-- are decided by the same policies as a plain select or insert. Redeeming twice returns the first
-- redemption instead of failing. An offer the caller cannot see, or one that has ended, answers
-- P0001 (400 through the data API) with the hint 'offer_unavailable'.
create function public.redeem_offer(offer_id bigint) returns public.redemptions
language plpgsql volatile
as $$
declare
  r public.redemptions;
begin
  if not exists (select 1 from public.offers o where o.id = redeem_offer.offer_id and o.ends_at > now()) then
    raise exception 'This offer is not available' using errcode = 'P0001', hint = 'offer_unavailable';
  end if;
  insert into public.redemptions (offer_id) values (redeem_offer.offer_id)
    on conflict on constraint redemptions_once do nothing
    returning * into r;
  if r.id is null then
    select * into r from public.redemptions x where x.offer_id = redeem_offer.offer_id;
  end if;
  return r;
end $$;
comment on function public.redeem_offer(bigint) is 'Redeems an offer for the signed-in user (idempotent); RLS decides what they may see and write.';

revoke execute on function public.redeem_offer(bigint) from public;
grant execute on function public.redeem_offer(bigint) to authenticated, service_role;
