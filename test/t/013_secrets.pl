# 013_secrets.pl — secrets and privileges on live clusters.
#
#   1. A login role that is not a superuser, does not own the extension and
#      has no grants cannot move ig_identity.graph_api_url (SET, SET LOCAL,
#      set_config, PGOPTIONS at connection, ALTER ROLE/DATABASE/SYSTEM ... SET,
#      a function's SET clause), cannot call ig_connect_account or any fetch
#      function, cannot reach a token through any SECURITY DEFINER function or
#      the private schema. GRANT EXECUTE lets it connect an account (the token
#      stays unreadable); GRANT SET ON PARAMETER is what lets it move the URL.
#   2. The same role on a server that loads the library on demand (not
#      preloaded): a URL it gave the placeholder before the library loaded
#      (SET, SET LOCAL, PGOPTIONS) is discarded at load, the configured URL
#      applies, and its granted ig_resolve_profile calls go to the configured
#      mock.  (With PGOPTIONS PostgreSQL fell back to the built-in default,
#      empty = Meta's hosts; src/pg/settings.cpp now re-applies the
#      configured value.)
#   3. The token goes only to the configured host: a 302/307/308 whose
#      Location names a second mock ("elsewhere"), and a Conversations page
#      whose paging.next and nested messages' next point there, are not
#      followed; elsewhere receives no request at all.
#   4. After every path that handles a token (and account B's app secret,
#      connected with the six-argument ig_connect_account) has run (connect, rotate,
#      refresh, resolve, sync, webhook + worker, a rotation the mock rejects
#      with 190, validation errors with a token in every argument, ANALYZE,
#      which copied sampled tokens into pg_statistic until access_token got
#      SET STATISTICS 0):
#      the tokens appear in no part of pg_dump --data-only (account_tokens
#      holds them sealed, see 021_encryption.pl); read as superuser, in no
#      relation of the database (catalogs and views included: pg_statistic,
#      pg_stats, pg_stat_activity, pg_settings ..., and account_tokens
#      itself), yet the stored ones open to the right token;
#      in nothing the unprivileged role can read; in no error a client saw;
#      in no line of either server's log (log_min_messages = debug1, client
#      statements not echoed, so every line is the server's own).
#   5. Every function of the extension and every function in schema
#      ig_identity pins search_path.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use HTTP::Tiny;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $A = ACCOUNT_A;
my $B = '17841400000000002';
my $TOKEN_A = TOKEN_A;
my $TOKEN_B = 'mock-token-B-0123456789';
my $GRANTED_TOKEN = 'tok-013-granted-app-7Qp2';    # connected by the granted role
my $ROTATED_TOKEN = 'tok-013-rotated-9Wd4';        # a rotation the mock rejects (190)
my $APP_SECRET = 'tok-013-app-secret-4Vb8';        # account B's app secret: kept like a token
my @TOKENS = ($TOKEN_A, $TOKEN_B, $GRANTED_TOKEN, $ROTATED_TOKEN, $APP_SECRET);
# Generated users: conversation i is with user 2000000000000000 + i, account A's when i is even.
sub user { return sprintf('%d', 2000000000000000 + $_[0]); }

# Every server-side line is logged, and no client statement is echoed: a
# token found in these logs was written by the server itself.
my $LOGGING = "log_statement = none\nlog_min_error_statement = panic\n"
  . "log_min_messages = debug1\nlog_error_verbosity = verbose\n";

my $mock = start_mock('--generate-conversations', '60');
my $elsewhere = start_mock();    # a working Graph API somewhere else: must see nothing
my $MOCK_URL = "http://127.0.0.1:$mock->{port}/v21.0";
my $TRAP_URL = "http://127.0.0.1:$elsewhere->{port}/v21.0";

sub elsewhere_requests { return mock_admin($elsewhere, 'GET', '/_admin/stats?requests=0')->{total}; }
sub mock_stats { return mock_admin($mock, 'GET', '/_admin/stats'); }

my $node = new_worker_node('secrets', mock => $mock, conf => $LOGGING);
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }

# Every client-side error text seen here, to be searched for tokens at the end.
my @client_errors;

