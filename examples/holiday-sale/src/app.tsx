import { PasswordlessSignIn, useHallpass, useProfile, useSession } from '@hallpass/react';
import { useState } from 'react';
import { Devices } from './devices.tsx';
import { LiveBadge } from './live-badge.tsx';
import { Offers } from './offers.tsx';
import { ProfileForm } from './profile-form.tsx';

export function App() {
  const { status } = useSession();
  return (
    <>
      <header className="store-header">
        <span className="logo" aria-hidden="true">
          ★
        </span>
        <span className="store-name">Holiday Sale</span>
        {status === 'signed_in' && <SignedInHeader />}
      </header>
      <main className="store-main" data-testid={`view-${status}`}>
        {status === 'loading' && <p className="muted">Loading…</p>}
        {status === 'signed_out' && <SignedOut />}
        {status === 'signed_in' && <SignedIn />}
      </main>
    </>
  );
}

function SignedInHeader() {
  const client = useHallpass();
  const { user } = useSession();
  return (
    <span className="header-user">
      <span data-testid="who">{user?.email}</span>
      <button className="hp-button hp-button--secondary small" type="button" onClick={() => void client.logout()}>
        Sign out
      </button>
    </span>
  );
}

function SignedOut() {
  return (
    <div className="columns">
      <div className="hp-host">
        <PasswordlessSignIn
          hint={
            <>
              Running locally without SMTP? Codes and links land in the{' '}
              <a href="/dev/mailbox" target="_blank" rel="noreferrer">
                dev mailbox
              </a>
              .
            </>
          }
        />
      </div>
      <Offers signedIn={false} />
    </div>
  );
}

function SignedIn() {
  const [syncs, setSyncs] = useState(0);
  const live = useProfile({ onProfileSync: () => setSyncs((n) => n + 1) });
  return (
    <div className="grid">
      <LiveBadge live={live} />
      {syncs > 0 && (
        <p className="notice" role="status" data-testid="sync-notice" data-count={syncs}>
          New sign-in on another device ({syncs}). The devices list is up to date.
        </p>
      )}
      <ProfileForm live={live} />
      <Devices refreshKey={syncs} />
      <Offers signedIn />
    </div>
  );
}
