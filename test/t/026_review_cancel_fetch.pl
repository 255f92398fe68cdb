# 026_review_cancel_fetch.pl — review of issue 13: a pg_cancel_backend that
# lands while the worker fetches must not leave SIGTERM as a mere flag.
# fetch_and_apply() switches SIGTERM to SignalHandlerForShutdownRequest for
# the fetch and back to die() only on the normal path: a PgError (the cancel)
# thrown out of the progress callback skips sql_signals(), so the SQL that
# follows (release_leases, the next claim) ignores pg_terminate_backend and
# pg_ctl stop -m fast while it waits on a lock.
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
my $node = new_worker_node('cancel_fetch', mock => $mock,
	conf => "ig_identity.refresh_interval = '1h'\nmax_prepared_transactions = 2\n");
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }
sql('CREATE EXTENSION ig_identity');
connect_account($node);
ok(wait_until(sub { worker_state($node)->{cycles} >= 1 }), 'the worker runs cycles');
my $pid = worker_pid($node);

# a fetch that hangs (the http timeout is 10 s)
mock_admin($mock, 'POST', '/_admin/faults', { match => { account => $A }, fault => { type => 'hang', seconds => 60 } });
sql(qq{INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
	VALUES ('$A', '$J', 'new', now())});
ok(wait_until(sub { worker_state($node)->{in_flight} > 0 }, 10), 'the worker is fetching');

# the queue is locked while the fetch runs; the cancel makes the worker give
# its lease back, which waits on the lock
sql(q{BEGIN; LOCK TABLE ig_identity.refresh_queue IN ACCESS EXCLUSIVE MODE; PREPARE TRANSACTION 'hold_queue'});
my $off = -s $node->logfile;
sql("SELECT pg_cancel_backend($pid)");
ok($node->wait_for_log(qr/canceling statement due to user request/, $off), 'the fetch is cancelled');
ok(wait_until(sub { sql("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $pid") eq 'Lock' }, 10),
	'the worker waits on the lock to give its lease back');

sql("SELECT pg_terminate_backend($pid)");
ok(wait_until(sub { sql("SELECT count(*) FROM pg_stat_activity WHERE pid = $pid") eq '0' }, 5),
	'pg_terminate_backend ends the worker waiting on a lock after a cancelled fetch');

sql("ROLLBACK PREPARED 'hold_queue'");
mock_admin($mock, 'DELETE', '/_admin/faults');
$node->stop('fast');
stop_mock($mock);
done_testing();
