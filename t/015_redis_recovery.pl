
# Nothing lost on a crash with Redis on: samples that were in the ring but
# never reached server_metrics_history come back from Redis after a
# postmaster crash-restart (a backend killed with SIGKILL), with their
# session. Counted per server and tick across the crash: none missing, none
# twice. Then the cases where Redis must not be trusted or is not there:
# a mark from another cluster, and Redis down at the restart.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;
use SimRedis;

plan skip_all => 'redis-server is not installed' unless -x '/usr/bin/redis-server';

my $port = redis_port();

# flushes only when asked: everything after the last sim_flush() is only
# in the ring (and in Redis) when the crash comes
my $node = sim_node('recovery', <<"EOC");
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '100ms'
sim_metrics.flush_interval = '1h'
restart_after_crash = on
sim_metrics.redis_host = '127.0.0.1'
sim_metrics.redis_port = $port
EOC
sub q1 { return $node->safe_psql('postgres', $_[0]); }

# Per server: rows, distinct ticks, first and last tick; one line a server.
sub shape
{
	return q1(q{SELECT server_id || ':' || count(*) || ':' || count(DISTINCT tick)
	                   || ':' || min(tick) || ':' || max(tick)
	              FROM server_metrics_history GROUP BY server_id ORDER BY server_id});
}

# Servers whose ticks are not exactly min..max once each.
sub holes_or_twice
{
	return q1(q{SELECT count(*) FROM (SELECT server_id FROM server_metrics_history
	            GROUP BY server_id
	            HAVING count(*) <> count(DISTINCT tick)
	                OR count(*) <> max(tick) - min(tick) + 1) x});
}

sub crash { return crash_restart($node, $_[0]); }

ok(redis_start(), "redis-server on port $port");
q1('CREATE EXTENSION sim_metrics');
ok(wait_until($node, q{SELECT servers, redis_state FROM sim_status()}, '15|connected', 30),
	'15 servers, Redis connected');

# 1. some history in the table, more only in the ring and in Redis
ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= 20 }, 30),
	'20 ticks');
q1('SELECT sim_flush()');
my $flushed = q1('SELECT max(tick) FROM server_metrics_history');
cmp_ok($flushed, '>=', 20, "flushed up to tick $flushed");
ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= $flushed + 30 }, 30),
	'30 ticks more, not flushed');
my $old_session = q1('SELECT session_id FROM sim_status()');
my $pending = q1('SELECT pending_samples FROM sim_status()');
cmp_ok($pending, '>=', 15 * 30, "$pending samples only in the ring");
my $tick_now = q1('SELECT tick FROM sim_status()');
my $mark;
{
	my $deadline = time + 30;
	while (time < $deadline)
	{
		$mark = rcli('HGET', 'sim:mirror', 'tick');
		last if $mark =~ /^\d+$/ && $mark >= $tick_now;
		usleep(50_000);
	}
}
cmp_ok($mark, '>=', $tick_now, "the mirror mark reached tick $mark");
is(rcli('HGET', 'sim:mirror', 'session'), $old_session, 'the mark names the session');
my @journal = grep { /^sim:journal:\d+$/ } split /\n/, rcli('KEYS', 'sim:journal:*');
my @old = grep { /:(\d+)$/ && $1 <= $flushed } @journal;
cmp_ok(scalar(@journal), '>=', 30, scalar(@journal) . ' ticks in the journal');
is(scalar(@old), 0, 'none of them flushed: the journal drops what the table has');
is(rcli('HLEN', "sim:journal:$mark"), '15', 'a tick of the journal: 15 servers');
like(rcli('HGET', "sim:journal:$mark", 'web-nginx-icn-01'),
	qr/^$mark\|[^|]+\|[\d.]+\|[\d.]+\|[\d.]+\|\d+\|\w+\|$old_session\|[01]\.\d{4}$/,
	'a journal sample: tick|sim_time|cpu|memory|disk|network_io|status|session|anomaly');
# the ring's samples of one server, to compare with what recovery writes
# (the sample text's round trip: mirror encodes, recovery decodes)
my $sample_cols = q{format('%s|%s|%s|%s|%s|%s|%s|%s', tick, "timestamp", cpu_usage::float8,
	memory_usage::float8, disk_usage::float8, network_io, status, session_id)};
