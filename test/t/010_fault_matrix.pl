# 010_fault_matrix.pl — every fault class of docs/graph_api.md injected into a
# refresh of 1,000 identities that were cached correctly before (issue 7).
#
# 1,000 participants of account A are cached by a first, clean
# ig_refresh_identities.  Then, for each fault class of @CLASSES (one line
# each: every error code family, throttling, 429, 5xx, malformed and
# truncated JSON, short body, oversized body, slow drip, reset, close, hung
# server, {}, absent fields, mismatched id), the fault is injected into the
# mock — per user for a subset of the 1,000, or as a rule for every call of
# the account — and the location is refreshed again.  After each class:
#
#   - the call returns (no ERROR, no crashed backend) with the right figures;
#   - no good value was replaced by NULL (compared with a snapshot taken just
#     before), every username and name is still the mock's;
#   - each faulted row has the status, error code and next-fetch time of the
#     README's per-error table, its values untouched (or refreshed when the
#     answer was usable); every other row is refreshed;
#   - the account has the right status (active, paused with paused_until in
#     the right window, reauth_required, permission_error);
#   - the mock's counters show the follow-up: an account stop or pause means
#     a bounded handful of calls and none at all on the next refresh; a
#     transient failure is tried 3 times (a dead connection: see the table);
#     a person-level failure once; a field-not-permitted error once more with
#     the basic fields; everyone else exactly once.
# Each class starts from reconnected accounts (ig_connect_account, the
# product's way back to active) and a reset mock, so classes are independent.
#
# Then the worker's follow-up (ig_identity.enabled is off until then):
#   - throttling: 1,000 queued rows, a 613 pauses the account; the rows wait
#     for the pause, no further call goes out over several cycles; once the
#     pause is over (still throttled) the account is paused again, and once
#     it is over with the throttle gone every row is fetched, one call each,
#     and the account is active again;
#   - transient: rows failing with 503 are tried 3 times, then wait in the
#     queue (reason retry) and are not called again meanwhile;
#   - stale rows answering 230, 9010 or 100 are asked once, not again at
#     every stale scan; a new message from a 230 person queues them again.
# At the end the server log holds no "terminated by signal" and no PANIC.
#
# Code 4 (app-wide) pauses every account, and a second throttle in a row
# climbs the 60 → 300 → 900 s ladder (both found missing by this test).
# IGID_FM_ONLY=<regex> runs only the matching classes (the worker part
# always runs).
#
# Adding a class: one line in @CLASSES (see the field list above it).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $N    = 1000;                  # identities cached before the faults
my $CONC = 8;                     # ig_identity.max_concurrency
my $A    = ACCOUNT_A;
my $B    = '17841400000000002';   # the mock's account B: only here to see app-wide pauses
my $TOKEN_B = 'mock-token-B-0123456789';
my $LOC  = 'loc_fm';
my $FIRST_USER = 2000000000000000;    # the mock's generated user i is FIRST_USER + i, "user.<i>"

my $t_start = time();
my $mock = start_mock('--generate-users', $N);
my $node = new_worker_node('fault_matrix', mock => $mock,
	conf => "ig_identity.enabled = off\n"
	  . "ig_identity.max_concurrency = $CONC\n"
	  . "ig_identity.refresh_interval = '1s'\n");
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

# Connecting again is the product's reset: active, no pause, no last error.
sub connect_sql
{
	return "SELECT ig_connect_account('$LOC', '$A', '$A', '" . TOKEN_A . "', 'graph.facebook.com');"
	  . "SELECT ig_connect_account('loc_fm_b', '$B', '$B', '$TOKEN_B', 'graph.instagram.com')";
}
sub connect_accounts { sql(connect_sql()); }

