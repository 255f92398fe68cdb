# 019_scheduler.pl — the worker's scheduler across many accounts (issue 15).
#
# 50 connected accounts share one worker: one big account with 3,000 queued
# identities and 49 small ones with 2 each, all queued in one transaction,
# the big account's id sorting first (the old claim, oldest rows by account,
# took 500 of the big account's rows before any small one).  One more
# account is paused: its rows must take no slot.  Asserted:
#   - fairness: every small account's identities are among the first 200
#     profile calls the mock sees (of 3,098), and every small account is
#     served before the big account's 300th call;
#   - the paused account gets no call, and its rows stay queued;
#   - mid-cycle saves: results are in the cache while the same cycle still
#     runs (ig_identity_worker_state().cycles unchanged, rows still queued),
#     and ig_identity_worker_progress shows that cycle's progress;
#   - a stop mid-cycle: pg_terminate_backend ends the worker within seconds,
#     what was fetched is saved, no row stays leased by the dead worker
#     (released, or claimable because its pid is gone), and the next worker
#     finishes the queue: every identity cached once, the queue empty but
#     for the paused account;
#   - the pace: with requests_per_second = 2, 10 accounts with 6 rows each
#     (the big account draining meanwhile) never get more than 2 calls in
#     any 1 s window at the mock, across the worker's cycles;
#   - no noisy neighbour: while the big account drains at 2 calls/s, a new
#     webhook participant of a quiet account is cached within 5 s (its
#     account's pace allows one call at once; the big account needs minutes).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $mock = start_mock('--generate-users', 5000);
my $node = new_worker_node('sched', mock => $mock,
	conf => "ig_identity.max_concurrency = 8\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
ok(wait_until(sub { worker_pid($node) ne '' }, 30), 'the worker runs');

sub sql { return $node->safe_psql('postgres', $_[0]); }

# Accounts 17841400000100000 (big), ...001 to ...049 (small), ...050 (paused)
# and ...060 to ...069 (the pace check), each with its own token at the mock.
my $BIG = '17841400000100000';
my $PAUSED = '17841400000100050';
sub acct { return sprintf('178414000001%05d', $_[0]); }
sub token { return sprintf('mock-token-sched-%05d', $_[0]); }
my @ids = (0 .. 50, 60 .. 70);
mock_admin($mock, 'POST', '/_admin/data',
	{ accounts => [ map { { ig_account_id => acct($_), token => token($_) } } @ids ] });
mock_admin($mock, 'POST', '/_admin/config', { latency_ms => 50 });
sql(join("\n", map {
	"SELECT ig_connect_account('loc_s', '" . acct($_) . "', '" . acct($_) . "', '" . token($_)
	  . "', 'graph.facebook.com');" } @ids));
sql("UPDATE ig_identity.accounts SET status = 'paused', paused_until = now() + interval '1 hour'
      WHERE ig_account_id = '$PAUSED'");
mock_admin($mock, 'POST', '/_admin/reset', {});

# Users 2000000000000000 + i: the big account gets i = 0 .. 2999, small
# account k gets 3000 + 2k and 3001 + 2k, the paused one 3200 .. 3209.
my $state0 = worker_state($node);
sql(<<"SQL");
BEGIN;
INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
SELECT '$BIG', (2000000000000000 + g)::text, 'new', now() FROM generate_series(0, 2999) g;
INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
SELECT '178414000001' || lpad(k::text, 5, '0'), (2000000000000000 + 3000 + 2 * k + j)::text, 'new', now()
  FROM generate_series(1, 49) k, generate_series(0, 1) j;
INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
SELECT '$PAUSED', (2000000000003200 + g)::text, 'new', now() FROM generate_series(0, 9) g;
COMMIT;
SQL

sub cached
{
	my ($acct) = @_;
	my $where = defined $acct ? "ig_account_id = '$acct' AND " : '';
	return sql("SELECT count(*) FROM instagram_user_cache WHERE ${where}username IS NOT NULL");
}

# Mid-cycle saves: the first results land while the cycle that claimed them
# still runs and most of the queue is still there.
ok(wait_until(sub { cached($BIG) >= 50 }, 60), 'the first results are saved');
my $c1 = worker_state($node)->{cycles};
ok(wait_until(sub { cached($BIG) >= 500 }, 60), 'more results are saved');
my $c2 = worker_state($node)->{cycles};
my $queued = sql("SELECT count(*) FROM ig_identity.refresh_queue WHERE ig_account_id = '$BIG'");
is($c2, $c1, 'results became visible within one cycle (mid-cycle saves)');
cmp_ok($queued, '>', 1000, "the cycle is still running ($queued rows of the big account queued)");
is(sql("SELECT count(*) FROM instagram_user_cache WHERE ig_account_id <> '$BIG' AND username IS NOT NULL"), 98,
	'all 49 small accounts were served meanwhile');
# The running cycle's progress, from another session.
is(sql("SELECT running, done > 0, claimed > done, per_second > 0, time_left IS NOT NULL"
	  . " FROM ig_identity_worker_progress"),
	't|t|t|t|t', 'ig_identity_worker_progress shows the running cycle: done, claimed, rate, time left')
  or diag(sql('SELECT * FROM ig_identity_worker_progress') . "\n"
	  . sql('SELECT id, started_at, finished_at, refreshed, failed, total FROM ig_identity.refresh_runs ORDER BY id'));

# Fairness, from the mock's own log of the calls so far, in arrival order.
my $stats = mock_admin($mock, 'GET', '/_admin/stats');
my @calls = map { $_->{account} // '' } sort { $a->{t} <=> $b->{t} }
  grep { ($_->{endpoint} // '') eq 'profile' } @{ $stats->{requests} };
my ($last_small, $big_seen, $big_at_last_small) = (-1, 0, 0);
for my $i (0 .. $#calls)
{
	if ($calls[$i] eq $BIG) { $big_seen++; next; }
	next if $calls[$i] eq '';
	$last_small = $i;
	$big_at_last_small = $big_seen;
}
cmp_ok($last_small, '<', 200, "every small account's calls were among the first 200 (last at $last_small)");
cmp_ok($big_at_last_small, '<', 300, "the big account had made $big_at_last_small calls by then");
is(scalar(grep { $_ eq $PAUSED } @calls), 0, 'the paused account got no call');

# A stop mid-cycle: SIGTERM while the big account drains.
my $pid = worker_pid($node);
my $log_offset = -s $node->logfile;
my $before = cached($BIG);
my $t0 = time();
sql("SELECT pg_terminate_backend($pid)");
ok(wait_until(sub { my $p = worker_pid($node); $p eq '' || $p ne $pid }, 10), 'the worker stopped');
my $stop_s = time() - $t0;
cmp_ok($stop_s, '<', 5, sprintf('within %.1f s', $stop_s));
my $held = sql("SELECT count(*) FROM ig_identity.refresh_queue q
                 WHERE q.leased_by = $pid AND q.leased_until > now()
                   AND EXISTS (SELECT 1 FROM pg_stat_activity s WHERE s.pid = q.leased_by)");
is($held, 0, 'no row stays held by the stopped worker');
cmp_ok(cached($BIG), '>=', $before, 'what it fetched is kept');
# between fetch steps it saves and leaves; inside a save or a claim it ends
# with PostgreSQL's FATAL, its rows claimable at once (its pid is gone)
like(log_since($node, $log_offset),
	qr/ig_identity worker shutting down|terminating background worker "ig_identity worker" due to administrator command/,
	'it shut down');

# The next worker (after bgw_restart_time) finishes the queue.
ok(wait_until(sub { cached($BIG) == 3000 }, 120), 'the next worker finishes the big account');
is(sql("SELECT count(*) FROM ig_identity.refresh_queue WHERE ig_account_id <> '$PAUSED'"), 0,
	'the queue is empty but for the paused account');
is(sql("SELECT count(*) FROM ig_identity.refresh_queue WHERE ig_account_id = '$PAUSED'"), 10,
	"the paused account's rows wait");
is(sql("SELECT count(*) - count(DISTINCT (ig_account_id, ig_user_id)) FROM instagram_user_cache"), 0,
	'no identity cached twice');

# The pace across cycles: R = 2 per account; the big account refreshes 300
# identities again (150 s of work at its pace), ten accounts 6 each.
sql("ALTER SYSTEM SET ig_identity.requests_per_second = 2");
sql("SELECT pg_reload_conf()");
sleep 1;
mock_admin($mock, 'POST', '/_admin/reset', {});
sql(<<"SQL");
INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
SELECT '$BIG', (2000000000000000 + g)::text, 'stale', now() FROM generate_series(0, 299) g;
SQL
sql(<<"SQL");
INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
SELECT '178414000001' || lpad(k::text, 5, '0'), (2000000000003300 + 10 * k + j)::text, 'new', now()
  FROM generate_series(60, 69) k, generate_series(0, 5) j;
SQL
ok(wait_until(sub {
	sql("SELECT count(*) FROM ig_identity.refresh_queue WHERE ig_account_id LIKE '17841400000100_6_'") == 0 }, 60),
	'the ten paced accounts are done');

# Noisy neighbour: a quiet account's new participant, by webhook, while the
# big account still has minutes of work at its pace.
my $quiet = acct(70);
my $person = '2000000000004999';
my $t1 = time();
sql(qq{SELECT ig_ingest_webhook('{"object":"instagram","entry":[{"id":"$quiet","time":1,"messaging":[
  {"sender":{"id":"$person"},"recipient":{"id":"$quiet"},"timestamp":1752834910447,
   "message":{"mid":"mid.sched.1","text":"hi"}}]}]}')});
ok(wait_until(sub { cached($quiet) == 1 }, 20), "the quiet account's participant is cached");
my $latency = time() - $t1;
cmp_ok($latency, '<', 5, sprintf('within %.2f s while the big account drains', $latency));
cmp_ok(sql("SELECT count(*) FROM ig_identity.refresh_queue WHERE ig_account_id = '$BIG'"), '>', 200,
	'the big account was still draining');

# At most 2 calls in any 1 s window, per account, at the mock.
$stats = mock_admin($mock, 'GET', '/_admin/stats');
my %times;
for my $r (@{ $stats->{requests} })
{
	next unless ($r->{endpoint} // '') eq 'profile' && defined $r->{account};
	push @{ $times{ $r->{account} } }, $r->{t};
}
my ($worst, $worst_acct) = (0, '');
for my $acct (keys %times)
{
	my @t = sort { $a <=> $b } @{ $times{$acct} };
	for my $i (0 .. $#t)
	{
		my $k = $i;
		$k++ while $k <= $#t && $t[$k] < $t[$i] + 1.0;
		($worst, $worst_acct) = ($k - $i, $acct) if $k - $i > $worst;
	}
}
cmp_ok($worst, '<=', 2, "no account above 2 calls in any 1 s window (worst $worst, $worst_acct)")
  or diag("calls of $worst_acct at the mock: "
	  . join(' ', map { sprintf('%.3f', $_ - $times{$worst_acct}[0]) } sort { $a <=> $b } @{ $times{$worst_acct} }));
cmp_ok(scalar(@{ $times{$BIG} // [] }), '>', 0, 'the big account was called meanwhile');

$node->stop;
done_testing();
