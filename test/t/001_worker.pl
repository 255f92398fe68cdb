# 001_worker.pl — the background worker's life: it starts with preloading,
# waits quietly (one log line) while the extension is missing, follows SIGHUP,
# wakes at COMMIT but not on ROLLBACK, stops on SIGTERM within a second, and
# without preloading the SQL side says the worker needs it.
# Needs no fetch engine: queue rows here are never due.
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
my $node = new_worker_node('worker', mock => $mock);
$node->start;

# --- it starts, and shows itself ------------------------------------------
ok(wait_until(sub { worker_pid($node) ne '' }), 'worker starts with preload');
my $pid = worker_pid($node);
is( $node->safe_psql('postgres',
		"SELECT backend_type || ' / ' || coalesce(application_name, '') FROM pg_stat_activity WHERE pid = $pid"),
	'ig_identity worker / ig_identity worker',
	'pg_stat_activity shows its backend_type');

# --- extension missing: one line, no loop ----------------------------------
my $missing = qr/ig_identity worker is waiting: extension "ig_identity" is not installed in database "postgres"/;
ok($node->wait_for_log($missing, 0), 'missing extension is logged');
sleep(3.5);    # three and a half refresh intervals
is(count_matches(log_since($node, 0), $missing), 1, 'missing extension logged once, not every pass');
is(worker_pid($node), $pid, 'worker did not restart while waiting');
is(count_matches(log_since($node, 0), qr/ig_identity worker started/), 1, 'worker started once');

# --- the extension arrives -------------------------------------------------
my $off = -s $node->logfile;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
ok($node->wait_for_log(qr/ig_identity worker is refreshing identities in database "postgres"/, $off),
	'worker notices the extension');
ok(wait_until(sub { worker_state($node)->{cycles} >= 2 }), 'worker cycles every refresh_interval');
is(worker_state($node)->{pid}, $pid, 'ig_identity_worker_state() reports the worker');
is($node->safe_psql('postgres', 'SELECT ig_identity_wakeup()'), 't', 'ig_identity_wakeup() finds the worker');

# From another database the worker is not "found", and the NOTICE says why.
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION ig_identity');
my ($ret, $stdout, $stderr) = $node->psql('other', 'SELECT ig_identity_wakeup()');
is($stdout, 'f', 'ig_identity_wakeup() in another database returns false');
like($stderr, qr/serves another database.*database "postgres"/s, 'and says which database it serves');

# --- SIGHUP: a longer interval stops the timer wake-ups, a shorter restarts them
$node->safe_psql('postgres', "ALTER SYSTEM SET ig_identity.refresh_interval = '1h'");
$node->reload;
sleep(1);    # the reload itself wakes the worker once
my $c0 = worker_state($node)->{cycles};
sleep(2.5);
is(worker_state($node)->{cycles}, $c0, 'after SIGHUP with refresh_interval = 1h: no timer cycles');

# --- wake at COMMIT, never on ROLLBACK -------------------------------------
connect_account($node);
sleep(0.5);
my $s0 = worker_state($node);
$node->safe_psql('postgres', qq{
	BEGIN;
	INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
	VALUES ('@{[ACCOUNT_A]}', '@{[USER_JANE]}', 'new', now() + interval '1 day');
	ROLLBACK;});
sleep(1.5);
my $s1 = worker_state($node);
is($s1->{wakeups}, $s0->{wakeups}, 'a rolled-back queue insert requests no wake-up');
is($s1->{cycles}, $s0->{cycles}, 'a rolled-back queue insert runs no cycle');

$node->safe_psql('postgres', qq{
	INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
	VALUES ('@{[ACCOUNT_A]}', '@{[USER_JANE]}', 'new', now() + interval '1 day');});
ok(wait_until(sub { worker_state($node)->{cycles} > $s1->{cycles} }, 5),
	'a committed queue insert wakes the worker');
is(worker_state($node)->{wakeups}, $s1->{wakeups} + 1, 'exactly one wake-up per committing transaction');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ig_identity.refresh_queue WHERE leased_by IS NOT NULL'),
	'0', 'a row not yet due is not claimed');

