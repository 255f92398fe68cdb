# 005_pg_cron.pl — scheduled refreshes with pg_cron, as the README shows:
# a node preloading pg_cron and ig_identity, with the worker switched off so
# that only the schedule refreshes anything.  pg_cron runs
# SELECT * FROM ig_refresh_identities('loc_123'); the test checks that the
# job ran and succeeded (cron.job_run_details), that the run is recorded in
# ig_identity.refresh_runs with source 'sql', and that the participants got
# their usernames from the Graph API mock.
#
# Debian 12's postgresql-15-cron is pg_cron 1.4, whose schedules have minute
# granularity (second schedules such as '1 seconds' came with 1.5), so the
# job is scheduled '* * * * *' and the test waits for the next minute: up to
# about 70 s.  Jobs run in background workers (cron.use_background_workers),
# so pg_cron needs no connection settings or pg_hba entries.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);

my $mock = start_mock();
my $node = new_worker_node('cron', mock => $mock,
	conf => "shared_preload_libraries = 'pg_cron,ig_identity'\n"
	  . "ig_identity.enabled = off\n"
	  . "cron.database_name = 'postgres'\n"
	  . "cron.use_background_workers = on\n"
	  . "max_worker_processes = 16\n");
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

my $A = ACCOUNT_A;
my $T = TOKEN_A;
my ($jane, $john, $store) = (USER_JANE, USER_JOHN, USER_STORE);

sql('CREATE EXTENSION pg_cron');
sql('CREATE EXTENSION ig_identity');
my $cron_version = sql("SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'");
note("pg_cron $cron_version");

sql("SELECT ig_connect_account('loc_123', '$A', '$A', '$T', 'graph.facebook.com')");
sql(qq{INSERT INTO instagram_conversations (id, ig_account_id, location_id, participant_igsid, updated_time)
	VALUES ('c101', '$A', 'loc_123', '$jane', now()),
	       ('c102', '$A', 'loc_123', '$john', now()),
	       ('c103', '$A', 'loc_123', '$store', now())});
is(sql('SELECT count(*) FROM instagram_user_cache WHERE username IS NOT NULL'),
	'0', 'before the schedule: no identity known');

# --- schedule the refresh --------------------------------------------------
my $jobid = sql(q{SELECT cron.schedule('ig-refresh-loc-123', '* * * * *',
	$$SELECT * FROM ig_refresh_identities('loc_123')$$)});
like($jobid, qr/^\d+$/, 'cron.schedule accepts the refresh job');

# The first run starts at the next minute boundary (polled every half
# second: each poll is a psql, and its statement is logged).
my $ran = wait_until(
	sub {
		sleep(0.5);
		sql("SELECT count(*) FROM cron.job_run_details WHERE jobid = $jobid"
			  . " AND status IN ('succeeded', 'failed')") ne '0';
	},
	75);
ok($ran, 'pg_cron ran the job within 75 s');
my ($status, $message) = split /\|/,
  sql("SELECT status, coalesce(return_message, '') FROM cron.job_run_details"
	  . " WHERE jobid = $jobid ORDER BY runid LIMIT 1"), 2;
is($status, 'succeeded', 'the job succeeded')
  or diag("job status '$status': $message");
like($message, qr/^SELECT 1\b/, 'the job returned the one summary row');

# --- what the run did -----------------------------------------------------
is( sql("SELECT source || ' ' || location_id || ' ' || refreshed || '/' || failed || '/' || total"
		  . " || ' ' || errors::text FROM ig_identity.refresh_runs ORDER BY id LIMIT 1"),
	'sql loc_123 3/0/3 []',
	'the run is recorded in ig_identity.refresh_runs with source sql');
is(sql("SELECT count(*) FROM ig_identity.refresh_runs WHERE source <> 'sql'"),
	'0', 'no other run (the worker is off)');
is( sql("SELECT string_agg(ig_user_id || '=' || username, ',' ORDER BY ig_user_id)"
		  . " FROM instagram_user_cache WHERE ig_account_id = '$A'"),
	"$jane=jane.doe,$john=john.smith,$store=stories.in.store",
	'the participants got their usernames');
is(sql('SELECT status FROM ig_identity.accounts'), 'active', 'the account stays active');

my $unscheduled = sql("SELECT cron.unschedule($jobid)");
is($unscheduled, 't', 'the job is unscheduled');

$node->stop;
done_testing();
