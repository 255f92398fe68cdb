# 028_review_wait_event.pl — review of issue 13 ("Observability"): while a
# backend waits on the Graph API, pg_stat_activity shows a wait event for
# it, not "no wait".  Only the worker reported one (worker.cpp); the
# backends' loops (ig_refresh_identities, ig_resolve_profile, ig_sync_inbox,
# ig_connect_account's /me check) reported none.
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
my $node = new_worker_node('wait_event', mock => $mock,
	conf => "ig_identity.enabled = off\nig_identity.http_timeout = '60s'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
connect_account($node);
my $A = ACCOUNT_A;
$node->safe_psql('postgres',
	"INSERT INTO instagram_conversations (id, ig_account_id, location_id, participant_igsid) VALUES "
	  . "('c1', '$A', 'loc_a', '" . USER_JANE . "')");
mock_admin($mock, 'POST', '/_admin/config', { latency_ms => 30000 });

# a query that waits on the Graph API in its own session: its wait event
sub wait_event_of
{
	my ($sql) = @_;
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	$s->query_until(qr/started/, "\\echo started\n$sql;\n");
	wait_until(sub {
		$node->safe_psql('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $pid") eq 'active' }, 10);
	sleep 1.5;
	my $ev = $node->safe_psql('postgres',
		"SELECT coalesce(wait_event_type, 'none') FROM pg_stat_activity WHERE pid = $pid");
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	wait_until(sub {
		$node->safe_psql('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $pid") eq 'idle' }, 10);
	$s->quit;
	return $ev;
}

is(wait_event_of("SELECT * FROM ig_refresh_identities('loc_a')"), 'Extension',
	'ig_refresh_identities waiting on the network shows wait event type Extension');
is(wait_event_of("SELECT * FROM ig_resolve_profile('$A', '" . USER_JOHN . "')"), 'Extension',
	'ig_resolve_profile too');
is(wait_event_of("SELECT * FROM ig_sync_inbox('loc_a')"), 'Extension', 'ig_sync_inbox too');
mock_admin($mock, 'POST', '/_admin/config', { latency_ms => 0 });
$node->stop;
stop_mock($mock);
done_testing();
