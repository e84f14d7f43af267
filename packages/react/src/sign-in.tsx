import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { HallpassError, type SendResponse, type VerifyResponse } from '@hallpass/client';
import { useHallpass } from './context.tsx';
import { useCountdown } from './use-countdown.ts';

type Step =
  | { name: 'email' }
  | { name: 'code'; request: SendResponse }
  | { name: 'expired'; request: SendResponse }
  | { name: 'locked' };

export interface PasswordlessSignInProps {
  /** Called after a successful code sign-in (the provider already knows). */
  onSignedIn?: (result: VerifyResponse) => void;
  /** Seconds before "resend" is offered after a send; a server Retry-After wins when longer. @default 30 */
  resendCooldownSeconds?: number;
  /** Shown on the email step, e.g. where the dev mailbox is. */
  hint?: ReactNode;
  /** @default 'Sign in' */
  title?: string;
}

const messages: Partial<Record<string, string>> = {
  invalid_email: 'That does not look like an email address.',
  otp_invalid: 'That code is not right.',
  network_error: 'Could not reach the server. Check your connection and try again.',
  email_rate_limited_minute: 'Too many emails to this address. Wait a moment before asking again.',
  email_rate_limited_hour: 'Too many emails to this address this hour. Try again later.',
  ip_rate_limited: 'Too many sign-in requests from this network. Try again later.',
};

const describe = (err: unknown) =>
  err instanceof HallpassError ? (messages[err.code] ?? err.message) : 'Something went wrong. Try again.';

/**
 * Passwordless sign-in: the email step, then "check your email" with a 6-digit code (paste works,
 * `autocomplete="one-time-code"` lets phones fill it from the message), resend with a countdown that
 * honours Retry-After, attempts left, and the expired and locked states, each with a way forward.
 * Unstyled by default (`hp-*` class names); import `@hallpass/react/theme.css` for the default look.
 * Errors are announced to screen readers (role="alert"); focus moves to the field that needs input.
 */
