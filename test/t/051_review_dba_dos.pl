# 051_review_dba_dos.pl — review 16b: two lesser defects of issue 16's DBA
# part, asserted as the behaviour wanted (FAILS today; .off so the default
# test command stays green).
#   1. keep_quarantine (50_dba.sql:276-285) fires for every superuser
#      DROP EXTENSION: a role with CREATE on the extension's schema (here the
#      app, the database's owner) creates a TYPE named
#      ig_identity_quarantine_kept, and while the quarantine holds rows no
#      superuser can drop any extension of the database (pg_trgm here):
#      "type ig_identity_quarantine_kept already exists".
#   2. The other-schema refusal (50_dba.sql:214-233) counts tables of any
#      owner and its HINT names the alphabetically first schema: a role with
#      only CREATE on the database makes schema aaa with a table
#      aaa.instagram_user_cache, and a fresh CREATE EXTENSION refuses with
#      "HINT: ... CREATE EXTENSION ig_identity SCHEMA aaa", i.e. tells the
#      superuser to install the extension into a schema that role owns.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = new_worker_node('dos16b', conf => "ig_identity.database = 'inbox'\n");
$node->start;
$node->safe_psql('postgres', q{CREATE ROLE app LOGIN; CREATE ROLE eve LOGIN;
	CREATE DATABASE inbox OWNER app; CREATE DATABASE d4;});
sub psql_as
{
	my ($db, $role, $sql) = @_;
	return $node->psql($db, $sql, connstr => $node->connstr($db) . " user=$role");
}

$node->safe_psql('inbox', q{CREATE EXTENSION ig_identity;
	INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
	VALUES ('public.instagram_user_cache', 'review', '{}');});
my ($ret, $out, $err) = psql_as('inbox', 'app', q{CREATE TYPE public.ig_identity_quarantine_kept AS ENUM ('x')});
is($ret, 0, 'the app creates a type named ig_identity_quarantine_kept');
($ret, $out, $err) = psql_as('inbox', 'postgres', q{CREATE EXTENSION pg_trgm; DROP EXTENSION pg_trgm});
is($ret, 0, 'a superuser can still drop another extension') or diag($err);

$node->safe_psql('d4', 'GRANT CREATE ON DATABASE d4 TO eve');
($ret, $out, $err) = psql_as('d4', 'eve', q{CREATE SCHEMA aaa; CREATE TABLE aaa.instagram_user_cache (x int)});
is($ret, 0, 'eve makes her own schema with a table of that name');
($ret, $out, $err) = psql_as('d4', 'postgres', 'CREATE EXTENSION ig_identity');
like($err, qr/SCHEMA aaa \(that schema belongs to role eve: install there only if it is the app's\)/,
	"the refusal says whose schema it would name, so a superuser does not install into eve's unawares") or diag($err);

$node->stop;
done_testing();
