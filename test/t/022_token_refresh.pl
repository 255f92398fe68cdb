# 022_token_refresh.pl — the worker refreshes Instagram Login long-lived
# tokens past ig_identity.token_refresh_age (GET /refresh_access_token, with
# appsecret_proof when the account has an app secret), stores the new token
# and its expiry together, and shows the expiry in ig_identity_status. A
# refresh Meta refuses (a token younger than 24 hours, an expired one) marks
# the account and keeps the old token. Page tokens are never refreshed. The
# server log holds neither the old nor the new token nor the app secret.
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
	ACCT_OLD     => '17841400000000022',
	TOKEN_OLD    => 'tok-022-ig-long-lived-5Hk2',
	SECRET_OLD   => 'tok-022-app-secret-Qz8w',
	ACCT_YOUNG   => '17841400000000023',
	TOKEN_YOUNG  => 'tok-022-ig-young-7Mn4',
	ACCT_EXPIRED => '17841400000000024',
	TOKEN_EXPIRED => 'tok-022-ig-expired-3Rt6',
};

my $mock = start_mock();
my $now = time();
mock_admin($mock, 'POST', '/_admin/data', {
	accounts => [
		{ ig_account_id => ACCT_OLD, token => TOKEN_OLD, api_host => 'graph.instagram.com',
		  app_secret => SECRET_OLD, token_issued_at => $now - 10 * 86400 },
		{ ig_account_id => ACCT_YOUNG, token => TOKEN_YOUNG, api_host => 'graph.instagram.com',
		  token_issued_at => $now - 3600 },
		{ ig_account_id => ACCT_EXPIRED, token => TOKEN_EXPIRED, api_host => 'graph.instagram.com',
		  token_issued_at => $now - 61 * 86400 },
	] });

