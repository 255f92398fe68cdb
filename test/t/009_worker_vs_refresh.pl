# 009_worker_vs_refresh.pl — the background worker and ig_refresh_identities
# working on the same location at the same time.
#
# 40 participants are queued for the worker (which wakes at COMMIT) while a
# session refreshes the same location; the mock answers slowly so the two
# overlap. Both finish: no deadlock, no error, exactly one cache row per
# participant with its username, the queue empty, nobody fetched more than
# once by each of the two, and no backend crash.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $N = 40;
my $mock = start_mock();
my $node = new_worker_node('worker_vs_refresh', mock => $mock,
	conf => "ig_identity.max_concurrency = 4\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
connect_account($node);
my $A = ACCOUNT_A;
ok(wait_until(sub { worker_pid($node) ne '' }, 10), 'the worker runs');

my @ids = map { 6000000000000000 + $_ } (1 .. $N);
mock_admin($mock, 'POST', '/_admin/data',
	{ users => [ map { { id => "$_", username => "p.$_", name => "P $_" } } @ids ] });
$node->safe_psql('postgres',
	"INSERT INTO instagram_conversations (id, ig_account_id, location_id, participant_igsid) VALUES "
	  . join(', ', map { "('c$_', '$A', 'loc_a', '$_')" } @ids));
mock_admin($mock, 'POST', '/_admin/reset', {});
mock_admin($mock, 'POST', '/_admin/config', { latency_ms => 150 });

# the refresh starts first, then the worker is handed the same people
my $s = $node->background_psql('postgres', on_error_stop => 0);
$s->query_until(qr/started/,
	"\\echo started\nSELECT refreshed || '/' || failed || '/' || total AS r FROM ig_refresh_identities('loc_a');\n");
$node->safe_psql('postgres',
	"INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason) "
	  . "SELECT '$A', participant_igsid, 'new' FROM instagram_conversations");

ok(wait_until(sub {
	$node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%ig_refresh_identities%' "
		  . "AND state = 'active' AND pid <> pg_backend_pid()") eq '0'
	  && $node->safe_psql('postgres', 'SELECT count(*) FROM ig_identity.refresh_queue') eq '0'
	  && $node->safe_psql('postgres',
		"SELECT count(*) FROM ig_identity.refresh_runs WHERE source = 'sql'") eq '1' }, 60),
	'both finished: the refresh returned and the queue is empty');
$s->quit;

is($node->safe_psql('postgres',
	"SELECT refreshed || '/' || failed || '/' || total FROM ig_identity.refresh_runs WHERE source = 'sql'"),
	"$N/0/$N", 'the SQL refresh refreshed everyone');
is($node->safe_psql('postgres',
	"SELECT count(*) || ' ' || count(DISTINCT ig_user_id) || ' ' || count(username) "
	  . "|| ' ' || count(*) FILTER (WHERE username = 'p.' || ig_user_id) FROM instagram_user_cache"),
	"$N $N $N $N", 'one row per participant, each with its username');
my $stats = mock_admin($mock, 'GET', '/_admin/stats');
my @counts = map { $stats->{by_user}{$_} // 0 } @ids;
my ($max) = sort { $b <=> $a } @counts;
ok($max <= 2, "nobody fetched more than once by each (max $max)");
ok(scalar(grep { $_ >= 1 } @counts) == $N, 'everyone fetched');
my $log = slurp_file($node->logfile);
unlike($log, qr/deadlock detected/, 'no deadlock');
unlike($log, qr/terminated by signal/, 'no backend crashed');

$node->stop;
stop_mock($mock);
done_testing();
