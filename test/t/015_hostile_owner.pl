# 015_hostile_owner.pl — a database owner who is not a superuser cannot get
# the worker (which connects as the bootstrap superuser) to run their code.
#
# Role app owns the worker's database and the inbox tables. It sets
# ALTER DATABASE ... SET search_path = evil, pg_catalog, public and puts in
# schema evil what an unqualified statement would pick up: operators
# (= on name and text, > on timestamptz, * on numeric), domains named like
# the built-in types that casts name (timestamptz, float8, jsonb, interval,
# int8), functions named like built-ins (now, to_timestamp, to_char), plus
# the table-level shapes that run code on a read (an extended statistics
# object on an expression, an index expression over app's own operator, a
# row-level security policy) and a trigger. Every one of them records
# current_user and tries ALTER ROLE app SUPERUSER. The worker then runs
# whole cycles (claim, fetch, save, stale sweep, account events after a 190)
# and is restarted in between, and records a 190 under DateStyle SQL, DMY
# and TimeZone Asia/Kolkata set by ALTER SYSTEM; none of app's code ever
# ran as a superuser and app is still not one.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $mock = start_mock();
my $node = new_worker_node('hostile', mock => $mock,
	conf => "ig_identity.database = 'inbox'\nig_identity.stale_after = 60\n");
$node->start;

my $A = ACCOUNT_A;
my ($JANE, $JOHN, $STORE) = (USER_JANE, USER_JOHN, USER_STORE);

# Our own sessions pin their path too: the database's setting is app's.
# And they read app's tables only as app: planning a read of them runs
# app's code (the statistics and index expressions below) as the reader.
sub sql
{
	return $node->safe_psql('inbox', "SET search_path = pg_catalog, public;\n" . $_[0]);
}

sub as_app
{
	return $node->safe_psql('inbox', "SET search_path = pg_catalog, public; SET ROLE app;\n" . $_[0]);
}

