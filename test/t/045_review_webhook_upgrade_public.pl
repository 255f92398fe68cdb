# 045_review_webhook_upgrade_public.pl — the 1.0 -> 1.1 update drops and
# re-creates ig_ingest_webhook(jsonb) and gives back the EXECUTE grants it
# had: a GRANT ... TO PUBLIC the administrator gave is one of them (grantee
# 0 in the ACL, no pg_roles row), named roles (one with GRANT OPTION) too,
# and pg_dump carries them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = new_worker_node('review_webhook_upgrade');
$node->start;
sub sql { return $node->safe_psql('postgres', $_[0]); }

sql("CREATE EXTENSION ig_identity VERSION '1.0'");
sql(q{CREATE ROLE "Hook Role"; CREATE ROLE other_role; CREATE ROLE delegate});
sql(q{GRANT EXECUTE ON FUNCTION ig_ingest_webhook(jsonb) TO PUBLIC});
sql(q{GRANT EXECUTE ON FUNCTION ig_ingest_webhook(jsonb) TO "Hook Role"});
sql(q{GRANT EXECUTE ON FUNCTION ig_ingest_webhook(jsonb) TO delegate WITH GRANT OPTION});
sql('ALTER EXTENSION ig_identity UPDATE');
is(sql("SELECT extversion FROM pg_extension WHERE extname = 'ig_identity'"), '1.1', 'updated');
is(sql("SELECT has_function_privilege('other_role', 'ig_ingest_webhook(jsonb)', 'EXECUTE')"), 't',
	'the grant to PUBLIC is given back');
is(sql(q{SELECT has_function_privilege('Hook Role', 'ig_ingest_webhook(jsonb)', 'EXECUTE')}), 't',
	'a role whose name needs quoting keeps its grant');
is(sql("SELECT has_function_privilege('delegate', 'ig_ingest_webhook(jsonb)', 'EXECUTE WITH GRANT OPTION')"), 't',
	'the grant option is given back');

my ($dump, $dump_err) = ('', '');
IPC::Run::run([ 'pg_dump', '--schema-only', '-d', $node->connstr('postgres') ], '>', \$dump, '2>', \$dump_err)
  or diag($dump_err);
like($dump, qr/GRANT ALL ON FUNCTION public\.ig_ingest_webhook\(payload jsonb\) TO PUBLIC;/,
	'pg_dump carries the grant to PUBLIC');
like($dump, qr/GRANT ALL ON FUNCTION public\.ig_ingest_webhook\(payload jsonb\) TO "Hook Role";/,
	'and the one to the role');

$node->stop;
done_testing();
