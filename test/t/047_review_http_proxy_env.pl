# 047_review_http_proxy_env.pl — review 18: plain http is allowed only to a
# loopback host, but libcurl honours the server's http_proxy environment
# variable for every http transfer, loopback included.  With http_proxy set
# in the postmaster's environment (a distribution's /etc/environment, a
# systemd unit's Environment=), the bearer token of a call to a loopback
# graph_api_url went in clear text to the proxy, a non-loopback host as far
# as the guard is concerned.  The loopback http transfers now ignore proxy
# variables (CURLOPT_PROXY ""); https keeps them (a corporate proxy tunnels
# TLS, verified end to end).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use IgIdentityTest;
use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $mock = start_mock();

# a stand-in proxy: records what it is sent, answers 502
my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
	Listen => 5, ReuseAddr => 1) or die "listen: $!";
my $proxy_port = $listen->sockport;
my $seen = PostgreSQL::Test::Utils::tempdir() . '/proxy_seen.txt';
my $proxy_pid = fork();
die "fork: $!" unless defined $proxy_pid;
if ($proxy_pid == 0)
{
	while (my $c = $listen->accept)
	{
		my $req = '';
		while (my $line = <$c>)
		{
			$req .= $line;
			last if $line eq "\r\n";
		}
		open(my $f, '>>', $seen) or die;
		print $f $req;
		close $f;
		print $c "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		close $c;
	}
	exit 0;
}
close $listen;

my $node = new_worker_node('proxyenv', mock => $mock, conf => "ig_identity.enabled = off\n");
{
	local $ENV{http_proxy} = "http://127.0.0.1:$proxy_port";
	local $ENV{HTTP_PROXY} = "http://127.0.0.1:$proxy_port";
	local $ENV{all_proxy} = "http://127.0.0.1:$proxy_port";
	local $ENV{ALL_PROXY} = "http://127.0.0.1:$proxy_port";
	$node->start;
}
$node->safe_psql('postgres', 'CREATE EXTENSION ig_identity');
connect_account($node);

my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT username FROM ig_resolve_profile('" . ACCOUNT_A . "', '" . USER_JANE . "')");
my $got = -e $seen ? slurp_file($seen) : '';
unlike($got, qr/Authorization: Bearer/i, 'no bearer token reaches the proxy named by http_proxy');
is($got, '', 'a loopback http call does not go through the proxy at all');
is($ret, 0, 'the call reached the loopback mock directly') or diag($err);

kill 'TERM', $proxy_pid;
waitpid($proxy_pid, 0);
$node->stop;
done_testing();
