# 011_crash_restart.pl — crashes and stops in the middle of a worker cycle.
#
# Three times, 300 participants are queued through ig_ingest_webhook for the
# worker while the mock answers every call in 200 ms, so that a cycle (one
# claim of all 300 rows, fetches 8 at a time, results saved every second
# as they arrive) takes several seconds; once the mock has seen
# some of its calls, the cycle is interrupted:
#   (a) the worker is killed with SIGKILL: the postmaster treats it as a
#       crash, ends every backend, runs crash recovery and starts the worker
#       again on its own;
#   (b) the worker is sent SIGTERM: it stops fetching, saves the results
#       handed over so far (the fetch engine hands them over 100 at a time),
#       gives its other leases back and exits with status 0, which tells the
#       postmaster not to restart it (bgw_restart_time applies to crashes
#       only; 001_worker.pl proves it stays stopped); the server is restarted;
#   (c) the whole server is stopped with pg_ctl -m immediate while a session
#       runs ig_refresh_identities() over the same participants and the worker
#       is busy with them; the server is started again (crash recovery).
#
# What is promised, and asserted for every one of the 300 people after the
# queue has drained:
#   - resolved: one cache row each (no duplicate), with the mock's username;
#   - saved exactly once: the worker's run history counts 300 refreshed
#     identities in all since the case began (a second save of anyone would
#     push it over 300), nothing failed, and the cut-off SQL refresh of (c)
#     left no run behind (its transaction never committed);
#   - fetched at most once more than necessary.  A call that reached the mock
#     before the interruption may have been answered without its result ever
#     being saved: the worker saves results every second (a webhook's new
#     participant within 50 ms), and
#     what arrived since the last save is lost with it (SIGKILL, immediate
#     stop), or it drops answers still on the wire (SIGTERM).  Such a person
#     is fetched again.  Who was saved before the interruption is read once
#     no worker can save any more (and the saves' history rows count them:
#     each save updates its cycle's row in the same transaction).  So the mock's per-person
#     count is snapshotted once nothing from before the interruption can
#     still reach it (the old worker is gone and no new one may fetch yet; the
#     mock's in-flight count is 0), and then: a person already saved at the
#     snapshot is never fetched again; everyone else is fetched exactly once
#     after it; before it, nobody was fetched more than once by each fetcher
#     (once by the worker; in (c) once more by the SQL refresh).
#   - nothing stuck: the queue is empty and no lease is held, and it drained
#     long before the dead worker's leases (~1000 s) could have run out, so
#     the successor took them over because their holder was gone;
#   - the server log has no PANIC and the worker runs again after each case.
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
use Time::HiRes qw(time usleep);

my $N = 300;             # participants per case
my $LATENCY_MS = 200;    # per call while the cycle is to be interrupted
my $A = ACCOUNT_A;
my $B = '17841400000000002';
my $TOKEN_B = 'mock-token-B-0123456789';

