
# The warm layer against a real redis-server on a loopback port: the key
# layout, change detection, status events, and the faults — Redis absent at
# start, stopped mid-run, restarted empty, slowed, a wrong password (never
# shown), CLIENT KILL, maxmemory with noeviction. Ticks stay on time through
# all of them.
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

my $node = sim_node('redis', <<"EOC");
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '100ms'
sim_metrics.flush_interval = '1s'
sim_metrics.redis_host = '127.0.0.1'
sim_metrics.redis_port = $port
sim_metrics.redis_min_interval = '1s'
sim_metrics.time_scale = 60
EOC
sub q1 { return $node->safe_psql('postgres', $_[0]); }
sub late { return q1('SELECT late_ticks FROM sim_status()'); }

# 1. Redis absent at start
$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($node, q{SELECT servers, redis_state LIKE 'disconnected%', redis_errors > 0
	FROM sim_status()}, '15|t|t', 30), 'absent at start: the fleet runs, the mirror says disconnected');
like(q1('SELECT redis_last_error FROM sim_status()'), qr/cannot connect to 127\.0\.0\.1:$port/,
	'absent at start: the error names the address');

# 2. Redis comes: full sync, key layout
ok(redis_start(), "redis-server on port $port");
ok(defined rwait(sub { $_[0] eq '15' }, 'live set', 'SCARD', 'sim:servers'),
	'the live set holds the 15 servers');
ok(wait_until($node, q{SELECT redis_state FROM sim_status()}, 'connected', 30), 'state: connected');
# the first round may come before the first tick (updated_at still empty)
ok(defined rwait(sub { $_[0] ne '' }, 'a ticked hash', 'HGET', 'sim:server:web-nginx-icn-01', 'updated_at'),
	'the hash shows a tick');
my %h = split /\n/, rcli('HGETALL', 'sim:server:web-nginx-icn-01');
is(join(',', sort keys %h),
	'anomaly_metric,anomaly_score,cpu_usage,disk_usage,memory_usage,network_io,network_usage,response_time_ms,scenario,sim_time,status,tick,updated_at',
	'the hash has the columns of sim_current_metrics()');
like($h{anomaly_score}, qr/^[01]\.\d{4}$/, "anomaly_score: $h{anomaly_score}");
ok(($h{anomaly_score} == 0) == ($h{anomaly_metric} eq ''), "anomaly_metric: '$h{anomaly_metric}', empty at a score of 0");
like($h{status}, qr/^(online|warning|critical|offline)$/, "status: $h{status}");
cmp_ok(rcli('TTL', 'sim:server:web-nginx-icn-01'), '>', 200, 'the hash expires within redis_ttl (300 s)');
cmp_ok(rcli('ZCARD', 'sim:samples:web-nginx-icn-01'), '>=', 1, 'recent samples in the sorted set');
like(rcli('ZRANGE', 'sim:samples:web-nginx-icn-01', '-1', '-1'),
	qr/^\d+\|[^|]+\|[\d.]+\|[\d.]+\|[\d.]+\|\d+\|\w+\|[0-9a-f]+-\d+\|[01]\.\d{4}$/,
	'a sample: tick|sim_time|cpu|memory|disk|network_io|status|session|anomaly');

# the tiered point read: memory first
is(q1(q{SELECT source, server_id, name FROM sim_server_metrics('web-nginx-icn-01')}),
	'memory|web-nginx-icn-01|Nginx Web ICN-01', 'sim_server_metrics(): a live server from memory');
q1(q{INSERT INTO server_metrics_history (server_id, cpu_usage, memory_usage, disk_usage, network_io,
	status, "timestamp", tick) VALUES ('retired-01', 12.5, 40, 50, 1000, 'online', now(), 7)});
is(q1(q{SELECT source, cpu_usage, status, tick FROM sim_server_metrics('retired-01')}),
	'table|12.5|online|7', 'sim_server_metrics(): neither in memory nor in Redis: from the table');
