# 023_tls.pl — the production transport: TLS with ALPN h2 / http/1.1 through
# nghttpx in front of the Graph API mock, with a test CA made here.
#   - multiplexing: 200 profiles at C = 16 over h2 use a handful of
#     connections (counted in the proxy's access log), every call over h2;
#   - fallback: with h2 off at the proxy, HTTP/1.1 over TLS with connections
#     reused;
#   - GOAWAY: a graceful proxy reload mid-refresh; stream resets (the mock
#     cuts a body short after nghttpx forwarded the headers): retried as
#     transient, nothing lost, nothing fetched again once saved, and the
#     calls after the GOAWAY multiplexed on a new connection or two;
#   - certificate failures (unknown CA, wrong host name, expired): an error
#     naming the TLS failure, no request reaches the proxy (so no token is
#     sent), the account stays active (not reauth_required) and the status
#     view shows the transient error;
#   - the size cap and http_timeout hold over TLS + h2.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use TlsProxy;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);

plan skip_all => 'nghttpx (Debian package nghttp2-proxy) or openssl is not installed'
  unless have_nghttpx();

my $dir = PostgreSQL::Test::Utils::tempdir();
my $ca = make_ca($dir, 'ca');
my $other_ca = make_ca($dir, 'other');
my $good = make_cert($ca, 'localhost');
my $expired = make_cert($ca, 'expired', expired => 1);

my $USERS = 1000;
my $mock = start_mock('--generate-users', $USERS);
my $h2 = start_proxy($dir, 'h2', backend => $mock->{port}, cert => $good);
my $h1 = start_proxy($dir, 'h1', backend => $mock->{port}, cert => $good, alpn => 'http/1.1');
my $old = start_proxy($dir, 'expired', backend => $mock->{port}, cert => $expired);

