# 030_review_stops_other_db.pl — review of issue 13: account stops that
# backends leave in shared memory (PendingStop, 16 slots) are drained only by
# the worker, for its own database.  Stops noted in any other database with
# the extension fill the slots for good, and then a stop in the worker's own
# database is dropped: the account stays 'active' although its token expired.
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
my $node = new_worker_node('stops_other_db', mock => $mock);
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
connect_account($node);
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION ig_identity');

# 16 accounts with tokens the Graph API refuses, in a database no worker serves
for my $i (1 .. 16)
{
	my $id = sprintf('178414000000%04d', $i);
	$node->safe_psql('other',
		"SELECT ig_connect_account('loc_o', '$id', '$id', 'bogus-token-$i-0123456789', 'graph.facebook.com')");
	my ($ret) = $node->psql('other', "SELECT * FROM ig_resolve_profile('$id', '$J')");
	isnt($ret, 0, "account $i of the other database: its token is refused");
}

# now account A in the worker's database
mock_admin($mock, 'POST', '/_admin/faults',
	{ match => { account => $A }, fault => { type => 'graph_error', code => 190, error_subcode => 463,
		message => 'Error validating access token: Session has expired' } });
my ($ret) = $node->psql('postgres', "SELECT * FROM ig_resolve_profile('$A', '$J')");
isnt($ret, 0, 'ig_resolve_profile fails on an expired token and leaves the stop to the worker');
ok(wait_until(sub {
	$node->safe_psql('postgres', "SELECT status FROM ig_identity.accounts WHERE ig_account_id = '$A'")
	  eq 'reauth_required' }, 15),
	'the worker records the stop of its own database');
mock_admin($mock, 'DELETE', '/_admin/faults');
$node->stop('fast');
stop_mock($mock);
done_testing();