# Generated users 2000000000000000 + i ("user.<i>"): 0-299 for (a),
# 300-599 for (b), 600-899 for (c), so no case sees another's calls.
my $mock = start_mock('--generate-users', 3 * $N);
# The TAP cluster defaults to restart_after_crash = off; production runs on.
my $node = new_worker_node('crash_restart', mock => $mock,
	conf => "ig_identity.refresh_interval = '2s'\nrestart_after_crash = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
connect_account($node);    # A, location loc_a
$node->safe_psql('postgres',
	"SELECT ig_connect_account('loc_b', '$B', '$B', '$TOKEN_B', 'graph.instagram.com')");
ok(wait_until(sub { worker_pid($node) ne '' }, 30), 'the worker runs');

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub users_of
{
	my ($first) = @_;
	return map { 2000000000000000 + $_ } ($first .. $first + $N - 1);
}

# SQL condition for ig_user_id among @users (consecutive ids of equal length).
sub in_list { return "ig_user_id BETWEEN '$_[0]' AND '$_[-1]'"; }

sub mock_stats { return mock_admin($mock, 'GET', '/_admin/stats?requests=0'); }

# Profile calls the mock has counted for each of @users.
sub profile_calls
{
	my $by = mock_stats()->{by_user};
	return { map { $_ => $by->{$_} // 0 } @_ };
}

sub sum_calls
{
	my $calls = profile_calls(@_);
	my $sum = 0;
	$sum += $_ for values %$calls;
	return $sum;
}

# Waits until the mock has nothing in flight and its call total stands still
# between two looks: every request sent before now has been counted.
sub settle_mock
{
	my $last = -1;
	return wait_until(sub {
		my $s = mock_stats();
		my $still = $s->{in_flight} == 0 && $s->{total} == $last;
		$last = $s->{total};
		usleep(200_000);
		return $still;
	}, 60);
}

# One webhook delivery with one inbound message from each of @users.
sub ingest
{
	my ($acct, @users) = @_;
	my $ms = int(time() * 1000);
	my $payload = encode_json({
		object => 'instagram',
		entry  => [ { id => $acct, time => $ms, messaging => [
			map { { sender => { id => "$_" }, recipient => { id => $acct }, timestamp => $ms,
					message => { mid => "mid.crash.$_", text => 'hi' } } } @users ] } ] });
	return sql("SELECT participants_queued FROM ig_ingest_webhook(\$j\$$payload\$j\$::jsonb)");
}

sub queued_of { return sql('SELECT count(*) FROM ig_identity.refresh_queue WHERE ' . in_list(@_)); }

sub saved_of
{
	return sql('SELECT count(*) FROM instagram_user_cache WHERE username IS NOT NULL AND ' . in_list(@_));
}

sub last_run_id { return sql('SELECT coalesce(max(id), 0) FROM ig_identity.refresh_runs'); }

# Queues @users for $acct with the mock slow, and waits until the worker is
# mid-cycle: at least $min_calls of their profiles requested at the mock,
# none saved yet.  Returns the worker's pid.
sub start_slow_cycle
{
	my ($label, $acct, $min_calls, @users) = @_;
	mock_admin($mock, 'POST', '/_admin/config', { latency_ms => $LATENCY_MS });
	is(ingest($acct, @users), $N, "$label: the webhook queues $N participants");
	my $pid = worker_pid($node);
	ok(wait_until(sub { sum_calls(@users) >= $min_calls }, 60),
		"$label: the worker has started fetching them");
	return $pid;
}

# After the mock settled: per person, the calls counted so far.
sub snapshot
{
	my ($label, @users) = @_;
	ok(settle_mock(), "$label: nothing from before the interruption is still reaching the mock");
	return profile_calls(@users);
}

# The promises listed at the top, for one case.  $before: calls per person at
# the snapshot; $saved: people already saved then; $max_before: calls per
# person allowed before it; $run0: last run id before the case.
sub check_case
{
	my ($label, $before, $saved, $max_before, $run0, @users) = @_;
	my $in = in_list(@users);

	ok(wait_until(sub { queued_of(@users) eq '0' }, 120), "$label: the queue drains");
	is(sql('SELECT count(*) FROM ig_identity.refresh_queue WHERE leased_by IS NOT NULL OR leased_until IS NOT NULL'),
		'0', "$label: no lease is left held");
	is(sql("SELECT count(*) || ' ' || count(DISTINCT (ig_account_id, ig_user_id)) || ' ' ||"
		  . " count(*) FILTER (WHERE username = 'user.' || (ig_user_id::bigint - 2000000000000000)"
		  . "                  AND fetch_status = 'ok')"
		  . " FROM instagram_user_cache WHERE $in"),
		"$N $N $N", "$label: one cache row per person, each with the mock's username");
	is(sql("SELECT coalesce(sum(refreshed), 0) || ' ' || coalesce(sum(failed), 0) FROM ig_identity.refresh_runs"
		  . " WHERE id > $run0 AND source = 'worker'"),
		"$N 0", "$label: the worker saved each identity exactly once ($N refreshed in all, none failed)");
	is(sql("SELECT count(*) FROM ig_identity.refresh_runs WHERE id > $run0 AND source <> 'worker'"),
		'0', "$label: no other run was recorded");

	my $after = profile_calls(@users);
	my (@refetched_saved, @not_once, @too_many_before);
	my ($fetched_before, $twice) = (0, 0);
	for my $u (@users)
	{
		my $more = $after->{$u} - $before->{$u};
		if ($saved->{$u}) { push @refetched_saved, "$u:$more" if $more != 0; }
		else { push @not_once, "$u:$more" if $more != 1; }
		push @too_many_before, "$u:$before->{$u}" if $before->{$u} > $max_before;
		$fetched_before++ if $before->{$u} > 0;
		$twice++ if $after->{$u} > 1;
	}
	my $n_saved = scalar(keys %$saved);
	is(join(',', @refetched_saved), '', "$label: the $n_saved saved before the interruption were not fetched again");
	is(join(',', @not_once), '', "$label: every other person was fetched exactly once after it");
	is(join(',', @too_many_before), '', "$label: nobody was fetched more than $max_before time(s) before it");
	note("$label: $fetched_before fetched before the interruption, $n_saved saved; $twice fetched twice in all");
	return $fetched_before;
}

# ------------------------------------------------------------------------
# (a) SIGKILL: the postmaster's crash restart
# ------------------------------------------------------------------------
{
	my $label = '(a) SIGKILL';
	my @users = users_of(0);
	my $run0 = last_run_id();
	my $pid = start_slow_cycle($label, $A, 40, @users);
	cmp_ok(saved_of(@users), '<', $N, "$label: mid-cycle, not all saved yet");

	# Keep the worker that the crash restart brings up from fetching until
	# the mock's counts are snapshotted (ig_identity.enabled is read at
	# reload, which the busy worker only looks at between cycles).
	sql('ALTER SYSTEM SET ig_identity.enabled = off');
	sql('SELECT pg_reload_conf()');
	ok(wait_until(sub { sql('SHOW ig_identity.enabled') eq 'off' }, 30), "$label: the postmaster reloaded");

	my $offset = -s $node->logfile;
	ok(kill('KILL', $pid), "$label: worker $pid killed");
	$node->wait_for_log(qr/ig_identity worker is waiting: ig_identity\.enabled is off/, $offset);
	my $log = log_since($node, $offset);
	like($log, qr/background worker "ig_identity worker" \(PID $pid\) was terminated by signal 9/,
		"$label: the postmaster saw the worker crash");
	like($log, qr/all server processes terminated; reinitializing/, "$label: and restarted every backend");
	my $new = worker_pid($node);
	ok($new ne '' && $new ne $pid, "$label: a new worker runs ($new)");
	my %saved = map { $_ => 1 } split /\n/,
	  sql('SELECT ig_user_id FROM instagram_user_cache WHERE username IS NOT NULL AND ' . in_list(@users));
	is(sql("SELECT count(*) FROM ig_identity.refresh_queue WHERE leased_by = $pid"), $N - scalar(keys %saved),
		"$label: the dead worker's leases of everyone it had not saved survived recovery");

	my $before = snapshot($label, @users);
	mock_admin($mock, 'POST', '/_admin/config', { latency_ms => 0 });
	sql('ALTER SYSTEM RESET ig_identity.enabled');
	sql('SELECT pg_reload_conf()');
	my $fetched = check_case($label, $before, \%saved, 1, $run0, @users);
	ok($fetched > 0 && $fetched < $N, "$label: the kill landed mid-cycle ($fetched of $N had been fetched)");
}

# ------------------------------------------------------------------------
# (b) SIGTERM: the worker stops cleanly; the server is restarted
# ------------------------------------------------------------------------
{
	my $label = '(b) SIGTERM';
	my @users = users_of($N);
	my $run0 = last_run_id();
	# past 100 answers, so that a batch of results is handed over to be saved
	my $pid = start_slow_cycle($label, $A, 130, @users);

	my $offset = -s $node->logfile;
	my $t_term = time();
	ok(kill('TERM', $pid), "$label: worker $pid sent SIGTERM");
	ok(wait_until(sub { !kill(0, $pid) }, 10), "$label: the worker exits");
	my $log = log_since($node, $offset);
	# between fetch steps it saves and says so; a SIGTERM that lands in one
	# of its short mid-cycle transactions ends it with PostgreSQL's FATAL
	my $clean = $log =~ /ig_identity worker shutting down/;
	ok($clean || $log =~ /terminating background worker "ig_identity worker" due to administrator command/,
		"$label: it says it is shutting down");
	note("$label: " . ($clean ? 'stopped between fetch steps' : 'stopped inside a mid-cycle transaction'));
	# exit 1, so the postmaster starts a new worker after bgw_restart_time (10 s)
	unlike($log, qr/terminated by signal|exited with exit code [2-9]/, "$label: it did not crash");
	is(worker_pid($node), '', "$label: no worker runs yet (restarted only after bgw_restart_time)");
	is(sql('SELECT count(*) FROM ig_identity.refresh_queue q WHERE ' . ($clean
				? 'leased_by IS NOT NULL OR leased_until IS NOT NULL'
				: 'EXISTS (SELECT 1 FROM pg_stat_activity s WHERE s.pid = q.leased_by)')),
		'0', "$label: the worker gave back every lease it did not settle (or left them to a dead pid)");

	my $before = snapshot($label, @users);
	my %saved = map { $_ => 1 } split /\n/,
	  sql('SELECT ig_user_id FROM instagram_user_cache WHERE username IS NOT NULL AND ' . in_list(@users));
	is(queued_of(@users), $N - scalar(keys %saved), "$label: what was saved left the queue, the rest is queued");
	# For information: answers the mock had fully sent before the SIGTERM.
	# The worker hands results over to be saved 100 at a time, and a stop
	# drops the unfinished batch, so some of these are fetched again.
	my %range = map { $_ => 1 } @users;
	my $answered = grep {
		$_->{endpoint} eq 'profile' && $_->{status} == 200 && $_->{end} < $t_term
		  && $_->{path} =~ m{/(\d+)\?} && $range{$1}
	} @{ mock_admin($mock, 'GET', '/_admin/stats?requests=5000')->{requests} };
	note("$label: $answered answers sent before the SIGTERM, " . scalar(keys %saved) . ' saved');

	mock_admin($mock, 'POST', '/_admin/config', { latency_ms => 0 });
	$node->restart;
	ok(wait_until(sub { worker_pid($node) ne '' }, 30), "$label: the worker runs after the restart");
	my $fetched = check_case($label, $before, \%saved, 1, $run0, @users);
	ok($fetched > 0 && $fetched < $N, "$label: SIGTERM landed mid-cycle ($fetched of $N had been fetched)");
}

# ------------------------------------------------------------------------
# (c) pg_ctl stop -m immediate during a SQL refresh and a worker cycle
# ------------------------------------------------------------------------
{
	my $label = '(c) immediate stop';
	my @users = users_of(2 * $N);
	my $run0 = last_run_id();
	mock_admin($mock, 'POST', '/_admin/reset');    # max_in_flight counts from here
	# Account B (loc_b) has exactly these participants, so the refresh
	# fetches the same people as the worker.
	start_slow_cycle($label, $B, 1, @users);
	my ($r_out, $r_err) = ('', '');
	my $refresh = IPC::Run::start(
		[ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres'), '-c',
			"SELECT refreshed || '/' || total FROM ig_refresh_identities('loc_b')" ],
		'>', \$r_out, '2>', \$r_err);
	ok(wait_until(sub {
		sql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
			  . " AND query LIKE '%ig_refresh_identities(''loc_b'')%' AND pid <> pg_backend_pid()") eq '1'
		  && sum_calls(@users) >= 80 && mock_stats()->{max_in_flight} > 8 }, 60),
		"$label: the SQL refresh and the worker are both fetching (more than 8 calls at once)");
	cmp_ok(saved_of(@users), '<', $N, "$label: mid-refresh and mid-cycle, not all saved yet");

	# the worker after the start waits until the saved people are read
	sql('ALTER SYSTEM SET ig_identity.enabled = off');
	my $offset = -s $node->logfile;
	$node->stop('immediate');
	$refresh->finish;
	is($r_out, '', "$label: the SQL refresh was cut off (no result)");
	like($r_err, qr/server closed the connection|terminating connection|connection to server was lost/,
		"$label: its session lost the server");

	my $before = snapshot($label, @users);
	mock_admin($mock, 'POST', '/_admin/config', { latency_ms => 0 });
	$node->start;
	like(log_since($node, $offset), qr/database system was (not properly shut down|interrupted)/,
		"$label: the start ran crash recovery");
	ok(wait_until(sub { worker_pid($node) ne '' }, 30), "$label: the worker runs after the start");
	my %saved = map { $_ => 1 } split /\n/,
	  sql('SELECT ig_user_id FROM instagram_user_cache WHERE username IS NOT NULL AND ' . in_list(@users));
	sql('ALTER SYSTEM RESET ig_identity.enabled');
	sql('SELECT pg_reload_conf()');
	my $fetched = check_case($label, $before, \%saved, 2, $run0, @users);
	ok($fetched > 0 && $fetched < $N, "$label: the stop landed mid-cycle ($fetched of $N had been fetched)");
}

# ------------------------------------------------------------------------
is(sql("SELECT count(*) || ' ' || count(DISTINCT (ig_account_id, ig_user_id)) FROM instagram_user_cache"),
	3 * $N . ' ' . 3 * $N, 'no duplicate rows in the whole cache');
is(sql('SELECT count(*) FROM ig_identity.refresh_queue'), '0', 'the queue is empty');
my $log = slurp_file($node->logfile);
unlike($log, qr/PANIC/, 'no PANIC in the server log');
ok(wait_until(sub { worker_pid($node) ne '' }, 10), 'the worker runs at the end');

$node->stop;
done_testing();
