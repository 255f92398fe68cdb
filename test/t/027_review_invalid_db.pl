# 027_review_invalid_db.pl — review of issue 13: the worker of a missing
# ig_identity.database, on a server no client has connected to yet.
#   (a) The database-less probe used get_database_oid(), an index scan of
#       pg_database: with no shared relcache init file (none is written until
#       a backend connects after startup) it failed with FATAL "cannot read
#       pg_class without having selected a database", every bgw_restart_time:
#       the loop wait_for_database was built to stop, and no WARNING.
#   (b) A database left invalid by an interrupted DROP DATABASE
#       (datconnlimit = -2) exists and allows connections by the old probe,
#       so the waiting worker exited at once and the next one failed to
#       connect again: a FATAL every 20 s.
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
# autovacuum off: no autovacuum worker connects and writes the init file
my $node = new_worker_node('invalid_db', mock => $mock,
	conf => "ig_identity.database = 'inbox'\nautovacuum = off\n");
my $pgclass = qr/cannot read pg_class without having selected a database/;

# --- (a) missing database, nobody connected since startup ------------------
$node->start;
ok(wait_until(sub { log_since($node, 0) =~ /WARNING:  ig_identity worker: database "inbox" named by ig_identity.database does not exist/ }, 20),
	'the waiting worker says the database is missing');
sleep(12);
my $log = log_since($node, 0);
is(count_matches($log, $pgclass), 0, 'the probe needs no relcache init file');
is(count_matches($log, qr/FATAL:  database "inbox" does not exist/), 1, 'one failed connection');

# --- (b) an invalid database --------------------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE inbox');
$node->safe_psql('postgres', "UPDATE pg_database SET datconnlimit = -2 WHERE datname = 'inbox'");
$node->restart;
my $off = 0;
my $fatal = qr/FATAL:  cannot connect to invalid database "inbox"/;
ok($node->wait_for_log($fatal, $off), 'the first connection fails');
ok(wait_until(sub { log_since($node, 0) =~ /WARNING:  ig_identity worker: database "inbox" named by ig_identity.database is invalid/ }, 20),
	'the waiting worker says the database is invalid');
sleep(22);
$log = log_since($node, 0);
is(count_matches($log, $fatal), 1, 'one FATAL, no restart loop, after two restart periods');
is(count_matches($log, $pgclass), 0, 'and no failed probe');
$node->stop('fast');
stop_mock($mock);
done_testing();
