# 054_review_citus_before_cte.pl — review of issue 17: with the Citus key
# (ig_account_id, id), store_conversations()'s "before" CTE
# (src/sql/30_fetch.sql) reads conversations by id ALONE, every account's.
# Account A's first sync of a conversation whose id account B already stores
# with the same updated_time joins A's freshly inserted row to B's row and
# reports it unchanged: A's messages are never fetched, on this sync or any
# later one. The code path only needs the key (ig_account_id, id) without a
# unique index on id alone, which is what a Citus coordinator has; a single
# node with that key shows it without building a Citus cluster.
# Fixed: the CTE reads this account's rows only.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock();
my $node = new_worker_node('before_cte', mock => $mock);
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }
sql('CREATE EXTENSION ig_identity');
# the key a Citus coordinator gives the table (60_citus.sql)
sql(q{
	DO $$ DECLARE r record; BEGIN
	  FOR r IN SELECT conname FROM pg_constraint
	            WHERE conrelid = 'instagram_conversations'::regclass AND contype IN ('p', 'u') LOOP
	    EXECUTE format('ALTER TABLE instagram_conversations DROP CONSTRAINT %I', r.conname);
	  END LOOP;
	  FOR r IN SELECT indexrelid::regclass AS i FROM pg_index
	            WHERE indrelid = 'instagram_conversations'::regclass AND indisunique LOOP
	    EXECUTE format('DROP INDEX %s', r.i);
	  END LOOP;
	END $$;
	ALTER TABLE instagram_conversations ADD PRIMARY KEY (ig_account_id, id);
	INSERT INTO instagram_conversations (id, ig_account_id, updated_time)
	VALUES ('conv1', '17841400000000002', '2026-12-01 10:00+00');
});
is(sql(q{SELECT ig_identity.store_conversations('17841400000000001', 'loc_a',
           ARRAY['conv1'], ARRAY['2000000000000001'], ARRAY['2026-12-01 10:00+00'::timestamptz])}),
	'{conv1}', "account A's first sight of conv1 is new for A (its messages are worth storing)");
is(sql(q{SELECT count(*) FROM instagram_conversations WHERE id = 'conv1'}), '2',
	'both accounts hold a conv1 row under the key (ig_account_id, id)');

$node->stop;
done_testing();
