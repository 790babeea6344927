
# Crash recovery takes nothing from Redis on trust for its size. After a
# postmaster crash-restart (a backend killed with SIGKILL) the writer reads
# the mark and the journal back:
#  1. a forged mark (tick = 2^63 - 1) and forged journal rows near 2^62:
#     the fleet loads within a bounded time, the real unflushed samples
#     still come back, the tick numbering stays where it was, the rejection
#     shows in sim_status().last_error;
#  2. a journal tick missing in the middle (expired): recovery stops right
#     before it and says so, no hole in any chart;
#  3. the journal tick right after the stored one missing: nothing is
#     recovered (no server's samples start there), said so, no hole.
# Then a depends_on array over the cap is refused with a WARNING and the
# fleet still loads.
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

my $port = redis_port();

# flushes only when asked: what follows the last sim_flush() is only in the
# ring (and in Redis) when the crash comes
my $node = sim_node('forged', <<"EOC");
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '100ms'
sim_metrics.flush_interval = '1h'
restart_after_crash = on
sim_metrics.redis_host = '127.0.0.1'
sim_metrics.redis_port = $port
EOC
sub q1 { return $node->safe_psql('postgres', $_[0]); }

# Servers whose ticks are not exactly min..max once each.
sub holes_or_twice
{
	return q1(q{SELECT count(*) FROM (SELECT server_id FROM server_metrics_history
	            GROUP BY server_id
	            HAVING count(*) <> count(DISTINCT tick)
	                OR count(*) <> max(tick) - min(tick) + 1) x});
}

# SIGKILL a backend, wait for the crash-restart and a new ticker.
sub crash { return crash_restart($node, $_[0]); }

# Flush, run $n ticks more that stay unflushed, pause, and wait for the
# mirror's mark to reach the last tick. Returns (flushed tick, mark).
sub unflushed_ticks
{
	my ($n) = @_;
	ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= 20 }, 30),
		'ticking');
	q1('SELECT sim_flush()');
	my $flushed = q1('SELECT max(tick) FROM server_metrics_history');
	ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= $flushed + $n }, 30),
		"$n ticks not flushed");
	q1('SELECT sim_stop()');
	my $t = q1('SELECT tick FROM sim_status()');
	my $mark = rwait(sub { $_[0] =~ /^\d+$/ && $_[0] >= $t }, 'the mark', 'HGET', 'sim:mirror', 'tick');
	ok(defined $mark, "flushed up to tick $flushed, the mark reached tick " . ($mark // 'none'));
	return ($flushed, $mark);
}

# The recovery line of the log since $off: (samples, up to tick) or ().
sub recovered
{
	my ($off) = @_;
	# the line follows the WARNINGs the tests wait for: wait for it too
	eval { $node->wait_for_log(qr/recovered \d+ unflushed samples of 15 servers from Redis/, $off); 1 }
	  or diag 'no "recovered" line in the log';
	return log_since($node, $off) =~ /recovered (\d+) unflushed samples of 15 servers from Redis, up to tick (\d+)/;
}

ok(redis_start(), "redis-server on port $port");
q1('CREATE EXTENSION sim_metrics');
ok(wait_until($node, q{SELECT servers, redis_state FROM sim_status()}, '15|connected', 30),
	'15 servers, Redis connected');

# 1. a forged mark and forged journal rows
my ($flushed, $mark) = unflushed_ticks(30);
my $far = '4611686018427387904';	# 2^62
rcli('HSET', 'sim:mirror', 'tick', '9223372036854775807');
rcli('HSET', "sim:journal:$far", 'web-nginx-icn-01',
	"$far|2026-01-05 00:00:00+00|1.00|2.00|3.00|4|online|");
# in the window the ring could hold, but naming another tick inside
rcli('HSET', 'sim:journal:' . ($mark + 1), 'web-nginx-icn-01',
	"$far|2026-01-05 00:00:00+00|1.00|2.00|3.00|4|online|");
is(rcli('HGET', 'sim:mirror', 'tick'), '9223372036854775807', 'the mark is forged');
my $t0 = time;
my $off = crash('forged mark');
ok(wait_until($node, q{SELECT servers FROM sim_status()}, '15', 60),
	'forged mark: the fleet loads');
cmp_ok(time - $t0, '<', 60, 'forged mark: within a minute of the crash');
ok(eval { $node->wait_for_log(qr/WARNING:.*the Redis mark claims tick 9223372036854775807, beyond what the history ring could hold/, $off); 1 },
	'forged mark: a WARNING says the mark is cut');
like(q1('SELECT last_error FROM sim_status()'),
	qr/crash recovery from Redis: the Redis mark claims tick 9223372036854775807/,
	'forged mark: sim_status().last_error shows the rejection');
my ($n, $upto) = recovered($off);
is($upto, $mark, "forged mark: the real journal is still recovered, up to tick $mark");
is($n, 15 * ($mark - $flushed), 'forged mark: every unflushed sample of 15 servers');
ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= $mark + 20 }, 30),
	'forged mark: history keeps flowing');
