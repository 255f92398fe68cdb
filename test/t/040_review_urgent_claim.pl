# 040_review_urgent_claim.pl — review15: a quiet account's webhook row is not
# starved by the turn-1 rows of many backlogged accounts.
#
# _worker_claim_fair orders candidates by (turn, not_before): a webhook row
# is its account's turn 1, but it is the newest, so it sorts after every
# other account's oldest stale row.  With more backlogged accounts than a
# top-up claim has room (2,000 accounts x 10 stale rows against a pipeline
# top-up of a few hundred rows), the webhook waits until nearly the whole
# backlog has drained (about a minute in the bench's 2,000-account
# scenario).  Rows someone waits for (reason webhook or manual) must come
# first, within the per-account share, both across accounts and inside
# their own account's turns.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# the claim is called directly, in a database the worker does not serve
my $node = new_worker_node('urgent_claim');
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE fair');
$node->safe_psql('fair', 'CREATE EXTENSION ig_identity');
sub sql { return $node->safe_psql('fair', $_[0]); }

# 300 accounts with 5 stale rows each (ten minutes old); the quiet account
# 17841400000200999 gets one webhook row now; the big account ...000 also
# gets a webhook row behind its own 5 stale rows.
sql(q{SELECT count(*) FROM (SELECT ig_connect_account('loc_u', '178414000002' || lpad(k::text, 5, '0'),
        '178414000002' || lpad(k::text, 5, '0'), 'tok-urgent-' || k) FROM generate_series(0, 300) k) c});
sql(q{INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
      SELECT '178414000002' || lpad(k::text, 5, '0'), (3000000000000000 + 10 * k + g)::text, 'stale',
             now() - interval '10 minutes'
        FROM generate_series(0, 299) k, generate_series(0, 4) g});
sql(q{INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before) VALUES
      ('17841400000200300', '3000000000999999', 'webhook', now()),
      ('17841400000200000', '3000000000999998', 'webhook', now())});

# a top-up claim with room for 100 rows, share 7 per account
my $got = sql(q{SELECT string_agg(ig_user_id, ',' ORDER BY ig_user_id)
                  FROM ig_identity._worker_claim_fair(100, 7, '1 minute', '{}')
                 WHERE reason = 'webhook'});
is($got, '3000000000999998,3000000000999999',
	"both webhook rows are in the first top-up claim, before 300 accounts' stale rows");

$node->stop;
done_testing();
