# 002_standby.pl — a streaming standby runs no ig_identity worker (it is
# registered to start only once recovery has finished); promoting it starts
# one.  Needs no fetch engine.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);

my $primary = new_worker_node('primary', allows_streaming => 1);
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
ok(wait_until(sub { worker_pid($primary) ne '' }), 'the primary runs a worker');

$primary->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
sleep(2);    # two refresh intervals: time enough for a worker to show up
is(worker_pid($standby), '', 'the standby runs no ig_identity worker');
unlike(slurp_file($standby->logfile), qr/ig_identity worker (started|is waiting)/,
	'the standby never started one');
my ($ret, $stdout, $stderr) = $standby->psql('postgres', 'SELECT ig_identity_wakeup()');
is($stdout, 'f', 'ig_identity_wakeup() on the standby finds no worker');
like($stderr, qr/not running/, 'and says it is not running');

$standby->promote;
ok(wait_until(sub { worker_pid($standby) ne '' }), 'after promotion the worker starts');
ok(wait_until(sub { worker_state($standby)->{cycles} >= 1 }), 'and runs its cycle');

$standby->stop;
$primary->stop;
done_testing();
