# 044_review_webhook_unsend_race.pl — review of issue 14's webhooks:
#   - a message and its unsend stored by two sessions at the same time: the
#     unsend must win whichever commits first (both orders);
#   - a dead letter keeps only its entry's id and time, not every other key
#     of the entry once per bad event;
#   - a timestamp beyond year 9999 is a dead letter, not an overflowed
#     timestamptz, and its delivery's good event is stored.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = new_worker_node('review_webhook_race');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');

my $A = ACCOUNT_A;
my $JANE = USER_JANE;
sub sql { return $node->safe_psql('postgres', $_[0]); }

sub message
{
	my ($mid, $deleted) = @_;
	my $body = $deleted ? qq("is_deleted":true) : qq("text":"secret $mid");
	return qq({"object":"instagram","entry":[{"id":"$A","time":1,"messaging":[
  {"sender":{"id":"$JANE"},"recipient":{"id":"$A"},"timestamp":1752900000001,
   "message":{"mid":"$mid",$body}}]}]});
}

# first: the session that commits first; second: the one started while the
# first is still open
sub race
{
	my ($mid, $first_unsend) = @_;
	my $s1 = $node->background_psql('postgres', on_error_stop => 1);
	my $s2 = $node->background_psql('postgres', on_error_stop => 1);
	my $pid2 = $s2->query_safe('SELECT pg_backend_pid()');
	$s1->query_safe('BEGIN');
	$s1->query_safe("SELECT * FROM ig_ingest_webhook('" . message($mid, $first_unsend) . "')");
	$s2->query_until(qr/sent/,
		"\\echo sent\nSELECT * FROM ig_ingest_webhook('" . message($mid, !$first_unsend) . "');\n");
	my $waits = wait_until(sub {
		sql("SELECT state = 'idle' OR wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $pid2") eq 't'
	}, 10);
	$s1->query_safe('COMMIT');
	$s1->quit;
	$s2->query_safe('SELECT 1');
	$s2->quit;
	return $waits;
}

for my $case ([ 'mid.race.1', 0, 'message first' ], [ 'mid.race.2', 1, 'unsend first' ])
{
	my ($mid, $first_unsend, $name) = @$case;
	race($mid, $first_unsend);
	is( sql("SELECT coalesce(message, '<null>') FROM instagram_messages WHERE id = '$mid'"),
		'<null>', "$name, concurrently: the unsent message's text is gone");
	is(sql("SELECT deleted_at IS NOT NULL FROM ig_identity.message_details WHERE mid = '$mid'"),
		't', "$name: it is marked deleted");
}

# --- dead letters do not copy the entry once per bad event ---------------
my $pad = 'x' x 20000;
my $bad = join(',', map { qq({"sender":{"id":"$JANE"},"recipient":{"id":"$A"},"timestamp":$_,"nonsense":{}}) } 1 .. 50);
my $wide = qq({"object":"instagram","entry":[{"id":"$A","time":1,"pad":"$pad","messaging":[$bad]}]});
is(sql("SELECT dead_letters FROM ig_ingest_webhook('$wide')"), '50', 'fifty bad events, fifty dead letters');
cmp_ok(sql("SELECT sum(length(raw::text)) FROM ig_identity.webhook_dead_letters"),
	'<', 20000, 'which do not hold fifty copies of the entry\'s other keys');
is(sql("SELECT count(*) FROM ig_identity.webhook_dead_letters WHERE raw->'entry'->0->>'id' = '$A'"
	  . " AND raw->'entry'->0 ? 'time'"), '50', 'each keeps the entry id and time');
sql('DELETE FROM ig_identity.webhook_dead_letters');

# --- a timestamp past year 9999 --------------------------------------------
my $far = qq({"object":"instagram","entry":[{"id":"$A","time":1,"messaging":[
  {"sender":{"id":"$JANE"},"recipient":{"id":"$A"},"timestamp":1752900000001,"message":{"mid":"mid.ok","text":"fine"}},
  {"sender":{"id":"$JANE"},"recipient":{"id":"$A"},"timestamp":9999999999999999,"message":{"mid":"mid.far","text":"far"}}]}]});
is(sql("SELECT messages_stored || ',' || dead_letters FROM ig_ingest_webhook('$far')"), '1,1',
	'a timestamp past 9999 is a dead letter; the good event of its delivery is stored');
is(sql("SELECT reason FROM ig_identity.webhook_dead_letters"), 'timestamp out of range', 'with its reason');
is(sql("SELECT count(*) FROM instagram_messages WHERE id = 'mid.far'"), '0', 'and no message row');

$node->stop;
done_testing();