my ($r, $o, $e) = $node->psql('postgres', q{SELECT * FROM sim_server_metrics('no-such-server')});
like($e, qr/unknown server "no-such-server"/, 'sim_server_metrics(): an unknown server is an error');

# an id nobody knows is refused before Redis is asked: no connection comes
# in for it (each redis-cli INFO is one connection of its own); a known one
# out of the fleet is asked for in Redis, with one connection
sub redis_connections { return (rcli('INFO', 'stats') =~ /total_connections_received:(\d+)/)[0]; }
{
	my $c0 = redis_connections();
	($r, $o, $e) = $node->psql('postgres', join('; ',
		map { "SELECT * FROM sim_server_metrics('no-such-server-$_')" } 1 .. 5));
	like($e, qr/unknown server "no-such-server-1"/, 'sim_server_metrics(): an unknown server, while Redis is up');
	like($e, qr/HINT:  Use an id from server_templates or server_metrics_history/, 'with a hint');
	my $c1 = redis_connections();
	is($c1 - $c0, 1, 'unknown servers: no connection to Redis');
	is(q1(q{SELECT source FROM sim_server_metrics('retired-01')}), 'table', 'a known server not in Redis');
	is(redis_connections() - $c1, 2, 'a known server out of the fleet: Redis was asked');
}

# a reply larger than a hash of ours can be is not taken in
{
	my @fields = (cpu_usage => 1, memory_usage => 2, disk_usage => 3, network_usage => 4,
		response_time_ms => 5, network_io => 6, status => 'warning', scenario => 'memory_leak',
		tick => 8, sim_time => '', updated_at => '');
	rcli('HSET', 'sim:server:retired-01', @fields);
	is(q1(q{SELECT source, cpu_usage, status, scenario, tick FROM sim_server_metrics('retired-01')}),
		'redis|1|warning|memory_leak|8', 'a hash in Redis is read, its scenario too');
	rcli('HSET', 'sim:server:retired-01', 'padding', 'x' x 100_000);
	is(q1(q{SELECT source, cpu_usage FROM sim_server_metrics('retired-01')}), 'table|12.5',
		'a reply of 100 kB is refused: from the table');
	rcli('DEL', 'sim:server:retired-01');
	rcli('HSET', 'sim:server:retired-01', @fields, map { ("extra$_" => $_) } 1 .. 40);
	is(q1(q{SELECT source FROM sim_server_metrics('retired-01')}), 'table',
		'a reply of more elements than a hash of ours has is refused');
	rcli('DEL', 'sim:server:retired-01');
}

# 3. change detection: at most one write a server per redis_min_interval
{
	my ($w0, $s0) = split /\|/, q1('SELECT redis_writes, redis_skipped FROM sim_status()');
	my $t0 = time;
	ok(defined wait_value($node, 'SELECT redis_skipped FROM sim_status()', sub { $_[0] > $s0 + 100 }, 30),
		'servers not due are skipped');
	my ($w1) = split /\|/, q1('SELECT redis_writes, redis_skipped FROM sim_status()');
	my $secs = time - $t0;
	cmp_ok($w1 - $w0, '<=', 15 * ($secs + 2), sprintf('%d writes in %.1f s: at most one a server a second', $w1 - $w0, $secs));
}

# 4. a server leaving the fleet leaves the live set at once; its hash stays
# (it leaves in the middle of a scenario run, which every layer names)
my $run = q1(q{SELECT sim_scenario_start('memory_leak', '{web-nginx-pus-01}', 0.9, '2 hours')});
ok(wait_until($node, q{SELECT source, scenario FROM sim_server_metrics('web-nginx-pus-01')},
	'memory|memory_leak', 30), 'sim_server_metrics(): the run\'s scenario from memory');
ok(defined rwait(sub { $_[0] eq 'memory_leak' }, 'the hash names the scenario', 'HGET',
	'sim:server:web-nginx-pus-01', 'scenario'), 'the hash names the run\'s scenario');
