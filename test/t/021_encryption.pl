# 021_encryption.pl — access tokens encrypted at rest.
#
#   1. A superuser's pg_dump (plain, and --data-only) holds no token in
#      clear: only the sealed bytes of ig_identity.account_tokens.  The
#      dumps are kept under tmp_check, where the secrets suite scans them.
#   2. Restored onto a cluster without the key: ig_connect_account refuses
#      (55000, the hint names ig_identity.key_file); each use of the restored
#      token fails with an error naming the key id; the worker logs one
#      WARNING and leaves the account's rows waiting; the row is kept, byte
#      for byte, and works once the key file is given.
#   3. Rotation: with previous_key_file = the old key, the token still opens;
#      ig_identity_rotate_key() re-seals it under the new key (count 1, then
#      0); the old key can go.  Without the old key the token does not open
#      and the rotation refuses, changing nothing.
#   4. A key file readable by group or others is refused, with a clear
#      error; 32 raw bytes are a key as well as 64 hex digits; the three
#      settings are hidden from, and cannot be set by, a plain role.
#   5. A sealed value copied into another account's row does not open there.
#   6. allow_unencrypted_tokens: without a key, tokens are stored unsealed
#      (marked as such) and readable; once a key is set, the rotation seals
#      them.  The 1.0 -> 1.1 update refuses without a key when there are
#      tokens (nothing lost), and seals them once a key is configured.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use File::Copy;
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $A = ACCOUNT_A;
my $TOKEN_A = TOKEN_A;
my $B = '17841400000000021';
my $TOKEN_B = 'tok-021-enc-B-5Rk8';
my $TOKEN_OLD = 'tok-021-upgrade-Q7vX';

my $mock = start_mock();
my $dumps = "$PostgreSQL::Test::Utils::tmp_check/021_dumps";
make_path($dumps);

my $node = new_worker_node('enc', mock => $mock, conf => "ig_identity.enabled = off\n");
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub key_id_of { return $_[0]->safe_psql('postgres', qq{
	SELECT encode(substr(access_token, 2, 8), 'hex') FROM ig_identity.account_tokens WHERE ig_account_id = '$_[1]'}); }
sub set_conf
{
	my ($n, $conf) = @_;
	$n->append_conf('postgresql.conf', $conf);
	$n->reload;
	# the reload reaches the backends before their next statement
	sleep 1;
}

sql('CREATE EXTENSION ig_identity');
connect_account($node);
sql("SELECT ig_connect_account('loc_b', '$B', '$B', '$TOKEN_B')");
sql("INSERT INTO ig_identity.refresh_queue (ig_account_id, ig_user_id, reason) VALUES ('$A', '@{[USER_STORE]}', 'manual')");
is(sql("SELECT username FROM ig_resolve_profile('$A', '@{[USER_JANE]}')"), 'jane.doe',
	'a stored (sealed) token works against the mock')
  or diag(mock_admin($mock, 'GET', '/_admin/stats'));
my $key_a = $node->basedir . '/ig_identity.key';
my $id_a = key_id_of($node, $A);
like($id_a, qr/^[0-9a-f]{16}$/, "the token is sealed under key $id_a");

# ---------------------------------------------------------------- 1. dumps
my ($dump, $err) = run_command([ 'pg_dump', '--dbname', $node->connstr('postgres') ]);
like($dump, qr/^COPY ig_identity\.account_tokens /m, 'the superuser dump holds the tokens table') or diag($err);
my ($data_dump) = run_command([ 'pg_dump', '--data-only', '--dbname', $node->connstr('postgres') ]);
for my $t ($TOKEN_A, $TOKEN_B)
{
	is(index($dump, $t), -1, 'the dump holds no token in clear');
	is(index($data_dump, $t), -1, 'the --data-only dump holds no token in clear');
}
open(my $fh, '>', "$dumps/enc_full.sql") or die;
print $fh $dump;
close $fh;
open($fh, '>', "$dumps/enc_data_only.sql") or die;
print $fh $data_dump;
close $fh;
my $sealed_hex = sql("SELECT encode(access_token, 'hex') FROM ig_identity.account_tokens WHERE ig_account_id = '$A'");

