# 020_dba.pl — the README, followed as a DBA would (issue 16).
#
#   1. A cluster set up as "Installing into your own server" says (the
#      library and pg_cron appended to shared_preload_libraries, a key file,
#      ig_identity.database), with every logging setting that once showed a
#      token on: log_statement = all, log_min_duration_statement = 0,
#      log_min_error_statement = debug1, auto_explain with log_verbose,
#      log_nested_statements and log_analyze for every statement.
#   2. A database owned by the non-superuser app role; CREATE EXTENSION by a
#      superuser: the inbox tables it creates belong to the app role.
#   3. Every fenced ```sql block of README.md, in order, each as the role its
#      first comment names (a superuser when it says so, else the app role):
#      the GRANT block, the staged connect (its COPY data line replaced by the
#      mock's token), the refresh/resolve examples, the webhook PREPARE, the
#      status view, pg_cron, the key rotation, the update.  Each must run
#      without an error.
#   4. Every function as the app role, the status view, ig_identity_check()
#      and the quarantine as the monitoring role (no pg_monitor).
#   5. The token connected through COPY is in no line of the server log,
#      although the log shows statements, durations and nested plans.
#   6. Dumps: as a superuser (the whole database), and as the app role with
#      the options the README gives; each restored into a new database.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $TOKEN = TOKEN_A;
my $src = $ENV{IGID_SRC} or die "IGID_SRC is not set";
my $readme_path = -f "$src/README.md" ? "$src/README.md" : "$FindBin::RealBin/../../README.md";

my $mock = start_mock();
my $node = new_worker_node('dba', mock => $mock, conf => <<'EOC');
shared_preload_libraries = 'pg_cron,ig_identity'
ig_identity.database = 'inbox'
cron.database_name = 'inbox'
cron.use_background_workers = on
max_worker_processes = 16
log_statement = all
log_min_duration_statement = 0
log_min_error_statement = debug1
log_min_messages = debug1
session_preload_libraries = 'auto_explain'
auto_explain.log_min_duration = 0
auto_explain.log_analyze = on
auto_explain.log_verbose = on
auto_explain.log_nested_statements = on
EOC
$node->start;

# The README's install: a database owned by the app role, the extension
# created by a superuser.
$node->safe_psql('postgres', q{CREATE ROLE app LOGIN; CREATE ROLE monitor LOGIN;
	CREATE DATABASE inbox OWNER app;});
$node->safe_psql('inbox', 'CREATE EXTENSION ig_identity');
is($node->safe_psql('inbox', q{SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',')
	FROM pg_class WHERE relname IN ('instagram_user_cache', 'instagram_conversations', 'instagram_messages')}),
	'app', 'the inbox tables CREATE EXTENSION created belong to the database owner');

