import { useState } from 'react';
import { HallpassError, type VerifyResponse } from '@hallpass/client';
import { useHallpass } from './context.tsx';

export interface MagicLinkConfirmProps {
  /** The `link_token` from the link's query string. */
  linkToken: string;
  email?: string;
  onSignedIn?: (result: VerifyResponse) => void;
  /** Where "back to sign in" goes. @default '/' */
  signInHref?: string;
}

const problems: Partial<Record<string, string>> = {
  link_invalid: 'This link does not work. Ask for a new sign-in email.',
  link_expired: 'This link has expired. Sign-in links work for a few minutes only.',
  auth_request_used: 'This link was already used. Each link signs in once.',
  too_many_attempts: 'This sign-in is locked after too many wrong codes. Ask for a new email.',
  different_browser: 'Open this link in the browser where you asked for it, or ask for a new email here.',
};

/**
 * The magic-link confirm step for apps that route links to their own page: nothing is consumed until
 * the person presses Continue (mail scanners open links too), in the same look as the sign-in form.
 */
export function MagicLinkConfirm({ linkToken, email, onSignedIn, signInHref = '/' }: MagicLinkConfirmProps) {
  const client = useHallpass();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  async function confirm() {
    setBusy(true);
    setError(null);
    try {
      const result = await client.verifyLink(linkToken);
      onSignedIn?.(result);
    } catch (err) {
      setError(err instanceof HallpassError ? (problems[err.code] ?? err.message) : 'Something went wrong. Try again.');
    } finally {
      setBusy(false);
    }
  }
  return (
    <section className="hp-signin" data-step="confirm-link" aria-labelledby="hp-confirm-title">
      <h1 className="hp-title" id="hp-confirm-title">
        Continue signing in
      </h1>
      <p className="hp-text">{email ? `Sign in as ${email} in this browser.` : 'Sign in in this browser.'}</p>
      <button className="hp-button" type="button" disabled={busy} onClick={() => void confirm()}>
        Continue
      </button>
      <p className="hp-error" role="alert">
        {error}
      </p>
      {error && (
        <a className="hp-link" href={signInHref}>
          Back to sign in
        </a>
      )}
      <p className="hp-muted">If you did not ask to sign in, close this page. Nothing happens until you continue.</p>
    </section>
  );
}