q1('SELECT sim_flush()');
cmp_ok(q1('SELECT max(tick) FROM server_metrics_history'), '<', $mark + 10000,
	'forged mark: the tick numbering stays where it was');
is(q1('SELECT count(*) FROM server_metrics_history WHERE tick > 1000000000'), '0',
	'forged mark: no forged row in history');
is(holes_or_twice(), '0', 'forged mark: per server every tick once');

# 2. a journal tick missing in the middle (as if expired)
($flushed, $mark) = unflushed_ticks(30);
my $gap = $flushed + 10;
is(rcli('DEL', "sim:journal:$gap"), '1', "journal tick $gap removed");
$off = crash('hole');
ok(eval { $node->wait_for_log(qr/WARNING:.*the Redis journal has no sample of tick $gap though the mark claims every tick up to $mark; recovery stops before it/, $off); 1 },
	'hole: a WARNING names the missing tick');
($n, $upto) = recovered($off);
is($upto, $gap - 1, 'hole: recovered up to the tick before it');
is($n, 15 * ($gap - 1 - $flushed), 'hole: every sample before it');
ok(wait_until($node, q{SELECT last_error ~ 'no sample of tick' FROM sim_status()}, 't', 30),
	'hole: sim_status().last_error says so');
ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= $mark + 20 }, 30),
	'hole: ticking again');
q1('SELECT sim_flush()');
is(holes_or_twice(), '0', 'hole: per server every tick once, none missing');

# 3. the journal tick right after the stored one missing
($flushed, $mark) = unflushed_ticks(30);
is(rcli('DEL', 'sim:journal:' . ($flushed + 1)), '1', 'journal tick ' . ($flushed + 1) . ' removed');
$off = crash('late start');
ok(eval { $node->wait_for_log(qr/WARNING:.*the Redis journal of 15 servers does not start right after their newest stored tick/, $off); 1 },
	'late start: a WARNING says the journal starts too late');
ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= $flushed + 20 }, 30),
	'late start: ticking again');
unlike(log_since($node, $off), qr/recovered \d+ unflushed samples/, 'late start: nothing recovered');
q1('SELECT sim_flush()');
is(holes_or_twice(), '0', 'late start: per server every tick once, none missing');

# 4. a depends_on over the cap is refused, the fleet loads
$off = log_offset($node);
q1(q{UPDATE server_templates SET depends_on = ARRAY(SELECT 'x' || g FROM generate_series(1, 300) g)
     WHERE id = 'web-nginx-icn-01'});
ok(eval { $node->wait_for_log(qr/WARNING:.*ignoring the depends_on of server "web-nginx-icn-01": more than 256 ids/, $off); 1 },
	'depends_on of 300 ids: refused with a WARNING');
ok(wait_until($node, q{SELECT servers FROM sim_status()}, '15', 30), 'depends_on: 15 servers still');

my $log = log_since($node, 0);
unlike($log, qr/terminated by signal (?!9)|PANIC/, 'no crash but the ones the test made');

$node->stop;
redis_stop();
done_testing();
