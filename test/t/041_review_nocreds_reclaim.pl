# 041_review_nocreds_reclaim.pl — review15: the rows of an account whose
# token this server cannot open are claimed again by every top-up claim of
# a long cycle.
#
# fetch_and_apply gives such rows a not_attempted outcome with
# next_try_at = retry_at, computed once at the start of the cycle (cycle
# start + refresh_interval); a mid-cycle save later than that writes a
# not_before already in the past, and the top-up claim in the same
# transaction claims the rows again (the account is not in the skip set),
# attempts + 1 each time; saved() then drops the re-claimed keys from
# leased_.  Expected: the rows wait refresh_interval from their save, and
# the account takes no more rows in this cycle.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use constant {
	BAD  => '17841400000300001', TOKEN_BAD  => 'mock-token-r15-bad-7Qp2',
	GOOD => '17841400000300002', TOKEN_GOOD => 'mock-token-r15-good-4Kd9',
};
my $mock = start_mock('--generate-users', 100);
mock_admin($mock, 'POST', '/_admin/data', { accounts => [
	{ ig_account_id => BAD, token => TOKEN_BAD }, { ig_account_id => GOOD, token => TOKEN_GOOD } ] });
# refresh_interval 1 s (the helper's); GOOD's 24 rows at 2 calls/s make a
# cycle of about 12 s
my $node = new_worker_node('nocreds', mock => $mock,
	conf => "ig_identity.requests_per_second = 2\nlog_statement = none\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
sub sql { return $node->safe_psql('postgres', $_[0]); }
sql(join ";\n",
	"SELECT ig_connect_account('loc_r15', '@{[BAD]}', '@{[BAD]}', '@{[TOKEN_BAD]}', 'graph.facebook.com')",
	"SELECT ig_connect_account('loc_r15', '@{[GOOD]}', '@{[GOOD]}', '@{[TOKEN_GOOD]}', 'graph.facebook.com')");
# BAD's row gets GOOD's ciphertext: it does not open there (AAD binding)
sql(qq{UPDATE ig_identity.account_tokens b SET access_token = g.access_token
         FROM ig_identity.account_tokens g
        WHERE b.ig_account_id = '@{[BAD]}' AND g.ig_account_id = '@{[GOOD]}'});
my $cycles0 = worker_state($node)->{cycles};
sql(qq{BEGIN;
INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
SELECT '@{[GOOD]}', (2000000000000000 + g)::text, 'new', now() FROM generate_series(0, 23) g;
INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
SELECT '@{[BAD]}', (2000000000000050 + g)::text, 'new', now() FROM generate_series(0, 2) g;
COMMIT});

ok(wait_until(sub { sql("SELECT count(*) FROM instagram_user_cache WHERE ig_account_id = '@{[GOOD]}'"
	  . " AND username IS NOT NULL") == 24 }, 60), 'the good account is drained');
my $cycles = worker_state($node)->{cycles} - $cycles0;
my $attempts = sql("SELECT max(attempts) FROM ig_identity.refresh_queue WHERE ig_account_id = '@{[BAD]}'");
# one claim per cycle at most (and one spare for a cycle boundary)
cmp_ok($attempts, '<=', $cycles + 2,
	"the unopenable account's rows were claimed $attempts times in $cycles cycles");

$node->stop;
stop_mock($mock);
done_testing();
