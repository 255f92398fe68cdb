# 034_review_auto_explain.pl — review 16: the worker's token refresh puts
# the NEW token in the server log when auto_explain is preloaded with
# log_verbose. The worker's SPI call
#   SELECT ig_identity._store_refreshed_token($1, $2, $3, $4)
# is a top-level statement for auto_explain in a background worker, and
# SPI_execute_with_args plans it with its parameters folded into constants,
# so EXPLAIN VERBOSE prints "Output: _store_refreshed_token(..., 'TOKEN', ...)";
# the nested UPDATE (log_nested_statements) prints seal_secret('TOKEN', ...)
# for the same reason (a PL/pgSQL custom plan).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

use constant {
	ACCT  => '17841400000000030',
	TOKEN => 'tok-030-ig-long-lived-8Qw3',
};

my $mock = start_mock();
mock_admin($mock, 'POST', '/_admin/data', {
	accounts => [
		{ ig_account_id => ACCT, token => TOKEN, api_host => 'graph.instagram.com',
		  token_issued_at => time() - 10 * 86400 },
	] });

my $node = new_worker_node('autoexplain', mock => $mock,
	conf => "ig_identity.token_refresh_age = '1d'\n"
	  . "shared_preload_libraries = 'ig_identity,auto_explain'\n"
	  . "auto_explain.log_min_duration = 0\n"
	  . "auto_explain.log_verbose = on\n"
	  . "auto_explain.log_nested_statements = on\n"
	  . "log_statement = none\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
# the test's own connect, with a literal token, is not what is checked here:
# auto_explain is off for its session (the README's setting for the role
# that connects accounts)
$node->safe_psql('postgres',
	"SET auto_explain.log_min_duration = -1;\n"
	  . "SELECT ig_connect_account('loc_030', '@{[ACCT]}', '@{[ACCT]}', '@{[TOKEN]}', 'graph.instagram.com')");
my $off = -s $node->logfile;
$node->safe_psql('postgres',
	"UPDATE ig_identity.account_tokens SET rotated_at = rotated_at - interval '2 days'");
ok($node->wait_for_log(qr/refreshed 1 Instagram Login access tokens, 0 failed/, $off),
	'the worker refreshed the token');

# Only the worker and the mock ever saw the new token.
my $log = log_since($node, $off);
is(index($log, 'mock-refreshed-'), -1, 'the server log does not hold the refreshed token');

$node->stop;
stop_mock($mock);
done_testing();
