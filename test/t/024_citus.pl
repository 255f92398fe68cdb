# 024_citus.pl — ig_identity on Citus: a coordinator (ig_identity and its
# worker) and two worker nodes, each a throwaway cluster on a loopback port,
# the inbox tables distributed by ig_account_id and co-located.
#
#   0. CREATE EXTENSION without inbox tables: keys (ig_account_id, id), and
#      ig_identity_distribute() distributes them;
#   1. the legacy repair: the foundation's corrupted cache (a local table on
#      the coordinator) next to distributed conversations and messages, with
#      the same figures as on one node; then ig_identity_distribute();
#   2. the inbox tables owned by a role that is not a superuser, so that every
#      inbox read and write runs under SECURITY_RESTRICTED_OPERATION as that
#      role, and Citus opens its connections as it;
#   3. a refresh of 1,000 identities over 20 accounts (900 from conversations,
#      100 from the 30-day message scan), checked shard by shard;
#   4. a sync of an account's conversations and messages, twice;
#   5. webhooks resolved by the background worker, and a redelivery;
#   6. a stopped worker node: a refresh of an account whose shard lives there
#      fails with a clear error, a location with accounts on both nodes
#      refreshes the reachable one; the background worker saves the
#      other accounts and keeps the rest queued; all resolve once the node is
#      back, nothing lost;
#   7. the coordinator restarted: the worker comes back and resolves again.
#
# Needs Citus in the PostgreSQL installation (scripts/citus_build.sh builds it
# from test/vendor/ for scripts/test.sh); skipped, saying so, without it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
if (!-f "$pkglibdir/citus.so")
{
	# scripts/test.sh says whether it tried: then a missing Citus is a failure
	if (($ENV{IGID_CITUS} // '') eq 'built')
	{
		fail("citus.so is in $pkglibdir after scripts/citus_build.sh");
		done_testing();
		exit 0;
	}
	plan skip_all => "Citus is not installed in $pkglibdir"
	  . ($ENV{IGID_CITUS} ? " ($ENV{IGID_CITUS})" : '; scripts/citus_build.sh builds it from test/vendor/');
}

my $NACC = 20;
my $PER = 50;
my @acc = map { sprintf('178414100000000%02d', $_) } 0 .. $NACC - 1;
my @tok = map { sprintf('mock-token-citus-%02d-0123456789', $_) } 0 .. $NACC - 1;
sub uid { return (2000000000000000 + $_[0]) . '' }

my $mock = start_mock('--generate-users', 1000);
mock_admin($mock, 'POST', '/_admin/data', {
	accounts => [ map {
		{ ig_account_id => $acc[$_], self_igsid => $acc[$_],
		  page_id => sprintf('10000000000100%02d', $_), token => $tok[$_],
		  api_host => 'graph.facebook.com' } } 0 .. $NACC - 1 ],
	# account A's inbox for the sync
	conversations => [ map {
		my $i = $_;
		{ id => sprintf('aWdfZAG06citus%03d', $i), account => ACCOUNT_A,
		  participant => uid($i), updated_time => '2026-12-01T10:00:00+0000',
		  messages => [ map {
			  { id => sprintf('mid.citus.%03d.%d', $i, $_),
				created_time => "2026-12-01T10:0${_}:00+0000",
				from => $_ % 2 ? ACCOUNT_A : uid($i),
				to => $_ % 2 ? uid($i) : ACCOUNT_A,
				message => "m$_" } } 0 .. 2 ] } } 0 .. 29 ] });

my $net = "listen_addresses = '127.0.0.1'\nmax_prepared_transactions = 50\n"
  . "citus.shard_count = 8\nlog_statement = 'none'\n";
my @workers = map {
	my $w = PostgreSQL::Test::Cluster->new("citus_worker$_");
	$w->init;
	$w->append_conf('postgresql.conf', "shared_preload_libraries = 'citus'\n$net");
	$w->start;
	$w;
} 1 .. 2;
my $coord = new_worker_node('citus_coordinator', mock => $mock,
	conf => "shared_preload_libraries = 'citus,ig_identity'\n$net");
$coord->start;

sub sql { return $coord->safe_psql('postgres', $_[0]); }
$_->safe_psql('postgres', 'CREATE EXTENSION citus') for ($coord, @workers);
sql("SELECT citus_set_coordinator_host('127.0.0.1', " . $coord->port . ")");
sql("SELECT citus_add_node('127.0.0.1', " . $_->port . ")") for @workers;
is(sql('SELECT count(*) FROM citus_get_active_worker_nodes()'), '2', 'a coordinator and two worker nodes');

# --- 0. no inbox tables yet: created with keys Citus can distribute --------
sql('CREATE EXTENSION ig_identity');
is(sql(q{SELECT string_agg(c.conrelid::regclass::text || ':' || pg_get_constraintdef(c.oid), ',' ORDER BY 1)
           FROM pg_constraint c WHERE c.contype = 'p' AND c.conrelid IN
                ('instagram_conversations'::regclass, 'instagram_messages'::regclass)}),
	'instagram_conversations:PRIMARY KEY (ig_account_id, id),instagram_messages:PRIMARY KEY (ig_account_id, id)',
	'on a Citus coordinator the created conversation and message keys lead with ig_account_id');
is(sql(q{SELECT count(*) FROM ig_identity_distribute() WHERE action = 'distributed'}), '3',
	'ig_identity_distribute() distributes the three created tables');
is(sql(q{SELECT count(*) FROM pg_dist_partition WHERE logicalrelid::text LIKE 'instagram_%'}), '3',
	'... as Citus records them');
sql(q{INSERT INTO instagram_messages (id, ig_account_id) VALUES ('m1', '1'), ('m1', '2')});
is(sql('SELECT count(*) FROM instagram_messages'), '2', 'a message id is unique per account');
# start again from the app's legacy inbox
sql(q{DROP EXTENSION ig_identity;
      DROP TABLE instagram_user_cache, instagram_conversations, instagram_messages});

# --- 1. the legacy repair -------------------------------------------------
# The app distributed its conversations and messages (their key led with the
# account first) but could not distribute the cache: NULL accounts.
sql(slurp_file("$ENV{IGID_SRC}/test/fixtures/legacy_seed.sql"));
sql(q{
	ALTER TABLE instagram_conversations DROP CONSTRAINT instagram_conversations_pkey,
	                                    ADD PRIMARY KEY (ig_account_id, id);
	SELECT create_distributed_table('instagram_conversations', 'ig_account_id');
	SELECT create_distributed_table('instagram_messages', 'ig_account_id',
	                                colocate_with => 'instagram_conversations');
	SELECT truncate_local_data_after_distributing_table('instagram_conversations');
	SELECT truncate_local_data_after_distributing_table('instagram_messages');
});
my ($rc, $out, $err) = $coord->psql('postgres', 'CREATE EXTENSION ig_identity');
is($rc, 0, 'CREATE EXTENSION repairs a local cache next to distributed conversations and messages')
  or diag($err);
like($err, qr/Rows given their account back: 3\. Duplicate groups merged: 2\. Rows set aside, each with its reason: 9\./,
	'the same figures as on one node');
is(sql("SELECT string_agg(reason || '=' || n, ',' ORDER BY reason) FROM
          (SELECT reason, count(*) n FROM ig_identity.quarantine GROUP BY reason) q"),
	'ambiguous_account=1,duplicate_id=1,merged_duplicate=3,missing_user_id=1,no_account_found=1,self_identity=2',
	'quarantine: recovered, ambiguous, self, merged, and the redelivered message of a distributed table');
is(sql('SELECT * FROM ig_identity_check()'), '7|0|7|9', 'ig_identity_check() after the repair');
is(sql(q{SELECT attnotnull FROM pg_attribute WHERE attrelid = 'instagram_user_cache'::regclass
          AND attname = 'ig_account_id'}), 't', 'the cache has NOT NULL');
is(sql(q{SELECT count(*) FROM pg_index i WHERE i.indrelid = 'instagram_messages'::regclass AND i.indisunique}),
	'1', 'the distributed messages got a unique key (ig_account_id, id)');
is(sql(q{SELECT count(*) FROM instagram_messages WHERE id = 'm_A102_1'}), '1', 'one copy of the redelivered message kept');
is($workers[0]->safe_psql('postgres',
		"SELECT count(*) FROM pg_extension WHERE extname = 'ig_identity'"), '1',
	'Citus propagated the extension to the worker nodes');
is($workers[0]->safe_psql('postgres', 'SELECT count(*) FROM ig_identity.quarantine'), '0',
	'the repair ran on the coordinator only');

# After the repair the cache can be distributed (the app's serial key first).
sql('ALTER TABLE instagram_user_cache DROP CONSTRAINT instagram_user_cache_pkey');
is(sql(q{SELECT string_agg(table_name::text || ':' || action, ',') FROM ig_identity_distribute()}),
	'instagram_user_cache:distributed,instagram_conversations:already distributed,instagram_messages:already distributed',
	'ig_identity_distribute() distributes the repaired cache');
is(sql(q{SELECT string_agg(table_name::text, ',') FROM ig_identity_distribute() WHERE action = 'distributed'}),
	'', 'ig_identity_distribute() is idempotent');
is(sql(q{SELECT count(DISTINCT colocationid) FROM pg_dist_partition WHERE logicalrelid IN
          ('instagram_user_cache'::regclass, 'instagram_conversations'::regclass, 'instagram_messages'::regclass)}),
	'1', 'the three inbox tables are co-located');
is(sql('SELECT * FROM ig_identity_check()'), '7|0|7|9', 'ig_identity_check() on the distributed cache');
is(sql(q{SELECT ig_display_name('17841400000000001', '1000000000000102')}), 'john.smith',
	'ig_display_name() reads the distributed cache');

# --- 2. a role that is not a superuser owns the inbox ---------------------
sql(q{
	CREATE ROLE inbox_app LOGIN;
	ALTER TABLE instagram_user_cache OWNER TO inbox_app;
	ALTER TABLE instagram_conversations OWNER TO inbox_app;
	ALTER TABLE instagram_messages OWNER TO inbox_app;
});
is($workers[1]->safe_psql('postgres', "SELECT count(*) FROM pg_roles WHERE rolname = 'inbox_app'"), '1',
	'the owner role exists on the worker nodes (Citus propagated it)');

# --- 3. 1,000 identities over 20 accounts ---------------------------------
for my $i (0 .. $NACC - 1)
{
	sql("SELECT ig_connect_account('loc_c$i', '$acc[$i]', '$acc[$i]', '$tok[$i]', 'graph.facebook.com')");
}
# users 0..899 from conversations, 900..999 only from recent messages
sql(q{
	INSERT INTO instagram_conversations (id, ig_account_id, participant_igsid, updated_time)
	SELECT 'conv-citus-' || u, '178414100000000' || lpad((u % 20)::text, 2, '0'),
	       (2000000000000000 + u)::text, now()
	  FROM generate_series(0, 899) u;
	INSERT INTO instagram_messages (id, ig_account_id, from_id, to_id, message, created_at)
	SELECT 'mid-citus-' || u, '178414100000000' || lpad((u % 20)::text, 2, '0'),
	       (2000000000000000 + u)::text, '178414100000000' || lpad((u % 20)::text, 2, '0'), 'hi',
	       now() - interval '1 day'
	  FROM generate_series(900, 999) u;
});
my $bad = 0;
for my $i (0 .. $NACC - 1)
{
	my $r = sql("SELECT refreshed, failed, total FROM ig_refresh_identities('loc_c$i')");
	$bad++ unless $r eq "$PER|0|$PER";
	diag("loc_c$i: $r") unless $r eq "$PER|0|$PER";
}
is($bad, 0, "ig_refresh_identities: $PER refreshed, 0 failed, for each of the $NACC accounts");
# every shard, read on its own node
my $shards = sql(q{
	SELECT string_agg(result, ',' ORDER BY shardid)
	  FROM run_command_on_shards('instagram_user_cache', $$
	         SELECT count(*) || '/' || count(*) FILTER (WHERE username = 'user.' || (ig_user_id::bigint - 2000000000000000))
	           FROM %s WHERE left(ig_account_id, 9) = '178414100'$$)});
my @per_shard = split /,/, $shards;
is(scalar(@per_shard), 8, 'eight shards answered');
my ($rows, $named, $empty) = (0, 0, 0);
for (@per_shard)
{
	my ($n, $ok) = split m{/};
	$rows += $n;
	$named += $ok;
	$empty++ if $n == 0;
}
is($rows, 1000, 'the shards hold 1,000 identity rows of the 20 accounts');
is($named, 1000, 'every one with the username the mock gave it');
cmp_ok($empty, '<', 8, 'the rows are spread over the shards');
is(sql(q{SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'instagram_user_cache'::regclass
          AND shard_size > 0 AND nodeport <> } . $coord->port), '2', 'on both worker nodes');

# --- 4. a sync --------------------------------------------------------------
sql("SELECT ig_connect_account('loc_a', '" . ACCOUNT_A . "', '" . ACCOUNT_A . "', '" . TOKEN_A
	  . "', 'graph.facebook.com')");
is(sql(q{SELECT conversations, messages FROM ig_sync_inbox('loc_a')}), '30|90', 'ig_sync_inbox stores 30 conversations and 90 messages');
is(sql(q{SELECT messages FROM ig_sync_inbox('loc_a')}), '0', 'a second sync stores nothing twice');
is(sql(q{SELECT count(*), count(conversation_id) FROM instagram_messages WHERE id LIKE 'mid.citus.%'}), '90|90',
	'the messages, each with its conversation');
is(sql(q{SELECT count(*) FROM instagram_user_cache WHERE ig_account_id = '17841400000000001'
          AND ig_user_id LIKE '2000000000000%' AND username IS NOT NULL}), '30',
	'the participants captured from the sync');

# --- 5. webhooks resolved by the worker -------------------------------------
ok(wait_until(sub { worker_pid($coord) ne '' }, 30), 'the worker runs on the coordinator');
sub webhook
{
	my ($account, $sender, $mid) = @_;
	return sql(qq{SELECT messages_stored || '|' || duplicates || '|' || participants_queued
	  FROM ig_ingest_webhook('{"object":"instagram","entry":[{"id":"$account","time":1733500000000,
	    "messaging":[{"sender":{"id":"$sender"},"recipient":{"id":"$account"},"timestamp":1733500000000,
	    "message":{"mid":"$mid","text":"hello"}}]}]}'::jsonb)});
}
# senders not yet in these accounts' caches (user i belongs to account i % 20)
my @hooks = map { [ $acc[$_], uid(501 + $_), "mid.hook.$_" ] } 0 .. 4;
is(join(',', map { webhook(@$_) } @hooks), join(',', ('1|0|1') x 5), 'five webhooks stored, each sender queued');
is(webhook(@{ $hooks[0] }), '0|1|0', 'a redelivery is a duplicate');
ok(wait_until(sub {
		sql(q{SELECT count(*) FROM instagram_user_cache c
		       WHERE (c.ig_account_id, c.ig_user_id) IN (} . join(',', map { "('$_->[0]', '$_->[1]')" } @hooks)
			  . q{) AND c.username IS NOT NULL}) eq '5' }, 60),
	'the worker resolved the five senders');

# --- 6. a worker node stopped -----------------------------------------------
my %node_of = map { split /\|/ } split /\n/, sql(q{
	SELECT a.id, s.nodeport FROM unnest(ARRAY[} . join(',', map { "'$_'" } @acc) . q{]) AS a(id)
	  JOIN citus_shards s ON s.table_name = 'instagram_user_cache'::regclass
	   AND s.shardid = get_shard_id_for_distribution_column('instagram_user_cache', a.id)});
my $down_port = $workers[1]->port;
my @down = grep { $node_of{$_} == $down_port } @acc;
my @up = grep { $node_of{$_} != $down_port } @acc;
ok(@down && @up, 'accounts on both worker nodes (' . scalar(@down) . ' on the one stopped)');
# a location with one account on each node
my $i_up = (grep { $acc[$_] eq $up[0] } 0 .. $#acc)[0];
my $i_down = (grep { $acc[$_] eq $down[0] } 0 .. $#acc)[0];
my $i_down2 = (grep { $acc[$_] eq $down[1] } 0 .. $#acc)[0];
sql("SELECT ig_connect_account('loc_mix', '$acc[$_]', '$acc[$_]', '$tok[$_]', 'graph.facebook.com')")
  for ($i_up, $i_down2);
$workers[1]->stop('fast');
($rc, $out, $err) = $coord->psql('postgres', "SELECT * FROM ig_refresh_identities('loc_c$i_down')");
isnt($rc, 0, 'a refresh of an account whose shard is on the stopped node fails');
like($err, qr/ERROR:  cannot refresh the identities of location "loc_c$i_down": the Citus node that holds the shard of its accounts does not answer/,
	'... with a clear error');
like($err, qr/HINT:  Try again once the node is back/, '... and a hint');
is(sql(q{SELECT refreshed || '|' || failed || '|' || (errors->0->>'ig_account_id')
           FROM ig_refresh_identities('loc_mix')}), "$PER|1|$acc[$i_down2]",
	'a location with an account on each node: the reachable one is refreshed, the other reported');
my $log_offset = -s $coord->logfile;
my $t0 = sql('SELECT now()');
# every account's identities due: the worker saves what it can
sql(q{INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason)
      SELECT '178414100000000' || lpad((u % 20)::text, 2, '0'), (2000000000000000 + u)::text, 'manual'
        FROM generate_series(0, 199) u});
my $up_list = join(',', map { "'$_'" } @up);
my $down_list = join(',', map { "'$_'" } @down);
ok(wait_until(sub { sql("SELECT count(*) FROM ig_identity.refresh_queue WHERE ig_account_id IN ($up_list)") eq '0' }, 60),
	'the accounts on the running node are refreshed');
ok(wait_until(sub {
		sql("SELECT bool_and(not_before > now() + interval '20 seconds') FROM ig_identity.refresh_queue
		      WHERE ig_account_id IN ($down_list)") eq 't' }, 30),
	'the accounts on the stopped node wait in the queue to be tried later');
is(sql("SELECT count(*) FROM ig_identity.refresh_queue WHERE ig_account_id IN ($down_list)"),
	10 * scalar(@down), 'none of their rows lost');
like(log_since($coord, $log_offset),
	qr/WARNING:  ig_identity could not save \d+ profiles of account \d+: the Citus node that holds its shard does not answer/,
	'the worker says which account waits and why');
my $state = worker_state($coord);
my $cycles = $state->{cycles};
ok(wait_until(sub { worker_state($coord)->{cycles} > $cycles + 1 }, 30),
	'the worker keeps cycling while the node is down');

$workers[1]->start;
sql("UPDATE ig_identity.refresh_queue SET not_before = now() WHERE ig_account_id IN ($down_list)");
ok(wait_until(sub { sql('SELECT count(*) FROM ig_identity.refresh_queue') eq '0' }, 60),
	'once the node is back, their rows are refreshed too');
is(sql(qq{SELECT count(*), count(*) FILTER (WHERE username IS NOT NULL AND last_fetched_at > '$t0')
          FROM instagram_user_cache WHERE ig_account_id LIKE '178414100%'
           AND ig_user_id::bigint < 2000000000000200}),
	'200|200', 'all 200 identities resolved, nothing lost');

# --- 7. the coordinator restarted -------------------------------------------
$coord->restart;
ok(wait_until(sub { worker_pid($coord) ne '' }, 30), 'the worker is back after the restart');
is(webhook($acc[7], uid(777), 'mid.after.restart'), '1|0|1', 'a webhook after the restart');
ok(wait_until(sub {
		sql("SELECT username FROM instagram_user_cache WHERE ig_account_id = '$acc[7]' AND ig_user_id = '"
			  . uid(777) . "'") eq 'user.777' }, 60),
	'... resolved by the worker');
is(sql(qq{SELECT display_name FROM ig_resolve_profile('$acc[3]', '} . uid(3) . q{')}), 'user.3',
	'ig_resolve_profile on the distributed cache');
is(sql('SELECT * FROM ig_identity_check()'), (1007 + 30 + 6) . '|0|' . (1007 + 30 + 6) . '|9',
	'ig_identity_check() at the end');

my $log = slurp_file($coord->logfile);
is(count_matches($log, qr/PANIC|server process .* was terminated/), 0, 'no crash on the coordinator');

$coord->stop;
$_->stop for @workers;
done_testing();
