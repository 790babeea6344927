
# Every hiredis reply freed on every path: the mirror's heap stays flat
# over 10,000 rounds while Redis flaps — its connection killed, writes
# refused under maxmemory, Redis stalled past redis_timeout, Redis
# restarted — and the ticks go on.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;
use SimRedis;

plan skip_all => 'redis-server is not installed' unless -x '/usr/bin/redis-server';

my $rounds_target = 10_000;
# Flat: the mirror reports, at DEBUG1, the bytes malloc has handed out and
# not had back (mallinfo2). The least of those reports over the run's last
# 2,000 rounds exceeds the least over its first 2,000 by at most
# $heap_limit_kb: a reply leaked a round would add 8,000 x >= 48 bytes
# (375 kB) between them, a connection (context and reader, about 900
# bytes) leaked a flap about 250 x 900 (220 kB).
# RssAnon is no measure of a leak here: it counts the pages malloc touched
# and keeps, and grew by 8-152 kB over the second half of 34 runs, in steps
# (+88 kB within 1,000 rounds once), while the heap in use stayed flat. It
# is bounded in all only, by $total_limit_kb.
my $heap_limit_kb = 64;
my $total_limit_kb = 1024;

# 10 ms ticks wake the mirror for a round each; every server due each
# round, so every round sends (hash, sample, journal) and reads replies
my $port = redis_port();
my $node = sim_node('flap', <<"EOC");
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '10ms'
sim_metrics.flush_interval = '1s'
sim_metrics.redis_host = '127.0.0.1'
sim_metrics.redis_port = $port
sim_metrics.redis_min_interval = 0
sim_metrics.change_threshold = 0
sim_metrics.redis_timeout = '100ms'
log_min_messages = debug1
EOC
sub q1 { return $node->safe_psql('postgres', $_[0]); }

# Rounds that went through: each counts every server as written or skipped.
sub rounds { return q1('SELECT (redis_writes + redis_skipped) / greatest(servers, 1) FROM sim_status()'); }

sub rss_anon_kb
{
	my ($pid) = @_;
	my $status = slurp_file("/proc/$pid/status");
	return $status =~ /^RssAnon:\s+(\d+) kB/m ? $1 : -1;
}

# The mirror's heap reports (bytes) in the server log between two offsets.
sub heap_reports
{
	my ($from, $to) = @_;
	my $log = slurp_file($node->logfile, $from);
	$log = substr($log, 0, $to - $from);
	return $log =~ /sim_metrics mirror: (\d+) bytes of heap in use/g;
}

sub least { my $m; for (@_) { $m = $_ if !defined $m || $_ < $m; } return $m; }

ok(redis_start(), "redis-server on port $port");
q1('CREATE EXTENSION sim_metrics');
ok(wait_until($node, q{SELECT servers, redis_state FROM sim_status()}, '15|connected', 30),
	'15 servers, Redis connected');
my $mirror = worker_pid($node, 'mirror');
like($mirror, qr/^\d+$/, "the mirror: pid $mirror");

# Flap Redis until $n more rounds went through; samples RssAnon and the
# log's size each 1,000.
my ($flaps, %kind) = (0);
sub flap_for
{
	my ($n) = @_;
	my $start = rounds();
	my $deadline = time + 600;
	my @rss = ([ 0, rss_anon_kb($mirror), -s $node->logfile ]);
	while ((my $r = rounds()) < $start + $n && time < $deadline)
	{
		push @rss, [ $r - $start, rss_anon_kb($mirror), -s $node->logfile ]
		  if $r - $start >= @rss * 1000;
		my $k = $flaps++ % 8;
		if ($k == 0 || $k == 4)
		{
			rcli('CLIENT', 'KILL', 'TYPE', 'normal');
			$kind{kill}++;
		}
		elsif ($k == 1 || $k == 5)
		{
			rcli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
			rcli('CONFIG', 'SET', 'maxmemory', '1');
			usleep(150_000);
			rcli('CONFIG', 'SET', 'maxmemory', '0');
			$kind{oom}++;
		}
		elsif ($k == 2 || $k == 6)
		{
			rcli('DEBUG', 'SLEEP', '0.3');
			$kind{stall}++;
		}
		elsif ($k == 3 && $flaps % 32 == 4)
		{
			redis_stop();
			usleep(200_000);
			redis_start();
			$kind{restart}++;
		}
		usleep(300_000);
	}
	return @rss;
}