sub psql_as
{
	my ($db, $role, $sql) = @_;
	my ($ret, $out, $err) = $node->psql($db, $sql,
		connstr => $node->connstr($db) . " user=$role",
		extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
	return ($ret, $out, $err);
}

# ------------------------------------------------ every sql block of the README
open(my $fh, '<', $readme_path) or die "cannot read $readme_path: $!";
my $readme = do { local $/; <$fh> };
close($fh);
my @blocks = $readme =~ /^```sql\n(.*?)^```$/msg;
cmp_ok(scalar(@blocks), '>=', 8, 'README.md has its sql blocks (' . scalar(@blocks) . ')');
my $i = 0;
for my $block (@blocks)
{
	$i++;
	my ($first) = $block =~ /--\s*(.*)$/m;    # its first comment says who runs it
	my $role = (defined $first && $first =~ /superuser/) ? 'postgres' : 'app';
	my $sql = $block;
	# the README's placeholder for a token, sent as COPY data
	$sql =~ s/^EAAG-your-page-access-token$/$TOKEN/m;
	my ($ret, $out, $err) = psql_as('inbox', $role, $sql);
	my ($title) = $block =~ /\A\s*(?:--[^\n]*\n)*\s*([^\n]{0,60})/;
	is($ret, 0, "README sql block $i runs as $role ($title)")
	  or diag("block:\n$block\nstderr:\n$err");
	unlike($err, qr/ERROR/, "README sql block $i: no error");
}

# ---------------------------------------------- the app role, the monitor role
is($node->safe_psql('inbox', q{SELECT status FROM ig_identity.accounts WHERE ig_account_id = '17841400000000001'}),
	'active', 'the account connected by the staged block is active');
# (That the stored token is the staged one shows below: the mock answers
# ig_resolve_profile only with account A's token.  Comparing it in SQL would
# put it in this log.)

my @app_calls = (
	q{SELECT count(*) >= 0 FROM ig_refresh_identities('loc_123')},
	q{SELECT (ig_resolve_profile('17841400000000001', '1000000000000101')).display_name IS NOT NULL},
	q{SELECT (ig_sync_inbox('loc_123')).conversations >= 0},
	q{SELECT (ig_ingest_webhook('{"object": "instagram", "entry": []}')).messages_stored = 0},
	q{SELECT ig_upsert_participant_identity('17841400000000001', '17841400000000001', '{"id": "1000000000000102", "username": "john"}')},
	q{SELECT ig_display_name('17841400000000001', '1000000000000102') = 'john'},
	q{SELECT total_rows > 0 FROM ig_identity_check()},
	q{SELECT ig_verify_webhook_signature('x'::bytea, 'sha256=00', 'x') = false},
	q{SELECT count(*) = 1 FROM ig_identity_status},
	q{SELECT count(*) >= 0 FROM ig_identity_quarantine},
	q{SELECT ig_identity_wakeup() IS NOT NULL},
	q{SELECT count(*) = 0 FROM instagram_user_cache WHERE ig_account_id IS NULL},
	q{SELECT ig_disconnect_account('17841400000000009') = false});
for my $q (@app_calls)
{
	my ($ret, $out, $err) = psql_as('inbox', 'app', $q);
	is("$ret:$out", '0:t', "as app: $q") or diag($err);
}

for my $q (q{SELECT count(*) = 1 AND bool_and(worker_cycles IS NOT NULL) FROM ig_identity_status},
	q{SELECT quarantined_rows >= 0 FROM ig_identity_check()},
	q{SELECT count(*) >= 0 FROM ig_identity_quarantine})
{
	my ($ret, $out, $err) = psql_as('inbox', 'monitor', $q);
	is("$ret:$out", '0:t', "as monitor: $q") or diag($err);
}
is($node->safe_psql('inbox', q{SELECT pg_has_role('monitor', 'pg_monitor', 'USAGE')}), 'f',
	'the monitor is no pg_monitor member');
for my $q (q{SELECT * FROM ig_identity.account_tokens}, q{SELECT * FROM ig_identity.accounts},
	q{SELECT ig_refresh_identities('loc_123')})
{
	my ($ret, $out, $err) = psql_as('inbox', 'monitor', $q);
	like($err, qr/permission denied/, "as monitor, refused: $q");
}

# ----------------------------------------- a failing account, as the monitor sees it
# Meta answers 500 to every call of account A: the worker's refresh of a new
# participant fails, and the account's error shows in the status view (for
# the monitor) and once in the server log, however often it repeats.
mock_admin($mock, 'POST', '/_admin/faults', { match => { account => ACCOUNT_A }, fault => { type => 'http_status', status => 500 } });
sub webhook_from
{
	my ($user, $mid) = @_;
	my ($ret, $out, $err) = psql_as('inbox', 'app', qq{SELECT participants_queued FROM ig_ingest_webhook('{"object": "instagram", "entry": [{"id": "17841400000000001", "time": 1, "messaging": [{"sender": {"id": "$user"}, "recipient": {"id": "17841400000000001"}, "timestamp": 1752834910447, "message": {"mid": "$mid", "text": "hi"}}]}]}')});
	return "$ret:$out";
}
is(webhook_from('1000000000000161', 'mid.020.fail.1'), '0:1', 'a webhook queues a new participant');
ok(wait_until(sub {
	my ($ret, $out) = psql_as('inbox', 'monitor', q{SELECT last_error IS NOT NULL FROM ig_identity_status});
	return $out eq 't';
}, 60), 'the monitor sees the account failure in ig_identity_status.last_error');
my ($r1, $err_text) = psql_as('inbox', 'monitor', q{SELECT last_error FROM ig_identity_status});
note("last_error: $err_text");
is(webhook_from('1000000000000162', 'mid.020.fail.2'), '0:1', 'a second webhook queues another participant');
ok(wait_until(sub {
	$node->safe_psql('inbox', q{SELECT count(*) FROM ig_identity.refresh_queue WHERE ig_user_id = '1000000000000162' AND attempts > 0}) ne '0';
}, 60), 'the worker tried the second participant too');
is(count_matches(slurp_file($node->logfile), qr/ig_identity: account 17841400000000001 \(location loc_123\) failed: /), 1,
	'the account failure is logged once, not once per failed refresh');
mock_admin($mock, 'DELETE', '/_admin/faults');

# ------------------------------------------------------------------- the log
my $log = slurp_file($node->logfile);
like($log, qr/statement: COPY ig_identity_token_stage FROM STDIN/, 'log_statement logged the COPY statement');
like($log, qr/duration: [0-9.]+ ms/, 'log_min_duration_statement logged durations');
like($log, qr/Query Text: .*ig_identity\.connect_account/s, 'auto_explain logged the nested statements');
like($log, qr/ig_connect_account_staged/, 'the staged call is in the log');
is(count_matches($log, $TOKEN), 0, 'the token connected through COPY is in no line of the server log');

# ------------------------------------------------------------------ dumps
my $dir = PostgreSQL::Test::Utils::tempdir;

# pg_restore of $file into $db as $role, without pg_cron (it may only live in
# cron.database_name, here the source database).
sub restore_ok
{
	my ($file, $db, $role, $label, $skip, $keep, @opts) = @_;
	$skip ||= qr/pg_cron|\bcron\b/;
	my ($stdout, $stderr);
	IPC::Run::run([ 'pg_restore', '-l', $file ], '>', \$stdout);
	my $list = join('', grep { !/$skip/ && (!$keep || /$keep/) } split(/^/, $stdout));
	PostgreSQL::Test::Utils::append_to_file("$dir/$db.$role.list", $list);
	$node->command_ok([ 'pg_restore', '--exit-on-error', @opts, '-L', "$dir/$db.$role.list", '-d',
		$node->connstr($db) . " user=$role", $file ], $label);
}

# A superuser's dump holds everything, the tokens as ciphertext.
my $cache_before = $node->safe_psql('inbox', 'SELECT count(*) FROM instagram_user_cache');
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('inbox') . ' user=postgres', '-f', "$dir/super.dump" ],
	'pg_dump as a superuser');
