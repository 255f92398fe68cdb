# 014_upgrade.pl — ALTER EXTENSION ig_identity UPDATE on a database in use.
#
# A cluster runs the newest library. One database is at 1.0, as users have it:
# the worker serves it (and says once that it is at the old version), then it
# is filled (inbox rows, an account with its token, queue rows with leases,
# runs, quarantine) and updated. After the update:
#   - its catalog equals a fresh install's, as catalog query output
#     (test/upgrade/catalog_snapshot.sql), GUC reservations included;
#   - every row of every table is still there, column for column (the
#     tokens sealed in place, each opening to what it was);
#   - the stored token still works (a SQL refresh against the mock), the
#     worker runs cycles and refreshes;
#   - pg_dump/restore and DROP EXTENSION keep their guarantees.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);

my $src = $ENV{IGID_SRC} or die "IGID_SRC is not set";
my $snapshot_sql = "$src/test/upgrade/catalog_snapshot.sql";
my $newest = slurp_file("$src/ig_identity.control") =~ /default_version\s*=\s*'([^']+)'/
  ? $1 : die "no default_version in ig_identity.control";

my $mock = start_mock();
my $node = new_worker_node('upgrade', mock => $mock,
	conf => "ig_identity.refresh_interval = '1h'\n");
$node->start;

my $A = ACCOUNT_A;

# --- the newest library serves a database still at 1.0 ----------------------
$node->safe_psql('postgres', "CREATE EXTENSION ig_identity VERSION '1.0'");
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'ig_identity'"),
	'1.0', 'the database is at 1.0');
$node->safe_psql('postgres', qq{
	SELECT ig_connect_account('loc_a', '$A', '$A', '@{[TOKEN_A]}', 'graph.facebook.com');
	INSERT INTO instagram_conversations (id, ig_account_id, location_id, participant_igsid, updated_time)
	VALUES ('c.up.1', '$A', 'loc_a', '@{[USER_JANE]}', now()),
	       ('c.up.2', '$A', 'loc_a', '@{[USER_JOHN]}', now());
	INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason)
	VALUES ('$A', '@{[USER_JANE]}', 'new');});
$node->safe_psql('postgres', 'SELECT ig_identity_wakeup()');
ok(wait_until(sub {
	$node->safe_psql('postgres',
		"SELECT count(*) FROM instagram_user_cache WHERE ig_user_id = '@{[USER_JANE]}' AND username = 'jane.doe'") eq '1' },
	60), 'the worker refreshes an identity in a 1.0 database');
my $old_version = qr/database "postgres" has ig_identity version 1\.0; this library is $newest/;
ok($node->wait_for_log($old_version, 0), 'the worker says the database is at the old version');
$node->safe_psql('postgres', 'SELECT ig_identity_wakeup()');
ok(wait_until(sub { worker_state($node)->{cycles} >= 3 }, 30), 'and keeps cycling');
is(count_matches(log_since($node, 0), $old_version), 1, 'it says so once, not every cycle');
my $cycles_before = worker_state($node)->{cycles};
sleep(2);
cmp_ok(worker_state($node)->{cycles} - $cycles_before, '<=', 3,
	'with its sweep skipped it still sleeps between cycles (refresh_interval = 1h)');
unlike(log_since($node, 0), qr/ig_identity worker WARNING/,
	'and its cycles fail on nothing 1.0 lacks (no stale sweep until the update)');

# A SQL function of the new library that needs 1.1's SQL says so clearly.
my ($rc10, $out10, $err10) = $node->psql('postgres', "SELECT * FROM ig_refresh_identities('loc_a')");
like($err10, qr/ERROR:  function ig_identity\.\w+\(.*\) does not exist in this database.*DETAIL:  This library is ig_identity $newest; the extension in this database is older\..*HINT:  Run ALTER EXTENSION ig_identity UPDATE in this database\./s,
	'at 1.0 a SQL refresh that needs 1.1 SQL fails with a clear error and a hint to update');

# --- fill every table as 1.0 knows it ----------------------------------------
# The worker is switched off so that the rows stay as written until compared.
$node->append_conf('postgresql.conf', "ig_identity.enabled = off\n");
$node->reload;
ok($node->wait_for_log(qr/ig_identity worker is waiting: ig_identity\.enabled is off/, 0),
	'the worker stands by');
