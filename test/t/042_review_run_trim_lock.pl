# 042_review_run_trim_lock.pl — review15: a session's open transaction that
# recorded a run stalls the worker's mid-cycle saves on a row lock.
#
# Every insert into ig_identity.refresh_runs trims it to the newest 1,000
# rows (the trigger trim_refresh_runs, and record_run's and
# _worker_run_save's own DELETE).  Once the history is full, an
# ig_refresh_identities or ig_sync_inbox inside a longer transaction has
# deleted the oldest rows and holds their row locks until it commits; the
# worker's first save of each cycle inserts its history row, its trim
# wants the same rows and waits: no result is saved (nor any row claimed)
# while the other transaction stays open, though the fetch has its
# answers.  The trims must skip rows another transaction holds.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use constant { ACCT => '17841400000400001', TOKEN => 'mock-token-r15-trim-8Wm3' };
my $mock = start_mock('--generate-users', 100);
mock_admin($mock, 'POST', '/_admin/data', { accounts => [ { ig_account_id => ACCT, token => TOKEN } ] });
my $node = new_worker_node('trimlock', mock => $mock,
	conf => "ig_identity.requests_per_second = 2\nlog_statement = none\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
sub sql { return $node->safe_psql('postgres', $_[0]); }
sql("SELECT ig_connect_account('loc_t', '@{[ACCT]}', '@{[ACCT]}', '@{[TOKEN]}', 'graph.facebook.com')");
# a full history
sql(q{INSERT INTO ig_identity.refresh_runs (source, started_at, finished_at, refreshed, failed, total)
      SELECT 'sql', now(), now(), 0, 0, 0 FROM generate_series(1, 1000)});

# another session records a run and keeps its transaction open
my $holder = $node->background_psql('postgres');
$holder->query_safe(q{BEGIN; SELECT ig_identity.record_run('sql', 'loc_t', now(), 0, 0, 0, '[]')});

sql(q{INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
      SELECT '} . ACCT . q{', (2000000000000000 + g)::text, 'new', now() FROM generate_series(0, 19) g});
sub cached { return sql("SELECT count(*) FROM instagram_user_cache WHERE username IS NOT NULL"); }
ok(wait_until(sub { cached() >= 3 }, 8), 'results are saved while the other transaction stays open')
  or diag(sql(q{SELECT wait_event_type || '/' || wait_event || ' ' || coalesce(query, '')
                  FROM pg_stat_activity WHERE backend_type = 'ig_identity worker'}));
$holder->query_safe('COMMIT');
$holder->quit;
ok(wait_until(sub { cached() == 20 }, 60), 'the queue is done');
cmp_ok(sql('SELECT count(*) FROM ig_identity.refresh_runs'), '<=', 1002, 'the history stays trimmed');

$node->stop;
stop_mock($mock);
done_testing();
