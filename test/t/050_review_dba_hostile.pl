# 050_review_dba_hostile.pl — review 16b (issue 16's DBA part): three
# defects, each asserted as the behaviour wanted (so this file FAILS today;
# it is .off so the lead's test command stays green).  Run it with
#   cp test/t/050_review_dba_hostile.pl.off /tmp/050.pl; IGID_TAP=/tmp/050.pl scripts/test.sh tap
#
#   1. keep_quarantine (50_dba.sql:273-275) takes any relation named
#      ig_identity_quarantine_kept in the extension's schema, whatever its
#      kind and owner: a role with only CREATE on the schema (not the
#      cache's owner) pre-creates it, and the next superuser DROP EXTENSION
#      (of any extension) writes every quarantined row into that role's
#      table.
#   2. The copy is one table owned by the CACHE's owner (50_dba.sql:289-297)
#      holding the quarantined rows of every inbox table: with mixed owners
#      (37_mixed_owners.sql: "neither owner needs a grant on the other's
#      table") the cache owner gets the messages owner's quarantined rows.
#   3. The staged connect: a COPY data line that fails (a tab after the
#      token, as when pasted from a spreadsheet) puts the line, i.e. the
#      token (its first 100 characters), in the server log as the error's
#      CONTEXT ("COPY ig_identity_token_stage, line 1: ..."). README says
#      "PostgreSQL never logs COPY data".
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = new_worker_node('hostile16b', conf => "ig_identity.database = 'inbox'\n");
$node->start;
$node->safe_psql('postgres', q{CREATE ROLE app LOGIN; CREATE ROLE eve LOGIN; CREATE ROLE msgs LOGIN;
	CREATE DATABASE inbox OWNER app; CREATE DATABASE inbox2 OWNER app;});

sub psql_as
{
	my ($db, $role, $sql) = @_;
	my ($ret, $out, $err) = $node->psql($db, $sql,
		connstr => $node->connstr($db) . " user=$role",
		extra_params => [ '-v', 'ON_ERROR_STOP=1' ]);
	return ($ret, $out, $err);
}

# ---- 1. a kept table pre-created by a role that is not the cache's owner
$node->safe_psql('inbox', q{CREATE EXTENSION ig_identity;
	GRANT CREATE ON SCHEMA public TO eve;});
my ($ret, $out, $err) = psql_as('inbox', 'eve', q{
	CREATE TABLE public.ig_identity_quarantine_kept (
	    quarantine_id bigint, source_table text, reason text, row_data jsonb,
	    quarantined_at timestamptz, kept_at timestamptz DEFAULT now());});
is($ret, 0, 'eve (CREATE on the schema only) creates ig_identity_quarantine_kept') or diag($err);
($ret, $out, $err) = psql_as('inbox', 'eve', q{SELECT count(*) FROM public.instagram_user_cache});
isnt($ret, 0, 'eve cannot read the cache');
$node->safe_psql('inbox', q{
	INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
	VALUES ('public.instagram_user_cache', 'review', '{"ig_user_id": "secret-of-app"}');
	DROP EXTENSION ig_identity;});
($ret, $out, $err) = psql_as('inbox', 'eve', q{SELECT count(*) FROM public.ig_identity_quarantine_kept});
is($out, '0', "the app's quarantined rows are not written into eve's table");

# ---- 2. mixed owners: the messages owner's quarantine goes to the cache owner
$node->safe_psql('inbox2', q{CREATE EXTENSION ig_identity;
	ALTER TABLE public.instagram_messages OWNER TO msgs;
	INSERT INTO ig_identity.quarantine (source_table, reason, row_data)
	VALUES ('public.instagram_messages', 'review', '{"text": "secret-of-msgs"}');});
($ret, $out, $err) = psql_as('inbox2', 'app', q{SELECT count(*) FROM public.instagram_messages});
isnt($ret, 0, 'app cannot read the messages table of role msgs');
$node->safe_psql('inbox2', 'DROP EXTENSION ig_identity');
# (nothing of the cache owner's to keep: no kept table at all, or one
# without the messages owner's row)
my $kept = $node->safe_psql('inbox2', q{SELECT to_regclass('public.ig_identity_quarantine_kept') IS NOT NULL});
is($kept eq 'f' ? '0'
	: $node->safe_psql('inbox2', q{SELECT count(*) FROM public.ig_identity_quarantine_kept
	                                 WHERE row_data->>'text' = 'secret-of-msgs'}),
	'0', "app does not get the messages owner's quarantined message");

# ---- 3. a failing COPY line of the staged connect is logged with the token
my $token = 'EAAGreview16bTOKENxyzzy0123456789';
$node->safe_psql('inbox2', 'CREATE EXTENSION ig_identity');
# the README's setting for the role that connects accounts
$node->safe_psql('postgres', 'ALTER ROLE app SET log_error_verbosity = terse');
my $offset = -s $node->logfile;
($ret, $out, $err) = psql_as('inbox2', 'app',
	"BEGIN;\nCREATE TEMP TABLE ig_identity_token_stage (access_token text) ON COMMIT DROP;\n"
	  . "COPY ig_identity_token_stage FROM STDIN;\n$token\t\n\\.\nCOMMIT;\n");
isnt($ret, 0, 'the COPY with a stray tab fails');
is(count_matches(log_since($node, $offset), qr/\Q$token\E/), 0,
	'with log_error_verbosity = terse, the token of a failing COPY line is in no line of the server log');

$node->stop;
done_testing();