# ---------------------------------------------------------------- 2. restore without the key
my $nokey = new_worker_node('enc_nokey', mock => $mock, no_key => 1);
$nokey->start;
my ($ret, $out);
($ret, $out, $err) = $nokey->psql('postgres', 'SET client_min_messages = warning', extra_params => [ '-f', "$dumps/enc_full.sql" ]);
is($ret, 0, 'the dump restores onto a cluster without the key') or diag($err);
unlike($err, qr/ERROR/, '... without an error') or diag($err);
is($nokey->safe_psql('postgres', "SELECT encode(access_token, 'hex') FROM ig_identity.account_tokens WHERE ig_account_id = '$A'"),
	$sealed_hex, 'the restored row holds the sealed token, byte for byte');
($ret, $out, $err) = $nokey->psql('postgres', "SELECT * FROM ig_resolve_profile('$A', '@{[USER_JOHN]}')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  55000: the stored access token of "$A" is encrypted with key $id_a, which this server does not have/,
	'a use fails with an error naming the key id');
like($err, qr/HINT:  Point ig_identity\.key_file \(or ig_identity\.previous_key_file\) at the file of key $id_a/,
	'... and a hint naming the settings');
($ret, $out, $err) = $nokey->psql('postgres', "SELECT ig_connect_account('loc_c', '17841400000000022', '17841400000000022', '$TOKEN_B')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  55000: no encryption key is configured for ig_identity.*HINT:  .*ig_identity\.key_file/s,
	'ig_connect_account refuses without a key (55000, hint naming ig_identity.key_file)');
is($nokey->safe_psql('postgres', "SELECT count(*) FROM ig_identity.accounts WHERE ig_account_id = '17841400000000022'"),
	'0', '... and stores nothing');
# The worker (enabled, serving postgres) meets the restored queue row.
$nokey->safe_psql('postgres', 'SELECT ig_identity_wakeup()');
ok($nokey->wait_for_log(qr/WARNING:  the stored access token of "$A" is encrypted with key $id_a, which this server does not have/, 0),
	'the worker logs a WARNING naming the key id');
sleep 2;
is(count_matches(slurp_file($nokey->logfile),
		qr/worker WARNING:  the stored access token of "$A" is encrypted with key $id_a/), 1,
	'... once, not once per cycle');
is($nokey->safe_psql('postgres', "SELECT count(*) FROM ig_identity.account_tokens WHERE ig_account_id = '$A'"),
	'1', 'the token row is kept');
# The key given: the restored token works.
copy($key_a, $nokey->basedir . '/ig_identity.key') or die;
chmod 0600, $nokey->basedir . '/ig_identity.key';
set_conf($nokey, "ig_identity.key_file = '" . $nokey->basedir . "/ig_identity.key'\n");
is($nokey->safe_psql('postgres', "SELECT username FROM ig_resolve_profile('$A', '@{[USER_JOHN]}')"), 'john.smith',
	'with the key file, the restored token works');
$nokey->stop;

