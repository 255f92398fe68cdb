# 012_load.pl — webhook ingestion under load while the worker resolves
# identities against a Graph API that fails 5 % of its calls.
#
# pgbench runs 8 clients for IGID_LOAD_SECONDS (60 by default); each
# transaction is one webhook delivery, through ig_ingest_webhook(), of one
# message with a unique mid from a sender drawn from a pool of 5,000 people
# the mock knows.  Meanwhile the background worker, woken at each commit that
# queues someone new, fetches their profiles from the mock, which answers
# each call in 50 ms and about 5 % of profile calls with a transient failure
# (2 % HTTP 503, 2 % Graph error code 2 with is_transient, 1 % connection
# reset).
#
# Asserted:
#   - pgbench exits 0 and reports no failed transaction (no deadlock, no
#     serialization failure, no error), and every transaction it counts
#     stored exactly its one message;
#   - the transient failures are retried by the worker: the mock saw them,
#     and at most 1 % of the participants used up their 3 attempts in one
#     cycle (expected 0.05^3 of them) and were deferred for 15 minutes;
#     those are made due at once and resolve too;
#   - at the end, every distinct sender has one cache row with the mock's
#     username, there is no duplicate row, and the queue is empty;
#   - the server log has no crashed process, no PANIC, no deadlock.
#
# Printed (diag, one line easy to grep in the prove log):
#   # load: tps=... drain_s=... participants=... transactions=... ...
# where drain_s is the time from pgbench's end until no queued row is due
# any more (the queue is empty but for the deferred ones, if any), and
# resolved_at_end how many identities were cached when pgbench ended.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $SECONDS = $ENV{IGID_LOAD_SECONDS} || 60;
my $CLIENTS = 8;
my $POOL = 5000;
my $A = ACCOUNT_A;