$node->safe_psql('postgres', "ALTER SYSTEM SET ig_identity.refresh_interval = '1s'");
$node->reload;
sleep(0.5);
$c0 = worker_state($node)->{cycles};
ok(wait_until(sub { worker_state($node)->{cycles} >= $c0 + 2 }, 4),
	'after SIGHUP with refresh_interval = 1s: cycles every second again');

# --- an ERROR in a cycle is logged, the worker lives on and backs off ----
$node->safe_psql('postgres', q{
	CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS
	  $$BEGIN RAISE EXCEPTION 'boom from a test trigger' USING HINT = 'Drop the trigger.'; END$$;
	CREATE TRIGGER boom BEFORE UPDATE ON ig_identity.refresh_queue
	  FOR EACH STATEMENT EXECUTE FUNCTION boom();});
$off = -s $node->logfile;
ok($node->wait_for_log(qr/ig_identity worker WARNING:  boom from a test trigger/, $off),
	'a failed cycle is logged as a WARNING with its message');
my $log = log_since($node, $off);
like($log, qr/HINT:  Drop the trigger\.\n.*CONTEXT:.*ig_identity worker, while claiming refresh queue/s,
	'with its hint and the step that failed');
sleep(2);
is(worker_pid($node), $pid, 'the worker did not exit on the ERROR');
my $st = worker_state($node);
cmp_ok($st->{errors}, '>=', 1, 'ig_identity_worker_state() counts the error');
is($st->{last_error}, 'boom from a test trigger', 'and keeps its message');
is(count_matches(log_since($node, 0), qr/ig_identity worker started/), 1, 'no restart, no crash loop');
$node->safe_psql('postgres', 'DROP TRIGGER boom ON ig_identity.refresh_queue');
sleep(1.5);    # a backoff of at most refresh_interval
my $e0 = worker_state($node)->{errors};
$c0 = worker_state($node)->{cycles};
ok(wait_until(sub { worker_state($node)->{cycles} >= $c0 + 2 }, 4), 'after the cause is gone, cycles resume');
is(worker_state($node)->{errors}, $e0, 'without further errors');

# --- the status view -------------------------------------------------------
is( $node->safe_psql('postgres',
		"SELECT ig_account_id || ' ' || status || ' ' || queue_depth || ' ' || in_flight || ' ' || (worker_pid = $pid)"
		  . ' FROM ig_identity_status'),
	ACCOUNT_A . ' active 1 0 true',
	'ig_identity_status: account, queue depth, worker');
unlike($node->safe_psql('postgres', 'SELECT s::text FROM ig_identity_status s'),
	qr/@{[TOKEN_A]}/, 'ig_identity_status never shows the token');
$node->safe_psql('postgres', 'CREATE ROLE nobody LOGIN');
($ret, $stdout, $stderr) = $node->psql('postgres', 'SELECT * FROM ig_identity_status',
	extra_params => [ '-U', 'nobody' ]);
like($stderr, qr/permission denied/, 'PUBLIC cannot read ig_identity_status');

# --- SIGTERM: gone within a second, not restarted --------------------------
my $t0 = time();
kill 'TERM', $pid;
ok(wait_until(sub { !kill(0, $pid) }, 5), 'worker exits on SIGTERM');
cmp_ok(time() - $t0, '<', 1.0, 'within a second');
sleep(1);
is(worker_pid($node), '', 'a worker stopped by SIGTERM is not restarted');

# --- without preloading, the SQL side says the worker needs it ------------
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->restart;
($ret, $stdout, $stderr) = $node->psql('postgres', 'SELECT ig_identity_wakeup()');
is($stdout, 'f', 'ig_identity_wakeup() without preloading returns false');
like($stderr, qr/WARNING:.*background worker is not available.*HINT:\s+Add ig_identity to shared_preload_libraries/s,
	'and hints at shared_preload_libraries');
is($node->safe_psql('postgres', 'SELECT pid IS NULL FROM ig_identity_worker_state()'), 't',
	'ig_identity_worker_state() has no pid without preloading');
# the commit trigger is harmless without a worker
$node->safe_psql('postgres', qq{
	INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
	VALUES ('@{[ACCOUNT_A]}', '@{[USER_JOHN]}', 'new', now() + interval '1 day');});
pass('queueing without a preloaded worker works');

$node->stop;
stop_mock($mock);
done_testing();
