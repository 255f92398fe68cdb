# 006_worker_policy.pl — what the worker does on its own, against the mock.
#
#   - a webhook delivery alone gets the new participant's username cached;
#   - a stale identity is refetched by the stale sweep;
#   - the refresh queue survives a server restart and is worked off after it;
#   - a throttled account (613) is paused, no further call goes out for it,
#     and the other account's identities are still resolved;
#   - 190 stops an account's calls until ig_connect_account rotates the
#     token; then its queued rows are resolved.
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
my $node = new_worker_node('policy', mock => $mock,
	conf => "ig_identity.refresh_interval = '2s'\nig_identity.requests_per_second = 0\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');

my $A = ACCOUNT_A;
my $B = '17841400000000002';
my $TOKEN_B = 'mock-token-B-0123456789';
my ($JANE, $JOHN, $STORE) = (USER_JANE, USER_JOHN, USER_STORE);
my %NAME = ($JANE => 'jane.doe', $JOHN => 'john.smith', $STORE => 'stories.in.store');

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub connect_a
{
	sql("SELECT ig_connect_account('loc_123', '$A', '$A', '" . TOKEN_A . "', 'graph.facebook.com')");
}

sub connect_b
{
	sql("SELECT ig_connect_account('loc_456', '$B', '$B', '$TOKEN_B', 'graph.instagram.com')");
}

sub username
{
	my ($acct, $user) = @_;
	return sql("SELECT coalesce(username, '') FROM instagram_user_cache"
		  . " WHERE ig_account_id = '$acct' AND ig_user_id = '$user'");
}

sub queue_rows
{
	my ($acct, @users) = @_;
	sql("INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason) VALUES "
		  . join(', ', map { "('$acct', '$_', 'manual')" } @users)
		  . ' ON CONFLICT DO NOTHING');
}

sub queued
{
	my ($acct) = @_;
	my $where = defined $acct ? " WHERE ig_account_id = '$acct'" : '';
	return sql("SELECT count(*) FROM ig_identity.refresh_queue$where");
}

sub calls_for
{
	my ($acct) = @_;
	return mock_admin($mock, 'GET', '/_admin/stats?requests=0')->{by_account}{$acct} // 0;
}

sub account_status
{
	my ($acct) = @_;
	return sql("SELECT status FROM ig_identity.accounts WHERE ig_account_id = '$acct'");
}

# Forgets cached identities (and queue rows) so the next section starts clean.
sub forget_identities
{
	sql('DELETE FROM ig_identity.refresh_queue');
	sql('DELETE FROM instagram_user_cache');
	mock_admin($mock, 'POST', '/_admin/reset');
}

ok(wait_until(sub { worker_pid($node) ne '' }, 10), 'worker runs');
connect_a();

# --- 1. a webhook alone leads to a cached username --------------------------
my $webhook = qq({"object":"instagram","entry":[{"id":"$A","time":1752834911539,"messaging":[
  {"sender":{"id":"$JANE"},"recipient":{"id":"$A"},"timestamp":1752834910447,"message":{"mid":"mid.policy.1","text":"hi"}}]}]});
is(sql("SELECT participants_queued FROM ig_ingest_webhook('$webhook')"), '1',
	'the webhook queues its sender');
ok(wait_until(sub { username($A, $JANE) eq 'jane.doe' }, 10),
	'the worker caches the sender\'s username with no other call');
is(queued(), '0', 'and the queue is empty again');
cmp_ok(mock_admin($mock, 'GET', '/_admin/stats?requests=0')->{by_user}{$JANE} // 0, '>=', 1,
	'the mock was asked for the profile');

# --- 2. stale identities are refetched ------------------------------------
mock_admin($mock, 'POST', '/_admin/reset');
sql("UPDATE instagram_user_cache SET last_fetched_at = now() - interval '3 days', username = 'old.name'"
	  . " WHERE ig_account_id = '$A' AND ig_user_id = '$JANE'");
is(username($A, $JANE), 'old.name', 'the identity is made stale');
ok(wait_until(sub { username($A, $JANE) eq 'jane.doe' }, 15),
	'the stale sweep refetches it: the username is the mock\'s again');
is(sql("SELECT last_fetched_at > now() - interval '30 seconds' FROM instagram_user_cache"
	  . " WHERE ig_account_id = '$A' AND ig_user_id = '$JANE'"), 't', 'last_fetched_at is recent');
is(mock_admin($mock, 'GET', '/_admin/stats?requests=0')->{by_user}{$JANE} // 0, 1,
	'with one profile call');

# --- 3. the queue survives a restart --------------------------------------
forget_identities();
sql('ALTER SYSTEM SET ig_identity.enabled = off');
my $off = -s $node->logfile;
$node->reload;
ok($node->wait_for_log(qr/ig_identity worker is waiting: ig_identity\.enabled is off/, $off),
	'the worker sees ig_identity.enabled = off');
queue_rows($A, $JANE, $JOHN, $STORE);
$node->restart;
ok(wait_until(sub { worker_pid($node) ne '' }, 10), 'worker runs after the restart');
is(queued($A), '3', 'the three queue rows survive the restart');
sleep(3);    # more than a refresh_interval with the worker disabled
is(queued($A), '3', 'and stay queued while the worker is disabled');
is(calls_for($A), 0, 'no call went out meanwhile');
sql('ALTER SYSTEM RESET ig_identity.enabled');
$node->reload;
ok(wait_until(sub { queued() eq '0' }, 15), 'once enabled, the queue is worked off');
is(join(',', map { username($A, $_) } $JANE, $JOHN, $STORE), 'jane.doe,john.smith,stories.in.store',
	'and every identity is cached');

# --- 4. a throttled account is paused, the other goes on -----------------
forget_identities();
connect_b();
mock_admin($mock, 'POST', '/_admin/faults',
	{ match => { account => $A }, fault => { type => 'graph_error', code => 613 } });
sql('BEGIN; '
	  . "INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason) VALUES "
	  . join(', ', map { "('$A', '$_', 'manual'), ('$B', '$_', 'manual')" } $JANE, $JOHN, $STORE)
	  . '; COMMIT');
ok(wait_until(sub { account_status($A) eq 'paused' }, 15), 'account A becomes paused');
is(sql("SELECT paused_until > now() + interval '20 seconds' FROM ig_identity.accounts WHERE ig_account_id = '$A'"),
	't', 'paused_until is in the future');
ok(wait_until(sub { queued($B) eq '0' }, 15), 'account B\'s rows are worked off');
is(join(',', map { username($B, $_) } $JANE, $JOHN, $STORE), 'jane.doe,john.smith,stories.in.store',
	'and its identities cached');
is(account_status($B), 'active', 'account B stays active');
is(queued($A), '3', 'account A\'s rows stay queued');
my $calls_a = calls_for($A);
cmp_ok($calls_a, '>=', 1, 'the mock saw A\'s throttled call');
my $cycles = worker_state($node)->{cycles};
queue_rows($B, '1000000000000104');    # another commit: another cycle
sql('SELECT ig_identity_wakeup()');
sleep(5);                              # two refresh intervals and more
cmp_ok(worker_state($node)->{cycles}, '>=', $cycles + 2, 'the worker ran cycles meanwhile');
is(calls_for($A), $calls_a, 'no further call for A while it is paused');
is(account_status($A), 'paused', 'A is still paused');
is(queued($A), '3', 'and its rows still queued');

# --- 5. 190 stops the account's calls until its token is rotated ----------
forget_identities();
connect_a();    # rotation puts the paused account back in service
is(account_status($A), 'active', 'reconnecting A makes it active again');
mock_admin($mock, 'POST', '/_admin/faults',
	{ match => { account => $A }, fault => { type => 'graph_error', code => 190 } });
queue_rows($A, $JANE, $JOHN);
ok(wait_until(sub { account_status($A) eq 'reauth_required' }, 15), 'a 190 makes A reauth_required');
sleep(0.5);    # let the cycle that saw the 190 finish
my $calls_190 = calls_for($A);
cmp_ok($calls_190, '>=', 1, 'the mock saw the call answered 190');
$cycles = worker_state($node)->{cycles};
queue_rows($A, $STORE);
sql('SELECT ig_identity_wakeup()');
sleep(5);    # several worker cycles
cmp_ok(worker_state($node)->{cycles}, '>=', $cycles + 2, 'the worker ran cycles meanwhile');
is(calls_for($A), $calls_190, 'no further call for A, even with more rows queued');
is(account_status($A), 'reauth_required', 'A is still reauth_required');
is(queued($A), '3', 'its rows stay queued');
mock_admin($mock, 'DELETE', '/_admin/faults');
connect_a();
ok(wait_until(sub { queued($A) eq '0' }, 15), 'after ig_connect_account the rows are fetched')
  or diag("still queued (account|user|reason|not_before|attempts|now):\n"
	  . sql('SELECT ig_account_id, ig_user_id, reason, not_before, attempts, now() FROM ig_identity.refresh_queue'));
is(join(',', map { username($A, $_) } $JANE, $JOHN, $STORE), 'jane.doe,john.smith,stories.in.store',
	'and the identities cached');
is(account_status($A), 'active', 'A is active');

$node->stop;
done_testing();
