-- 0010 realtime: one ordered log of row changes (from published tables) and broadcasts, a NOTIFY
-- per committing statement, and the per-subscriber RLS check the delivery path runs before sending.

-- Every event realtime delivers: a row change captured by trigger, or a broadcast on a topic. The
-- id orders events; tx (the writer's transaction id) lets readers tell a gap that is still in
-- flight from one that will never fill (a rolled-back writer), so out-of-order commits lose nothing.
create sequence hallpass.realtime_events_id_seq;

-- The reader's gap rule needs every writer to hold its transaction id before it takes an event id.
-- A trigger's writer already does (it wrote the row first); a bare INSERT of a broadcast might
-- evaluate nextval before its first write assigns one, so the id comes from here.
create or replace function hallpass.realtime_next_id() returns bigint
language plpgsql volatile
as $$
begin
  perform pg_current_xact_id();
  return nextval('hallpass.realtime_events_id_seq');
end $$;

create table hallpass.realtime_events (
  id bigint primary key default hallpass.realtime_next_id(),
  tx xid8 not null default pg_current_xact_id(),
  kind text not null check (kind in ('change', 'broadcast')),
  -- change
  schema_name text,
  table_name text,
  op text check (op in ('INSERT', 'UPDATE', 'DELETE')),
  record jsonb,
  old_record jsonb,
  -- broadcast
  topic text,
  event text,
  payload jsonb,
  private boolean not null default false,
  -- Which channel sent a client broadcast (instance:socket:join_ref), so `self: false` can skip it.
  origin text,
  created_at timestamptz not null default now(),
  check ((kind = 'change') = (table_name is not null and op is not null)),
  check ((kind = 'broadcast') = (topic is not null and event is not null))
);
comment on table hallpass.realtime_events is 'Realtime change log and broadcast log; pruned after the retention window.';
alter sequence hallpass.realtime_events_id_seq owned by hallpass.realtime_events.id;
create index realtime_events_created_idx on hallpass.realtime_events (created_at);
create index realtime_events_topic_idx on hallpass.realtime_events (topic, id) where kind = 'broadcast';

-- One wake-up per statement; readers fetch by id, so the payload carries nothing.
create or replace function hallpass.realtime_notify() returns trigger
language plpgsql
as $$
begin
  perform pg_notify('hallpass_realtime', '');
  return null;
end $$;

create trigger realtime_events_notify after insert on hallpass.realtime_events
  for each statement execute function hallpass.realtime_notify();

-- security definer: a client writing its own row (as authenticated) must leave a log entry it may
-- not write itself. The full old row is kept so DELETE filters can be matched; only the primary
-- key of it is ever sent.
create or replace function hallpass.realtime_capture() returns trigger
language plpgsql security definer set search_path = pg_catalog
as $$
begin
  insert into hallpass.realtime_events (kind, schema_name, table_name, op, record, old_record)
  values ('change', tg_table_schema, tg_table_name, tg_op,
          case when tg_op <> 'DELETE' then to_jsonb(new) end,
          case when tg_op <> 'INSERT' then to_jsonb(old) end);
  return null;
end $$;

-- Per-table visibility checkers, called while the role is switched to the subscriber's: a static
-- query, so each backend plans it once instead of once per check. They run as the caller (RLS
-- applies) and answer only what the caller could ask the table directly.
create schema if not exists hallpass_realtime;
grant usage on schema hallpass_realtime to anon, authenticated, service_role;

-- Publishing a table is one call: select hallpass.realtime_publish('public.offers');
create or replace function hallpass.realtime_publish(tbl regclass) returns void
language plpgsql
as $$
declare
  cond text;
begin
  select string_agg(format('t.%I = (pk ->> %L)::%s', a.attname, a.attname, format_type(a.atttypid, a.atttypmod)), ' and ')
    into cond
    from pg_index x join pg_attribute a on a.attrelid = x.indrelid and a.attnum = any (x.indkey)
   where x.indrelid = tbl and x.indisprimary;
  if cond is null then
    raise exception 'realtime: % has no primary key; events identify rows by it', tbl;
  end if;
  execute format('create or replace function hallpass_realtime.%I(pk jsonb) returns boolean
                  language plpgsql stable as $f$ begin return exists (select 1 from %s t where %s); end $f$',
                 'visible_' || tbl::oid, tbl, cond);
  execute format('drop trigger if exists hallpass_realtime_capture on %s', tbl);
  execute format('create trigger hallpass_realtime_capture after insert or update or delete on %s
                  for each row execute function hallpass.realtime_capture()', tbl);
end $$;

create or replace function hallpass.realtime_unpublish(tbl regclass) returns void
language plpgsql
as $$
begin
  execute format('drop trigger if exists hallpass_realtime_capture on %s', tbl);
  execute format('drop function if exists hallpass_realtime.%I(jsonb)', 'visible_' || tbl::oid);
end $$;

-- The statement that asks "is this row (by primary key) visible?" for one table: its checker when
-- published, else a generic query.
create or replace function hallpass.realtime_pk_query(tbl regclass) returns text
language sql stable
as $$
  select case
    when exists (select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                  where n.nspname = 'hallpass_realtime' and p.proname = 'visible_' || tbl::oid)
    then format('select hallpass_realtime.%I($1)', 'visible_' || tbl::oid)
    else (select format('select exists (select 1 from %s t, jsonb_populate_record(null::%s, $1) r where %s)',
                        tbl, tbl, string_agg(format('t.%I = r.%I', a.attname, a.attname), ' and '))
            from pg_index x join pg_attribute a on a.attrelid = x.indrelid and a.attnum = any (x.indkey)
           where x.indrelid = tbl and x.indisprimary)
  end
$$;

-- Is row `pks[i]` of `tables[i]` visible to role `roles[i]` with claims `claims[i]`? One call checks
-- a whole batch (many subscribers, many changes). The batch first runs in one go; if any policy
-- errors, it is redone with each check in its own subtransaction, so the error counts as "not
-- visible" for the subscriber it belongs to and drops nothing for the others. The role switches are
-- transaction-local and end with the caller's transaction.
create or replace function hallpass.realtime_visible(tables regclass[], pks jsonb[], roles text[], claims text[])
returns boolean[]
language plpgsql
as $$
declare
  result boolean[];
  visible boolean;
  -- The check statement of each item, built per distinct table before any role switch (the
  -- subscriber roles may not use this schema).
  queries text[] := array(
    select d.q from unnest(tables) with ordinality as u (t, ord)
      join (select x.t, hallpass.realtime_pk_query(x.t) as q from (select distinct t from unnest(tables) t) x) d on d.t = u.t
     order by u.ord);
  isolate boolean;
  i int;
begin
  foreach isolate in array array[false, true] loop
    result := '{}';
    begin
      for i in 1 .. coalesce(array_length(tables, 1), 0) loop
        visible := false;
        if roles[i] in ('anon', 'authenticated', 'service_role') then
          if not isolate then
            perform set_config('role', roles[i], true), set_config('request.jwt.claims', claims[i], true);
            execute queries[i] into visible using pks[i];
          else
            begin
              perform set_config('role', roles[i], true), set_config('request.jwt.claims', claims[i], true);
              execute queries[i] into visible using pks[i];
            exception when others then
              visible := false;
            end;
          end if;
        end if;
        result := result || coalesce(visible, false);
      end loop;
      perform set_config('role', 'none', true), set_config('request.jwt.claims', '', true);
      return result;
    exception when others then
      if isolate then
        raise;
      end if;
    end;
  end loop;
  return result;
end $$;
revoke all on function hallpass.realtime_visible(regclass[], jsonb[], text[], text[]) from public;
revoke all on function hallpass.realtime_publish(regclass) from public;
revoke all on function hallpass.realtime_pk_query(regclass) from public;
revoke all on function hallpass.realtime_unpublish(regclass) from public;

select hallpass.realtime_publish('public.profiles');
