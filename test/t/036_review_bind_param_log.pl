# 036_review_bind_param_log.pl — review 16 (issue 16 item 1): "pass the
# token as a bind parameter" keeps it out of log_statement, but not out of
# the log at every setting. With log_min_duration_statement = 0 PostgreSQL
# logs "DETAIL: parameters: $4 = '<token>'", and auto_explain with
# log_verbose prints the Function Call with the bound values as constants.
# The README names neither, nor the settings that close them for the role
# that connects accounts (both superuser-settable per role):
#   ALTER ROLE connector SET log_parameter_max_length = 0;
#   ALTER ROLE connector SET auto_explain.log_min_duration = -1;
# The first part is a TODO (the leak, as PostgreSQL does it); the second
# proves the settings the README should give.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = new_worker_node('bindlog',
	conf => "ig_identity.enabled = off\n"
	  . "shared_preload_libraries = 'ig_identity,auto_explain'\n"
	  . "auto_explain.log_min_duration = 0\n"
	  . "auto_explain.log_verbose = on\n"
	  . "log_statement = none\n"
	  . "log_min_duration_statement = 0\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION ig_identity;
	CREATE ROLE connector LOGIN;
	GRANT EXECUTE ON FUNCTION ig_connect_account(text, text, text, text, text, text) TO connector;
});

# pgbench -M extended sends :tok (set by -D) as a real bind parameter ($4)
sub connect_with_bind
{
	my ($token, $secret) = @_;
	my $script = $node->basedir . '/connect.sql';
	open(my $fh, '>', $script) or die;
	print $fh "SELECT ig_connect_account('loc_032', '17841400000000033', '17841400000000033', :tok,"
	  . " 'graph.instagram.com', :sec);\n";
	close $fh;
	my $off = -s $node->logfile;
	my ($out, $err) = run_command([ 'pgbench', '-n', '-M', 'extended', '-t', '1', '-f', $script,
		'-D', "tok=$token", '-D', "sec=$secret",
		$node->connstr('postgres') . ' user=connector' ]);
	like($out, qr/number of transactions actually processed: 1/, 'connected through a bind parameter')
	  or diag($err);
	$node->safe_psql('postgres', 'SELECT 1');    # the log is flushed past our records
	return log_since($node, $off);
}

TODO: {
	local $TODO = 'issue 16 item 1: bind parameters are logged by log_min_duration_statement and auto_explain';
	my $log = connect_with_bind('tok-032-bind-A-9Lm2', 'tok-032-secret-A-4Hs7');
	is(index($log, 'tok-032-bind-A-9Lm2'), -1, 'a bound token is in no log line');
	is(index($log, 'tok-032-secret-A-4Hs7'), -1, 'a bound app secret is in no log line');
}

$node->safe_psql('postgres', q{
	ALTER ROLE connector SET log_parameter_max_length = 0;
	ALTER ROLE connector SET auto_explain.log_min_duration = -1;
});
my $log = connect_with_bind('tok-032-bind-B-3Pq8', 'tok-032-secret-B-6Ty1');
is(index($log, 'tok-032-bind-B-3Pq8'), -1, 'with the role settings, no token in the log');
is(index($log, 'tok-032-secret-B-6Ty1'), -1, 'with the role settings, no app secret in the log');

$node->stop;
done_testing();