export function PasswordlessSignIn({ onSignedIn, resendCooldownSeconds = 30, hint, title = 'Sign in' }: PasswordlessSignInProps) {
  const client = useHallpass();
  const ids = useId();
  const [step, setStep] = useState<Step>({ name: 'email' });
  const [email, setEmail] = useState('');
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [attemptsLeft, setAttemptsLeft] = useState<number | null>(null);
  const [resendAt, setResendAt] = useState<number | null>(null);
  const wait = useCountdown(resendAt);
  const codeRef = useRef<HTMLInputElement>(null);
  const emailRef = useRef<HTMLInputElement>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    if (step.name === 'code') codeRef.current?.focus();
    else if (step.name === 'email') emailRef.current?.focus({ preventScroll: true });
    else headingRef.current?.focus();
  }, [step]);

  const cooldown = (seconds: number) => setResendAt(Date.now() + seconds * 1000);
  const rateLimited = (err: unknown) => {
    if (err instanceof HallpassError && err.status === 429 && err.retryAfter) cooldown(err.retryAfter);
  };

  async function send(e?: FormEvent) {
    e?.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const request = await client.send(email.trim());
      setCode('');
      setAttemptsLeft(null);
      cooldown(resendCooldownSeconds);
      setStatus(`We sent a code to ${email.trim()}.`);
      setStep({ name: 'code', request });
    } catch (err) {
      rateLimited(err);
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  }

  async function resend(request: SendResponse) {
    setBusy(true);
    setError(null);
    try {
      const next = await client.resend(request.authRequestId);
      setCode('');
      setAttemptsLeft(null);
      cooldown(resendCooldownSeconds);
      setStatus('We sent a new code. The old one no longer works.');
      setStep({ name: 'code', request: next });
    } catch (err) {
      rateLimited(err);
      if (err instanceof HallpassError && err.code === 'too_many_attempts') setStep({ name: 'locked' });
      else if (err instanceof HallpassError && err.code === 'auth_request_not_found') setStep({ name: 'email' });
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  }

  async function verify(request: SendResponse, value: string) {
    if (busy) return;
    setBusy(true);
    setError(null);
    setStatus(null);
    try {
      // Not `onSignedIn?.(await ...)`: an optional call skips evaluating its argument when absent.
      const result = await client.verify(request.authRequestId, value);
      onSignedIn?.(result);
    } catch (err) {
      const code = err instanceof HallpassError ? err.code : null;
      if (code === 'otp_invalid' && err instanceof HallpassError) {
        const left = err.attemptsRemaining ?? null;
        setAttemptsLeft(left);
        if (left === 0) {
          setStep({ name: 'locked' });
          setError('Too many wrong codes. This code is locked.');
        } else {
          setError(`That code is not right.${left !== null ? ` ${left} ${left === 1 ? 'try' : 'tries'} left.` : ''}`);
          setCode('');
          codeRef.current?.focus();
        }
      } else if (code === 'too_many_attempts') {
        setStep({ name: 'locked' });
        // With Retry-After it is the address's wrong-code budget, not this request: the link still works.
        const budget = err instanceof HallpassError && err.retryAfter !== undefined;
        setError(budget ? 'Too many wrong codes for this address. Use the link in the email, or try a code later.' : 'Too many wrong codes. This code is locked.');
      } else if (code === 'otp_expired') {
        setStep({ name: 'expired', request });
        setError('This code has expired.');
      } else if (code === 'auth_request_used' || code === 'auth_request_not_found') {
        setStep({ name: 'email' });
        setError('That sign-in request is no longer valid. Ask for a new code.');
      } else setError(describe(err));
    } finally {
      setBusy(false);
    }
  }

  function onCodeInput(raw: string) {
    // Pasted codes come with spaces or dashes ("123 456"); keep the digits.
    const digits = raw.replace(/\D/g, '').slice(0, 6);
    setCode(digits);
    if (digits.length === 6 && step.name === 'code') void verify(step.request, digits);
  }

  const errorId = `${ids}-error`;
  const alert = (
    <p id={errorId} className="hp-error" role="alert">
      {error}
    </p>
  );
  // Each step opens with its heading; focus lands there on steps without a field to fill.
  const heading = (text: string) => (
    <h1 className="hp-title" id={`${ids}-title`} ref={headingRef} tabIndex={-1}>
      {text}
    </h1>
  );
  // The field that needs fixing points at the announced error.
  const invalid = error ? { 'aria-invalid': true, 'aria-describedby': errorId } : {};
  const resendLabel = wait > 0 ? `Resend code in ${wait} s` : 'Resend code';

  return (
    <section className="hp-signin" data-step={step.name} aria-labelledby={`${ids}-title`}>
      {step.name === 'email' && (
        <form onSubmit={send} noValidate>
          {heading(title)}
          <p className="hp-text">We will email you a 6-digit code and a link. No password needed.</p>
          <label className="hp-label" htmlFor={`${ids}-email`}>
            Email
          </label>
          <input
            ref={emailRef}
            id={`${ids}-email`}
            className="hp-input"
            type="email"
            name="email"
            autoComplete="email"
            required
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            {...invalid}
          />
          <button className="hp-button" type="submit" disabled={busy || !email.trim() || (wait > 0 && !!error)}>
            {wait > 0 && error ? `Try again in ${wait} s` : 'Email me a code'}
          </button>
          {alert}
          {hint && <div className="hp-muted">{hint}</div>}
        </form>
      )}

      {step.name === 'code' && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void verify(step.request, code);
          }}
          noValidate
        >
          {heading('Check your email')}
          <p className="hp-text" role="status">
            {status} Enter the 6-digit code, or open the link in the email. It works for {Math.round(step.request.expiresIn / 60)}{' '}
            minutes.
          </p>
          <label className="hp-label" htmlFor={`${ids}-code`}>
            6-digit code
          </label>
          <input
            ref={codeRef}
            id={`${ids}-code`}
            className="hp-input hp-code-input"
            name="code"
            inputMode="numeric"
            autoComplete="one-time-code"
            pattern="[0-9]{6}"
            maxLength={12}
            required
            value={code}
            onChange={(e) => onCodeInput(e.target.value)}
            {...invalid}
          />
          <button className="hp-button" type="submit" disabled={busy || code.length !== 6}>
            Sign in
          </button>
          {alert}
          {attemptsLeft !== null && <p className="hp-muted" data-attempts-left={attemptsLeft}>Tries left: {attemptsLeft}</p>}
          <div className="hp-row">
            <button className="hp-button hp-button--secondary" type="button" disabled={busy || wait > 0} onClick={() => void resend(step.request)}>
              {resendLabel}
            </button>
            <button className="hp-link" type="button" onClick={() => setStep({ name: 'email' })}>
              Use another email
            </button>
          </div>
        </form>
      )}

      {step.name === 'expired' && (
        <div>
          {heading('This code has expired')}
          <p className="hp-text">Codes work for a few minutes only. Ask for a new one; it goes to {email}.</p>
          {alert}
          <button className="hp-button" type="button" disabled={busy || wait > 0} onClick={() => void resend(step.request)}>
            {wait > 0 ? `Send a new code in ${wait} s` : 'Send a new code'}
          </button>
        </div>
      )}

      {step.name === 'locked' && (
        <div>
          {heading('Sign-in locked')}
          <p className="hp-text">Too many wrong codes were tried, so this code no longer works. Ask for a new one to continue.</p>
          {alert}
          <button className="hp-button" type="button" disabled={busy || wait > 0} onClick={() => void send()}>
            {wait > 0 ? `Send a new code in ${wait} s` : 'Send a new code'}
          </button>
          <button className="hp-link" type="button" onClick={() => setStep({ name: 'email' })}>
            Use another email
          </button>
        </div>
      )}
    </section>
  );
}