ok(defined wait_value($node, qq{SELECT count(*) FROM scenario_execution_log WHERE run_id = $run},
	sub { $_[0] > 0 }, 30), 'the run is logged');
q1(q{UPDATE server_templates SET enabled = false WHERE id = 'web-nginx-pus-01'});
ok(defined rwait(sub { $_[0] eq '0' }, 'removed from the set', 'SISMEMBER', 'sim:servers', 'web-nginx-pus-01'),
	'a disabled server leaves the live set');
is(rcli('EXISTS', 'sim:server:web-nginx-pus-01'), '1', 'its hash stays until its TTL');
is(q1(q{SELECT source, name, status IS NOT NULL, tick > 0, sim_time IS NOT NULL, updated_at IS NOT NULL,
	scenario FROM sim_server_metrics('web-nginx-pus-01')}),
	'redis|Nginx Web PUS-01|t|t|t|t|memory_leak',
	'sim_server_metrics(): a server out of the fleet answers from Redis, with the scenario');
rcli('DEL', 'sim:server:web-nginx-pus-01');
q1('SELECT sim_flush()');
is(q1(qq{SELECT scenario_run_id FROM server_metrics_history WHERE server_id = 'web-nginx-pus-01'
	ORDER BY "timestamp" DESC LIMIT 1}), $run, 'its last sample in the history is of the run');
is(q1(q{SELECT source, scenario FROM sim_server_metrics('web-nginx-pus-01')}), 'table|memory_leak',
	'its keys gone: from the table, the scenario as the log names the run');
q1(qq{SELECT sim_scenario_stop($run)});
q1(q{UPDATE server_templates SET enabled = true WHERE id = 'web-nginx-pus-01'});
ok(defined rwait(sub { $_[0] eq '15' }, 'back', 'SCARD', 'sim:servers'), 'and comes back');

# 5. status changes are published on sim:events
{
	my ($out, $err) = ('', '');
	my $sub = IPC::Run::start([ 'redis-cli', '-p', $port, 'SUBSCRIBE', 'sim:events' ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(60));
	my $deadline = time + 10;
	while (time < $deadline && $out !~ /sim:events/) { $sub->pump_nb; usleep(50_000); }
	q1(q{UPDATE server_templates SET baseline_cpu = 99, baseline_memory = 97
	     WHERE id = 'api-was-icn-01'});
	q1('SELECT sim_stop()');
	q1('SELECT sim_tick(600)');
	$deadline = time + 20;
	while (time < $deadline && $out !~ /"server_id": "api-was-icn-01"/) { $sub->pump_nb; usleep(50_000); }
	like($out, qr/\{"server_id": "api-was-icn-01", "from": "online", "to": "(?:warning|critical)", "tick": \d+/,
		'a status change is published as JSON');
	$sub->kill_kill;
	q1(q{UPDATE server_templates SET baseline_cpu = 45, baseline_memory = 60
	     WHERE id = 'api-was-icn-01'});
	q1('SELECT sim_start()');
}

my $late0 = late();

# 6. Redis stopped mid-run, then restarted empty: full resync
redis_stop();
ok(wait_until($node, q{SELECT redis_state LIKE 'disconnected%' FROM sim_status()}, 't', 30),
	'stopped: disconnected');
my $t = q1('SELECT tick FROM sim_status()');
ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= $t + 20 }, 10),
	'stopped: ticks go on');
{
	my $t0 = time;
	is(q1(q{SELECT source FROM sim_server_metrics('retired-01')}), 'table',
		'Redis down: the point read still answers');
	cmp_ok(time - $t0, '<', 1, 'without delay');
}
ok(redis_start(), 'restarted, empty');
ok(defined rwait(sub { $_[0] eq '15' }, 'resync', 'SCARD', 'sim:servers'), 'restarted empty: the live set is rebuilt');
is(rcli('EXISTS', 'sim:server:db-mysql-pus-dr'), '1', 'restarted empty: every server written again');