$node->safe_psql('postgres', qq{
	SELECT ig_connect_account('loc_b', '17841400000000002', '17841400000000002',
	                          'mock-token-B-0123456789', 'graph.instagram.com');
	INSERT INTO instagram_messages (id, conversation_id, ig_account_id, from_id, to_id, message, created_at)
	VALUES ('m.up.1', 'c.up.1', '$A', '@{[USER_JANE]}', '$A', 'hello', now()),
	       ('m.up.2', 'c.up.2', '$A', '@{[USER_JOHN]}', '$A', 'hi', now());
	INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason, attempts, leased_until, leased_by)
	VALUES ('$A', '@{[USER_JOHN]}', 'webhook', 2, now() + interval '1 hour', 4242),
	       ('$A', '@{[USER_STORE]}', 'stale', 0, NULL, NULL),
	       ('17841400000000002', '@{[USER_JANE]}', 'retry', 1, now() + interval '5 minutes', 4243);
	INSERT INTO ig_identity.refresh_runs (source, location_id, started_at, finished_at, refreshed, failed, total, errors)
	VALUES ('sql', 'loc_a', now() - interval '1 minute', now(), 1, 1, 2, '[{"code": 230}]');
	INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
	VALUES ('instagram_user_cache', 'no account could be recovered', '{"ig_user_id": "99", "username": null}');
	UPDATE ig_identity.accounts SET last_error = 'an old error', last_error_code = 4,
	       paused_until = now() - interval '1 day' WHERE ig_account_id = '17841400000000002';});

# Every table's rows, column by column, over the columns 1.0 has.
my @tables = split /\n/, $node->safe_psql('postgres', q{
	SELECT c.oid::regclass::text FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
	 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ig_identity')
	   AND d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relkind = 'r'
	UNION SELECT 'public.' || t FROM unnest(ARRAY['instagram_user_cache',
	       'instagram_conversations', 'instagram_messages']) t
	ORDER BY 1});
cmp_ok(scalar(@tables), '>=', 8, 'the private and inbox tables are found: ' . join(', ', @tables));
my %rows_sql;
for my $t (@tables)
{
	my $cols = $node->safe_psql('postgres', qq{
		SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
		 WHERE attrelid = '$t'::regclass AND attnum > 0 AND NOT attisdropped
		   -- the update seals the tokens: compared on their own below
		   AND NOT ('$t' = 'ig_identity.account_tokens' AND attname = 'access_token')});
	$rows_sql{$t} = "SELECT count(*) || ' ' || coalesce(md5(string_agg(r::text, E'\\n' ORDER BY r::text)), '-')"
	  . " FROM (SELECT $cols FROM $t) r";
}
my %before = map { $_ => $node->safe_psql('postgres', $rows_sql{$_}) } @tables;
my %tokens_before = map { split /\|/ } split /\n/,
  $node->safe_psql('postgres', 'SELECT ig_account_id, access_token FROM ig_identity.account_tokens');
cmp_ok(scalar(keys %tokens_before), '>=', 2, 'tokens stored in clear before the update (1.0)');
for my $t (@tables)
{
	unlike($before{$t}, qr/^0 /, "$t has rows before the update");
}

# --- the update ---------------------------------------------------------------
$node->safe_psql('postgres', 'ALTER EXTENSION ig_identity UPDATE');
is($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'ig_identity'"),
	$newest, "ALTER EXTENSION ig_identity UPDATE reaches $newest");
for my $t (@tables)
{
	is($node->safe_psql('postgres', $rows_sql{$t}), $before{$t}, "$t: every row kept, column for column");
}
# The update sealed every token in place (a key is configured): ciphertext
# only, each opening to the token it was.
for my $id (sort keys %tokens_before)
{
	my $hex = unpack('H*', $tokens_before{$id});
	is($node->safe_psql('postgres', qq{
		SELECT get_byte(access_token, 0) || ' ' || position(decode('$hex', 'hex') IN access_token) || ' '
		       || ig_identity.secret_matches('access_token', ig_account_id, access_token,
		                                     convert_from(decode('$hex', 'hex'), 'UTF8'))
		  FROM ig_identity.account_tokens WHERE ig_account_id = '$id'}),
		'1 0 true', "the token of $id is sealed by the update and opens to what it was");
}