# psql as $role on $n; returns (exit status, stdout, stderr).
sub psql_as
{
	my ($n, $role, $query) = @_;
	my ($ret, $out, $err) = $n->psql('postgres', $query,
		connstr => $n->connstr('postgres') . " user=$role",
		extra_params => [ '-v', 'VERBOSITY=verbose', '-v', 'SHOW_CONTEXT=always' ]);
	push @client_errors, $err;
	return ($ret, $out, $err);
}

sql(q{
	CREATE EXTENSION ig_identity;
	CREATE ROLE igid_app LOGIN;
	CREATE SCHEMA app AUTHORIZATION igid_app;
});
is(sql(q{SELECT r.rolsuper::text || r.rolcreaterole::text || r.rolbypassrls::text
            || (e.extowner = r.oid)::text || pg_has_role('igid_app', e.extowner, 'USAGE')::text
          FROM pg_roles r, pg_extension e WHERE r.rolname = 'igid_app' AND e.extname = 'ig_identity'}),
	'falsefalsefalsefalsefalse',
	'igid_app is no superuser, cannot create roles, and neither owns nor inherits the extension owner');

# ---------------------------------------------------------------- 1. privileges

my @url_attacks = (
	[ 'SET' => "SET ig_identity.graph_api_url = '$TRAP_URL'" ],
	[ 'SET LOCAL' => "BEGIN; SET LOCAL ig_identity.graph_api_url = '$TRAP_URL'; COMMIT;" ],
	[ 'set_config()' => "SELECT set_config('ig_identity.graph_api_url', '$TRAP_URL', false)" ],
	[ 'RESET' => 'RESET ig_identity.graph_api_url' ],
	[ 'ALTER ROLE self SET' => "ALTER ROLE igid_app SET ig_identity.graph_api_url = '$TRAP_URL'" ],
	[ 'ALTER ROLE IN DATABASE SET' =>
		"ALTER ROLE igid_app IN DATABASE postgres SET ig_identity.graph_api_url = '$TRAP_URL'" ],
	[ 'ALTER DATABASE SET' => "ALTER DATABASE postgres SET ig_identity.graph_api_url = '$TRAP_URL'" ],
	[ 'ALTER SYSTEM SET' => "ALTER SYSTEM SET ig_identity.graph_api_url = '$TRAP_URL'" ],
	[ "a function's SET clause" => "CREATE FUNCTION app.f() RETURNS int LANGUAGE sql "
		  . "SET ig_identity.graph_api_url = '$TRAP_URL' AS 'SELECT 1'" ]);
for my $attack (@url_attacks)
{
	my ($label, $query) = @$attack;
	my ($ret, $out, $err) = psql_as($node, 'igid_app', $query);
	isnt($ret, 0, "graph_api_url: $label is refused");
	like($err, qr/permission denied to set parameter|must be owner of database/,
		"graph_api_url: $label: permission denied") or diag($err);
}
{
	local $ENV{PGOPTIONS} = "-c ig_identity.graph_api_url=$TRAP_URL";
	my ($ret, $out, $err) = psql_as($node, 'igid_app', 'SHOW ig_identity.graph_api_url');
	isnt($out, $TRAP_URL, 'graph_api_url: PGOPTIONS at connection does not take effect');
	like($err, qr/permission denied to set parameter/, 'graph_api_url: PGOPTIONS: permission denied')
	  or diag($err);
}
is(sql(q{SELECT setting || ' ' || source FROM pg_settings WHERE name = 'ig_identity.graph_api_url'}),
	"$MOCK_URL configuration file", 'the configured URL is untouched');
is(sql(qq{SELECT count(*) FROM pg_db_role_setting WHERE array_to_string(setconfig, ' ') LIKE '%$elsewhere->{port}%'}),
	'0', 'no role or database setting names elsewhere');
unlike(slurp_file($node->data_dir . '/postgresql.auto.conf'), qr/graph_api_url/,
	'postgresql.auto.conf does not name the URL');

my @call_attacks = (
	"SELECT ig_connect_account('loc_x', '$A', '$A', 'tok-x')",
	"SELECT ig_disconnect_account('$A')",
	"SELECT ig_refresh_identities('loc_a')",
	"SELECT ig_resolve_profile('$A', '" . user(0) . "')",
	"SELECT ig_sync_inbox('loc_a')",
	q{SELECT ig_ingest_webhook('{"object":"instagram","entry":[]}')},
	'SELECT ig_identity_wakeup()',
	'SELECT * FROM ig_identity.account_tokens',
	'SELECT * FROM ig_identity.accounts',
	'SELECT * FROM ig_identity.account_credentials(NULL, NULL)');
