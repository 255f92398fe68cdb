# 031_review_idle_cancel.pl — review of issue 13 (log spam): pg_cancel_backend
# on an idle worker cancels nothing, yet it was reported as a failed cycle (a
# WARNING "canceling statement due to user request", the errors counter) and
# the next cycle logged "cycle succeeded after 0 failed cycles".
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
my $node = new_worker_node('idle_cancel', mock => $mock);
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
ok(wait_until(sub { worker_state($node)->{cycles} >= 1 }), 'the worker runs cycles');
my $pid = worker_pid($node);
ok(wait_until(sub { $node->safe_psql('postgres', "SELECT state FROM pg_stat_activity WHERE pid = $pid") eq 'idle' }),
	'the worker is idle');
my $off = -s $node->logfile;
my $errors = worker_state($node)->{errors};
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
my $cycles = worker_state($node)->{cycles};
ok(wait_until(sub { worker_state($node)->{cycles} >= $cycles + 2 }, 10), 'the worker goes on');
my $log = log_since($node, $off);
unlike($log, qr/WARNING:  canceling statement due to user request/, 'no WARNING for a cancel with nothing to cancel');
unlike($log, qr/succeeded after 0 failed cycles/, 'no "succeeded after 0 failed cycles"');
is(worker_state($node)->{errors}, $errors, 'the errors counter is unchanged');
is(worker_pid($node), $pid, 'the same worker');
$node->stop('fast');
stop_mock($mock);
done_testing();