# --- the same catalog as a fresh install -------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION ig_identity');
sub snapshot
{
	my ($db) = @_;
	my ($rc, $out, $err) = $node->psql($db, undef,
		extra_params => [ '-X', '-v', 'ON_ERROR_STOP=1', '-f', $snapshot_sql ]);
	die "catalog snapshot of $db failed: $err" if $rc;
	return $out;
}
my ($updated, $fresh) = (snapshot('postgres'), snapshot('fresh'));
cmp_ok(length($fresh), '>', 1000, 'the catalog snapshot is not empty');
if ($updated eq $fresh)
{
	pass('the updated catalog equals a fresh install: objects, definitions, owners, ACLs, config dumps');
}
else
{
	my %f = map { $_ => 1 } split /\n/, $fresh;
	my %u = map { $_ => 1 } split /\n/, $updated;
	diag("only in the fresh install: $_") for grep { !$u{$_} } sort keys %f;
	diag("only in the updated database: $_") for grep { !$f{$_} } sort keys %u;
	fail('the updated catalog equals a fresh install: objects, definitions, owners, ACLs, config dumps');
}
my $gucs = q{SELECT string_agg(name || '=' || coalesce(boot_val, ''), ',' ORDER BY name)
	FROM pg_settings WHERE name LIKE 'ig\_identity.%'};
is($node->safe_psql('postgres', $gucs), $node->safe_psql('fresh', $gucs), 'the same settings are reserved');
my ($rc, $out, $err) = $node->psql('postgres', "SET ig_identity.no_such_setting = 1");
like($err, qr/invalid configuration parameter name "ig_identity\.no_such_setting"/,
	'the ig_identity prefix is still reserved');

# --- the tokens still work, and the worker runs ------------------------------
mock_admin($mock, 'POST', '/_admin/reset', {});
like($node->safe_psql('postgres', "SELECT refreshed || '/' || failed || '/' || total FROM ig_refresh_identities('loc_a')"),
	qr{^([1-9]\d*)/0/\1$}, 'a refresh after the update uses the stored token, with no failure');
cmp_ok(mock_admin($mock, 'GET', '/_admin/stats')->{unauthorized}, '==', 0, 'and the mock saw no bad token');

$node->safe_psql('postgres', 'UPDATE ig_identity.refresh_queue SET leased_until = NULL, leased_by = NULL, not_before = now()');
$node->adjust_conf('postgresql.conf', 'ig_identity.enabled', 'on');
$node->reload;
ok(wait_until(sub {
	$node->safe_psql('postgres', 'SELECT count(*) FROM ig_identity.refresh_queue') eq '0' }, 60),
	'the worker drains the queue rows kept from 1.0');
ok($node->safe_psql('postgres', "SELECT username FROM instagram_user_cache WHERE ig_account_id = '$A' AND ig_user_id = '@{[USER_STORE]}'")
	  eq 'stories.in.store', 'and stores what it fetched');
my $off = -s $node->logfile;
$node->restart;
ok(wait_until(sub { worker_pid($node) ne '' }, 30), 'the worker starts after a restart');
$node->safe_psql('postgres', 'SELECT ig_identity_wakeup()');
ok(wait_until(sub { worker_state($node)->{cycles} >= 1 }, 30), 'and cycles');
unlike(log_since($node, $off), $old_version, 'and no longer reports an old version');

# --- dump/restore and DROP EXTENSION after an update -------------------------
my $dump = $node->basedir . '/upgraded.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('postgres'), '-f', $dump ],
	'pg_dump of the updated database');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dump ],
	'pg_restore into an empty database');
for my $t ('public.instagram_user_cache', 'ig_identity.accounts', 'ig_identity.quarantine')
{
	is($node->safe_psql('restored', "SELECT count(*) FROM $t"),
		$node->safe_psql('postgres', "SELECT count(*) FROM $t"), "restored $t has every row");
}
is($node->safe_psql('restored', "SELECT extversion FROM pg_extension WHERE extname = 'ig_identity'"),
	$newest, 'the restored database is at the newest version');
my $cache = $node->safe_psql('postgres', 'SELECT count(*) FROM instagram_user_cache');
$node->safe_psql('postgres', 'DROP EXTENSION ig_identity');
is($node->safe_psql('postgres', 'SELECT count(*) FROM instagram_user_cache'), $cache,
	'DROP EXTENSION after an update keeps the inbox rows');

$node->stop;
done_testing();