# 7. Redis slowed: DEBUG SLEEP 2 (the mirror's 200 ms timeout gives up)
{
	my $e0 = q1('SELECT redis_errors FROM sim_status()');
	my $sleeper = IPC::Run::start([ 'redis-cli', '-p', $port, 'DEBUG', 'SLEEP', '2' ]);
	ok(defined wait_value($node, 'SELECT redis_errors FROM sim_status()', sub { $_[0] > $e0 }, 10),
		'slowed: the mirror times out');
	$sleeper->finish;
	ok(wait_until($node, q{SELECT redis_state FROM sim_status()}, 'connected', 30), 'slowed: reconnected');
}

# 8. CLIENT KILL of the mirror's connection: reconnect and resync
rcli('DEL', 'sim:servers');
rcli('CLIENT', 'KILL', 'TYPE', 'normal');
ok(defined rwait(sub { $_[0] eq '15' }, 'after kill', 'SCARD', 'sim:servers'),
	'CLIENT KILL: reconnected and resynced');

# 9. a wrong password: refused, and never shown
rcli('CONFIG', 'SET', 'requirepass', 'right-secret-1');
q1(q{ALTER SYSTEM SET sim_metrics.redis_password = 'wrong-secret-2'});
$node->reload;
ok(wait_until($node, q{SELECT redis_state LIKE 'disconnected%', redis_last_error ~ 'AUTH failed'
	FROM sim_status()}, 't|t', 30), 'wrong password: AUTH refused');
unlike(q1('SELECT redis_last_error FROM sim_status()'), qr/secret/, 'the password is not in sim_status()');
my $pwfile = PostgreSQL::Test::Utils::tempdir() . "/redis.pw";
PostgreSQL::Test::Utils::append_to_file($pwfile, "right-secret-1\n");
chmod 0600, $pwfile;
q1(qq{ALTER SYSTEM SET sim_metrics.redis_password_file = '$pwfile'});
$node->reload;
ok(wait_until($node, q{SELECT redis_state FROM sim_status()}, 'connected', 30),
	'the password file (read at connect) is used');
is(rwait(sub { $_[0] eq '15' }, 'with auth', '-a', 'right-secret-1', '--no-auth-warning', 'SCARD', 'sim:servers'),
	'15', 'authenticated: the live set');
rcli('-a', 'right-secret-1', '--no-auth-warning', 'CONFIG', 'SET', 'requirepass', '');
q1(q{ALTER SYSTEM RESET sim_metrics.redis_password});
q1(q{ALTER SYSTEM RESET sim_metrics.redis_password_file});
$node->reload;
is(q1('SHOW sim_metrics.redis_password'), '', 'SHOW never shows the password');
unlike(join("\n", grep { !/statement: ALTER SYSTEM/ } split /\n/, slurp_file($node->logfile)),
	qr/secret-[12]/, 'the password is never in the server log (but for the test\'s own statements)');

# 10. maxmemory reached, noeviction: commands fail, ticks do not care
rcli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
rcli('CONFIG', 'SET', 'maxmemory', '1');
ok(wait_until($node, q{SELECT redis_last_error ~ 'OOM' FROM sim_status()}, 't', 30),
	'maxmemory: the OOM error is shown');
rcli('CONFIG', 'SET', 'maxmemory', '0');
ok(wait_until($node, q{SELECT redis_state FROM sim_status()}, 'connected', 30), 'maxmemory lifted: connected');

is(late() - $late0, 0, 'through every fault: no late tick');
is(q1('SELECT dropped_samples FROM sim_status()'), '0', 'no sample dropped');

# 11. redis_host empty: off (the seed's mock mode)
q1(q{ALTER SYSTEM SET sim_metrics.redis_host = ''});
$node->reload;
ok(wait_until($node, q{SELECT redis_state FROM sim_status()}, 'off', 30), 'redis_host empty: off');

$node->stop;
redis_stop();
done_testing();
