# 046_review_webhook_unreadable_values.pl — review of issue 14's webhooks:
#   - PostgreSQL accepts values jansson refuses (an integer beyond 64 bits:
#     jsonb prints 1e20 in full; nesting deeper than 2048). One such value in
#     one event used to refuse the whole delivery ("not a JSON object"): the
#     good events are stored, the bad one is a dead letter;
#   - a body that is no delivery is still refused;
#   - the replay works through more dead letters than one batch (500).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = new_worker_node('review_webhook_values');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
my $A = ACCOUNT_A;
my $JANE = USER_JANE;
sub sql { return $node->safe_psql('postgres', $_[0]); }

sub event
{
	my ($mid, $extra) = @_;
	return qq({"sender":{"id":"$JANE"},"recipient":{"id":"$A"},"timestamp":1752900000001,)
	  . qq("message":{"mid":"$mid","text":"t $mid"$extra}});
}

my $big = qq({"object":"instagram","entry":[{"id":"$A","time":1,"messaging":[)
  . event('mid.good.1', '') . ',' . event('mid.big', ',"x":1e20') . ']},'
  . qq({"id":"$A","time":2,"standby":[) . event('mid.good.2', '') . ']}]}';
is(sql("SELECT messages_stored || ',' || dead_letters FROM ig_ingest_webhook('$big')"), '2,1',
	'an integer beyond 64 bits in one event: the good events of the delivery are stored');
is(sql("SELECT ig_account_id || ' ' || (reason LIKE 'event the parser cannot read%') || ' '"
	  . " || (raw->'entry'->0->'messaging'->0->'message'->>'mid')"
	  . " FROM ig_identity.webhook_dead_letters"),
	"$A true mid.big", 'the bad one is a dead letter of its own, with its account');

my $deep = ('[' x 3000) . (']' x 3000);
my $nested = qq({"object":"instagram","entry":[{"id":"$A","time":1,"messaging":[)
  . event('mid.good.3', '') . ',' . event('mid.deep', qq(,"x":$deep)) . ']}]}';
is(sql("SELECT messages_stored || ',' || dead_letters FROM ig_ingest_webhook('$nested')"), '1,1',
	'nesting deeper than 2048 in one event: the good event is stored');
is(sql("SELECT count(*) FROM instagram_messages WHERE id IN ('mid.good.1', 'mid.good.2', 'mid.good.3')"),
	'3', 'all three good messages are in the inbox');

my ($rc, $out, $err) = $node->psql('postgres',
	q{SELECT * FROM ig_ingest_webhook('{"object":"page","entry":[{"id":"1","x":100000000000000000000000}]}')});
like($err, qr/invalid Instagram webhook payload/, 'a body that is no Instagram delivery is still refused');

# --- replay through several batches ----------------------------------------
sql('DELETE FROM ig_identity.webhook_dead_letters');
my $bad = join(',', map { qq({"sender":{"id":"$JANE"},"recipient":{"id":"$A"},"timestamp":$_,"what":{}}) } 1 .. 1100);
my $many = qq({"object":"instagram","entry":[{"id":"$A","messaging":[$bad]}]});
is(sql("SELECT dead_letters FROM ig_ingest_webhook('$many')"), '1100', '1100 dead letters');
my $late = qq({"object":"instagram","entry":[{"id":"$A","messaging":[) . event('mid.late', '') . ']}]}';
sql("INSERT INTO ig_identity.webhook_dead_letters (ig_account_id, reason, raw) VALUES ('$A', 'old parser', '$late')");
is(sql('SELECT replayed || \',\' || still_dead FROM ig_identity_replay_dead_letters()'), '1,1100',
	'the replay reads them all, batch after batch');
is(sql("SELECT count(*) FROM instagram_messages WHERE id = 'mid.late'"), '1', 'and stores the one that reads now');

$node->stop;
done_testing();
