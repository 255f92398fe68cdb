# 025_worker_recovery.pl — the worker recovers from what an operator does to
# it, and late work is not late (issue 13):
#   (a) ig_identity.database names a database that does not exist: one
#       FATAL from PostgreSQL, then one WARNING with a hint, the cause in
#       ig_identity_worker_state(), and no restart loop; once the database is
#       created the worker serves it; DROP DATABASE ... WITH (FORCE) sends it
#       back to waiting; pg_ctl stop -m fast ends the waiting worker;
#   (b) with refresh_interval = 1h, ig_identity_wakeup() runs the stale sweep
#       and the rows it queued are refreshed within seconds, not an hour later;
#   (c) an account stop left by a failed ig_resolve_profile survives a failed
#       claim and is recorded once the worker's claims work again;
#   (d) pg_ctl stop -m fast ends a worker waiting on a lock held by a
#       prepared transaction.
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
my $A = ACCOUNT_A;

# --- (a) a missing database --------------------------------------------------
{
	my $node = new_worker_node('missing_db', mock => $mock,
		conf => "ig_identity.database = 'inbox'\n");
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
	my $warning = qr/WARNING:  ig_identity worker: database "inbox" named by ig_identity.database does not exist/;
	my $fatal = qr/FATAL:  database "inbox" does not exist/;

	ok($node->wait_for_log($warning, 0), 'a missing database is reported by a WARNING');
	my $log = log_since($node, 0);
	like($log, qr/HINT:  Create the database, or set ig_identity.database/, 'with a hint');
	is(count_matches($log, $fatal), 1, 'after one failed connection');
	like(worker_state($node)->{last_error}, qr/database "inbox" named by ig_identity.database does not exist/,
		'ig_identity_worker_state() shows the cause');
	my $pid = worker_pid($node);
	isnt($pid, '', 'the waiting worker runs, connected to no database');

	# Before the fix: a FATAL every bgw_restart_time (10 s).  Two periods.
	sleep(22);
	$log = log_since($node, 0);
	is(count_matches($log, $fatal), 1, 'no restart loop: still one FATAL after two restart periods');
	is(count_matches($log, $warning), 1, 'and one WARNING');
	is(worker_pid($node), $pid, 'the same worker waits');

	my $off = -s $node->logfile;
	$node->safe_psql('postgres', 'CREATE DATABASE inbox');
	$node->safe_psql('inbox', 'CREATE EXTENSION ig_identity');
	ok($node->wait_for_log(qr/database "inbox" can be connected to now/, $off),
		'the created database is noticed');
	ok($node->wait_for_log(qr/ig_identity worker started for database "inbox"/, $off),
		'and a new worker serves it');
	ok(wait_until(sub {
		$node->safe_psql('inbox', 'SELECT cycles > 0 FROM ig_identity_worker_state()') eq 't' }, 30),
		'which runs cycles');
	is(count_matches(log_since($node, $off), $fatal), 0, 'without another failed connection');

	$off = -s $node->logfile;
	$node->safe_psql('postgres', 'DROP DATABASE inbox WITH (FORCE)');
	ok($node->wait_for_log($warning, $off), 'after DROP DATABASE ... WITH (FORCE) the worker waits again');
	my $t0 = time();
	$node->stop('fast');
	cmp_ok(time() - $t0, '<', 30, 'pg_ctl stop -m fast ends the waiting worker');
}

# --- (b) the stale sweep on ig_identity_wakeup(), refresh_interval = 1h ----
my $node = new_worker_node('sweep_now', mock => $mock,
	conf => "ig_identity.refresh_interval = '1h'\nmax_prepared_transactions = 2\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
connect_account($node);
sub sql { return $node->safe_psql('postgres', $_[0]); }
ok(wait_until(sub { worker_state($node)->{cycles} >= 1 }), 'the first cycle (and its sweep) ran');
my $J = USER_JANE;
sql(qq{INSERT INTO public.instagram_user_cache (ig_account_id, ig_user_id, username, last_fetched_at, fetch_status)
	VALUES ('$A', '$J', 'stale.name', now() - interval '30 days', 'ok')
	ON CONFLICT (ig_account_id, ig_user_id) DO UPDATE
	  SET username = 'stale.name', last_fetched_at = now() - interval '30 days'});
sql('SELECT ig_identity_wakeup()');
ok(wait_until(sub {
	sql("SELECT username FROM public.instagram_user_cache WHERE ig_user_id = '$J'") eq 'jane.doe' }, 30),
	'a stale identity is refreshed within seconds of the wakeup, not after refresh_interval');

# --- (c) an account stop survives a failed claim ---------------------------
# the offset first: the worker may fail its next claim before the reload returns
my $off = -s $node->logfile;
sql("ALTER SYSTEM SET ig_identity.test_hook = 'claim'");
sql('SELECT pg_reload_conf()');
sql('SELECT ig_identity_wakeup()');
ok($node->wait_for_log(qr/ig_identity test hook "claim" failed on purpose/, $off), 'the claim fails');
mock_admin($mock, 'POST', '/_admin/faults',
	{ match => { account => $A }, fault => { type => 'graph_error', code => 190, error_subcode => 463,
		message => 'Error validating access token: Session has expired' } });
my ($ret, $out, $err) = $node->psql('postgres', "SELECT * FROM ig_resolve_profile('$A', '$J')");
isnt($ret, 0, 'ig_resolve_profile fails on an expired token and leaves the stop to the worker');
# the same cause is logged once: count the failed cycles instead
my $errors = worker_state($node)->{errors};
sql('SELECT ig_identity_wakeup()');
ok(wait_until(sub { worker_state($node)->{errors} > $errors }), 'the claim that should record the stop fails');
is(sql("SELECT status FROM ig_identity.accounts WHERE ig_account_id = '$A'"), 'active',
	'so the stop is not recorded yet');
sql("ALTER SYSTEM RESET ig_identity.test_hook");
sql('SELECT pg_reload_conf()');
sql('SELECT ig_identity_wakeup()');
ok(wait_until(sub {
	sql("SELECT status FROM ig_identity.accounts WHERE ig_account_id = '$A'") eq 'reauth_required' }, 30),
	'once claims work again, the stop kept in shared memory is recorded');
mock_admin($mock, 'DELETE', '/_admin/faults');

# --- (d) pg_ctl stop -m fast with a prepared transaction holding a lock ----
my $pid = worker_pid($node);
sql(q{BEGIN; LOCK TABLE ig_identity.refresh_queue IN ACCESS EXCLUSIVE MODE; PREPARE TRANSACTION 'hold_queue'});
sql('SELECT ig_identity_wakeup()');
ok(wait_until(sub {
	sql("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $pid") eq 'Lock' }),
	'the worker waits for the lock of the prepared transaction');
my $t0 = time();
$node->stop('fast');
cmp_ok(time() - $t0, '<', 30, 'pg_ctl stop -m fast returns (it failed with "server does not shut down" before)');
$node->start;
sql("ROLLBACK PREPARED 'hold_queue'");
ok(wait_until(sub { worker_pid($node) ne '' }), 'after the restart a worker runs');
$node->stop('fast');

stop_mock($mock);
done_testing();
