# 007_cancel.pl — pg_cancel_backend and pg_terminate_backend on a backend
# whose ig_refresh_identities is waiting on a slow Graph API.
#
# The fetch loop checks for interrupts at least every 100 ms, so a cancel
# stops a refresh that would take minutes within about a second, the
# transaction rolls back (nothing half-written), the session stays usable,
# and the server log holds no crash.
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
my $node = new_worker_node('cancel', mock => $mock,
	conf => "ig_identity.enabled = off\nig_identity.http_timeout = '60s'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
connect_account($node);
my $A = ACCOUNT_A;
$node->safe_psql('postgres',
	"INSERT INTO instagram_conversations (id, ig_account_id, location_id, participant_igsid) VALUES "
	  . "('c1', '$A', 'loc_a', '" . USER_JANE . "'), ('c2', '$A', 'loc_a', '" . USER_JOHN . "'), "
	  . "('c3', '$A', 'loc_a', '" . USER_STORE . "')");

# every profile answer takes 30 s: the refresh would run for minutes
mock_admin($mock, 'POST', '/_admin/config', { latency_ms => 30000 });

# Starts a refresh in its own session; returns (session, its backend pid).
sub slow_refresh
{
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	$s->query_until(qr/started/, "\\echo started\nSELECT * FROM ig_refresh_identities('loc_a');\n");
	ok(wait_until(sub {
		$node->safe_psql('postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND query LIKE '%ig_refresh_identities%'"
			  . " AND state = 'active'") eq '1' }, 10),
		'the refresh is running');
	sleep 0.5;    # well inside the 30 s wait
	return ($s, $pid);
}

# --- pg_cancel_backend ------------------------------------------------------
my ($s, $pid) = slow_refresh();
my $t0 = time;
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
ok(wait_until(sub {
	$node->safe_psql('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $pid") eq 'idle' }, 10),
	'the cancelled backend is idle again');
my $took = time - $t0;
cmp_ok($took, '<', 2.0, sprintf('cancel took %.2f s (< 2 s) against a 30 s answer', $took));
like($s->query('SELECT 1'), qr/1/, 'the session goes on working after the cancel');
is($node->safe_psql('postgres', 'SELECT count(*) FROM instagram_user_cache'), '0',
	'nothing half-written');
is($node->safe_psql('postgres', 'SELECT count(*) FROM ig_identity.refresh_runs'), '0',
	'no run recorded for the cancelled refresh');
$s->quit;

# --- pg_terminate_backend ---------------------------------------------------
($s, $pid) = slow_refresh();
$t0 = time;
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok(wait_until(sub {
	$node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid") eq '0' }, 10),
	'the terminated backend is gone');
$took = time - $t0;
cmp_ok($took, '<', 2.0, sprintf('terminate took %.2f s (< 2 s)', $took));
eval { $s->quit };

# --- and the server is fine --------------------------------------------------
mock_admin($mock, 'POST', '/_admin/config', { latency_ms => 0 });
is($node->safe_psql('postgres',
	"SELECT refreshed || '/' || failed || '/' || total FROM ig_refresh_identities('loc_a')"),
	'3/0/3', 'a refresh after both works');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|server process .* was terminated/, 'no backend crashed');

$node->stop;
stop_mock($mock);
done_testing();