my $mock = start_mock('--generate-users', $POOL);
# log_statement would log every pgbench transaction: off here.
my $node = new_worker_node('load', mock => $mock,
	conf => "log_statement = 'none'\nmax_connections = 40\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
connect_account($node);
ok(wait_until(sub { worker_pid($node) ne '' }, 30), 'the worker runs');

sub sql { return $node->safe_psql('postgres', $_[0]); }

# Every call takes 50 ms (Meta's take 100-300 ms), so that with 8 transfers
# at once the worker needs about half a minute for the pool and works all
# along the ingestion; and 5 % transient faults on profile calls, drawn per
# call.
mock_admin($mock, 'POST', '/_admin/config', { latency_ms => 50 });
for my $f ([ 0.02, { type => 'http_status', status => 503 } ],
	[ 0.02, { type => 'graph_error', code => 2, is_transient => JSON::PP::true, http_status => 500 } ],
	[ 0.01, { type => 'reset' } ])
{
	mock_admin($mock, 'POST', '/_admin/faults',
		{ match => { endpoint => 'profile' }, rate => $f->[0], fault => $f->[1] });
}

# One webhook delivery per transaction: a random sender of the pool, a
# unique mid from a sequence, the current time in epoch milliseconds.
sql('CREATE SEQUENCE load_mid');
my $script = <<"EOS";
\\set uid random(0, @{[ $POOL - 1 ]})
SELECT participants_queued FROM ig_ingest_webhook(jsonb_build_object(
  'object', 'instagram',
  'entry', jsonb_build_array(jsonb_build_object(
    'id', '$A',
    'time', (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
    'messaging', jsonb_build_array(jsonb_build_object(
      'sender', jsonb_build_object('id', (2000000000000000 + :uid)::text),
      'recipient', jsonb_build_object('id', '$A'),
      'timestamp', (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
      'message', jsonb_build_object('mid', 'mid.load.' || nextval('load_mid'), 'text', 'hello')))))));
EOS
my $script_file = PostgreSQL::Test::Utils::tempdir() . '/webhook.sql';
PostgreSQL::Test::Utils::append_to_file($script_file, $script);

my $offset = -s $node->logfile;
my ($out, $err) = ('', '');
my @cmd = ($node->installed_command('pgbench'), '-n', '-c', $CLIENTS, '-j', 2, '-T', $SECONDS,
	'-P', 10, '-f', $script_file, $node->connstr('postgres'));
note("running: @cmd");
my $ok = IPC::Run::run(\@cmd, '>', \$out, '2>', \$err, IPC::Run::timeout($SECONDS + 300));
my $t_end = time();
my $resolved_at_end = sql('SELECT count(username) FROM instagram_user_cache');
note($out);
note($err) if $err ne '';
ok($ok, 'pgbench exits 0');
like($out, qr/^number of failed transactions: 0 \(/m, 'no failed transaction');
my ($tps) = $out =~ /^tps = ([0-9.]+)/m;
my ($txns) = $out =~ /^number of transactions actually processed: (\d+)/m;
ok(defined $tps && defined $txns && $txns > 0, 'pgbench reports its figures');
$txns //= 0;
$tps //= 0;
unlike($err, qr/error|abort/i, 'no client error on stderr');
is(sql("SELECT count(*) FROM instagram_messages WHERE id LIKE 'mid.load.%'"), $txns,
	'each transaction stored its one message');

# Drained: no queued row is due, or leased, any more.
ok(wait_until(sub {
	sql("SELECT count(*) FROM ig_identity.refresh_queue"
		  . " WHERE not_before < now() + interval '1 minute' OR leased_by IS NOT NULL") eq '0' }, 300),
	'the worker works off the queue');
my $drain_s = time() - $t_end;

my $participants = sql("SELECT count(DISTINCT from_id) FROM instagram_messages WHERE id LIKE 'mid.load.%'");
my $deferred = sql('SELECT count(*) FROM ig_identity.refresh_queue');
cmp_ok($deferred, '<=', $participants / 100,
	"transient failures are retried: $deferred of $participants deferred after 3 attempts");

# The deferred ones come back in 15 minutes; make them due now.
for my $round (1 .. 5)
{
	last if sql('SELECT count(*) FROM ig_identity.refresh_queue') eq '0';
	sql("UPDATE ig_identity.refresh_queue SET not_before = now() WHERE not_before > now()");
	wait_until(sub {
		sql("SELECT count(*) FROM ig_identity.refresh_queue"
			  . " WHERE not_before < now() + interval '1 minute' OR leased_by IS NOT NULL") eq '0' }, 120);
}
is(sql('SELECT count(*) FROM ig_identity.refresh_queue'), '0', 'the queue is empty');

is(sql("SELECT count(*) FROM (SELECT DISTINCT from_id FROM instagram_messages WHERE id LIKE 'mid.load.%') s"
	  . " JOIN instagram_user_cache c ON c.ig_account_id = '$A' AND c.ig_user_id = s.from_id"
	  . " WHERE c.fetch_status = 'ok' AND c.username = 'user.' || (s.from_id::bigint - 2000000000000000)"),
	$participants, "every one of the $participants senders has the mock's username");
is(sql("SELECT count(*) || ' ' || count(DISTINCT (ig_account_id, ig_user_id)) FROM instagram_user_cache"),
	"$participants $participants", 'one cache row per participant, no duplicate');

my $stats = mock_admin($mock, 'GET', '/_admin/stats?requests=20000');
my $calls = $stats->{by_endpoint}{profile};
my $faulted = grep { $_->{endpoint} eq 'profile' && @{ $_->{faults} // [] } } @{ $stats->{requests} };
cmp_ok($faulted, '>', 0, "the mock failed $faulted of $calls profile calls");
cmp_ok($calls, '>=', $participants + $faulted, 'each failed call was retried');

my $log = log_since($node, $offset);
unlike($log, qr/terminated by signal/, 'no server process crashed');
unlike($log, qr/PANIC/, 'no PANIC');
unlike($log, qr/deadlock detected/, 'no deadlock');
ok(worker_pid($node) ne '', 'the worker still runs');

diag(sprintf('load: tps=%.1f drain_s=%.1f participants=%d resolved_at_end=%d transactions=%d'
	  . ' clients=%d seconds=%d profile_calls=%d faulted=%d deferred=%d',
	$tps, $drain_s, $participants, $resolved_at_end, $txns, $CLIENTS, $SECONDS, $calls, $faulted,
	$deferred));

$node->stop;
done_testing();
