# 008_resolve_stop.pl — an expired token seen by ig_resolve_profile flags the
# account although the call fails.
#
# ig_resolve_profile must fail with a clear error on 190, and that error
# rolls back its own transaction, including the account's new status. The
# backend leaves the stop in shared memory; the worker records it in its
# own transaction, so the account ends reauth_required and is not called
# again.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock();
my $node = new_worker_node('resolve_stop', mock => $mock,
	conf => "ig_identity.refresh_interval = '1h'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
connect_account($node);
my $A = ACCOUNT_A;
ok(wait_until(sub { worker_pid($node) ne '' }, 10), 'the worker runs');

mock_admin($mock, 'POST', '/_admin/faults',
	{ match => { account => $A }, fault => { type => 'graph_error', code => 190, error_subcode => 463,
		message => 'Error validating access token: Session has expired' } });
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT * FROM ig_resolve_profile('$A', '" . USER_JANE . "')");
isnt($ret, 0, 'ig_resolve_profile fails on an expired token');
like($err, qr/needs to be reconnected/, "with the reconnect error") or diag($err);
unlike($err, qr/\Q${\TOKEN_A}\E/, 'the error holds no token');

ok(wait_until(sub {
	$node->safe_psql('postgres', "SELECT status FROM ig_identity.accounts WHERE ig_account_id = '$A'")
	  eq 'reauth_required' }, 10),
	'the worker recorded the stop the failed call could not keep');
is($node->safe_psql('postgres', "SELECT last_error_code FROM ig_identity.accounts"), '190',
	'with its error code');

# a stopped account is not called again
($ret, $out, $err) = $node->psql('postgres',
	"SELECT * FROM ig_resolve_profile('$A', '" . USER_JANE . "')");
like($err, qr/needs to be reconnected/, 'the next call fails before any request');

# rotating the token puts it back in service
mock_admin($mock, 'DELETE', '/_admin/faults');
connect_account($node);
is($node->safe_psql('postgres',
	"SELECT username FROM ig_resolve_profile('$A', '" . USER_JANE . "')"), 'jane.doe',
	'after rotation the profile resolves');

$node->stop;
stop_mock($mock);
done_testing();