my $CONC = 16;
my $node = new_worker_node('tls',
	conf => "ig_identity.graph_api_url = 'https://localhost:$h2->{port}/v21.0'\n"
	  . "ig_identity.ca_file = '$ca->{crt}'\n"
	  . "ig_identity.max_concurrency = $CONC\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
connect_account($node);
my $A = ACCOUNT_A;
# the test's own statements are logged; the token is in the one above only
my $log_start = -s $node->logfile;

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub user_id { return 2000000000000000 + $_[0]; }
sub users { my ($from, $n) = @_; return map { user_id($_) } $from .. $from + $n - 1; }

sub queue_users
{
	sql("INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason) VALUES "
		  . join(', ', map { "('$A', '$_', 'new')" } @_) . ' ON CONFLICT DO NOTHING');
}
sub queue_empty { return sql('SELECT count(*) FROM ig_identity.refresh_queue') eq '0'; }
sub saved
{
	return sql("SELECT count(*) FROM instagram_user_cache WHERE ig_account_id = '$A'"
		  . " AND fetch_status = 'ok' AND username LIKE 'user.%' AND ig_user_id IN ("
		  . join(',', map { "'$_'" } @_) . ')');
}
sub set_conf
{
	my ($name, $value) = @_;
	sql("ALTER SYSTEM SET $name = '$value'");
	sql('SELECT pg_reload_conf()');
}
# Profile calls per user at the mock since the last reset.
sub calls_by_user { return mock_admin($mock, 'GET', '/_admin/stats?requests=0')->{by_user}; }
sub profile_lines { return grep { $_->{path} =~ m{^/v\d+\.\d+/2\d+$} } proxy_requests($_[0]); }

# --- h2 multiplexing ---------------------------------------------------------
mock_admin($mock, 'POST', '/_admin/config', { latency_ms => 50 });
my @batch = users(0, 200);
queue_users(@batch);
ok(wait_until(\&queue_empty, 90), '200 queued profiles are fetched over TLS + h2');
is(saved(@batch), '200', 'all 200 are saved');
my @lines = profile_lines($h2);
is(scalar(@lines), 200, 'the proxy saw 200 profile calls');
is(scalar(grep { $_->{alpn} ne 'h2' } @lines), 0, 'every one over h2 (ALPN)');
my $conns = proxy_connections(@lines);
cmp_ok($conns, '<=', 3, "multiplexed on a handful of connections ($conns for 200 calls at C = $CONC)");
my $by_user = calls_by_user();
is(scalar(grep { ($by_user->{$_} // 0) != 1 } @batch), 0, 'each profile fetched once');

# --- HTTP/1.1 over TLS when the proxy offers no h2 ---------------------------
set_conf('ig_identity.graph_api_url', "https://localhost:$h1->{port}/v21.0");
@batch = users(200, 200);
queue_users(@batch);
ok(wait_until(\&queue_empty, 90), 'with h2 off at the proxy, 200 profiles are fetched');
is(saved(@batch), '200', 'all 200 are saved');
@lines = profile_lines($h1);
is(scalar(@lines), 200, 'the proxy saw 200 profile calls');
is(scalar(grep { $_->{alpn} ne 'http/1.1' } @lines), 0, 'every one over HTTP/1.1 (ALPN)');
$conns = proxy_connections(@lines);
cmp_ok($conns, '<=', $CONC + 4, "connections are reused ($conns for 200 calls at C = $CONC)");

# --- GOAWAY: a graceful proxy reload in the middle of a refresh -------------
set_conf('ig_identity.graph_api_url', "https://localhost:$h2->{port}/v21.0");
mock_admin($mock, 'POST', '/_admin/reset');
mock_admin($mock, 'POST', '/_admin/config', { latency_ms => 150 });
my $before = scalar(proxy_requests($h2));
@batch = users(400, 300);
queue_users(@batch);
ok(wait_until(sub { scalar(proxy_requests($h2)) - $before >= 40 }, 60), 'the refresh is under way');
my $at_reload = scalar(proxy_requests($h2));
reload_proxy($h2);
ok(wait_until(\&queue_empty, 120), 'the refresh completes across the reload');
is(saved(@batch), '300', 'all 300 are saved');
@lines = grep { $_->{path} =~ m{^/v\d+\.\d+/2\d+$} } (proxy_requests($h2))[ $before .. scalar(proxy_requests($h2)) - 1 ];
my @all = proxy_requests($h2);
my $conns_before = proxy_connections(@all[ $before .. $at_reload - 1 ]);
my %old_conn = map { ("$_->{port}" => 1) } @all[ $before .. $at_reload - 1 ];
my @after = grep { !$old_conn{$_->{port}} } @all[ $at_reload .. $#all ];
my $conns_after = proxy_connections(@after);
cmp_ok(scalar(@after), '>', 0, 'after the GOAWAY the calls went on on new connections');
# libcurl alone would open one per waiting transfer here; the driver caps
# an h2 host at two connections (the draining one and its successor)
cmp_ok($conns_after, '<=', 3,
	"and stayed multiplexed ($conns_before connection(s) before the reload, $conns_after after it)");
like(slurp_file($h2->{errors}), qr/Graceful shutdown commencing/, 'the old proxy worker shut down gracefully');
$by_user = calls_by_user();
is(scalar(grep { ($by_user->{$_} // 0) != 1 } @batch), 0,
	'nothing lost and nothing fetched twice: each profile reached the mock once');

# --- RST_STREAM: the mock cuts bodies short after the headers went out -------
mock_admin($mock, 'POST', '/_admin/reset');
my @reset = users(700, 5);
@batch = (@reset, users(705, 95));
mock_admin($mock, 'POST', '/_admin/faults',
	{ match => { user => "$_" }, count => 1, fault => { type => 'short_body' } }) for @reset;
queue_users(@batch);
ok(wait_until(\&queue_empty, 120), 'a refresh with reset streams completes');
is(saved(@batch), '100', 'all 100 are saved');
$by_user = calls_by_user();
is(join(',', map { $by_user->{$_} // 0 } @reset), '2,2,2,2,2', 'each reset stream was retried once');
is(scalar(grep { ($by_user->{$_} // 0) != 1 } users(705, 95)), 0, 'the others were fetched once');

# --- certificate failures ----------------------------------------------------
# The worker stays out of the way; the fetch runs in this session.
set_conf('ig_identity.enabled', 'off');
mock_admin($mock, 'POST', '/_admin/reset');
my @cases = (
	[ 'unknown CA', "https://localhost:$h2->{port}/v21.0", $other_ca->{crt}, $h2,
	  qr/unable to get local issuer certificate/ ],
	[ 'wrong host name', "https://127.0.0.1:$h2->{port}/v21.0", $ca->{crt}, $h2,
	  qr/no alternative certificate subject name matches|host name/ ],
	[ 'expired certificate', "https://localhost:$old->{port}/v21.0", $ca->{crt}, $old,
	  qr/certificate has expired/ ],
	[ 'system store (the test CA is not in it)', "https://localhost:$h2->{port}/v21.0", '', $h2,
	  qr/unable to get local issuer certificate/ ],
);
my $n = 1000;
for my $c (@cases)
{
	my ($name, $url, $cafile, $proxy, $why) = @$c;
	my $user = user_id(--$n);
	my $seen = scalar(proxy_requests($proxy));
	my ($rc, $out, $err) = $node->psql('postgres',
		"SET ig_identity.graph_api_url = '$url'; SET ig_identity.ca_file = '$cafile';"
		  . " SELECT ig_resolve_profile('$A', '$user')");
	is(sql("SELECT fetch_status || '|' || coalesce(username, '') FROM instagram_user_cache"
		  . " WHERE ig_user_id = '$user'"), 'error|', "$name: the profile is marked failed, nothing made up");
	my $row = sql("SELECT status || '|' || coalesce(last_error, '') FROM ig_identity_status"
		  . " WHERE ig_account_id = '$A'");
	like($row, qr/^active\|gave up after 3 attempts: tls: TLS failure \(nothing was sent\): .*$why/,
		"$name: the status view shows the TLS failure, the account stays active") or diag($row);
	is(scalar(proxy_requests($proxy)), $seen, "$name: no request reached the proxy, so no token was sent");
}
is(mock_admin($mock, 'GET', '/_admin/stats?requests=0')->{total}, 0, 'the mock saw no call at all');

# The worker too: its run fails like any transient fault, the account stays active.
set_conf('ig_identity.ca_file', $other_ca->{crt});
set_conf('ig_identity.enabled', 'on');
my $user = user_id(900);
queue_users($user);
ok(wait_until(sub { sql("SELECT count(*) FROM ig_identity.refresh_runs WHERE source = 'worker'"
	  . " AND failed > 0 AND errors::text LIKE '%TLS failure%'") ne '0' }, 60),
	'the worker records the TLS failure in its run');
like(sql("SELECT status || '|' || coalesce(last_error, '') FROM ig_identity_status WHERE ig_account_id = '$A'"),
	qr/^active\|.*TLS failure \(nothing was sent\)/, 'the status view shows it; the account is not reauth_required');
is(sql("SELECT count(*) FROM ig_identity.refresh_queue WHERE ig_user_id = '$user' AND not_before > now()"),
	'1', 'the profile stays queued for a later try');
set_conf('ig_identity.ca_file', $ca->{crt});
sql("UPDATE ig_identity.refresh_queue SET not_before = now() WHERE ig_user_id = '$user'");
ok(wait_until(sub { saved($user) eq '1' }, 60), 'with the right CA it is fetched') or diag(
	sql("SELECT * FROM ig_identity.refresh_queue"));
unlike(log_since($node, $log_start), qr/mock-token/, 'no token in the server log');
unlike(join('', map { slurp_file($_) } grep { -e $_ } map { ($_->{access}, $_->{errors}) } $h2, $h1, $old),
	qr/mock-token/, 'nor in the proxy logs');

# --- size cap and timeout over TLS + h2 ---------------------------------------
set_conf('ig_identity.enabled', 'off');
mock_admin($mock, 'POST', '/_admin/reset');
$user = user_id(901);
mock_admin($mock, 'POST', '/_admin/faults',
	{ match => { user => "$user" }, fault => { type => 'oversized', bytes => 3 * 1024 * 1024 } });
my ($rc, $out, $err) = $node->psql('postgres', "SELECT ig_resolve_profile('$A', '$user')");
like(sql("SELECT coalesce(last_error, '') FROM ig_identity_status WHERE ig_account_id = '$A'"),
	qr/larger than/, 'an oversized answer over h2 is cut off at the size cap');
mock_admin($mock, 'DELETE', '/_admin/faults');
$user = user_id(902);
mock_admin($mock, 'POST', '/_admin/faults',
	{ match => { user => "$user" }, fault => { type => 'slow_drip', bytes_per_second => 20, total_bytes => 4000 } });
my $t0 = time();
($rc, $out, $err) = $node->psql('postgres',
	"SET ig_identity.http_timeout = '1500ms'; SELECT ig_resolve_profile('$A', '$user')");
my $took = time() - $t0;
like(sql("SELECT coalesce(last_error, '') FROM ig_identity_status WHERE ig_account_id = '$A'"),
	qr/timed out|timeout/i, 'a slow drip through the proxy times out');
# the mock logs a call when its connection ends, after the proxy passed on
# the client's reset
my @drips;
wait_until(sub {
	@drips = grep { $_->{path} =~ /\Q$user\E/ } @{ mock_admin($mock, 'GET', '/_admin/stats')->{requests} };
	scalar(@drips) >= 3 }, 10);
is(scalar(@drips), 3, 'tried three times (a timeout is transient)');
# the whole drip would take 200 s; the mock sees each attempt end when the
# proxy has passed the client's stream reset on to it, which can lag on a
# loaded machine, hence the margin
diag('slow drip attempts at the mock: ' . join(', ', map { sprintf('%.2f s', $_->{end} - $_->{t}) } @drips));
is(scalar(grep { $_->{end} - $_->{t} > 1.5 + 3.0 } @drips), 0,
	'each attempt was cut off near http_timeout (1.5 s, plus up to 3 s for the proxy to pass the reset on)');
cmp_ok($took, '<', 3 * 1.5 + 6, "the call as a whole: ${took} s, three attempts and their backoff");

$node->stop;

# --- not preloaded: a refused placeholder keeps the configured bundle --------
my $plain = PostgreSQL::Test::Cluster->new('tls_plain');
$plain->init;
$plain->append_conf('postgresql.conf',
	"ig_identity.ca_file = '$ca->{crt}'\nig_identity.verify_on_connect = off\n");
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION ig_identity; CREATE ROLE regress_tls_app LOGIN;'
	  . ' GRANT EXECUTE ON FUNCTION ig_identity_wakeup() TO regress_tls_app;');
{
	local $ENV{PGOPTIONS} = "-c ig_identity.ca_file=$other_ca->{crt}";
	my ($ret, $shown, $warn) = $plain->psql('postgres',
		'SELECT ig_identity_wakeup(); SHOW ig_identity.ca_file;',
		extra_params => [ '-U', 'regress_tls_app', '-t', '-A' ]);
	my (undef, $value) = split /\n/, $shown // '';
	is($value, $ca->{crt}, 'not preloaded: the configured ca_file stays') or diag($shown, $warn);
	like($warn, qr/permission denied to set parameter "ig_identity.ca_file"/,
		'not preloaded: the placeholder from a non-superuser is refused at load');
}
$plain->stop;
done_testing();
