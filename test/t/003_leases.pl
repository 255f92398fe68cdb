# 003_leases.pl — the worker's SQL, called directly with the worker idle
# (ig_identity.enabled = off): claiming due rows under a lease, leases that
# ran out or whose holder died, SKIP LOCKED, paused and stopped accounts,
# giving rows back, queueing stale and missing identities, the next due
# time, and who may call all this.  Needs no fetch engine.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock();
my $node = new_worker_node('leases', mock => $mock, conf => "ig_identity.enabled = off\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
connect_account($node);
my $A = ACCOUNT_A;

sub sql { return $node->safe_psql('postgres', $_[0]); }

# Claims as the given session and returns "user:attempts,..." sorted.
sub claim_list
{
	my ($rows) = @_;
	return join(',', map { my @f = split /\|/; "$f[1]:$f[3]" } sort split /\n/, $rows);
}

sql(qq{
	INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before) VALUES
	  ('$A', 'u1', 'new', now() - interval '1 minute'),
	  ('$A', 'u2', 'new', now() - interval '2 minutes'),
	  ('$A', 'u3', 'new', now() + interval '1 hour');});

# --- claim -------------------------------------------------------------
# $w plays the worker: a session that stays alive while it holds leases.
my $w = $node->background_psql('postgres');
my $other = $node->background_psql('postgres');
my $wpid = $w->query_safe('SELECT pg_backend_pid()');

is(claim_list($w->query_safe("SELECT * FROM ig_identity._worker_claim(10, '1 minute')")),
	'u1:1,u2:1', 'claim takes the due rows only, attempts + 1');