sub stats { return mock_admin($mock, 'GET', '/_admin/stats?requests=' . ($_[0] // 0)); }

# --- the fault classes ------------------------------------------------------
#
# name     what is injected, for the test's output
# fault    a mock fault (test/mock_graph/README.md), or a list of them
# scope    'users' (default): per-user faults for a subset of n people;
#          'account': a rule for every call of account A
# n        subset size (default 20)
# count    calls each per-user fault answers (default: until cleared)
# data     instead of a fault: sub(id) giving the mock's new record for each
#          person of the subset (restored afterwards)
# set      session settings for the refresh
# row      subset rows afterwards: status/code/next/fetched/pic, where next
#          is none, later (< 1 day), week (7 days); fetched is "fetched"
#          (last_fetched_at is this refresh's) or "kept"; pic is "new" or
#          "kept"; '*' in place of a field: not checked
# calls    calls per subset person (users), or calls for the account in all
#          (account; default 1 to 2 x max_concurrency); a number or [min, max]
# account  account A afterwards: status/last_error_code (default active/-)
# pause    paused_until - start of the refresh, seconds: [min, max]
# app_wide account B (connected, not refreshed) must be paused too
# path     every last request for a subset person matches this
use constant {
	KEPT  => 'kept/kept',      # last_fetched_at and picture untouched
	FRESH => 'fetched/new',    # refreshed from the answer
	LATER => 'error/%s/later/kept/kept',
};

sub err  { my ($code, $sub, %x) = @_; return { type => 'graph_error', code => $code, (defined $sub ? (subcode => $sub) : ()), %x }; }
sub http { my ($status, %x) = @_; return { type => 'http_status', status => $status, %x }; }
sub flt  { return { type => $_[0], @_[ 1 .. $#_ ] }; }
sub later { return sprintf(LATER, $_[0] // '-'); }

my $STOP = [ 1, 2 * $CONC ];    # calls in flight when a stop or pause arrives
my @CLASSES = (
	# token expired / revoked / invalid: stop, reauth_required
	{ name => '190/463 token expired',     fault => err(190, 463), scope => 'account', account => 'reauth_required/190' },
	{ name => '190/460 password changed',  fault => err(190, 460), scope => 'account', account => 'reauth_required/190' },
	{ name => '190 no subcode, HTTP 401',  fault => err(190, undef, http_status => 401), scope => 'account', account => 'reauth_required/190' },
	{ name => '102 session key invalid',   fault => err(102), scope => 'account', account => 'reauth_required/102' },
	# permission or configuration: stop, permission_error
	{ name => '10 permission denied',      fault => err(10, undef, http_status => 403), scope => 'account', account => 'permission_error/10' },
	{ name => '200 permissions error',     fault => err(200), scope => 'account', account => 'permission_error/200' },
	{ name => '299 permission range',      fault => err(299), scope => 'account', account => 'permission_error/299' },
	# throttled: pause the account, 60 s (+25 % jitter) or the regain time
	{ name => '4 app-wide throttle',       fault => err(4, undef, http_status => 403), scope => 'account', account => 'paused/4', pause => [ 59, 90 ], app_wide => 1 },
	{ name => '17 user request limit',     fault => err(17), scope => 'account', account => 'paused/17', pause => [ 59, 90 ] },
	{ name => '32 page request limit',     fault => err(32), scope => 'account', account => 'paused/32', pause => [ 59, 90 ] },
	{ name => '341 application limit',     fault => err(341), scope => 'account', account => 'paused/341', pause => [ 59, 90 ] },
	{ name => '613 rate limit',            fault => err(613), scope => 'account', account => 'paused/613', pause => [ 59, 90 ] },
	{ name => '80002 Instagram BUC limit', fault => err(80002), scope => 'account', account => 'paused/80002', pause => [ 59, 90 ] },
	{ name => '613, regain in 3 min',      fault => [ err(613), flt('usage', buc => { call_count => 100, estimated_time_to_regain_access => 3 }) ],
	  scope => 'account', account => 'paused/613', pause => [ 179, 215 ] },
	{ name => 'HTTP 429, no envelope',     fault => http(429, body => ''), scope => 'account', account => 'paused/429', pause => [ 59, 90 ] },
	# policy block / not eligible: pause for long (24 h)
	{ name => '368 policy block',          fault => err(368), scope => 'account', account => 'paused/368', pause => [ 86399, 86500 ] },
	{ name => '100/36103 not eligible',    fault => err(100, 36103), scope => 'account', account => 'paused/100', pause => [ 86399, 86500 ] },
	# the person: consent, unavailable, field not permitted, bad request
	{ name => '230 consent required',      fault => err(230), row => 'consent_required/230/none/' . KEPT, calls => 1 },
	{ name => '9010 no matching user',     fault => err(9010), row => 'unavailable/9010/week/' . KEPT, calls => 1 },
	{ name => '100/33 unknown id',         fault => err(100, 33), row => 'unavailable/100/week/' . KEPT, calls => 1 },
	{ name => '551 not available',         fault => err(551), row => 'unavailable/551/week/' . KEPT, calls => 1 },
	{ name => '100/2534014 unknown user',  fault => err(100, 2534014), row => 'unavailable/100/week/' . KEPT, calls => 1 },
	{ name => '100/2018001 no user',       fault => err(100, 2018001), row => 'unavailable/100/week/' . KEPT, calls => 1 },
	{ name => '100/2018218 field denied',  fault => err(100, 2018218), row => 'unavailable/100/week/' . KEPT, calls => 2,
	  path => qr/\?fields=name,username,profile_pic$/ },
	{ name => '2018247 once, basic fields ok', fault => err(2018247), count => 1, row => 'ok/-/none/' . FRESH, calls => 2,
	  path => qr/\?fields=name,username,profile_pic$/ },
	# permanent: not retried now, looked at again after the long delay
	{ name => '100 bad request',           fault => err(100), row => 'error/100/week/' . KEPT, calls => 1 },
	# transient: 3 attempts with backoff, then error and a later retry
	{ name => '1 unknown error',           fault => err(1, undef, http_status => 500), row => later(1), calls => 3 },
	{ name => '2 service unavailable',     fault => err(2, undef, http_status => 503), row => later(2), calls => 3 },
	{ name => 'is_transient:true',         fault => err(999, undef, is_transient => JSON::PP::true), row => later(999), calls => 3 },
	{ name => 'HTTP 500, HTML',            fault => http(500), row => later(500), calls => 3 },
	{ name => 'HTTP 502, empty',           fault => http(502, body => ''), row => later(502), calls => 3 },
	{ name => 'HTTP 503',                  fault => http(503), row => later(503), calls => 3 },
	{ name => '503 twice, then ok',        fault => http(503), count => 2, row => 'ok/-/none/' . FRESH, calls => 3 },
	{ name => 'malformed JSON',            fault => flt('malformed_json'), row => later(), calls => 3 },
	{ name => 'truncated JSON',            fault => flt('truncated_json'), row => later(), calls => 3 },
	{ name => 'short body',                fault => flt('short_body'), row => later(), calls => 3 },
	# a connection that dies before any answer: libcurl itself sends the
	# request again on a new connection when the dead one was a reused
	# keep-alive one (up to 5 times, its CONN_MAX_RETRIES), so 3 attempts
	# can reach the mock as up to 18 requests
	{ name => 'connection reset',          fault => flt('reset'), row => later(), calls => [ 3, 18 ] },
	{ name => 'connection closed',         fault => flt('close'), row => later(), calls => [ 3, 18 ] },
	{ name => 'mismatched id',             fault => flt('mismatched_id'), row => later(), calls => 3 },
	# README lists {} with the answers retried 3 times; the fetcher asks once
	# ("no information", not a glitch) and leaves it for later: either is fine
	{ name => '{} with HTTP 200',          fault => flt('empty_object'), row => later(), calls => [ 1, 3 ] },
	{ name => 'hung server (timeout)',     fault => flt('hang', seconds => 8), n => 4, set => "SET ig_identity.http_timeout = '2s'",
	  row => later(), calls => 3 },
	{ name => 'slow drip (timeout)',       fault => flt('slow_drip', bytes_per_second => 10), n => 4,
	  set => "SET ig_identity.http_timeout = '2s'", row => later(), calls => 3 },
	# over the 1 MiB cap: refused, and not fetched again and again
	{ name => 'oversized body (8 MiB)',    fault => flt('oversized'), n => 3, row => 'error/-/week/' . KEPT, calls => 1 },
	# usable answers with absent values: refreshed, nothing erased
	{ name => 'absent name, null picture', fault => [ flt('absent_name'), flt('null_profile_pic') ], row => 'ok/-/none/fetched/kept', calls => 1 },
	{ name => 'only the id',               data => sub { { id => $_[0], profile_pic => undef } }, row => 'ok/-/none/fetched/kept', calls => 1 },
);

# --- seed: 1,000 identities cached correctly ----------------------------------
sql('CREATE EXTENSION ig_identity');
connect_accounts();
sql("INSERT INTO instagram_conversations (id, ig_account_id, location_id, participant_igsid, updated_time)"
	  . " SELECT 'fm' || i, '$A', '$LOC', ($FIRST_USER + i)::text, now() FROM generate_series(0, $N - 1) i");
is(sql("SELECT refreshed || '/' || failed || '/' || total FROM ig_refresh_identities('$LOC')"),
	"$N/0/$N", 'seed: a clean refresh caches every identity');
sql('CREATE TABLE fm_seed AS SELECT * FROM instagram_user_cache; ANALYZE fm_seed');
is(sql("SELECT count(*) FILTER (WHERE username = 'user.' || (ig_user_id::bigint - $FIRST_USER)"
	  . " AND profile_pic LIKE 'https://%' AND profile_pic_url = profile_pic AND fetch_status = 'ok')"
	  . " FROM fm_seed"), $N, 'seed: every row has its username and picture, status ok');
my @named = split /\n/, sql('SELECT ig_user_id FROM fm_seed WHERE name IS NOT NULL ORDER BY ig_user_id');
cmp_ok(scalar(@named), '>', 100, 'seed: many rows have a name too');

# --- one class -----------------------------------------------------------------

sub calls_ok
{
	my ($got, $want) = @_;
	my ($lo, $hi) = ref $want ? @$want : ($want, $want);
	return $got >= $lo && $got <= $hi;
}

sub want_text { my ($w) = @_; return ref $w ? "$w->[0] to $w->[1]" : $w; }

# Expected row summary, in the order the query sorts it.
sub expected_rows
{
	my ($row, $n) = @_;
	my %want = ("other: ok/-/none/fetched/new" => $N - $n);
	$want{"faulted: $row"} += $n;
	return join('; ', map { "$_ x$want{$_}" } sort keys %want);
}

# Row summary, as a scalar subquery: "status/code/next/fetched/pic x count"
# per group of rows, the fields the class leaves unchecked ('*') blanked out
# for the faulted subset.
sub row_summary_sql
{
	my ($row) = @_;
	my @mask = split m{/}, $row;
	my @f = (
		'c.fetch_status',
		"coalesce(c.last_error_code::text, '-')",
		"CASE WHEN c.next_fetch_at IS NULL THEN 'none'"
		  . " WHEN c.next_fetch_at <= r.started THEN 'past'"
		  . " WHEN c.next_fetch_at < r.started + interval '1 day' THEN 'later'"
		  . " WHEN c.next_fetch_at BETWEEN r.started + interval '6 days' AND r.started + interval '8 days' THEN 'week'"
		  . " ELSE 'other' END",
		"CASE WHEN c.last_fetched_at = r.started THEN 'fetched'"
		  . " WHEN c.last_fetched_at IS NOT DISTINCT FROM b.last_fetched_at THEN 'kept' ELSE 'odd' END",
		"CASE WHEN c.profile_pic IS NULL THEN 'null' WHEN c.profile_pic = b.profile_pic THEN 'kept' ELSE 'new' END");
	my @faulted = map { $mask[$_] eq '*' ? "'*'" : $f[$_] } 0 .. $#f;
	my $key = "CASE WHEN s.ig_user_id IS NULL THEN 'other: ' || " . join(" || '/' || ", @f)
	  . " ELSE 'faulted: ' || " . join(" || '/' || ", @faulted) . " END";
	return "(SELECT string_agg(k || ' x' || n, '; ' ORDER BY k) FROM ("
	  . " SELECT $key AS k, count(*) AS n"
	  . "   FROM instagram_user_cache c JOIN fm_before b USING (ig_account_id, ig_user_id)"
	  . "   CROSS JOIN fm_result r LEFT JOIN fm_subset s USING (ig_user_id)"
	  . "  GROUP BY 1) g)";
}

sub run_class
{
	my ($k, $c) = @_;
	my $name = $c->{name};
	my $account_scope = ($c->{scope} // 'users') eq 'account';
	my $n = $account_scope ? 0 : ($c->{n} // 20);
	my $off = ($k * 23) % (@named - $n);
	my @subset = @named[ $off .. $off + $n - 1 ];
	my %in_subset = map { $_ => 1 } @subset;

	# independent classes: reconnected accounts (active, no pause, no last
	# error), a clean mock, a snapshot of the cache
	mock_admin($mock, 'POST', '/_admin/reset', {});
	sql(connect_sql() . ';'
		  . 'DROP TABLE IF EXISTS fm_before, fm_subset, fm_result;'
		  . 'VACUUM ANALYZE instagram_user_cache;'
	  . 'CREATE TABLE fm_before AS SELECT * FROM instagram_user_cache; ANALYZE fm_before;'
		  . 'CREATE TABLE fm_subset (ig_user_id text PRIMARY KEY);'
		  . (@subset ? 'INSERT INTO fm_subset VALUES ' . join(', ', map { "('$_')" } @subset) . ';' : '')
		  . 'ANALYZE fm_subset');

	my @faults = !$c->{fault} ? () : ref $c->{fault} eq 'ARRAY' ? @{ $c->{fault} } : ($c->{fault});
	for my $f (@faults)
	{
		if ($account_scope)
		{
			mock_admin($mock, 'POST', '/_admin/faults', { match => { account => $A }, fault => $f });
			next;
		}
		mock_admin($mock, 'POST', '/_admin/faults',
			{ match => { user => $_ }, fault => $f, (defined $c->{count} ? (count => $c->{count}) : ()) })
		  for @subset;
	}
	mock_admin($mock, 'POST', '/_admin/data', { users => [ map { $c->{data}->($_) } @subset ] })
	  if $c->{data};

	my ($rc, $out, $err) = $node->psql('postgres',
		($c->{set} ? "$c->{set};\n" : '')
		  . "CREATE TABLE fm_result AS SELECT now() AS started, r.* FROM ig_refresh_identities('$LOC') r;");
	is($rc, 0, "$name: the refresh returns") or diag($err);

	if ($c->{data})    # the mock's records as they were
	{
		my %seed = map { my ($id, $u, $nm) = split /\|/, $_, -1; ($id => [ $u, $nm ]) }
		  split /\n/, sql('SELECT ig_user_id, username, name FROM fm_seed JOIN fm_subset USING (ig_user_id)');
		mock_admin($mock, 'POST', '/_admin/data', { users => [ map {
			{ id => $_, username => $seed{$_}[0], name => ($seed{$_}[1] eq '' ? undef : $seed{$_}[1]) } } @subset ] });
	}

	# everything the database says, in one query
	my %q = (
		figures => "(SELECT refreshed || '/' || failed || '/' || total FROM fm_result)",
		errors  => "(SELECT count(*) || '/' || count(DISTINCT s.ig_user_id) FROM fm_result r"
		  . " CROSS JOIN jsonb_array_elements(r.errors) e LEFT JOIN fm_subset s ON s.ig_user_id = e->>'ig_user_id')",
		tokens  => "(SELECT count(*) FROM fm_result WHERE errors::text LIKE '%mock-token%')"
		  . " + (SELECT count(*) FROM ig_identity.accounts WHERE last_error LIKE '%mock-token%')",
		nulls   => '(SELECT count(*) FROM fm_before b LEFT JOIN instagram_user_cache c USING (ig_account_id, ig_user_id)'
		  . ' WHERE c.ig_user_id IS NULL'
		  . '    OR (b.username IS NOT NULL AND c.username IS NULL)'
		  . '    OR (b.name IS NOT NULL AND c.name IS NULL)'
		  . '    OR (b.profile_pic IS NOT NULL AND c.profile_pic IS NULL)'
		  . '    OR (b.profile_pic_url IS NOT NULL AND c.profile_pic_url IS NULL))',
		names   => "(SELECT count(*) || '/' || count(*) FILTER (WHERE c.username = s.username"
		  . ' AND c.name IS NOT DISTINCT FROM s.name AND c.profile_pic_url = c.profile_pic)'
		  . ' FROM instagram_user_cache c JOIN fm_seed s USING (ig_account_id, ig_user_id))',
		rows    => $account_scope
		  ? '(SELECT count(*) FROM (SELECT * FROM instagram_user_cache EXCEPT SELECT * FROM fm_before) d)'
		  : row_summary_sql($c->{row}),
		account => "(SELECT status || '/' || coalesce(last_error_code::text, '-') FROM ig_identity.accounts"
		  . " WHERE ig_account_id = '$A')",
		pause   => "(SELECT coalesce(round(extract(epoch FROM a.paused_until - r.started))::text, 'none')"
		  . " FROM ig_identity.accounts a, fm_result r WHERE a.ig_account_id = '$A')",
		other   => "(SELECT status FROM ig_identity.accounts WHERE ig_account_id = '$B')");
	my @keys = sort keys %q;
	my %got;
	@got{@keys} = split /\|/, sql('SELECT ' . join(', ', map { $q{$_} } @keys)), -1;

	# figures and errors
	my $row_ok = !$account_scope && $c->{row} =~ m{^ok/};
	my $refreshed = $account_scope ? 0 : $row_ok ? $N : $N - $n;
	is($got{figures}, "$refreshed/" . ($N - $refreshed) . "/$N", "$name: refreshed/failed/total");
	is($got{errors}, $account_scope ? "$N/0" : $row_ok ? '0/0' : "$n/$n",
		"$name: the errors name exactly the failed people");
	is($got{tokens}, '0', "$name: no token in the errors or the account's last error");

	# never NULL over a good value; every username and name still the mock's
	is($got{nulls}, '0', "$name: no good value replaced by NULL, no row lost");
	is($got{names}, "$N/$N", "$name: every row keeps the right username and name");

	# each row's state
	if ($account_scope)
	{
		is($got{rows}, '0', "$name: no row was written (nothing was learned about anyone)");
	}
	else
	{
		is($got{rows}, expected_rows($c->{row}, $n), "$name: status, code, next fetch of each row");
	}

	# the accounts
	my $want_acct = $c->{account} // 'active/-';
	is($got{account}, $want_acct, "$name: account status");
	if ($c->{pause})
	{
		my $secs = $got{pause};
		ok($secs =~ /^\d+$/ && $secs >= $c->{pause}[0] && $secs <= $c->{pause}[1],
			"$name: paused for $c->{pause}[0] to $c->{pause}[1] s (got $secs)");
	}
	is($got{other}, $c->{app_wide} ? 'paused' : 'active',
		$c->{app_wide} ? "$name: app-wide: the other account is paused too"
		: "$name: the other account is untouched");

	# the follow-up, from the mock's counters
	my $stats = stats($c->{path} ? 20000 : 0);
	if ($account_scope)
	{
		my $calls = $stats->{by_account}{$A} // 0;
		my $want = $c->{calls} // $STOP;
		ok(calls_ok($calls, $want), "$name: $calls calls for the account (want " . want_text($want) . ')');
		my $before = $stats->{total};
		is(sql("SELECT (SELECT refreshed || '/' || failed || '/' || total FROM ig_refresh_identities('$LOC'))"
			  . " || ' ' || (SELECT status || '/' || coalesce(last_error_code::text, '-')"
			  . "   FROM ig_identity.accounts WHERE ig_account_id = '$A')"),
			"0/$N/$N $want_acct", "$name: the next refresh fetches nothing, the account stays as it was");
		is(stats()->{total}, $before, "$name: and makes no call");
	}
	else
	{
		my $by_user = $stats->{by_user};
		my @bad = grep { !calls_ok($by_user->{$_} // 0, $c->{calls}) } @subset;
		is(scalar(@bad), 0, "$name: each faulted person called " . want_text($c->{calls}) . ' times')
		  or diag(join(', ', map { "$_: " . ($by_user->{$_} // 0) } @bad));
		my @others = grep { !$in_subset{$_} && ($by_user->{$_} // 0) != 1 }
		  map { $FIRST_USER + $_ } 0 .. $N - 1;
		is(scalar(@others), 0, "$name: everyone else called once")
		  or diag(join(', ', map { "$_: " . ($by_user->{$_} // 0) } @others[ 0 .. ($#others < 9 ? $#others : 9) ]));
		if ($c->{path})
		{
			# the log is in order of completion: take each person's latest start
			my (%last, %last_t);
			for my $r (@{ $stats->{requests} })
			{
				my ($u) = ($r->{path} // '') =~ m{/(\d+)\?};
				next unless defined $u && $in_subset{$u} && $r->{t} >= ($last_t{$u} // 0);
				($last{$u}, $last_t{$u}) = ($r->{path}, $r->{t});
			}
			my @wrong = grep { ($last{$_} // '') !~ $c->{path} } @subset;
			is(scalar(@wrong), 0, "$name: the last call asked for the basic fields only")
			  or diag(join("\n", map { "$_: " . ($last{$_} // 'no call') } @wrong[ 0 .. ($#wrong < 4 ? $#wrong : 4) ]));
		}
	}
}

my $k = 0;
run_class($k++, $_) for grep { $_->{name} =~ ($ENV{IGID_FM_ONLY} // '') } @CLASSES;

# --- the worker's follow-up ---------------------------------------------------
connect_accounts();
mock_admin($mock, 'POST', '/_admin/reset', {});
sql('ALTER SYSTEM SET ig_identity.enabled = on');
$node->reload;
my $c0 = worker_state($node)->{cycles};
ok(wait_until(sub { worker_state($node)->{cycles} > $c0 + 1 }, 30), 'worker: enabled, it runs cycles');
is(sql('SELECT count(*) FROM ig_identity.refresh_queue'), '0', 'worker: nothing is stale or missing');

sub calls_a { return stats()->{by_account}{$A} // 0; }
sub queue_summary
{
	return sql("SELECT count(*) || '/' || count(*) FILTER (WHERE leased_until IS NULL)"
		  . " FROM ig_identity.refresh_queue WHERE ig_account_id = '$A'");
}

# Waits for $n more worker cycles (cycles that start after this call).
sub wait_cycles
{
	my ($n) = @_;
	my $c = worker_state($node)->{cycles};
	sql('SELECT ig_identity_wakeup()');
	return wait_until(sub { worker_state($node)->{cycles} >= $c + $n + 1 }, 30);
}

# W1. throttling: the account pauses, its rows wait, no call meanwhile
sql('DROP TABLE IF EXISTS fm_before');
sql('CREATE TABLE fm_before AS SELECT * FROM instagram_user_cache');
mock_admin($mock, 'POST', '/_admin/faults', { match => { account => $A }, fault => err(613) });
sql("INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason)"
	  . " SELECT '$A', ig_user_id, 'manual' FROM instagram_user_cache");
ok(wait_until(sub { sql("SELECT status FROM ig_identity.accounts WHERE ig_account_id = '$A'") eq 'paused' }, 30),
	'worker, 613: the account becomes paused');
ok(wait_until(sub { queue_summary() eq "$N/$N" }, 30), 'worker, 613: every row is still queued, none leased');
my $calls_613 = calls_a();
ok(calls_ok($calls_613, $STOP), "worker, 613: $calls_613 calls before the pause (want " . want_text($STOP) . ')');
is(sql("SELECT (SELECT paused_until > now() + interval '45 seconds' FROM ig_identity.accounts"
	  . "         WHERE ig_account_id = '$A')"
	  . " || '/' || (ig_identity._worker_next_due() > 45)"),
	'true/true', 'worker, 613: paused for a minute, and no row is due before the pause ends');
is(sql('SELECT count(*) FROM (SELECT * FROM instagram_user_cache EXCEPT SELECT * FROM fm_before) d'), '0',
	'worker, 613: no cache row was written');
ok(wait_cycles(3), 'worker, 613: the worker runs more cycles');
is(calls_a(), $calls_613, 'worker, 613: and makes no call while paused');

# the pause runs out (time moved on: the pause and the rows' wait end now)
# while the account is still throttled: it is paused again, and for longer
# (the ladder: 60 → 300 s)
sub end_pause
{
	sql("UPDATE ig_identity.refresh_queue SET not_before = now() WHERE ig_account_id = '$A'");
	sql("UPDATE ig_identity.accounts SET paused_until = now() WHERE ig_account_id = '$A'");
}
end_pause();
sql('SELECT ig_identity_wakeup()');
ok(wait_until(sub { calls_a() > $calls_613
	  && sql("SELECT paused_until > now() + interval '45 seconds' FROM ig_identity.accounts"
		  . " WHERE ig_account_id = '$A'") eq 't' }, 30),
	'worker, 613 again: called again once the pause ended, and paused again');
my $second = sql("SELECT round(extract(epoch FROM paused_until - now())) FROM ig_identity.accounts"
	  . " WHERE ig_account_id = '$A'");
ok($second >= 240 && $second <= 380, "worker, 613 again: the second pause is about 300 s (got $second)");

# the pause runs out with the throttle gone: everything is fetched
mock_admin($mock, 'DELETE', '/_admin/faults');
my $calls_before_resume = calls_a();
end_pause();
sql('SELECT ig_identity_wakeup()');
ok(wait_until(sub { sql('SELECT count(*) FROM ig_identity.refresh_queue') eq '0' }, 60),
	'worker, after the pause: the queue is worked off');
is(sql("SELECT status || '/' || (paused_until IS NULL) FROM ig_identity.accounts WHERE ig_account_id = '$A'"),
	'active/true', 'worker, after the pause: the account is active again');
is(sql("SELECT count(*) FROM instagram_user_cache c JOIN fm_seed s USING (ig_account_id, ig_user_id)"
	  . " WHERE c.fetch_status = 'ok' AND c.username = s.username AND c.last_fetched_at > now() - interval '1 minute'"),
	$N, 'worker, after the pause: every identity is refreshed');
is(calls_a() - $calls_before_resume, $N, 'worker, after the pause: one call per person');

# W2. transient: 3 attempts, then the row waits in the queue (retry later)
my @w2 = @named[ 0 .. 9 ];
my $w2_list = join(', ', map { "'$_'" } @w2);
mock_admin($mock, 'POST', '/_admin/reset', {});
mock_admin($mock, 'POST', '/_admin/faults', { match => { user => $_ }, fault => http(503) }) for @w2;
sql("INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason)"
	  . " SELECT '$A', ig_user_id, 'manual' FROM instagram_user_cache WHERE ig_user_id IN ($w2_list)"
	  . " OR ig_user_id::bigint BETWEEN $FIRST_USER AND $FIRST_USER + 9");
ok(wait_until(sub {
	sql("SELECT count(*) FILTER (WHERE reason = 'retry' AND leased_until IS NULL AND not_before > now() + interval '1 minute')"
		  . " || '/' || count(*) FROM ig_identity.refresh_queue") eq '10/10' }, 30),
	'worker, 503: the faulted rows wait in the queue to be retried later, the others are done');
my $by_user = stats()->{by_user};
is(join(',', map { $by_user->{$_} // 0 } @w2), join(',', (3) x 10), 'worker, 503: each tried 3 times');
is(sql("SELECT count(*) FROM instagram_user_cache c JOIN fm_seed s USING (ig_account_id, ig_user_id)"
	  . " WHERE c.ig_user_id IN ($w2_list) AND c.fetch_status = 'error' AND c.last_error_code = 503"
	  . " AND c.next_fetch_at > now() AND c.username = s.username AND c.profile_pic IS NOT NULL"),
	'10', 'worker, 503: the rows say error 503, retry later, values kept');
my $total_503 = stats()->{total};
ok(wait_cycles(3), 'worker, 503: the worker runs more cycles');
is(stats()->{total}, $total_503, 'worker, 503: no further call meanwhile');
sql('DELETE FROM ig_identity.refresh_queue');

# W3. person-level failures on stale rows: the stale sweep asks once, not
# again at every scan (230: only a new message from the person is worth a
# retry; 9010: a week later; 100: permanent)
my %w3 = (230 => [ @named[ 20 .. 29 ] ], 9010 => [ @named[ 30 .. 34 ] ], 100 => [ @named[ 35 .. 39 ] ]);
my %w3_status = (230 => 'consent_required', 9010 => 'unavailable', 100 => 'error');
my @w3 = map { @{ $w3{$_} } } sort keys %w3;
my $w3_list = join(', ', map { "'$_'" } @w3);
mock_admin($mock, 'POST', '/_admin/reset', {});
for my $code (keys %w3)
{
	mock_admin($mock, 'POST', '/_admin/faults', { match => { user => $_ }, fault => err($code + 0) }) for @{ $w3{$code} };
}
sql("UPDATE instagram_user_cache SET last_fetched_at = now() - interval '2 days' WHERE ig_user_id IN ($w3_list)");
sql('SELECT ig_identity_wakeup()');
my $w3_want = join(', ', sort map { "$w3_status{$_}/$_ x" . scalar(@{ $w3{$_} }) } keys %w3);
my $w3_sql = "SELECT string_agg(k || ' x' || n, ', ' ORDER BY k) FROM (SELECT fetch_status || '/' || last_error_code AS k,"
  . " count(*) AS n FROM instagram_user_cache WHERE ig_user_id IN ($w3_list) GROUP BY 1) g";
ok(wait_until(sub { sql($w3_sql) eq $w3_want }, 30),
	'worker, stale 230/9010/100: the stale sweep fetched them, each row has its status')
  or diag(sql($w3_sql));
is(sql("SELECT count(*) FROM instagram_user_cache c JOIN fm_seed s USING (ig_account_id, ig_user_id)"
	  . " WHERE c.ig_user_id IN ($w3_list) AND c.username = s.username AND c.profile_pic IS NOT NULL"),
	scalar(@w3), 'worker, stale 230/9010/100: values kept');
ok(wait_cycles(4), 'worker, stale 230/9010/100: the worker runs more cycles (and stale scans)');
$by_user = stats()->{by_user};
for my $code (sort keys %w3)
{
	is(join(',', map { $by_user->{$_} // 0 } @{ $w3{$code} }), join(',', (1) x @{ $w3{$code} }),
		"worker, stale $code: each asked once, not at every scan");
}
mock_admin($mock, 'DELETE', '/_admin/faults');
my $writer = $w3{230}[0];
my $webhook = qq({"object":"instagram","entry":[{"id":"$A","time":1752834911539,"messaging":[)
  . qq({"sender":{"id":"$writer"},"recipient":{"id":"$A"},"timestamp":1752834910447,"message":{"mid":"mid.fm.1","text":"hi again"}}]}]});
is(sql("SELECT participants_queued FROM ig_ingest_webhook('$webhook')"), '1',
	'worker, 230: a new message from the person queues them again');
ok(wait_until(sub {
	sql("SELECT fetch_status FROM instagram_user_cache WHERE ig_account_id = '$A' AND ig_user_id = '$writer'") eq 'ok' }, 30),
	'worker, 230: and the worker fetches their profile');
is(stats()->{by_user}{$writer}, 2, 'worker, 230: with one more call');

# --- nothing crashed --------------------------------------------------------------
$node->stop;
my $log = slurp_file($node->logfile);
is(count_matches($log, qr/terminated by signal/), 0, 'the server log holds no "terminated by signal"');
is(count_matches($log, qr/PANIC/), 0, 'the server log holds no PANIC');
note(sprintf('fault matrix: %d classes, %.0f s', scalar(@CLASSES), time() - $t_start));
done_testing();
