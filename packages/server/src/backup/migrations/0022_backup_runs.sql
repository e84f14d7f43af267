-- 0022 backup: the scheduled-backup bookkeeping table, as a numbered migration like every other
-- table Hallpass owns (the scheduler created it itself before; `if not exists` keeps those databases).

-- One row per scheduled time: the first instance to insert it takes that backup, so three instances
-- on one database make one backup per slot; the row then records how the run ended.
create table if not exists hallpass.backup_runs (
  slot timestamptz primary key,
  instance text not null,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  status text,
  file text,
  error text
);
comment on table hallpass.backup_runs is
  'Scheduled backups (migration 0022): which instance took each slot and how it ended. Written only by the server''s own database user.';
-- As for API clients (0017): no grant to any client role, and RLS forced with a policy only for the
-- server's own database user (the one running this migration).
revoke all on hallpass.backup_runs from public, anon, authenticated;
alter table hallpass.backup_runs enable row level security;
alter table hallpass.backup_runs force row level security;
do $$
begin
  if not exists (select 1 from pg_policy where polrelid = 'hallpass.backup_runs'::regclass and polname = 'server_only') then
    execute format('create policy server_only on hallpass.backup_runs to %I using (true) with check (true)', current_user);
  end if;
end $$;
comment on policy server_only on hallpass.backup_runs is
  'Only the Hallpass server''s own database user records and reads scheduled backup runs.';