# warm-up, flapping already: the mirror's arrays, the journal list, the
# error paths and malloc's arena reach their size
flap_for(1000);
my $rss0 = rss_anon_kb($mirror);
my $r0 = rounds();
my $e0 = q1('SELECT redis_errors FROM sim_status()');
my $late0 = q1('SELECT late_ticks FROM sim_status()');
cmp_ok($rss0, '>', 0, "RssAnon after 1,000 rounds of warm-up: $rss0 kB");
my $flaps0 = $flaps;
%kind = ();
my @rss = flap_for($rounds_target);
my $r1 = rounds();
my $rss1 = rss_anon_kb($mirror);
push @rss, [ $r1 - $r0, $rss1, -s $node->logfile ];
$flaps -= $flaps0;
diag 'RssAnon (kB) by rounds: ' . join(', ', map { "$_->[0]: $_->[1]" } @rss);
my $errors = q1('SELECT redis_errors FROM sim_status()') - $e0;
cmp_ok($r1 - $r0, '>=', $rounds_target, sprintf('%d rounds with Redis flapping (%d flaps: %s)',
	$r1 - $r0, $flaps, join(', ', map { "$kind{$_} $_" } sort keys %kind)));
cmp_ok($errors, '>=', $flaps / 2, "the flaps were felt: $errors Redis errors");
is(worker_pid($node, 'mirror'), $mirror, 'the same mirror process throughout');
# the first and the last 2,000 rounds of the run, by the log's offsets
my ($early) = grep { $_->[0] >= 2000 } @rss;
my ($late) = grep { $_->[0] >= $r1 - $r0 - 2000 } @rss;
my @heap_early = heap_reports($rss[0][2], $early->[2]);
my @heap_late = heap_reports($late->[2], $rss[-1][2]);
cmp_ok(scalar(@heap_early) * scalar(@heap_late), '>', 0,
	sprintf('the mirror reported its heap: %d times in the first 2,000 rounds, %d in the last',
		scalar @heap_early, scalar @heap_late));
my ($h0, $h1) = (least(@heap_early) // 0, least(@heap_late) // 0);
diag sprintf('heap in use (kB), first 2,000 rounds: %s; last 2,000: %s',
	join(' ', map { int($_ / 1024) } @heap_early), join(' ', map { int($_ / 1024) } @heap_late));
cmp_ok(($h1 - $h0) / 1024, '<=', $heap_limit_kb,
	sprintf('the mirror\'s heap in use levels off: %d kB in the first 2,000 rounds, %d kB in the last (%+d kB)',
		$h0 / 1024, $h1 / 1024, ($h1 - $h0) / 1024));
cmp_ok($rss1 - $rss0, '<=', $total_limit_kb,
	sprintf('the mirror\'s RssAnon: %d kB after warm-up, %d kB after %d more rounds (%+d kB)',
		$rss0, $rss1, $r1 - $r0, $rss1 - $rss0));
ok(wait_until($node, q{SELECT redis_state FROM sim_status()}, 'connected', 30),
	'connected again after the flapping');
is(rcli('SCARD', 'sim:servers'), '15', 'the live set exact again');
my $tick = q1('SELECT tick FROM sim_status()');
ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= $tick + 50 }, 30),
	'ticks go on');
diag sprintf('late ticks during the flapping: %d', q1('SELECT late_ticks FROM sim_status()') - $late0);

redis_stop();
$node->stop;
done_testing();
