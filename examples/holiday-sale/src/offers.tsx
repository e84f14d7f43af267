import { HallpassError } from '@hallpass/client';
import { useHallpass } from '@hallpass/react';
import { useCallback, useEffect, useState } from 'react';
import { supabase } from './supabase.ts';

interface Offer {
  id: number;
  title: string;
  description: string;
  percent_off: number;
  audience: 'everyone' | 'members';
  ends_at: string;
}

/**
 * Offers from the app's own table through the data API. RLS does the deciding: visitors get public
 * offers, members also members-only ones, and each user sees only their own redemptions.
 */
export function Offers({ signedIn }: { signedIn: boolean }) {
  const client = useHallpass();
  const [offers, setOffers] = useState<Offer[] | null>(null);
  const [redeemed, setRedeemed] = useState<Set<number>>(new Set());
  const [problem, setProblem] = useState('');

  const load = useCallback(async () => {
    try {
      setOffers(await client.data.select<Offer>('offers', { order: 'percent_off.desc' }));
      if (signedIn) {
        const mine = await client.data.select<{ offer_id: number }>('redemptions', { columns: 'offer_id' });
        setRedeemed(new Set(mine.map((r) => Number(r.offer_id))));
      }
      setProblem('');
    } catch (err) {
      setProblem(
        err instanceof HallpassError && err.status === 404
          ? 'Offers come from the data API (/rest/v1), which this server does not have yet.'
          : 'Could not load offers.',
      );
    }
  }, [client, signedIn]);

  useEffect(() => {
    void load();
  }, [load]);

  // One rpc call: the database checks the offer and records the redemption in one transaction.
  async function redeem(id: number) {
    const { error } = await (await supabase()).rpc('redeem_offer', { offer_id: id });
    if (error) {
      setProblem(error.hint === 'offer_unavailable' ? 'That offer is no longer available.' : 'Could not redeem that offer.');
      return;
    }
    setRedeemed((s) => new Set(s).add(id));
  }

  return (
    <section className="card" aria-labelledby="offers-title">
      <h2 id="offers-title">{signedIn ? 'Offers for you' : 'This week’s offers'}</h2>
      {problem && (
        <p className="muted" data-testid="offers-problem">
          {problem}
        </p>
      )}
      <ul className="offers" data-testid="offers">
        {offers?.map((o) => (
          <li key={o.id}>
            <span className="pct">−{o.percent_off}%</span>
            <span>
              <strong>{o.title}</strong>
              {o.audience === 'members' && <span className="tag">Members</span>}
              <br />
              <span className="muted">{o.description}</span>
            </span>
            {signedIn &&
              (redeemed.has(Number(o.id)) ? (
                <span className="tag done">Redeemed</span>
              ) : (
                <button className="hp-button small" type="button" onClick={() => void redeem(o.id)}>
                  Redeem
                </button>
              ))}
          </li>
        ))}
      </ul>
      {!signedIn && offers && <p className="muted">Sign in to see members-only offers.</p>}
    </section>
  );
}