# ---------------------------------------------------------------- 3. rotation
# account B's app secret, sealed like a token (set here directly: the
# mock's account B has no app secret, and no call for B follows)
sql("UPDATE ig_identity.account_tokens
        SET app_secret = ig_identity.seal_secret('tok-021-app-secret-Zq4m', 'app_secret:' || ig_account_id)
      WHERE ig_account_id = '$B'");
my $key_new = write_key_file($node->basedir . '/ig_identity_new.key');
set_conf($node, "ig_identity.key_file = '$key_new'\nig_identity.previous_key_file = '$key_a'\n");
is(sql("SELECT ig_identity.secret_matches('access_token', ig_account_id, access_token, '$TOKEN_A')
          FROM ig_identity.account_tokens WHERE ig_account_id = '$A'"), 't',
	'with previous_key_file, a token sealed with the old key opens');
is(sql('SELECT ig_identity_rotate_key()'), '3', 'ig_identity_rotate_key() re-seals both tokens and the app secret');
is(sql("SELECT encode(substr(app_secret, 2, 8), 'hex') FROM ig_identity.account_tokens WHERE ig_account_id = '$B'"),
	key_id_of($node, $A), '... the app secret under the new key as well');
is(sql("SELECT ig_identity.secret_matches('app_secret', ig_account_id, app_secret, 'tok-021-app-secret-Zq4m')
          FROM ig_identity.account_tokens WHERE ig_account_id = '$B'"), 't', '... and it opens to the secret');
my $id_new = key_id_of($node, $A);
isnt($id_new, $id_a, "they are under the new key $id_new");
is(key_id_of($node, $B), $id_new, '... both of them');
is(sql('SELECT ig_identity_rotate_key()'), '0', 'a second rotation has nothing to do');
set_conf($node, "ig_identity.previous_key_file = ''\n");
is(sql("SELECT username FROM ig_resolve_profile('$A', '@{[USER_JOHN]}')"), 'john.smith',
	'the old key gone, the token still works');
# Without the old key: nothing opens, the rotation refuses and changes nothing.
my $key_other = write_key_file($node->basedir . '/ig_identity_other.key');
set_conf($node, "ig_identity.key_file = '$key_other'\n");
($ret, $out, $err) = $node->psql('postgres', 'SELECT ig_identity_rotate_key()');
like($err, qr/is encrypted with key $id_new, which this server does not have/,
	'the rotation refuses a token whose key is missing');
is(key_id_of($node, $A), $id_new, '... and leaves it as it was');
set_conf($node, "ig_identity.key_file = '$key_new'\n");

# ---------------------------------------------------------------- 4. key file permissions and forms
chmod 0640, $key_new;
($ret, $out, $err) = $node->psql('postgres', "SELECT * FROM ig_resolve_profile('$A', '@{[USER_JANE]}')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  F0000: the key file that ig_identity\.key_file names is accessible to other users.*HINT:  chmod 600/s,
	'a key file readable by the group is refused');
unlike($err, qr/\Q$key_new\E/, '... without showing its path');
chmod 0600, $key_new;
my $raw_key = $node->basedir . '/ig_identity_raw.key';
{
	open(my $h, '<', $key_new) or die;
	my $hex = <$h>;
	close $h;
	my $old = umask(077);
	open(my $w, '>:raw', $raw_key) or die;
	print $w pack('H*', $hex);
	close $w;
	umask($old);
}
set_conf($node, "ig_identity.key_file = '$raw_key'\n");
is(sql("SELECT ig_identity.secret_matches('access_token', ig_account_id, access_token, '$TOKEN_A')
          FROM ig_identity.account_tokens WHERE ig_account_id = '$A'"), 't',
	'the same key as 32 raw bytes opens the token');
set_conf($node, "ig_identity.key_file = '$key_new'\n");

# The settings are the superuser's: another role neither reads nor sets them.
sql('CREATE ROLE enc_app LOGIN');
for my $g ('ig_identity.key_file', 'ig_identity.previous_key_file', 'ig_identity.allow_unencrypted_tokens')
{
	($ret, $out, $err) = $node->psql('postgres', "SHOW $g", extra_params => [ '-U', 'enc_app' ]);
	like($err, qr/must be superuser or have privileges of pg_read_all_settings/, "a plain role cannot SHOW $g");
	($ret, $out, $err) = $node->psql('postgres', "SET $g = ''", extra_params => [ '-U', 'enc_app' ]);
	like($err, qr/cannot be changed now/, "... nor SET it");
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_settings WHERE name = '$g'", extra_params => [ '-U', 'enc_app' ]),
		'0', '... nor see it in pg_settings');
}

# ---------------------------------------------------------------- 5. a value copied to another row
sql("UPDATE ig_identity.account_tokens SET access_token = (SELECT access_token FROM ig_identity.account_tokens
       WHERE ig_account_id = '$A') WHERE ig_account_id = '$B'");
($ret, $out, $err) = $node->psql('postgres', "SELECT * FROM ig_resolve_profile('$B', '@{[USER_JANE]}')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  XX001: the stored access token of "$B" does not decrypt with key $id_new/,
	"account A's sealed token copied into B's row does not open there");
unlike($err, qr/\Q$TOKEN_A\E/, '... and the error holds no token');
is(sql("SELECT ig_identity.secret_matches('access_token', ig_account_id, access_token, '$TOKEN_A')
          FROM ig_identity.account_tokens WHERE ig_account_id = '$A'"), 't', "A's own row still opens");

# ---------------------------------------------------------------- 6. unencrypted tokens, the update from 1.0
my $plain = new_worker_node('enc_plain', mock => $mock, no_key => 1,
	conf => "ig_identity.enabled = off\nig_identity.allow_unencrypted_tokens = on\n");
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
$plain->safe_psql('postgres', "SELECT ig_connect_account('loc_a', '$A', '$A', '$TOKEN_A')");
is($plain->safe_psql('postgres', 'SELECT get_byte(access_token, 0) FROM ig_identity.account_tokens'), '0',
	'allow_unencrypted_tokens without a key: stored unsealed, marked as such');
is($plain->safe_psql('postgres', "SELECT username FROM ig_resolve_profile('$A', '@{[USER_JANE]}')"), 'jane.doe',
	'... and readable');
# The update from 1.0 with a token and no key (and unencrypted tokens not
# allowed): refused, nothing lost.
set_conf($plain, "ig_identity.allow_unencrypted_tokens = off\n");
($ret, $out, $err) = $plain->psql('postgres', 'SELECT * FROM ig_resolve_profile(\'' . $A . '\', \'' . USER_JOHN . '\')');
like($err, qr/is not encrypted.*HINT:  Set ig_identity\.key_file and run SELECT ig_identity_rotate_key\(\)/s,
	'with allow_unencrypted_tokens off, an unsealed token is refused with a hint');
$plain->safe_psql('postgres', 'CREATE DATABASE old');
$plain->safe_psql('old', "CREATE EXTENSION ig_identity VERSION '1.0'");
$plain->safe_psql('old', "SELECT ig_connect_account('loc_a', '$A', '$A', '$TOKEN_OLD')");
($ret, $out, $err) = $plain->psql('old', 'ALTER EXTENSION ig_identity UPDATE', extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/ERROR:  55000: no encryption key is configured for ig_identity.*HINT:  .*ig_identity\.key_file/s,
	'the update from 1.0 refuses without a key');
is($plain->safe_psql('old', "SELECT extversion FROM pg_extension WHERE extname = 'ig_identity'"), '1.0', '... stays at 1.0');
is($plain->safe_psql('old', "SELECT access_token = '$TOKEN_OLD' FROM ig_identity.account_tokens"), 't',
	'... with its token as it was');
my $key_p = write_key_file($plain->basedir . '/ig_identity.key');
set_conf($plain, "ig_identity.key_file = '$key_p'\n");
$plain->safe_psql('old', 'ALTER EXTENSION ig_identity UPDATE');
is($plain->safe_psql('old', "SELECT get_byte(access_token, 0) || ' ' ||
		ig_identity.secret_matches('access_token', ig_account_id, access_token, '$TOKEN_OLD')
		FROM ig_identity.account_tokens"), '1 true', 'with a key, the update seals the token');
is($plain->safe_psql('postgres', 'SELECT ig_identity_rotate_key()'), '1', 'the rotation seals the unsealed token');
is($plain->safe_psql('postgres', "SELECT get_byte(access_token, 0) || ' ' ||
		ig_identity.secret_matches('access_token', ig_account_id, access_token, '$TOKEN_A')
		FROM ig_identity.account_tokens"), '1 true', '... which opens to what it was');
($dump) = run_command([ 'pg_dump', '--dbname', $plain->connstr('old') ]);
is(index($dump, $TOKEN_OLD), -1, 'the updated database dumps no token in clear');
open($fh, '>', "$dumps/plain_old_full.sql") or die;
print $fh $dump;
close $fh;
$plain->stop;

# ---------------------------------------------------------------- the logs
for my $n ($node, $plain)
{
	my $log = slurp_file($n->logfile);
	for my $t ($TOKEN_A, $TOKEN_B, $TOKEN_OLD)
	{
		# statements echoed by log_statement = all are the client's own text
		# (a record runs from one timestamp to the next)
		my @records = grep { index($_, $t) >= 0 && !/LOG:  statement: |STATEMENT:  / }
		  split /\n(?=\d{4}-\d\d-\d\d )/, $log;
		is(scalar(@records), 0, 'no server log record of its own holds a token');
	}
}

$node->stop;
stop_mock($mock);
done_testing();
