# 017_webhook_shapes.pl — webhook shapes other than a text message, end to
# end with the worker and the mock:
#   - a postback under `standby` from a person marked consent_required gets
#     their username cached (a tap grants consent like a message);
#   - a referral from a new person does too;
#   - a delivery with a bad event stores the good one, whose sender is
#     resolved, and keeps the bad one as a dead letter that the worker leaves
#     alone; ig_identity_status counts it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock();
my $node = new_worker_node('webhook_shapes', mock => $mock,
	conf => "ig_identity.refresh_interval = '2s'\nig_identity.requests_per_second = 0\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');

my $A = ACCOUNT_A;
my ($JANE, $JOHN, $STORE) = (USER_JANE, USER_JOHN, USER_STORE);

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub username
{
	my ($user) = @_;
	return sql("SELECT coalesce(username, '') FROM instagram_user_cache"
		  . " WHERE ig_account_id = '$A' AND ig_user_id = '$user'");
}

ok(wait_until(sub { worker_pid($node) ne '' }, 10), 'worker runs');
sql("SELECT ig_connect_account('loc_123', '$A', '$A', '" . TOKEN_A . "', 'graph.facebook.com')");

# --- 1. a postback (standby) from a person who needed consent -------------
sql("INSERT INTO instagram_user_cache (ig_account_id, ig_user_id, fetch_status, last_error_code)"
	  . " VALUES ('$A', '$JOHN', 'consent_required', 230)");
my $postback = qq({"object":"instagram","entry":[{"id":"$A","time":1,"standby":[
  {"sender":{"id":"$JOHN"},"recipient":{"id":"$A"},"timestamp":1752900005001,
   "postback":{"mid":"mid.pb.1","title":"Opening hours?","payload":"ICEBREAKER_HOURS"}}]}]});
is(sql("SELECT events_stored || ',' || participants_queued FROM ig_ingest_webhook('$postback')"), '1,1',
	'the postback is stored and its sender queued although marked consent_required');
ok(wait_until(sub { username($JOHN) eq 'john.smith' }, 10),
	'the worker caches the username of the person who tapped');
is(sql("SELECT fetch_status FROM instagram_user_cache WHERE ig_account_id = '$A' AND ig_user_id = '$JOHN'"),
	'ok', 'and the consent mark is gone');

# --- 2. a referral from someone new ---------------------------------------
my $referral = qq({"object":"instagram","entry":[{"id":"$A","time":1,"messaging":[
  {"sender":{"id":"$STORE"},"recipient":{"id":"$A"},"timestamp":1752900006001,
   "referral":{"ref":"spring","source":"IGME_LINK","type":"OPEN_THREAD"}}]}]});
is(sql("SELECT participants_queued FROM ig_ingest_webhook('$referral')"), '1', 'the referral queues its sender');
ok(wait_until(sub { username($STORE) eq 'stories.in.store' }, 10), 'whose username is cached');

# --- 3. a partly bad delivery ---------------------------------------------
my $partly = qq({"object":"instagram","entry":[{"id":"$A","time":1,"messaging":[
  {"sender":{"id":"$JANE"},"recipient":{"id":"$A"},"timestamp":1752900009001,"message":{"mid":"mid.ok.1","text":"hi"}},
  {"sender":{"id":"$JANE"},"recipient":{"id":"$A"},"timestamp":1752900009002,"message":{"text":"no mid"}}]}]});
is(sql("SELECT messages_stored || ',' || dead_letters FROM ig_ingest_webhook('$partly')"), '1,1',
	'the good message is stored, the bad event is a dead letter');
ok(wait_until(sub { username($JANE) eq 'jane.doe' }, 10), 'the good message\'s sender is resolved');
is(sql("SELECT webhook_dead_letters FROM ig_identity_status WHERE ig_account_id = '$A'"), '1',
	'ig_identity_status counts the dead letter');
is(sql('SELECT count(*) FROM ig_identity.refresh_queue'), '0', 'nothing is left queued');
is(sql('SELECT replayed || \',\' || still_dead FROM ig_identity_replay_dead_letters()'), '0,1',
	'a replay keeps the dead letter that still does not parse');

$node->stop;
done_testing();
