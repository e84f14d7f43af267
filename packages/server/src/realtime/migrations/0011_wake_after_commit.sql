-- 0011 realtime: the sign-in path wakes realtime readers after it commits, not by NOTIFY inside its
-- transaction.
--
-- A transaction that has called NOTIFY holds a database-wide lock from just before its commit until
-- the commit is on disk, so every sign-in that notified queued behind the previous one's WAL flush.
-- A transaction may now say it will wake the readers itself once committed, by setting
-- hallpass.realtime_wake_after_commit = 'on' locally; the server then pokes its own reader in process
-- and wakes other instances with hallpass.realtime_wake. Every other writer (the data API, psql,
-- another app) still notifies from the trigger as before.
create or replace function hallpass.realtime_notify() returns trigger
language plpgsql
as $$
begin
  if coalesce(current_setting('hallpass.realtime_wake_after_commit', true), '') <> 'on' then
    perform pg_notify('hallpass_realtime', '');
  end if;
  return null;
end $$;

-- The cross-instance wake, one statement outside any writing transaction. It carries the sending
-- instance's id so that instance can ignore its own echo. The notification is only a wake-up (readers
-- re-read the log, and poll as well), so its commit need not wait for the disk: synchronous_commit is
-- off for this one transaction, and the notify lock is held for microseconds.
create or replace function hallpass.realtime_wake(p_origin text) returns void
language plpgsql
as $$
begin
  perform set_config('synchronous_commit', 'off', true);
  perform pg_notify('hallpass_realtime', p_origin);
end $$;

revoke all on function hallpass.realtime_wake(text) from public;
