import type { UseProfile } from '@hallpass/react';
import { thisDevice } from './device.ts';

const liveText = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', unavailable: 'Live updates off', closed: 'Offline', off: 'Offline' };

/** The profile's last update and the device that made it, with the live connection's state. */
export function LiveBadge({ live }: { live: UseProfile }) {
  const { profile } = live;
  const last = profile?.metadata.lastDevice as { id?: string; label?: string } | undefined;
  const mine = last?.id === thisDevice().id;
  return (
    <section className="card badge" aria-label="Profile sync" data-testid="live-badge" data-live={live.live}>
      <span className={`dot dot-${live.live}`} aria-hidden="true" />
      <strong>{liveText[live.live]}</strong>
      {profile && (
        <span data-testid="last-update">
          {' · '}updated {new Date(profile.updatedAt).toLocaleTimeString()}
          {last?.label ? ` on ${last.label}${mine ? ' (this device)' : ''}` : ''}
        </span>
      )}
    </section>
  );
}
