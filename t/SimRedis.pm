
# A real redis-server for the sim_metrics TAP tests: started on a free
# loopback port by the test itself (debug commands on, no persistence),
# and redis-cli to look at it. Waits are bounded polls.
package SimRedis;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use IPC::Run;
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(redis_port redis_start redis_stop rcli rwait);

# chosen at first use: the test framework is set up by then
my ($port, $rdir, $redis);

sub redis_port
{
	$port //= PostgreSQL::Test::Cluster::get_free_port();
	return $port;
}

# Start redis-server on redis_port(); true once it answers PING.
sub redis_start
{
	redis_port();
	$rdir //= PostgreSQL::Test::Utils::tempdir();
	$redis = IPC::Run::start(
		[ 'redis-server', '--port', $port, '--bind', '127.0.0.1', '--save', '',
		  '--appendonly', 'no', '--dir', $rdir, '--enable-debug-command', 'yes' ],
		'>>', "$rdir/redis.log", '2>&1');
	my $deadline = time + 20;
	while (time < $deadline)
	{
		return 1 if rcli('PING') eq 'PONG';
		usleep(50_000);
	}
	return 0;
}

sub redis_stop
{
	return unless $redis;
	$redis->signal('TERM');
	eval { $redis->finish; };
	$redis = undef;
}

# One redis-cli command; its output, trimmed.
sub rcli
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'redis-cli', '-p', redis_port(), @_ ], '>', \$out, '2>', \$err,
		IPC::Run::timeout(10));
	chomp $out;
	return $out;
}

# Poll redis-cli until $pred->(output) holds; the output, or undef.
sub rwait
{
	my ($pred, $what, @cmd) = @_;
	my $deadline = time + 30;
	my $out = '';
	while (time < $deadline)
	{
		$out = eval { rcli(@cmd) } // '';
		return $out if $pred->($out);
		usleep(100_000);
	}
	diag "rwait: $what: last output '$out'";
	return undef;
}

1;
