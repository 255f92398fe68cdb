# TlsProxy.pm — the production transport for the TAP tests: a throwaway test
# CA and server certificates made with openssl when the test runs (nothing
# key-like is checked in), and nghttpx (Debian's nghttp2-proxy) terminating
# TLS with ALPN h2/http/1.1 in front of the Graph API mock.
#
# The proxy's access log has one line per request with the worker process,
# the client port, the ALPN protocol and whether the TLS session was resumed,
# so a test counts connections and handshakes where they happen.
package TlsProxy;

use strict;
use warnings;

use Exporter 'import';
use IO::Socket::INET;
use IPC::Run;
use Time::HiRes qw(usleep);
use PostgreSQL::Test::Utils;

our @EXPORT = qw(have_nghttpx make_ca make_cert start_proxy stop_proxy
  reload_proxy proxy_requests proxy_connections);

my @proxies;

sub nghttpx_path
{
	for my $p (split(/:/, $ENV{PATH} // ''), '/usr/sbin', '/usr/bin')
	{
		return "$p/nghttpx" if -x "$p/nghttpx";
	}
	return undef;
}

# True when nghttpx and openssl can be run.
sub have_nghttpx
{
	return defined(nghttpx_path()) && system('openssl version >/dev/null 2>&1') == 0;
}

sub run_openssl
{
	my @cmd = ('openssl', @_);
	my ($out, $err);
	my $ok = IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	die "openssl @_ failed: $err" unless $ok;
}

# make_ca($dir, $name): a self-signed test CA; returns {crt, key, dir}.
sub make_ca
{
	my ($dir, $name) = @_;
	my $d = "$dir/$name";
	mkdir $d;
	run_openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
		'-nodes', '-keyout', "$d/ca.key", '-out', "$d/ca.crt", '-days', '2',
		'-subj', "/CN=ig_identity test CA $name",
		'-addext', 'basicConstraints=critical,CA:TRUE',
		'-addext', 'keyUsage=critical,keyCertSign,cRLSign');
	open(my $fh, '>', "$d/ca.cnf") or die;
	print $fh "[ca]\ndefault_ca = d\n[d]\ndatabase = $d/index.txt\n"
	  . "new_certs_dir = $d\nserial = $d/serial\ndefault_md = sha256\n"
	  . "policy=p\nunique_subject = no\n[p]\ncommonName = supplied\n";
	close $fh;
	open($fh, '>', "$d/index.txt") or die; close $fh;
	open($fh, '>', "$d/serial") or die; print $fh "1000\n"; close $fh;
	return { crt => "$d/ca.crt", key => "$d/ca.key", dir => $d };
}

# make_cert($ca, $name, san => 'DNS:localhost', expired => 0): a server
# certificate signed by $ca; returns {crt, key}.  An expired one was valid
# for one day in 2020.
sub make_cert
{
	my ($ca, $name, %opt) = @_;
	my $d = $ca->{dir};
	my $san = $opt{san} // 'DNS:localhost';
	run_openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
		'-nodes', '-keyout', "$d/$name.key", '-out', "$d/$name.csr",
		'-subj', "/CN=$name");
	open(my $fh, '>', "$d/$name.ext") or die;
	print $fh "subjectAltName = $san\nbasicConstraints = CA:FALSE\n"
	  . "extendedKeyUsage = serverAuth\n";
	close $fh;
	my @dates = $opt{expired}
	  ? ('-startdate', '20200101000000Z', '-enddate', '20200102000000Z')
	  : ('-days', '2');
	run_openssl('ca', '-batch', '-notext', '-config', "$d/ca.cnf", '-cert', $ca->{crt},
		'-keyfile', $ca->{key}, '-in', "$d/$name.csr", '-out', "$d/$name.crt",
		'-extfile', "$d/$name.ext", @dates);
	return { crt => "$d/$name.crt", key => "$d/$name.key" };
}

sub free_port
{
	my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1)
	  or die "no free port: $!";
	my $port = $s->sockport;
	close $s;
	return $port;
}

sub write_conf
{
	my ($p) = @_;
	open(my $fh, '>', $p->{conf}) or die "cannot write $p->{conf}: $!";
	print $fh "frontend=127.0.0.1,$p->{port}\n"
	  . "backend=127.0.0.1,$p->{backend};;proto=http/1.1\n"
	  . "private-key-file=$p->{cert}{key}\n"
	  . "certificate-file=$p->{cert}{crt}\n"
	  . "npn-list=$p->{alpn}\n"
	  . "workers=1\n"
	  . "accesslog-file=$p->{access}\n"
	  # no query string and no headers: nothing secret reaches the log
	  . 'accesslog-format=$pid $remote_port $alpn $tls_session_reused $status'
	  . ' $method $path_without_query' . "\n"
	  . "errorlog-file=$p->{errors}\n"
	  . "pid-file=$p->{pidfile}\n"
	  . "frontend-http2-max-concurrent-streams=100\n"
	  . "backend-keep-alive-timeout=60s\n"
	  . "worker-process-grace-shutdown-period=30s\n";
	print $fh $p->{extra} if $p->{extra};
	close $fh;
}

# start_proxy($dir, $name, backend => $mock_port, cert => $cert,
#   alpn => 'h2,http/1.1', extra => "option = value\n"): an nghttpx in front
# of the mock; returns {port, pid, access, ...}.
sub start_proxy
{
	my ($dir, $name, %opt) = @_;
	my $p = {
		name => $name, backend => $opt{backend}, cert => $opt{cert},
		alpn => $opt{alpn} // 'h2,http/1.1', extra => $opt{extra},
		port => free_port(),
		conf => "$dir/$name.conf", access => "$dir/$name.access.log",
		errors => "$dir/$name.error.log", pidfile => "$dir/$name.pid",
	};
	write_conf($p);
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>>', $p->{errors});
		open(STDERR, '>&', \*STDOUT);
		exec(nghttpx_path(), "--conf=$p->{conf}") or exit 127;
	}
	$p->{pid} = $pid;
	push @proxies, $p;
	for (1 .. 200)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $p->{port});
		if ($s) { close $s; return $p; }
		die "nghttpx exited: " . slurp_file($p->{errors})
		  if waitpid($pid, 1) == $pid;
		usleep(50_000);
	}
	die "nghttpx did not start listening: " . slurp_file($p->{errors});
}

# A graceful reload: nghttpx starts a new worker process and the old one
# sends GOAWAY on its connections, finishes their streams and exits.
sub reload_proxy
{
	my ($p) = @_;
	kill 'HUP', $p->{pid};
}

sub stop_proxy
{
	my ($p) = @_;
	return unless $p->{pid};
	kill 'TERM', $p->{pid};
	waitpid($p->{pid}, 0);
	$p->{pid} = undef;
}

END
{
	my $status = $?;
	stop_proxy($_) for @proxies;
	$? = $status;
}

# The access log as a list of {pid, port, alpn, resumed, status, method, path}.
sub proxy_requests
{
	my ($p) = @_;
	return () unless -e $p->{access};
	my @out;
	for my $line (split /\n/, slurp_file($p->{access}))
	{
		my @f = split / /, $line;
		next unless @f >= 7;
		push @out, { pid => $f[0], port => $f[1], alpn => $f[2],
			resumed => $f[3] eq 'r', status => $f[4], method => $f[5], path => $f[6] };
	}
	return @out;
}

# Distinct client connections among the given access log entries: each one
# is one TLS handshake (resumed or not).
sub proxy_connections
{
	my %seen = map { ("$_->{pid}:$_->{port}" => 1) } @_;
	return scalar keys %seen;
}

1;
