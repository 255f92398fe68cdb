# 037_review_app_secret_unknown_key.pl — review 16: after a restore onto a
# server with another key (or a key file replaced without
# previous_key_file), the error says "connect the account again with
# ig_connect_account"; but for an account with an app secret the
# five-argument form keeps the stored secret and opens it, so it fails the
# same way again. Only the six-argument form, passing the secret again,
# recovers the account: the hint must say so.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $ID = '17841400000000034';
my $node = new_worker_node('askey', conf => "ig_identity.enabled = off\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
$node->safe_psql('postgres',
	"SELECT ig_connect_account('loc_033', '$ID', '$ID', 'tok-033-first-1Az9', 'graph.instagram.com', 'tok-033-secret-7Kd3')");
my $other = write_key_file($node->basedir . '/other.key');
$node->append_conf('postgresql.conf', "ig_identity.key_file = '$other'\n");
$node->reload;
sleep 1;

my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT ig_connect_account('loc_033', '$ID', '$ID', 'tok-033-second-5Gh2', 'graph.instagram.com')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
isnt($ret, 0, 'the five-argument reconnect fails: the stored app secret does not open');
like($err, qr/app secret of "$ID" is encrypted with key/, 'the error names the app secret');
like($err, qr/HINT:.*six-argument form, passing the app secret again/, 'the hint names the form that recovers it');

($ret, $out, $err) = $node->psql('postgres',
	"SELECT ig_connect_account('loc_033', '$ID', '$ID', 'tok-033-second-5Gh2', 'graph.instagram.com', 'tok-033-secret-7Kd3')");
is($ret, 0, 'the six-argument reconnect recovers the account') or diag($err);

$node->stop;
done_testing();
