import type { DeviceSession } from '@hallpass/client';
import { useHallpass } from '@hallpass/react';
import { useCallback, useEffect, useState } from 'react';
import { deviceLabel } from './device.ts';

/** This user's signed-in devices, each with a sign-out button. */
export function Devices({ refreshKey }: { refreshKey: number }) {
  const client = useHallpass();
  const [devices, setDevices] = useState<DeviceSession[] | null>(null);
  const [error, setError] = useState('');

  const load = useCallback(async () => {
    try {
      setDevices(await client.listSessions());
      setError('');
    } catch {
      setError('Could not load your devices.');
    }
  }, [client]);

  useEffect(() => {
    void load();
  }, [load, refreshKey]);

  async function signOut(d: DeviceSession) {
    try {
      await client.revokeSession(d.id);
      if (!d.current) await load();
    } catch {
      setError('Could not sign that device out.');
    }
  }

  return (
    <section className="card" aria-labelledby="devices-title">
      <h2 id="devices-title">Your devices</h2>
      {devices === null && !error && <p className="muted">Loading…</p>}
      <ul className="devices" data-testid="devices">
        {devices?.map((d) => (
          <li key={d.id} data-session-id={d.id} data-current={d.current}>
            <span>
              <strong>{deviceLabel(d.userAgent)}</strong>
              {d.current && <span className="tag">This device</span>}
              <br />
              <span className="muted">Signed in {new Date(d.createdAt).toLocaleString()}</span>
            </span>
            <button
              className="hp-button hp-button--secondary small"
              type="button"
              aria-label={`Sign out ${d.current ? 'this device' : deviceLabel(d.userAgent)}`}
              onClick={() => void signOut(d)}
            >
              Sign out
            </button>
          </li>
        ))}
      </ul>
      <p className="hp-error" role="alert">
        {error}
      </p>
    </section>
  );
}