for my $query (@call_attacks)
{
	my ($ret, $out, $err) = psql_as($node, 'igid_app', $query);
	isnt($ret, 0, "without grants: refused: $query");
	like($err, qr/permission denied/, "without grants: permission denied: $query") or diag($err);
}
is(sql(q{
	SELECT coalesce(string_agg(p.oid::regprocedure::text, ', ' ORDER BY 1), '')
	  FROM pg_proc p
	 WHERE (p.pronamespace = 'ig_identity'::regnamespace
	        OR (p.prosecdef AND EXISTS (SELECT 1 FROM pg_depend d
	                                     WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
	                                       AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ig_identity')
	                                       AND d.deptype = 'e')))
	   AND has_function_privilege('igid_app', p.oid, 'EXECUTE')
	   AND (p.pronamespace <> 'ig_identity'::regnamespace OR has_schema_privilege('igid_app', 'ig_identity', 'USAGE'))}),
	'', 'no SECURITY DEFINER or private function of the extension is callable by igid_app');

# Granted EXECUTE: it connects an account; the token stays unreadable.
sql('GRANT EXECUTE ON FUNCTION ig_connect_account(text, text, text, text, text) TO igid_app');
my ($ret, $out, $err) = psql_as($node, 'igid_app',
	"SELECT status FROM ig_connect_account('loc_app', '17841400000000077', '17841400000000077', '$GRANTED_TOKEN')");
is($ret, 0, 'with GRANT EXECUTE, igid_app connects an account') or diag($err);
($ret, $out, $err) = psql_as($node, 'igid_app', 'SELECT access_token FROM ig_identity.account_tokens');
like($err, qr/permission denied/, '... and still cannot read the tokens');
is(sql(q{SELECT count(*) FROM ig_identity.account_tokens WHERE ig_account_id = '17841400000000077'}), '1',
	'the token is stored');

# GRANT SET ON PARAMETER is the one way to let a role move the URL.
sql('GRANT SET ON PARAMETER ig_identity.graph_api_url TO igid_app');
($ret, $out, $err) = psql_as($node, 'igid_app',
	"SET ig_identity.graph_api_url = '$TRAP_URL'; SHOW ig_identity.graph_api_url;");
is($out, $TRAP_URL, 'with GRANT SET ON PARAMETER, igid_app sets the URL in its session') or diag($err);
sql('REVOKE SET ON PARAMETER ig_identity.graph_api_url FROM igid_app');
($ret, $out, $err) = psql_as($node, 'igid_app', "SET ig_identity.graph_api_url = '$TRAP_URL'");
like($err, qr/permission denied to set parameter/, 'after REVOKE it cannot');

# ---------------------------------------------------------------- 2. library loaded on demand

my $plain = PostgreSQL::Test::Cluster->new('secrets_plain');
$plain->init;
$plain->append_conf('postgresql.conf',
	"ig_identity.graph_api_url = '$MOCK_URL'\nig_identity.requests_per_second = 0\n"
	  . "ig_identity.key_file = '" . write_key_file($plain->basedir . '/ig_identity.key') . "'\n"
	  . "log_line_prefix = '%m [%p] %b '\n$LOGGING");
$plain->start;
$plain->safe_psql('postgres', qq{
	CREATE EXTENSION ig_identity;
	SELECT ig_connect_account('loc_a', '$A', '$A', '$TOKEN_A');
	CREATE ROLE igid_app LOGIN;
	GRANT SELECT, INSERT, UPDATE ON instagram_user_cache TO igid_app;
	GRANT EXECUTE ON FUNCTION ig_resolve_profile(text, text), ig_identity_wakeup() TO igid_app;
});
is($plain->safe_psql('postgres',
	q{SELECT count(*) FROM pg_settings WHERE name = 'shared_preload_libraries' AND setting LIKE '%ig_identity%'}),
	'0', 'plain: the library is not preloaded');
my %placeholder_attacks = (
	'SET before the library loads' => [ "SET ig_identity.graph_api_url = '$TRAP_URL';", undef ],
	'SET LOCAL before the library loads' => [ "BEGIN; SET LOCAL ig_identity.graph_api_url = '$TRAP_URL';", 'COMMIT;' ],
	'PGOPTIONS before the library loads' => [ '', undef, "-c ig_identity.graph_api_url=$TRAP_URL" ]);