my $ring_rows = q1("SELECT string_agg($sample_cols, ',' ORDER BY tick)
	FROM sim_history('web-nginx-icn-01', '-infinity', 'infinity')
	WHERE source = 'memory' AND tick > $flushed AND tick <= $mark");

# 2. crash: the unflushed samples come back
my $off = crash('crash');
ok(eval { $node->wait_for_log(qr/recovered \d+ unflushed samples of 15 servers from Redis, up to tick \d+/, $off); 1 },
	'the writer recovered from Redis');
my ($recovered, $upto) = slurp_file($node->logfile, $off) =~ /recovered (\d+) unflushed samples of 15 servers from Redis, up to tick (\d+)/;
cmp_ok($upto, '>=', $mark, "recovered up to tick $upto (mark $mark)");
is($recovered, 15 * ($upto - $flushed), "$recovered samples: every tick from $flushed to $upto of 15 servers");
ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= $upto + 20 }, 30),
	'ticking again');
q1('SELECT sim_flush()');
is(q1("SELECT count(*), count(DISTINCT server_id), min(tick), max(tick) FROM server_metrics_history
       WHERE session_id = '$old_session' AND tick > $flushed"),
	15 * ($upto - $flushed) . "|15|" . ($flushed + 1) . "|$upto",
	'the recovered rows carry their session');
is(q1("SELECT string_agg($sample_cols, ',' ORDER BY tick) FROM server_metrics_history
       WHERE server_id = 'web-nginx-icn-01' AND tick > $flushed AND tick <= $mark"),
	$ring_rows, 'the recovered rows hold the values the ring had (the sample text round trip)');
isnt(q1('SELECT session_id FROM sim_status()'), $old_session, 'a new session after the crash');
is(q1("SELECT min(tick) FROM server_metrics_history WHERE session_id <> '$old_session'"),
	$upto + 1, 'the new session continues after the last recovered tick');
is(holes_or_twice(), '0', 'per server: every tick once, none missing, none twice');
my @lines = split /\n/, shape();
is(scalar(@lines), 15, '15 servers in history');
like($lines[0], qr/^[^:]+:(\d+):\1:1:\d+$/, "a server's ticks: $lines[0]");
is(q1(q{SELECT count(*) FROM server_metrics_history h
        WHERE cpu_usage IS NULL OR anomaly_score IS NULL
           OR status NOT IN ('online', 'warning', 'critical', 'offline')}),
	'0', 'recovered rows are whole, with their anomaly score');

# 3. a mark from another cluster is not trusted
ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= $upto + 40 }, 30),
	'ticking');
q1('SELECT sim_flush()');
my $flushed2 = q1('SELECT max(tick) FROM server_metrics_history');
ok(defined wait_value($node, 'SELECT pending_samples FROM sim_status()', sub { $_[0] >= 15 * 10 }, 30),
	'10 ticks not flushed');
q1('SELECT sim_stop()');
{
	my $deadline = time + 30;
	my $t = q1('SELECT tick FROM sim_status()');
	while (time < $deadline && (rcli('HGET', 'sim:mirror', 'tick') // 0) < $t) { usleep(50_000); }
}
rcli('HSET', 'sim:mirror', 'system', '42');
$off = crash('foreign mark');
ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] > $flushed2 }, 30),
	'foreign mark: the fleet runs');
unlike(slurp_file($node->logfile, $off), qr/recovered \d+ unflushed samples/,
	'foreign mark: nothing recovered');
is(q1("SELECT min(tick) FROM server_metrics_history WHERE tick > $flushed2"), '',
	'foreign mark: no row past the flushed tick');

# 4. Redis down at the restart: the fleet starts anyway, from the table
ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= $flushed2 + 20 }, 30),
	'ticking');
redis_stop();
$off = crash('Redis down');
ok(eval { $node->wait_for_log(qr/could not recover unflushed samples from Redis: cannot connect/, $off); 1 },
	'Redis down: recovery says why it was skipped');
ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= $flushed2 + 10 }, 30),
	'Redis down: the fleet runs');
q1('SELECT sim_flush()');
is(holes_or_twice(), '0', 'per server: still every tick once');

$node->stop;
done_testing();
