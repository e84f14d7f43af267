import type { UseProfile } from '@hallpass/react';
import { HallpassError } from '@hallpass/client';
import { useEffect, useState, type FormEvent } from 'react';
import { thisDevice } from './device.ts';

interface Preferences {
  category: string;
  newsletter: boolean;
}

const categories = ['Coats', 'Boots', 'Scarves', 'Gifts'];

function prefsOf(metadata: Record<string, unknown> | undefined): Preferences {
  const p = (metadata?.preferences ?? {}) as Partial<Preferences>;
  return { category: typeof p.category === 'string' ? p.category : 'Gifts', newsletter: p.newsletter === true };
}

/** Name and preferences, saved under RLS; follows changes from other devices while not being edited. */
export function ProfileForm({ live }: { live: UseProfile }) {
  const { profile, save } = live;
  const [name, setName] = useState(profile?.name ?? '');
  const [prefs, setPrefs] = useState<Preferences>(prefsOf(profile?.metadata));
  const [dirty, setDirty] = useState(false);
  const [status, setStatus] = useState('');
  const [error, setError] = useState('');

  useEffect(() => {
    if (!profile || dirty) return;
    setName(profile.name ?? '');
    setPrefs(prefsOf(profile.metadata));
  }, [profile, dirty]);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setError('');
    setStatus('Saving…');
    try {
      await save({
        name: name.trim() || null,
        metadata: { ...profile?.metadata, preferences: prefs, lastDevice: thisDevice() },
      });
      setDirty(false);
      setStatus('Saved.');
    } catch (err) {
      setStatus('');
      setError(err instanceof HallpassError ? err.message : 'Could not save.');
    }
  }

  const edit = () => {
    setDirty(true);
    setStatus('');
  };

  return (
    <section className="card" aria-labelledby="profile-title">
      <h2 id="profile-title">Your profile</h2>
      <p className="muted">{profile?.email}</p>
      <form onSubmit={submit}>
        <label className="hp-label" htmlFor="profile-name">
          Name
        </label>
        <input
          id="profile-name"
          className="hp-input"
          autoComplete="name"
          value={name}
          data-testid="profile-name"
          onChange={(e) => {
            setName(e.target.value);
            edit();
          }}
        />
        <label className="hp-label" htmlFor="profile-category">
          Favourite category
        </label>
        <select
          id="profile-category"
          className="hp-input"
          value={prefs.category}
          onChange={(e) => {
            setPrefs({ ...prefs, category: e.target.value });
            edit();
          }}
        >
          {categories.map((c) => (
            <option key={c}>{c}</option>
          ))}
        </select>
        <label className="check">
          <input
            type="checkbox"
            checked={prefs.newsletter}
            onChange={(e) => {
              setPrefs({ ...prefs, newsletter: e.target.checked });
              edit();
            }}
          />{' '}
          Email me about new offers
        </label>
        <button className="hp-button" type="submit">
          Save
        </button>
        <span className="status" role="status" data-testid="save-status">
          {status}
        </span>
        <p className="hp-error" role="alert">
          {error}
        </p>
      </form>
    </section>
  );
}
