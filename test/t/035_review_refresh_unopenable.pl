# 035_review_refresh_unopenable.pl — review 16: one Instagram Login account
# whose stored token this server cannot open (here: a value moved in from
# another row; equally a key this server lacks, or an unencrypted value with
# allow_unencrypted_tokens off) stops the token refresh of EVERY other
# Instagram Login account, each cycle, until their tokens expire (60 days).
# tokens_due_for_refresh() reads each due account with account_by_id(),
# which does not skip an unopenable account (read_credentials with
# skip_unopenable = false): the Error aborts the whole unit of work, and the
# cycle fails. The fetcher (all_accounts) skips such an account with one
# WARNING; the refresh must too.
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
	BAD   => '17841400000000031',
	TOKEN_BAD => 'tok-031-ig-bad-2Xc5',
	GOOD  => '17841400000000032',
	TOKEN_GOOD => 'tok-031-ig-good-6Vb1',
};

my $mock = start_mock();
mock_admin($mock, 'POST', '/_admin/data', {
	accounts => [
		{ ig_account_id => BAD, token => TOKEN_BAD, api_host => 'graph.instagram.com',
		  token_issued_at => time() - 10 * 86400 },
		{ ig_account_id => GOOD, token => TOKEN_GOOD, api_host => 'graph.instagram.com',
		  token_issued_at => time() - 10 * 86400 },
	] });

my $node = new_worker_node('unopenable', mock => $mock,
	conf => "ig_identity.token_refresh_age = '1d'\nlog_statement = none\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
$node->safe_psql('postgres', join ";\n",
	"SELECT ig_connect_account('loc_bad', '@{[BAD]}', '@{[BAD]}', '@{[TOKEN_BAD]}', 'graph.instagram.com')",
	"SELECT ig_connect_account('loc_good', '@{[GOOD]}', '@{[GOOD]}', '@{[TOKEN_GOOD]}', 'graph.instagram.com')");
my $off = -s $node->logfile;
# BAD's row gets GOOD's ciphertext: it does not open there (AAD binding);
# both tokens are past the refresh age, BAD's the older one.
$node->safe_psql('postgres', qq{
	UPDATE ig_identity.account_tokens b SET access_token = g.access_token
	  FROM ig_identity.account_tokens g WHERE b.ig_account_id = '@{[BAD]}' AND g.ig_account_id = '@{[GOOD]}';
	UPDATE ig_identity.account_tokens SET rotated_at = now() - interval '3 days' WHERE ig_account_id = '@{[BAD]}';
	UPDATE ig_identity.account_tokens SET rotated_at = now() - interval '2 days' WHERE ig_account_id = '@{[GOOD]}';
});
my $bad_before = $node->safe_psql('postgres',
	"SELECT encode(access_token, 'hex') FROM ig_identity.account_tokens WHERE ig_account_id = '@{[BAD]}'");

ok( wait_until(sub {
		$node->safe_psql('postgres',
			"SELECT NOT ig_identity.secret_matches('access_token', ig_account_id, access_token, '@{[TOKEN_GOOD]}')"
			  . " FROM ig_identity.account_tokens WHERE ig_account_id = '@{[GOOD]}'") eq 't' }, 15),
	'a good Instagram Login token is refreshed although another account\'s token does not open');
unlike(log_since($node, $off), qr/worker cycle failed/,
	'the refresh does not fail the worker cycle over one unopenable account');
# ... and it waits an hour like a failed refresh, out of the way of the
# others (_tokens_due_for_refresh is ordered by age with a LIMIT: 100
# unopenable accounts, say after a restore without the key, would otherwise
# hold every batch), its sealed value kept as it was.
is( $node->safe_psql('postgres', qq{
		SELECT refresh_failed_at IS NOT NULL, encode(access_token, 'hex') = '$bad_before'
		  FROM ig_identity.account_tokens WHERE ig_account_id = '@{[BAD]}'}),
	't|t', 'the unopenable account is set aside for an hour, its row otherwise kept');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM ig_identity._tokens_due_for_refresh(interval '1 day', 100)"),
	'0', 'nothing is due any more');

$node->stop;
stop_mock($mock);
done_testing();