my $node = new_worker_node('refresh', mock => $mock,
	conf => "ig_identity.token_refresh_age = '1d'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
connect_account($node);    # account A: Facebook Login, a Page token
$node->safe_psql('postgres', join ";\n",
	"SELECT ig_connect_account('loc_old', '@{[ACCT_OLD]}', '@{[ACCT_OLD]}', '@{[TOKEN_OLD]}',"
	  . " 'graph.instagram.com', '@{[SECRET_OLD]}')",
	"SELECT ig_connect_account('loc_young', '@{[ACCT_YOUNG]}', '@{[ACCT_YOUNG]}', '@{[TOKEN_YOUNG]}',"
	  . " 'graph.instagram.com')",
	"SELECT ig_connect_account('loc_expired', '@{[ACCT_EXPIRED]}', '@{[ACCT_EXPIRED]}', '@{[TOKEN_EXPIRED]}',"
	  . " 'graph.instagram.com')");
is($node->safe_psql('postgres', 'SELECT count(*) FROM ig_identity.account_tokens WHERE expires_at IS NOT NULL'),
	'0', 'a connected token has no known expiry');
sleep(2.5);
is(mock_admin($mock, 'GET', '/_admin/stats')->{by_endpoint}{refresh} // 0, 0,
	'tokens younger than token_refresh_age are not refreshed');

# Every token "was set" two days ago.
my $off = -s $node->logfile;
$node->safe_psql('postgres',
	"UPDATE ig_identity.account_tokens SET rotated_at = rotated_at - interval '2 days'");
my $rot = "(extract(epoch from rotated_at) * 1000000)::int8";
my %before = map { my ($id, $r) = split /\|/; ($id => $r) }
  split /\n/, $node->safe_psql('postgres', "SELECT ig_account_id, $rot FROM ig_identity.account_tokens");

ok( wait_until(sub {
		$node->safe_psql('postgres',
			"SELECT NOT ig_identity.secret_matches('access_token', ig_account_id, access_token, '@{[TOKEN_OLD]}')"
			  . " AND $rot <> $before{+ACCT_OLD} FROM ig_identity.account_tokens"
			  . " WHERE ig_account_id = '@{[ACCT_OLD]}'") eq 't' }),
	'the worker refreshes an Instagram Login token past token_refresh_age');
ok($node->wait_for_log(qr/refreshed 1 Instagram Login access tokens, 2 failed/, $off),
	'the worker logs the counts');

# Stored together: the new token, its expiry (60 days), the rotation time.
is( $node->safe_psql('postgres', qq{
		SELECT expires_at BETWEEN now() + interval '59 days' AND now() + interval '61 days',
		       rotated_at > now() - interval '1 minute', refresh_failed_at IS NULL, app_secret IS NOT NULL
		  FROM ig_identity.account_tokens WHERE ig_account_id = '@{[ACCT_OLD]}'}),
	't|t|t|t', 'new token, expiry and rotation time stored together; the app secret stays');
is( $node->safe_psql('postgres', qq{
		SELECT s.token_expires_at = t.expires_at, s.status, s.last_error IS NULL
		  FROM ig_identity_status s JOIN ig_identity.account_tokens t USING (ig_account_id)
		 WHERE s.ig_account_id = '@{[ACCT_OLD]}'}),
	't|active|t', 'ig_identity_status shows token_expires_at');
my $refresh_calls = [ grep { $_->{endpoint} eq 'refresh' } @{ mock_admin($mock, 'GET', '/_admin/stats')->{requests} } ];
my ($old_call) = grep { ($_->{account} // '') eq ACCT_OLD } @$refresh_calls;
ok($old_call && $old_call->{status} == 200 && $old_call->{proof},
	'the refresh call carried appsecret_proof and was answered 200');
is(scalar(grep { ($_->{account} // '') eq ACCOUNT_A } @$refresh_calls), 0, 'a Page token is never refreshed');
is( $node->safe_psql('postgres',
		"SELECT ig_identity.secret_matches('access_token', ig_account_id, access_token, '@{[TOKEN_A]}') AND expires_at IS NULL FROM ig_identity.account_tokens"
		  . " WHERE ig_account_id = '@{[ACCOUNT_A]}'"),
	't', 'the Page token is kept as it was');

# The new token works (with the proof) for the next calls.
my ($ret, $out, $err) = $node->psql('postgres', "SELECT api_calls > 0 FROM ig_sync_inbox('loc_old')");
is($out, 't', 'the refreshed token is the one the next sync uses');

# Refused by Meta: the account shows why, the old token stays.
is( $node->safe_psql('postgres', qq{
		SELECT ig_identity.secret_matches('access_token', t.ig_account_id, t.access_token, '@{[TOKEN_YOUNG]}'), t.refresh_failed_at IS NOT NULL, t.expires_at IS NULL,
		       a.status, a.last_error_code, a.last_error LIKE 'token refresh failed: error 100:%'
		  FROM ig_identity.account_tokens t JOIN ig_identity.accounts a USING (ig_account_id)
		 WHERE ig_account_id = '@{[ACCT_YOUNG]}'}),
	't|t|t|active|100|t', 'a refused refresh keeps the token and shows the error on the account');
is( $node->safe_psql('postgres', qq{
		SELECT ig_identity.secret_matches('access_token', t.ig_account_id, t.access_token, '@{[TOKEN_EXPIRED]}'), s.status, s.last_error_code
		  FROM ig_identity.account_tokens t JOIN ig_identity_status s USING (ig_account_id)
		 WHERE ig_account_id = '@{[ACCT_EXPIRED]}'}),
	't|reauth_required|190', 'an expired token stops the account for reconnecting, token kept');

# Nothing is tried again at once: the refreshed token is young, and a failed
# one waits an hour.
my $n_refresh = scalar @$refresh_calls;
is($n_refresh, 3, 'one refresh call per due Instagram Login account');
sleep(3);
is(scalar(grep { $_->{endpoint} eq 'refresh' } @{ mock_admin($mock, 'GET', '/_admin/stats')->{requests} }),
	$n_refresh, 'no refresh is retried in the next cycles');

# A token rotated meanwhile (ig_connect_account again) wins over a refresh
# that read the one before.
$node->safe_psql('postgres',
	"SELECT ig_connect_account('loc_young', '@{[ACCT_YOUNG]}', '@{[ACCT_YOUNG]}', '@{[TOKEN_YOUNG]}',"
	  . " 'graph.instagram.com')");
$node->safe_psql('postgres', qq{
	SELECT ig_identity._store_refreshed_token('@{[ACCT_YOUNG]}', to_timestamp($before{+ACCT_YOUNG} / 1000000.0),
	                                          ig_identity.seal_secret('tok-022-stale-refresh-8Lp1', 'access_token:@{[ACCT_YOUNG]}'), 5184000)});
is( $node->safe_psql('postgres',
		"SELECT ig_identity.secret_matches('access_token', ig_account_id, access_token, '@{[TOKEN_YOUNG]}') FROM ig_identity.account_tokens WHERE ig_account_id = '@{[ACCT_YOUNG]}'"),
	't', 'a refresh of a token that was rotated since is not stored');

# No token, old or new, and no app secret in the server log.
# (the mock's refreshed tokens all start so; the stored one is sealed)
my $new_token = 'mock-refreshed-';
# (log_statement = all echoes this test's own SQL, literals included: those
# records are the client's text, not something the product logged)
my @records = split /\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)/, log_since($node, 0);
my $log = join "\n", grep { !/LOG:  statement: |STATEMENT:  |DETAIL:  parameters: / } @records;
for my $secret (TOKEN_OLD, TOKEN_YOUNG, TOKEN_EXPIRED, SECRET_OLD, $new_token, 'refresh_access_token', 'access_token=')
{
	is(index($log, $secret), -1, 'the server log does not hold ' . ($secret =~ /^tok|^mock/ ? 'a token' : $secret));
}

$node->stop;
stop_mock($mock);
done_testing();
