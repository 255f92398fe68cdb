# 029_review_stop_during_fetch.pl — review of issue 13: pg_ctl stop -m fast
# while the worker fetches, with a prepared transaction holding a lock the
# save step needs.  SIGTERM during the fetch is only a flag (so the results
# are saved first), but the save then waits on the lock with SIGTERM already
# spent: the postmaster sends it once, so the server does not shut down — the
# failure issue 13 fixed for a worker waiting in its claim, by another path.
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
my $J = USER_JANE;
my $node = new_worker_node('stop_fetch', mock => $mock,
	conf => "ig_identity.refresh_interval = '1h'\nmax_prepared_transactions = 2\n");
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }
sql('CREATE EXTENSION ig_identity');
connect_account($node);
ok(wait_until(sub { worker_state($node)->{cycles} >= 1 }), 'the worker runs cycles');

mock_admin($mock, 'POST', '/_admin/config', { latency_ms => 8000 });
sql(qq{INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
	VALUES ('$A', '$J', 'new', now())});
ok(wait_until(sub { worker_state($node)->{in_flight} > 0 }, 10), 'the worker is fetching');
sql(q{BEGIN; LOCK TABLE ig_identity.refresh_queue IN ACCESS EXCLUSIVE MODE; PREPARE TRANSACTION 'hold_queue'});

my $t0 = time();
my $rc = system('pg_ctl', '-D', $node->data_dir, '-m', 'fast', '-t', '20', 'stop');
my $took = time() - $t0;
is($rc, 0, sprintf('pg_ctl stop -m fast succeeds (took %.1f s)', $took));
if ($rc != 0)
{
	system('pg_ctl', '-D', $node->data_dir, '-m', 'immediate', 'stop');
}
$node->_update_pid(0);
mock_admin($mock, 'POST', '/_admin/config', { latency_ms => 0 });
$node->start;
sql("ROLLBACK PREPARED 'hold_queue'");
$node->stop('fast');
stop_mock($mock);
done_testing();
