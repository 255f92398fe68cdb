# 016_lifecycle.pl — the worker's lifecycle (issue 13): an error raised at
# COMMIT of a worker transaction (a deferred constraint trigger) is reported
# intact and the worker lives on, logged once per distinct cause; the
# ig_identity.test_hook failure point is superuser-only and fires; SIGTERM
# ends a worker stuck in a lock wait at once, and the postmaster starts a new
# worker after bgw_restart_time.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

my $mock = start_mock();
my $node = new_worker_node('lifecycle', mock => $mock);
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
connect_account($node);
my $A = ACCOUNT_A;
sub sql { return $node->safe_psql('postgres', $_[0]); }

ok(wait_until(sub { worker_pid($node) ne '' }), 'worker runs');
my $pid = worker_pid($node);

# --- an error at COMMIT of the claim --------------------------------------
# Before the fix the error was copied into "SPI Proc", already deleted by
# SPI_finish: the message came out garbled or the worker crashed.
my $msg = 'lifecycle test: deferred trigger refuses this commit';
sql(qq{
	CREATE FUNCTION public.refuse_commit() RETURNS trigger LANGUAGE plpgsql AS
	  \$\$BEGIN RAISE EXCEPTION '$msg' USING ERRCODE = 'check_violation'; END\$\$;
	CREATE CONSTRAINT TRIGGER refuse_commit AFTER UPDATE ON ig_identity.refresh_queue
	  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.refuse_commit();});
my $off = -s $node->logfile;
sql(qq{INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, not_before)
	VALUES ('$A', 'u1', 'new', now() - interval '1 minute')});
sql('SELECT ig_identity_wakeup()');
ok($node->wait_for_log(qr/WARNING:  \Q$msg\E\n/, $off), 'commit-time error reported with its message intact');
sleep(4);    # several refresh intervals, each failing the same way
my $log = log_since($node, $off);
is(count_matches($log, qr/WARNING:  \Q$msg\E/), 1, 'the same failure is a WARNING once, not every cycle');
unlike($log, qr/terminated by signal|server process .* was terminated/, 'no crash');
is(worker_pid($node), $pid, 'worker survived the commit failures');
sql('DROP TRIGGER refuse_commit ON ig_identity.refresh_queue');
ok($node->wait_for_log(qr/ig_identity worker cycle succeeded after \d+ failed cycles/, $off),
	'recovery is logged once the cause is gone');

# --- the test hook ----------------------------------------------------------
my ($ret, $out, $err) = $node->psql('postgres',
	"CREATE ROLE plain LOGIN; SET ROLE plain; SET ig_identity.test_hook = 'claim'");
like($err, qr/permission denied to set parameter "ig_identity.test_hook"/, 'test_hook is superuser-only');
$off = -s $node->logfile;
sql("ALTER SYSTEM SET ig_identity.test_hook = 'claim'");
$node->reload;
ok($node->wait_for_log(qr/WARNING:  .*ig_identity test hook "claim" failed on purpose/, $off), 'test hook fires in the claim');
sql('ALTER SYSTEM RESET ig_identity.test_hook');
$node->reload;
ok($node->wait_for_log(qr/ig_identity worker cycle succeeded after/, $off), 'worker recovers after the hook is reset');
is(worker_pid($node), $pid, 'same worker throughout');

# --- a C++ exception where the inbox sync copies PostgreSQL data -----------
# Before the fix the copy ran inside PG_TRY: a bad_alloc skipped PG_END_TRY
# and the next ereport longjmp'd into a dead frame (crash).
my ($rc, $o, $e) = $node->psql('postgres',
	"SET ig_identity.test_hook = 'store_conversations'; SELECT conversations FROM ig_sync_inbox('loc_a'); SELECT 1/0; RESET ig_identity.test_hook; SELECT conversations > 0 FROM ig_sync_inbox('loc_a')", on_error_stop => 0);
like($e, qr/out of memory/, 'a bad_alloc while copying the stored conversations is a clean ERROR');
like($e, qr/division by zero/, 'the next ereport in that session is an ordinary ERROR');
is($o, 't', 'and the sync then works in the same session');
is(worker_pid($node), $pid, 'no crash restarted the server');

# --- SIGTERM during a lock wait, and the restart ---------------------------
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; LOCK TABLE ig_identity.refresh_queue IN ACCESS EXCLUSIVE MODE');
sql('SELECT ig_identity_wakeup()');
ok(wait_until(sub {
	sql("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $pid") eq 'Lock' }),
	'worker waits for the lock');
my $t0 = time();
sql("SELECT pg_terminate_backend($pid)");
ok(wait_until(sub { worker_pid($node) ne "$pid" }, 10), 'terminated worker exits during its lock wait');
cmp_ok(time() - $t0, '<', 5, 'within a few seconds, not when the lock holder commits');
$holder->query_safe('COMMIT');
$holder->quit;
ok(wait_until(sub { my $p = worker_pid($node); $p ne '' && $p ne "$pid" }, 30),
	'a new worker is running within bgw_restart_time plus a few seconds');

$node->stop('fast');
stop_mock($mock);
done_testing();
