# 004_fetch.pl — the worker fetching from the Graph API mock.
#
# NEEDS THE FETCH ENGINE (src/pg/refresh.cpp, fetch_profiles): every test
# here has the worker fetch queued identities from the mock.
#   - queued identities are fetched and saved; the run is recorded;
#   - while the mock delays, the worker holds no transaction open
#     (never 'idle in transaction', xact_start NULL while fetching);
#   - SIGTERM mid-transfer ends the worker within a second and gives its
#     leased rows back;
#   - kill -9 mid-fetch: after the crash restart the rows are claimed again
#     and fetched exactly once more.
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
my $node = new_worker_node('fetch', mock => $mock,
	conf => "ig_identity.refresh_interval = '2s'\nig_identity.max_concurrency = 8\n"
	  . "restart_after_crash = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
connect_account($node);
my $A = ACCOUNT_A;
my @users = (USER_JANE, USER_JOHN, USER_STORE);

sub sql { return $node->safe_psql('postgres', $_[0]); }

# Queues the three users in one committed transaction (which wakes the worker).
sub queue_users
{
	sql("INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason) VALUES "
		  . join(', ', map { "('$A', '$_', 'new')" } @users)
		  . ' ON CONFLICT DO NOTHING');
}

sub queue_empty { return sql('SELECT count(*) FROM ig_identity.refresh_queue') eq '0'; }

# The worker's row in pg_stat_activity: "state|query|xact_start is null".
sub worker_activity
{
	return sql("SELECT state || '|' || coalesce(query, '') || '|' || (xact_start IS NULL)"
		  . " FROM pg_stat_activity WHERE backend_type = 'ig_identity worker'");
}

# --- fetch and save ---------------------------------------------------------
ok(wait_until(sub { worker_pid($node) ne '' }), 'worker runs');
queue_users();
ok(wait_until(\&queue_empty, 30), 'queued identities are fetched and leave the queue');
is(sql("SELECT username FROM instagram_user_cache WHERE ig_account_id = '$A' AND ig_user_id = '@{[USER_JANE]}'"),
	'jane.doe', 'the fetched username is saved');
is(worker_state($node)->{refreshed}, '3', 'the worker counts three identities refreshed');
is(sql("SELECT total || '/' || refreshed FROM ig_identity.refresh_runs WHERE source = 'worker' ORDER BY id DESC LIMIT 1"),
	'3/3', 'the run is recorded');

# --- no transaction open while the network is slow ------------------------
mock_admin($mock, 'POST', '/_admin/faults', { match => {}, fault => { type => 'latency', ms => 2500 } });
queue_users();
my (@samples, $fetching);
my $t_end = time() + 8;
while (time() < $t_end)
{
	my $a = worker_activity();
	push @samples, $a;
	$fetching++ if $a =~ /\|fetching \d+ profiles\|/;
	last if $fetching && $a =~ /^idle\|/;
	sleep(0.05);
}
ok($fetching, 'sampled the worker while it was fetching');
is((grep { /^idle in transaction/ } @samples), 0, "never 'idle in transaction'");
is((grep { /\|fetching \d+ profiles\|false$/ } @samples), 0, 'xact_start is NULL while fetching');
like((grep { /\|fetching/ } @samples)[0] // '', qr/^active\|fetching 3 profiles\|true$/,
	'pg_stat_activity says what it is doing');
mock_admin($mock, 'DELETE', '/_admin/faults');
ok(wait_until(\&queue_empty, 30), 'the slow fetch completes');

# --- saving fails: the rows go back to the queue, nothing is lost ---------
sql(q{CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS
	    $$BEGIN RAISE EXCEPTION 'cannot save now'; END$$;
	  CREATE TRIGGER boom BEFORE INSERT OR UPDATE ON instagram_user_cache
	    FOR EACH STATEMENT EXECUTE FUNCTION boom();});
my $off = -s $node->logfile;
queue_users();
ok($node->wait_for_log(qr/WARNING:  cannot save now/, $off), 'a failed save is logged');
like(log_since($node, $off), qr/CONTEXT:.*ig_identity worker, while saving results/s, 'as failing to save');
ok(wait_until(sub { sql('SELECT count(*) FROM ig_identity.refresh_queue WHERE leased_by IS NULL') eq '3' }, 5),
	'its rows are given back to the queue');
sql('DROP TRIGGER boom ON instagram_user_cache');
ok(wait_until(\&queue_empty, 30), 'and fetched once saving works again');

# --- SIGTERM mid-transfer ----------------------------------------------------
mock_admin($mock, 'POST', '/_admin/faults', { match => {}, fault => { type => 'latency', ms => 20000 } });
queue_users();
ok(wait_until(sub { worker_activity() =~ /\|fetching/ }, 10), 'worker is mid-transfer');
my $pid = worker_pid($node);
my $t0 = time();
kill 'TERM', $pid;
ok(wait_until(sub { !kill(0, $pid) }, 5), 'worker exits on SIGTERM mid-transfer');
cmp_ok(time() - $t0, '<', 1.0, 'within a second');
is(sql('SELECT count(*) FROM ig_identity.refresh_queue WHERE leased_by IS NOT NULL'), '0',
	'it gave its leased rows back');
mock_admin($mock, 'DELETE', '/_admin/faults');
$node->restart;
ok(wait_until(\&queue_empty, 30), 'after a restart the rows are fetched');

# --- kill -9 mid-fetch: claimed again exactly once --------------------------
mock_admin($mock, 'POST', '/_admin/reset');
mock_admin($mock, 'POST', '/_admin/faults',
	{ match => {}, count => 3, fault => { type => 'latency', ms => 20000 } });
queue_users();
ok(wait_until(sub { worker_activity() =~ /\|fetching 3 profiles/ }, 10), 'worker is mid-fetch');
$pid = worker_pid($node);
is(sql("SELECT count(*) FROM ig_identity.refresh_queue WHERE leased_by = $pid"), '3', 'it holds three leases');
my $runs = sql("SELECT count(*) FROM ig_identity.refresh_runs WHERE source = 'worker'");
kill 'KILL', $pid;
# the postmaster restarts every process after a crash; the new worker
# claims the rows its dead predecessor leased
ok(wait_until(sub { my $p = eval { worker_pid($node) } // ''; $p ne '' && $p ne $pid }, 30),
	'a new worker starts after the crash');
ok(wait_until(sub { eval { queue_empty() } }, 30), 'the rows are claimed again and fetched');
is(sql("SELECT count(*) FROM ig_identity.refresh_runs WHERE source = 'worker'"), $runs + 1,
	'in exactly one more run');
is(sql("SELECT total || '/' || refreshed FROM ig_identity.refresh_runs WHERE source = 'worker' ORDER BY id DESC LIMIT 1"),
	'3/3', 'which fetched all three');
is(worker_state($node)->{refreshed}, '3', 'the new worker refreshed each identity once');
my $stats = mock_admin($mock, 'GET', '/_admin/stats');
is(join(',', map { $stats->{by_user}{$_} // 0 } @users), '2,2,2',
	'the Graph API saw each identity twice: the killed fetch and one more');

$node->stop;
done_testing();
