-- 0005 mail: the outbox (the send endpoint only enqueues; a worker delivers with retries) and the
-- dev mailbox used when no SMTP server is configured.

create table hallpass.mail_outbox (
  id bigint generated always as identity primary key,
  auth_request_id uuid,
  to_email text not null,
  -- AES-256-GCM sealed message data (it carries the code and link); cleared once delivered.
  payload bytea,
  status text not null default 'pending' check (status in ('pending', 'sending', 'sent', 'failed', 'superseded', 'expired')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  locked_until timestamptz,
  last_error text,
  created_at timestamptz not null default now(),
  sent_at timestamptz
);
create index mail_outbox_pending_idx on hallpass.mail_outbox (next_attempt_at) where status = 'pending';
create index mail_outbox_leased_idx on hallpass.mail_outbox (locked_until) where status = 'sending';
create index mail_outbox_auth_request_idx on hallpass.mail_outbox (auth_request_id);

-- No NOTIFY trigger here on purpose: a transaction that notifies holds a database-wide lock through
-- its commit's disk flush, which would serialise every sign-in. The enqueuing instance wakes its own
-- worker after commit and notifies the others outside the transaction; workers also poll.

-- Development only: what would have been sent. Holds codes in clear, which is why it is off whenever
-- SMTP is configured or the server runs in production.
create table hallpass.dev_mailbox (
  id bigint generated always as identity primary key,
  to_email text not null,
  subject text not null,
  text_body text not null,
  html_body text not null,
  code text,
  link text,
  sent_at timestamptz not null default now()
);
create index dev_mailbox_to_idx on hallpass.dev_mailbox (to_email, id desc);
