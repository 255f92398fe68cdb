# IgIdentityTest.pm — helpers shared by the ig_identity TAP tests (test/t/):
# the local Graph API mock (start, admin calls, stop), clusters configured
# for the worker, and polling the worker's state.
#
# Environment (set by scripts/test.sh): IGID_SRC (a copy of the repo's test/
# sql/ expected/ directories), PYTHON (an interpreter the postgres user can
# run), PERL5LIB (PostgreSQL's TAP modules).
package IgIdentityTest;

use strict;
use warnings;

use Exporter 'import';
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(time usleep);
use Test::More;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(start_mock stop_mock mock_admin new_worker_node worker_pid
  worker_state wait_until count_matches log_since connect_account write_key_file
  ACCOUNT_A TOKEN_A USER_JANE USER_JOHN USER_STORE);

# The mock's built-in data (test/mock_graph/CONTRACT.md).
use constant ACCOUNT_A  => '17841400000000001';
use constant TOKEN_A    => 'mock-token-A-0123456789';
use constant USER_JANE  => '1000000000000101';
use constant USER_JOHN  => '1000000000000102';
use constant USER_STORE => '1000000000000103';

my @mocks;

# Starts the Graph API mock on an ephemeral port; returns {pid, port, base}.
sub start_mock
{
	my @args = @_;
	my $src = $ENV{IGID_SRC} or die "IGID_SRC is not set";
	my $python = $ENV{PYTHON} || 'python3';
	my $pid = open(my $out, '-|', $python, "$src/test/mock_graph/mock_graph.py",
		'--port', '0', '--quiet', @args)
	  or die "could not start the Graph API mock: $!";
	my $line;
	eval {
		local $SIG{ALRM} = sub { die "timeout\n" };
		alarm 20;
		$line = <$out>;
		alarm 0;
	};
	die "the Graph API mock did not start" unless defined $line;
	my ($port) = $line =~ /^mock_graph listening on 127\.0\.0\.1:(\d+)$/
	  or die "unexpected first line from the mock: $line";
	my $mock = { pid => $pid, port => $port, fh => $out,
		base => "http://127.0.0.1:$port" };
	push @mocks, $mock;
	return $mock;
}

# Stops a mock started by start_mock (also done for every mock at exit).
sub stop_mock
{
	my ($mock) = @_;
	return unless $mock->{pid};
	kill 'TERM', $mock->{pid};
	waitpid($mock->{pid}, 0);
	close($mock->{fh});
	$mock->{pid} = undef;
}

END
{
	my $status = $?;
	stop_mock($_) for @mocks;
	$? = $status;
}

# One admin call to the mock: mock_admin($mock, 'POST', '/_admin/faults', {...}).
sub mock_admin
{
	my ($mock, $method, $path, $body) = @_;
	my $http = HTTP::Tiny->new(timeout => 10);
	my $res = $http->request($method, "$mock->{base}$path",
		defined $body
		? { content => encode_json($body),
			headers => { 'Content-Type' => 'application/json' } }
		: {});
	die "mock admin $method $path failed: $res->{status} $res->{content}"
	  unless $res->{success};
	return decode_json($res->{content});
}

# A cluster that preloads ig_identity, its worker pointed at the mock (when
# given) with short intervals; extra settings as a string.  Not started.
sub new_worker_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => $opt{allows_streaming} ? 1 : 0);
	my $conf = "shared_preload_libraries = 'ig_identity'\n"
	  . "ig_identity.database = 'postgres'\n"
	  . "ig_identity.refresh_interval = '1s'\n"
	  . "ig_identity.requests_per_second = 0\n"
	  . "ig_identity.http_timeout = '10s'\n"
	  # made-up tokens are connected on purpose; a test wanting the /me
	  # check at connect time sets it on itself
	  . "ig_identity.verify_on_connect = off\n"
	  . "log_line_prefix = '%m [%p] %b '\n";
	$conf .= "ig_identity.graph_api_url = 'http://127.0.0.1:$opt{mock}{port}/v21.0'\n"
	  if $opt{mock};
	# tokens are stored encrypted: a fresh random key per cluster (no_key
	# => 1 for a cluster without one)
	$conf .= "ig_identity.key_file = '" . write_key_file($node->basedir . '/ig_identity.key') . "'\n"
	  unless $opt{no_key};
	$conf .= $opt{conf} if $opt{conf};
	$node->append_conf('postgresql.conf', $conf);
	return $node;
}

# Writes a fresh random key file (64 hex digits, mode 0600) at $path and
# returns $path.
sub write_key_file
{
	my ($path) = @_;
	open(my $r, '<:raw', '/dev/urandom') or die "/dev/urandom: $!";
	my $n = read($r, my $bytes, 32);
	close $r;
	die "short read from /dev/urandom" unless $n == 32;
	unlink $path;
	my $old = umask(077);
	open(my $w, '>', $path) or die "$path: $!";
	print $w unpack('H*', $bytes);
	close $w;
	umask($old);
	chmod 0600, $path;
	return $path;
}

# The worker's pid from pg_stat_activity, or '' when none runs.
sub worker_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'ig_identity worker'");
}

# ig_identity_worker_state() as a hash (needs the extension).
sub worker_state
{
	my ($node) = @_;
	my $row = $node->safe_psql('postgres',
		"SELECT coalesce(pid, 0), cycles, identities_refreshed, failures, errors, wakeups,"
		  . " in_flight, coalesce(last_error, '') FROM ig_identity_worker_state()");
	my @v = split /\|/, $row, -1;
	return {
		pid => $v[0], cycles => $v[1], refreshed => $v[2], failures => $v[3],
		errors => $v[4], wakeups => $v[5], in_flight => $v[6], last_error => $v[7]
	};
}

# Polls $cond every 50 ms until it returns true or $timeout seconds pass.
sub wait_until
{
	my ($cond, $timeout) = @_;
	$timeout //= 30;
	my $deadline = time() + $timeout;
	while (time() < $deadline)
	{
		return 1 if $cond->();
		usleep(50_000);
	}
	return $cond->() ? 1 : 0;
}

# The server log written after byte $offset.
sub log_since
{
	my ($node, $offset) = @_;
	return slurp_file($node->logfile, $offset);
}

# How many times $re matches in $text.
sub count_matches
{
	my ($text, $re) = @_;
	my $n = () = $text =~ /$re/g;
	return $n;
}

# Connects the mock's account A through the extension's own API.
sub connect_account
{
	my ($node) = @_;
	$node->safe_psql('postgres',
		"SELECT ig_connect_account('loc_a', '" . ACCOUNT_A . "', '" . ACCOUNT_A
		  . "', '" . TOKEN_A . "', 'graph.facebook.com')");
}

1;