$node->command_ok([ 'pg_dump', '-d', $node->connstr('inbox') . ' user=postgres', '-f', "$dir/super.sql" ],
	'pg_dump as a superuser, plain');
is(count_matches(slurp_file("$dir/super.sql"), $TOKEN), 0, 'the superuser dump holds no token in clear');
like(slurp_file("$dir/super.sql"), qr/COPY ig_identity\.account_tokens/, 'the superuser dump holds the token rows (sealed)');
$node->safe_psql('postgres', 'CREATE DATABASE restored_super OWNER app');
restore_ok("$dir/super.dump", 'restored_super', 'postgres', 'the superuser dump restores');
my $figures = q{SELECT (SELECT count(*) FROM ig_identity.accounts) || ','
	|| (SELECT count(*) FROM ig_identity.account_tokens)};
is($node->safe_psql('restored_super', $figures), $node->safe_psql('inbox', $figures),
	'the superuser restore holds the accounts and their tokens');
# (the worker may have cached more since the dump: at least what was there before it)
cmp_ok($node->safe_psql('restored_super', 'SELECT count(*) FROM instagram_user_cache'), '>=', $cache_before,
	'the superuser restore holds the cache');

# The app role cannot read schema ig_identity: a plain dump fails; it dumps
# without that schema's rows (the README's options), and a superuser creates
# the extension in restore mode in the new database before the app restores.
my ($stdout, $stderr);
IPC::Run::run([ 'pg_dump', '-d', $node->connstr('inbox') . ' user=app', '-f', "$dir/app_plain.sql" ],
	'>', \$stdout, '2>', \$stderr);
like($stderr, qr/permission denied/, 'a plain pg_dump as the app role fails (schema ig_identity is not its to read)');
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('inbox') . ' user=app',
	'--exclude-table-data=ig_identity.*', '--exclude-table-data=cron.*', '-f', "$dir/app.dump" ],
	'pg_dump as the app role with --exclude-table-data for ig_identity and cron');
$node->safe_psql('postgres', 'CREATE DATABASE restored_app OWNER app');
$node->safe_psql('restored_app', 'SET row_security = off; CREATE EXTENSION ig_identity;');
# the README's list: every EXTENSION entry out (the superuser made ig_identity)
# the README's list: every EXTENSION entry out (the superuser made ig_identity),
# no grants (the app may not give EXECUTE on the extension's functions); then
# the superuser restores the dump's grants alone.
restore_ok("$dir/app.dump", 'restored_app', 'app', 'the app role restores its dump', qr/EXTENSION|\bcron\b/,
	undef, '--no-acl');
restore_ok("$dir/app.dump", 'restored_app', 'postgres', 'a superuser restores the grants of the app dump',
	qr/EXTENSION|\bcron\b/, qr/ ACL /);
my ($ret, $out, $err) = psql_as('restored_app', 'monitor', 'SELECT count(*) >= 0 FROM ig_identity_status');
is("$ret:$out", '0:t', 'the restored grants let the monitor read the status view') or diag($err);
cmp_ok($node->safe_psql('restored_app', q{SELECT count(*) FROM instagram_user_cache}), '>=', $cache_before,
	'the app restore holds the cache');
is($node->safe_psql('restored_app', q{SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',')
	FROM pg_class WHERE relname IN ('instagram_user_cache', 'instagram_conversations', 'instagram_messages')}),
	'app', 'the restored inbox tables belong to the app role');

# At the end: nothing above logged the token either.
is(count_matches(slurp_file($node->logfile), $TOKEN), 0, 'the token is in no line of the server log, at the end');

$node->stop;
done_testing();