my $i = 0;
for my $label (sort keys %placeholder_attacks)
{
	my ($before, $after, $options) = @{ $placeholder_attacks{$label} };
	my $who = user(2 * ++$i);
	local $ENV{PGOPTIONS} = defined $options ? $options : '';
	# ig_identity_wakeup() loads the library without fetching; the profile is
	# fetched only when the URL is then the configured one, so a wrong URL can
	# never send this test to the internet.
	($ret, $out, $err) = psql_as($plain, 'igid_app',
		"$before SELECT ig_identity_wakeup(); SHOW ig_identity.graph_api_url; "
		  . "SELECT CASE WHEN current_setting('ig_identity.graph_api_url') = '$MOCK_URL' "
		  . "THEN (SELECT username FROM ig_resolve_profile('$A', '$who')) ELSE 'not fetched' END; "
		  . ($after // ''));
	is($ret, 0, "plain: $label: the granted calls run") or diag($err);
	my (undef, $url, $username) = split /\n/, $out;
	is($url, $MOCK_URL, "plain: $label: once the library is loaded the URL is the configured one");
	is($username, 'user.' . (2 * $i), "plain: $label: the profile came from the configured mock");
	like($err, qr/permission denied to set parameter/, "plain: $label: the placeholder is refused at load")
	  or diag($err);
}
is(elsewhere_requests(), 0, 'plain: elsewhere received no request');

# ---------------------------------------------------------------- 3. token destination

sql("SELECT ig_connect_account('loc_a', '$A', '$A', '$TOKEN_A')");
sql("SELECT ig_connect_account('loc_b', '$B', '$B', '$TOKEN_B', 'graph.instagram.com', '$APP_SECRET')");
mock_admin($mock, 'POST', '/_admin/reset');
my %redirect = (302 => user(10), 307 => user(12), 308 => user(14));
for my $status (sort keys %redirect)
{
	my $who = $redirect{$status};
	mock_admin($mock, 'POST', '/_admin/faults',
		{ match => { user => $who },
		  fault => { type => 'http_status', status => $status + 0, body => '',
			headers => { Location => "$TRAP_URL/$who?fields=username" } } });
	psql_as($node, 'postgres', "SELECT * FROM ig_resolve_profile('$A', '$who')");
	# whatever the answer did to the account, the next one starts in service
	sql("SELECT ig_connect_account('loc_a', '$A', '$A', '$TOKEN_A')");
}
ok(wait_until(sub {
	my %served = map { $_->{status} => 1 } @{ mock_stats()->{requests} };
	return $served{302} && $served{307} && $served{308};
}, 10), 'the mock served the 302, 307 and 308 answers');
is(elsewhere_requests(), 0, 'elsewhere received no request: no redirect was followed');
mock_admin($mock, 'DELETE', '/_admin/faults');

# A real first page of account A's conversations (under its Page, `me`: a
# Page token's list is never under the IG account id), with every `next`
# pointing elsewhere.
my $fields = 'id,updated_time,participants,messages.limit(20)%7Bid,created_time,from,to,message%7D';
my $res = HTTP::Tiny->new(timeout => 10)->get(
	"$MOCK_URL/me/conversations?platform=instagram&fields=$fields&limit=25",
	{ headers => { Authorization => "Bearer $TOKEN_A" } });
ok($res->{success}, 'a first page from the mock') or diag($res->{content});
my $page = decode_json($res->{content});
ok($page->{paging}{cursors}{after}, 'with a cursor');
$page->{paging}{next} = "$TRAP_URL/$A/conversations?after=$page->{paging}{cursors}{after}";
for my $c (@{ $page->{data} })
{
	next unless ref $c->{messages} eq 'HASH';
	$c->{messages}{paging}{next} = "$TRAP_URL/$c->{id}/messages?after=x";
}
mock_admin($mock, 'POST', '/_admin/faults',
	{ match => { endpoint => 'conversations' }, count => 1,
	  fault => { type => 'http_status', status => 200, body => $page } });
is(sql("SELECT conversations FROM ig_sync_inbox('loc_a')"), '30',
	'the sync pages on from the cursor at the configured base: all 30 conversations');
ok(mock_stats()->{by_endpoint}{conversations} >= 2, 'two pages came from the mock');
is(elsewhere_requests(), 0, 'elsewhere received no request: no next was followed');

# ---------------------------------------------------------------- 4. every token path, then look for the tokens

mock_admin($mock, 'DELETE', '/_admin/faults');
is(sql("SELECT refreshed > 0 FROM ig_refresh_identities('loc_a')"), 't', 'ig_refresh_identities resolves participants');
is(sql("SELECT conversations > 0 FROM ig_sync_inbox('loc_b')"), 't', 'a sync for the instagram-host account');
mock_admin($mock, 'POST', '/_admin/faults',
	{ match => { user => user(4) }, fault => { type => 'http_status', status => 500 } });
like(sql("SELECT failed FROM ig_refresh_identities('loc_a')"), qr/^[1-9]/, 'a refresh with a 5xx failure');
mock_admin($mock, 'DELETE', '/_admin/faults');

# The worker resolves a webhook participant on its own.
my $newcomer = user(40);
sql("DELETE FROM instagram_user_cache WHERE ig_user_id = '$newcomer'");
sql(qq{SELECT ig_ingest_webhook('{"object":"instagram","entry":[{"id":"$A","time":1,"messaging":[
	{"sender":{"id":"$newcomer"},"recipient":{"id":"$A"},"timestamp":1752834910447,
	 "message":{"mid":"mid.secrets.1","text":"hello"}}]}]}')});
ok(wait_until(sub {
	sql("SELECT username FROM instagram_user_cache WHERE ig_account_id = '$A' AND ig_user_id = '$newcomer'")
	  ne '' }, 30), 'the worker resolved the webhook participant');

# Validation errors with a token in every argument.
my @bad_calls = (
	"'', '$A', '$A', '$TOKEN_A'",
	"repeat('$TOKEN_A', 20), '$A', '$A', 'x'",
	"'loc_a', '$TOKEN_A', '$A', 'x'",
	"'loc_a', '$A', '$TOKEN_A', 'x'",
	"'loc_a', '$A', '$A', '$TOKEN_A x'",
	"'loc_a', '$A', '$A', E'$TOKEN_A\\n'",
	"'loc_a', '$A', '$A', '$TOKEN_A' || repeat('t', 4096)",
	"'loc_a', '$A', '$A', '$TOKEN_A', '$TOKEN_A'",
	"'loc_a', '$A', '$A', 'x', 'graph.$TOKEN_A.com'");
for my $n (0 .. $#bad_calls)
{
	($ret, $out, $err) = psql_as($node, 'postgres', "SELECT ig_connect_account($bad_calls[$n])");
	isnt($ret, 0, "bad ig_connect_account call #$n is rejected");
	unlike($err, qr/\Q$TOKEN_A\E/, "bad ig_connect_account call #$n: its error does not hold the token");
}

# A rotation to a token the Graph API rejects: 190 stops the account.
sql("SELECT ig_connect_account('loc_a', '$A', '$A', '$ROTATED_TOKEN')");
($ret, $out, $err) = psql_as($node, 'postgres', "SELECT * FROM ig_resolve_profile('$A', '" . user(6) . "')");
like($err, qr/reconnect/i, 'a rejected token: ig_resolve_profile asks for a reconnection') or diag($err);
ok(wait_until(sub {
	sql("SELECT status FROM ig_identity.accounts WHERE ig_account_id = '$A'") eq 'reauth_required' }, 30),
	'the account is flagged for re-auth');
sql('ANALYZE');    # statistics sample column values: they must not copy the tokens

# Which relations hold which token, as seen by the role that runs it: every
# table, view and materialized view of every schema it may read, but the
# (slow) views of information_schema, which only show the catalogs again.
# Returns "N:relation" for token N (1-based, as in @TOKENS).
my $FIND_FN = q{
CREATE FUNCTION pg_temp.token_relations(p_needles text[]) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    hit int;
BEGIN
    FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
              WHERE c.relkind IN ('r', 'p', 'v', 'm')
                AND has_table_privilege(c.oid, 'SELECT')
                AND c.relnamespace <> 'information_schema'::regnamespace
              ORDER BY 1::text LOOP
        BEGIN
            FOR hit IN EXECUTE format(
                'SELECT DISTINCT n.i::int FROM %s t, unnest($1) WITH ORDINALITY n(needle, i)'
                ' WHERE strpos(t::text, n.needle) > 0', r.rel) USING p_needles LOOP
                RETURN NEXT hit || ':' || r.rel::text;
            END LOOP;
        EXCEPTION WHEN insufficient_privilege THEN
            CONTINUE;    -- a column this role may not read
        END;
    END LOOP;
END $$;
};
# The needles go into SQL hex-encoded, so no query text holds a token.
my $NEEDLES = 'ARRAY['
  . join(', ', map { "convert_from(decode('" . unpack('H*', $_) . "', 'hex'), 'UTF8')" } @TOKENS) . ']';
my $SCAN = "$FIND_FN SELECT r FROM pg_temp.token_relations($NEEDLES) r ORDER BY 1";
my %stored = (2 => 1, 3 => 1, 4 => 1, 5 => 1);    # token #1 ($TOKEN_A) was rotated away
is(sql($SCAN), '', 'superuser: no relation holds a token or app secret in clear, ig_identity.account_tokens included');
# ... yet the stored ones are there, sealed: each opens to its token (#5 is
# account B's app secret).
my %stored_in = (2 => $B, 3 => '17841400000000077', 4 => $A, 5 => $B);
for my $n (sort keys %stored)
{
	my $hex = unpack('H*', $TOKENS[ $n - 1 ]);
	my $col = $n == 5 ? 'app_secret' : 'access_token';
	is(sql(qq{SELECT ig_identity.secret_matches('$col', ig_account_id, $col,
	                     convert_from(decode('$hex', 'hex'), 'UTF8'))
	            FROM ig_identity.account_tokens WHERE ig_account_id = '$stored_in{$n}'}),
		't', "secret #$n is stored, sealed");
}
($ret, $out, $err) = psql_as($node, 'igid_app', $SCAN);
is($ret, 0, 'igid_app scanned every relation it may read') or diag($err);
is($out, '', 'igid_app reads no token anywhere');

my ($dump, $dump_err) = run_command([ 'pg_dump', '--data-only', '--dbname', $node->connstr('postgres') ]);
like($dump, qr/^COPY ig_identity\.account_tokens /m, 'pg_dump --data-only dumps the tokens table') or diag($dump_err);
for my $n (1 .. @TOKENS)
{
	my ($table, %in) = (undef);
	for my $line (split /\n/, $dump)
	{
		if ($line =~ /^COPY (\S+) /) { $table = $1; next; }
		if ($line eq '\\.') { $table = undef; next; }
		$in{ $table // '(outside COPY data)' }++ if index($line, $TOKENS[ $n - 1 ]) >= 0;
	}
	is(join(', ', sort keys %in), '', "pg_dump --data-only: token #$n is in no part of the dump");
}
is(sql(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ig_identity worker'}), '1',
	'the worker was among the scanned backends');

# Every error text a client saw, and every line of both servers' logs.
my $server_logs = slurp_file($node->logfile) . slurp_file($plain->logfile);
like($server_logs, qr/access_token contains whitespace/, 'the validation errors reached the log');
like($server_logs, qr/ig_identity worker started/, 'the worker logged');
for my $token (@TOKENS)
{
	is(count_matches($server_logs, qr/\Q$token\E/), 0, 'no server log line holds the token');
	is(scalar(grep { index($_, $token) >= 0 } @client_errors), 0, 'no error a client saw holds the token');
}

# ---------------------------------------------------------------- 5. search_path

is(sql(q{
	SELECT count(*) >= 30 FROM pg_proc p
	 WHERE p.pronamespace = 'ig_identity'::regnamespace
	    OR EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
	                 AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ig_identity')
	                 AND d.deptype = 'e')}), 't', 'the extension has its functions');
is(sql(q{
	SELECT coalesce(string_agg(p.oid::regprocedure::text, ', ' ORDER BY 1), '')
	  FROM pg_proc p
	 WHERE (p.pronamespace = 'ig_identity'::regnamespace
	        OR EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
	                     AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ig_identity')
	                     AND d.deptype = 'e'))
	   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')}),
	'', 'every function of the extension and of schema ig_identity pins search_path');

$node->stop;
$plain->stop;
stop_mock($elsewhere);
stop_mock($mock);
done_testing();