is(sql("SELECT string_agg(ig_user_id, ',' ORDER BY ig_user_id) FROM ig_identity.refresh_queue
         WHERE leased_until > now() AND leased_by = $wpid"),
	'u1,u2', 'claimed rows carry a lease and its holder');
is($w->query_safe("SELECT count(*) FROM ig_identity._worker_claim(10, '1 minute')"), '0',
	'a held lease is not claimed again by its holder');
is(sql("SELECT count(*) FROM ig_identity._worker_claim(10, '1 minute')"), '0',
	'nor by anyone else');

# A lease that ran out, its holder alive: claimable again.
sql("UPDATE ig_identity.refresh_queue SET leased_until = now() - interval '1 second' WHERE ig_user_id = 'u1'");
is(claim_list($other->query_safe("SELECT * FROM ig_identity._worker_claim(10, '1 minute')")), 'u1:2',
	'a lease that ran out is claimed again');

# A lease still running whose holder is alive is respected ...
sql("UPDATE ig_identity.refresh_queue SET leased_by = $wpid, leased_until = now() + interval '1 hour'
      WHERE ig_user_id = 'u1'");
is(sql("SELECT count(*) FROM ig_identity._worker_claim(10, '1 minute')"), '0',
	'an unexpired lease of a live backend is respected');
# ... but a holder that is gone (a worker killed with -9) leaves it claimable.
sql("UPDATE ig_identity.refresh_queue SET leased_by = 2147483000 WHERE ig_user_id = 'u1'");
is(claim_list($other->query_safe("SELECT * FROM ig_identity._worker_claim(10, '1 minute')")), 'u1:3',
	'a lease whose holder is gone is claimed again');

# SKIP LOCKED: a row locked by another transaction is passed by, no waiting.
sql("UPDATE ig_identity.refresh_queue SET leased_until = NULL, leased_by = NULL");
$other->query_safe("BEGIN; SELECT 1 FROM ig_identity.refresh_queue WHERE ig_user_id = 'u1' FOR UPDATE");
is(claim_list($w->query_safe("SET lock_timeout = '2s'; SELECT * FROM ig_identity._worker_claim(10, '1 minute')")),
	'u2:2', 'a locked row is skipped, not waited for');
$other->query_safe('ROLLBACK');

# --- release -----------------------------------------------------------
is(sql(qq{SELECT ig_identity._worker_release(ARRAY['$A'], ARRAY['u2'])}), '0',
	"release gives back only the caller's own leases");
is($w->query_safe(qq{SELECT ig_identity._worker_release(ARRAY['$A'], ARRAY['u2'])}), '1',
	'release gives back a claimed row');
is(sql("SELECT leased_until IS NULL AND leased_by IS NULL FROM ig_identity.refresh_queue WHERE ig_user_id = 'u2'"),
	't', 'its lease is cleared');
$w->quit;
$other->quit;

# --- accounts that may not be called -------------------------------------
sql("UPDATE ig_identity.refresh_queue SET leased_until = NULL, leased_by = NULL, not_before = now() - interval '1 minute'");
sql("UPDATE ig_identity.accounts SET status = 'paused', paused_until = now() + interval '1 hour'");
is(sql("SELECT count(*) FROM ig_identity._worker_claim(10, '1 minute')"), '0', 'a paused account is not claimed');
my $due = sql('SELECT round(ig_identity._worker_next_due())');
ok($due >= 3590 && $due <= 3600, "next due waits for the pause to end ($due s)");
sql("UPDATE ig_identity.accounts SET status = 'reauth_required', paused_until = NULL");
is(sql("SELECT count(*) FROM ig_identity._worker_claim(10, '1 minute')"), '0',
	'an account that needs re-authentication is not claimed');
is(sql('SELECT ig_identity._worker_next_due() IS NULL'), 't', 'and nothing is due for it');
sql("UPDATE ig_identity.accounts SET status = 'paused', paused_until = now() - interval '1 second'");
is(sql("SELECT count(*) FROM ig_identity._worker_claim(10, '1 minute')"), '3', 'a pause that ended is claimed');
sql("UPDATE ig_identity.accounts SET status = 'active', paused_until = NULL");

# The worker's stale sweep, in the three steps the C code runs (accounts as
# the extension owner, the cache's candidates as its owner, then the
# queueing); here all as the test's superuser.
sub queue_stale
{
	my ($stale_after_s, $limit) = @_;
	return sql(qq{SELECT ig_identity._worker_queue_stale(
		ig_identity.read_stale_identities(array_agg(ig_account_id), array_agg(self_igsid),
			$stale_after_s, $limit + coalesce(sum(queued), 0)::int), $limit)
		FROM ig_identity._worker_stale_accounts()});
}

# --- queueing stale and missing identities --------------------------------
sql(qq{
	DELETE FROM ig_identity.refresh_queue;
	INSERT INTO instagram_user_cache (ig_account_id, ig_user_id, username, fetch_status, last_fetched_at, next_fetch_at) VALUES
	  ('$A', 'fresh',   'f', 'ok', now(), NULL),
	  ('$A', 'stale',   's', 'ok', now() - interval '2 days', NULL),
	  ('$A', 'nouser',  NULL, 'ok', now(), NULL),
	  ('$A', 'never',   NULL, 'ok', NULL, NULL),
	  ('$A', 'consent', NULL, 'consent_required', now() - interval '2 days', now() + interval '1 day'),
	  ('$A', 'waiting', 'w', 'error', now() - interval '2 days', now() + interval '1 hour'),
	  ('$A', 'queued',  's', 'ok', now() - interval '2 days', NULL),
	  ('$A', '$A',      'self', 'ok', now() - interval '2 days', NULL);
	INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
	VALUES ('$A', 'queued', 'webhook', now() + interval '1 hour');});
is(queue_stale(86400, 100), '3', 'three identities queued');
is(sql("SELECT string_agg(ig_user_id || ':' || reason, ',' ORDER BY ig_user_id) FROM ig_identity.refresh_queue"),
	'never:new,nouser:new,queued:webhook,stale:stale',
	'stale and missing ones, not fresh, waiting, self, or already queued');
is(queue_stale(86400, 100), '0', 'queueing again adds nothing');
sql("DELETE FROM ig_identity.refresh_queue");
is(queue_stale(86400, 2), '2', 'at most p_limit per call');
is(sql("SELECT round(ig_identity._worker_next_due())"), '0', 'next due: now');
sql("DELETE FROM ig_identity.refresh_queue");
sql("UPDATE ig_identity.accounts SET status = 'permission_error'");
is(queue_stale(86400, 100), '0',
	'nothing queued for a stopped account');

# --- who may call it --------------------------------------------------------
$node->safe_psql('postgres', 'CREATE ROLE app LOGIN');
for my $f ("ig_identity._worker_claim(10, '1 minute')", 'ig_identity._worker_next_due()',
	"ig_identity._worker_queue_stale('{}', 1)", 'ig_identity_wakeup()', 'ig_identity_worker_state()')
{
	my ($ret, $out, $err) = $node->psql('postgres', "SELECT $f", extra_params => [ '-U', 'app' ]);
	like($err, qr/permission denied/, "PUBLIC cannot call $f");
}

$node->stop;
done_testing();