$node->safe_psql('postgres', 'CREATE ROLE app LOGIN');
$node->safe_psql('postgres', 'CREATE DATABASE inbox OWNER app');
sql('CREATE EXTENSION ig_identity SCHEMA public');
sql("SELECT public.ig_connect_account('loc_a', '$A', '$A', '" . TOKEN_A . "', 'graph.facebook.com')");
sql("ALTER TABLE public.instagram_user_cache OWNER TO app;
     ALTER TABLE public.instagram_conversations OWNER TO app;
     ALTER TABLE public.instagram_messages OWNER TO app");

# --- app's traps, made by app alone -----------------------------------------
as_app(<<'EOSQL');
CREATE SCHEMA evil;
CREATE TABLE evil.log (ran_as text, was_super boolean, via text, at timestamptz DEFAULT pg_catalog.clock_timestamp());
GRANT USAGE ON SCHEMA evil TO PUBLIC;
GRANT INSERT, SELECT ON evil.log TO PUBLIC;
-- records who runs it, and tries to make app a superuser
CREATE FUNCTION evil.trap(via text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO evil.log (ran_as, was_super, via)
    SELECT pg_catalog.current_user(), r.rolsuper, via FROM pg_catalog.pg_roles r
     WHERE r.rolname OPERATOR(pg_catalog.=) pg_catalog.current_user();
    BEGIN
        EXECUTE 'ALTER ROLE app SUPERUSER';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END $$;
GRANT EXECUTE ON FUNCTION evil.trap(text) TO PUBLIC;

-- operators that shadow pg_catalog's on an unqualified name
CREATE FUNCTION evil.name_eq(name, name) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM evil.trap('= (name)'); RETURN pg_catalog.nameeq($1, $2); END $$;
CREATE OPERATOR evil.= (LEFTARG = name, RIGHTARG = name, FUNCTION = evil.name_eq);
CREATE FUNCTION evil.text_eq(text, text) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM evil.trap('= (text)'); RETURN pg_catalog.texteq($1, $2); END $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq);
CREATE FUNCTION evil.ts_gt(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM evil.trap('> (timestamptz)'); RETURN pg_catalog.timestamptz_gt($1, $2); END $$;
CREATE OPERATOR evil.> (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = evil.ts_gt);
CREATE FUNCTION evil.num_mul(numeric, integer) RETURNS numeric LANGUAGE plpgsql AS
  $$ BEGIN PERFORM evil.trap('* (numeric)'); RETURN pg_catalog.numeric_mul($1, $2::pg_catalog.numeric); END $$;
CREATE OPERATOR evil.* (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = evil.num_mul);

-- casts: an unqualified type name in $1::type finds these domains first
CREATE DOMAIN evil.timestamptz AS pg_catalog.timestamptz CHECK (evil.trap('::timestamptz'));
CREATE DOMAIN evil.float8 AS pg_catalog.float8 CHECK (evil.trap('::float8'));
CREATE DOMAIN evil.jsonb AS pg_catalog.jsonb CHECK (evil.trap('::jsonb'));
CREATE DOMAIN evil.interval AS pg_catalog.interval CHECK (evil.trap('::interval'));
CREATE DOMAIN evil.int8 AS pg_catalog.int8 CHECK (evil.trap('::int8'));

-- functions named like built-ins
CREATE FUNCTION evil.now() RETURNS pg_catalog.timestamptz LANGUAGE plpgsql AS
  $$ BEGIN PERFORM evil.trap('now()'); RETURN pg_catalog.now(); END $$;
CREATE FUNCTION evil.to_timestamp(pg_catalog.float8) RETURNS pg_catalog.timestamptz LANGUAGE plpgsql AS
  $$ BEGIN PERFORM evil.trap('to_timestamp()'); RETURN pg_catalog.to_timestamp($1); END $$;
CREATE FUNCTION evil.to_char(pg_catalog.timestamptz, pg_catalog.text) RETURNS pg_catalog.text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM evil.trap('to_char()'); RETURN pg_catalog.to_char($1, $2); END $$;

-- code on app's own tables: it may run, but only as app
CREATE FUNCTION evil.const() RETURNS text LANGUAGE plpgsql IMMUTABLE AS
  $$ BEGIN PERFORM evil.trap('statistics / index / policy'); RETURN ''; END $$;
CREATE STATISTICS evil.cache_stats ON ((ig_user_id OPERATOR(pg_catalog.||) evil.const()))
  FROM public.instagram_user_cache;
CREATE FUNCTION evil.txt_cat(text, text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS
  $$ BEGIN PERFORM evil.trap('index operator'); RETURN $1 OPERATOR(pg_catalog.||) $2; END $$;
CREATE OPERATOR evil.||| (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.txt_cat);
-- constant arguments: the relation cache folds them as whoever plans a read
CREATE INDEX cache_evil_idx ON public.instagram_user_cache
  ((ig_user_id OPERATOR(pg_catalog.||) ('a'::text OPERATOR(evil.|||) 'b'::text)));
ALTER TABLE public.instagram_user_cache ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.instagram_user_cache FORCE ROW LEVEL SECURITY;
CREATE POLICY every_row ON public.instagram_user_cache USING (evil.trap('policy'));
CREATE FUNCTION evil.audit() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM evil.trap('trigger'); RETURN NEW; END $$;
CREATE TRIGGER audit BEFORE INSERT OR UPDATE ON public.instagram_user_cache
  FOR EACH ROW EXECUTE FUNCTION evil.audit();
ALTER DATABASE inbox SET search_path = evil, pg_catalog, public;
TRUNCATE evil.log;   -- creating the index and statistics ran app's code, as app
EOSQL

# The traps are live: anyone whose path is the database's runs them.
my $probe = $node->safe_psql('inbox', "SET ROLE app; SELECT 'a'::name = 'b'::name; SELECT NULL::timestamptz IS NULL;");
is(sql("SELECT pg_catalog.string_agg(DISTINCT via, ', ' ORDER BY via) FROM evil.log WHERE ran_as = 'app'"),
	'::timestamptz, = (name)', 'the traps fire for a session that takes the database\'s search_path');
sql('TRUNCATE evil.log');

# The worker reads the database's settings when it connects: restart it.
$node->restart;

sub worker
{
	my $row = sql("SELECT coalesce(pid, 0), cycles, coalesce(last_error, '') FROM public.ig_identity_worker_state()");
	my @v = split /\|/, $row, -1;
	return { pid => $v[0], cycles => $v[1], last_error => $v[2] };
}

sub username
{
	my ($user) = @_;
	return as_app("SELECT coalesce(username, '') FROM public.instagram_user_cache"
		  . " WHERE ig_account_id = '$A' AND ig_user_id = '$user'");
}

sub queued { return sql('SELECT count(*) FROM ig_identity.refresh_queue'); }

sub account_status
{
	return sql("SELECT status FROM ig_identity.accounts WHERE ig_account_id = '$A'");
}

sub queue_rows
{
	my @users = @_;
	sql("INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason) VALUES "
		  . join(', ', map { "('$A', '$_', 'manual')" } @users) . ' ON CONFLICT DO NOTHING');
}

ok(wait_until(sub { worker()->{pid} != 0 }, 30), 'the worker runs in app\'s database');

# --- claim, fetch, save ------------------------------------------------------
queue_rows($JANE, $JOHN);
ok(wait_until(sub { username($JANE) eq 'jane.doe' && username($JOHN) eq 'john.smith' }, 30),
	'the worker claims, fetches and saves identities')
  or diag('worker: ' . join(' ', %{ worker() }));

# --- the stale sweep ---------------------------------------------------------
as_app("UPDATE public.instagram_user_cache SET last_fetched_at = pg_catalog.now() - interval '3 days',"
	  . " username = 'old.name' WHERE ig_user_id = '$JANE'");
ok(wait_until(sub { username($JANE) eq 'jane.doe' }, 30), 'the stale sweep queues and refetches an old identity');

# --- account events: a 190 ----------------------------------------------------
mock_admin($mock, 'POST', '/_admin/faults',
	{ match => { account => $A }, fault => { type => 'graph_error', code => 190 } });
queue_rows($STORE);
ok(wait_until(sub { account_status() eq 'reauth_required' }, 30), 'a 190 is recorded: the account is reauth_required');
mock_admin($mock, 'DELETE', '/_admin/faults');

# --- restarted, the worker goes on ------------------------------------------
$node->restart;
sql("SELECT public.ig_connect_account('loc_a', '$A', '$A', '" . TOKEN_A . "', 'graph.facebook.com')");
ok(wait_until(sub { username($STORE) eq 'stories.in.store' }, 30), 'after a restart the worker resolves the rest');
my $cycles = worker()->{cycles};
ok(wait_until(sub { worker()->{cycles} >= $cycles + 2 }, 30), 'and keeps cycling');
is(worker()->{last_error}, '', 'with no error');

# --- a 190 under DateStyle 'SQL, DMY' and TimeZone 'Asia/Kolkata' -----------
# (set with ALTER SYSTEM, so the worker runs under them; 'IST' would read
# back as Israel time if a rotation time went through text)
sql("ALTER SYSTEM SET DateStyle = 'SQL, DMY'");
sql("ALTER SYSTEM SET TimeZone = 'Asia/Kolkata'");
$node->restart;
ok(wait_until(sub { worker()->{pid} != 0 }, 30), 'the worker runs under DateStyle SQL, DMY and TimeZone Asia/Kolkata');
mock_admin($mock, 'POST', '/_admin/faults',
	{ match => { account => $A }, fault => { type => 'graph_error', code => 190 } });
sql("DELETE FROM ig_identity.refresh_queue");
queue_rows($JOHN);
ok(wait_until(sub { account_status() eq 'reauth_required' }, 30),
	'under those settings the worker records a 190 too');
mock_admin($mock, 'DELETE', '/_admin/faults');
sql("ALTER SYSTEM RESET DateStyle");
sql("ALTER SYSTEM RESET TimeZone");

# --- what app's code ran as --------------------------------------------------
is(sql('SELECT count(*) FROM evil.log WHERE was_super'), '0', 'none of app\'s code ever ran as a superuser')
  or diag(sql('SELECT ran_as, via, count(*) FROM evil.log GROUP BY 1, 2 ORDER BY 1, 2'));
is(sql("SELECT pg_catalog.string_agg(DISTINCT ran_as, ',') FROM evil.log"), 'app',
	'what of it ran (its table\'s trigger, statistics, index, policy) ran as app');
like(sql("SELECT pg_catalog.string_agg(DISTINCT via, ',') FROM evil.log"), qr/trigger/,
	'the trigger on app\'s table did run (as app)');
is(sql("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = 'app'"), 'f', 'app is still not a superuser');

$node->stop;
done_testing();
