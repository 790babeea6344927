
# The background worker on its own: it ticks, follows a SIGHUP change of
# tick_interval without restarting, and picks up template edits.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SimMetricsTest;

my $node = sim_node('worker', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '200ms'
EOC

# ---------------------------------------------------------------------------
# 1. The worker ticks on its own
# ---------------------------------------------------------------------------

ok(wait_until($node,
		"SELECT string_agg(backend_type, ',' ORDER BY backend_type) FROM pg_stat_activity
		  WHERE backend_type LIKE 'sim_metrics %'",
		'sim_metrics mirror,sim_metrics ticker,sim_metrics writer', 30),
	'one ticker, one writer and one mirror run before CREATE EXTENSION');

$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');

ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30),
	'worker loads the 15 default templates');

my $t0 = sim_tick_now($node);
ok(defined wait_value($node, 'SELECT tick FROM sim_status()',
		sub { $_[0] >= $t0 + 5 }, 30, 'tick +5'),
	"tick advances on its own (from $t0)");

my $st = sim_status_hash($node);
is($st->{running}, 't', 'sim_status().running is true');
is($st->{paused},  'f', 'sim_status().paused is false');
is($st->{worker_state}, 'running', 'worker_state is running');
is($st->{tick_interval_ms}, '200', 'tick_interval_ms = 200');
is($st->{errors}, '0', 'no tick errors');
is($st->{last_error}, '', 'no last_error');
my $pid = worker_pid($node);
like($pid, qr/^\d+$/, 'exactly one worker in pg_stat_activity');
is($st->{pid}, $pid, 'sim_status().pid matches pg_stat_activity');

is( $node->safe_psql('postgres',
		"SELECT count(*), count(DISTINCT server_id),
		        bool_and(cpu_usage BETWEEN 0 AND 100 AND memory_usage BETWEEN 0 AND 100
		                 AND disk_usage BETWEEN 0 AND 100 AND network_usage BETWEEN 0 AND 100
		                 AND network_io >= 0 AND response_time_ms >= 0),
		        bool_and(status IN ('online', 'warning', 'critical', 'offline')),
		        count(DISTINCT tick)
		   FROM sim_current_metrics()"),
	'15|15|t|t|1',
	'sim_current_metrics(): 15 servers, values in range, one consistent tick');

is( $node->safe_psql('postgres',
		"SELECT string_agg(server_id, ',' ORDER BY server_id) FROM sim_current_metrics()"),
	$node->safe_psql('postgres',
		"SELECT string_agg(id, ',' ORDER BY id) FROM server_templates"),
	'the live fleet is the template table');

# values change over time, not just the tick counter
my $snap_sql = "SELECT string_agg(concat_ws(':', server_id, cpu_usage, memory_usage,
                                            disk_usage, network_io), ',' ORDER BY server_id)
                  FROM sim_current_metrics()";
my $snap1 = $node->safe_psql('postgres', $snap_sql);
my $tick1 = sim_tick_now($node);
ok(defined wait_value($node, 'SELECT tick FROM sim_status()',
		sub { $_[0] >= $tick1 + 3 }, 30),
	'three more ticks');
my $snap2 = $node->safe_psql('postgres', $snap_sql);
isnt($snap2, $snap1, 'metric values change from tick to tick');
is( $node->safe_psql('postgres',
		"SELECT count(*) FILTER (WHERE updated_at > now() - interval '10 s')
		   FROM sim_current_metrics()"),
	'15', 'updated_at is recent');

# ---------------------------------------------------------------------------
# 2. SIGHUP changes the interval; same worker
# ---------------------------------------------------------------------------

$node->safe_psql('postgres', "ALTER SYSTEM SET sim_metrics.tick_interval = '60s'");
$node->reload;
ok(wait_until($node, 'SHOW sim_metrics.tick_interval', '1min', 10),
	'SHOW reflects the new interval');
is($node->safe_psql('postgres', 'SELECT tick_interval_ms FROM sim_status()'),
	'60000', 'sim_status().tick_interval_ms reflects it');

# At 200 ms the tick would move every 0.2 s: find 1.5 s without a tick
# (within 10 s), then require 3 more seconds without one.
{
	my $deadline = time + 10;
	my ($last, $since) = (sim_tick_now($node), time);
	my $settled = 0;
	while (time < $deadline)
	{
		usleep(100_000);
		my $t = sim_tick_now($node);
		if ($t ne $last) { ($last, $since) = ($t, time); next; }
		if (time - $since >= 1.5) { $settled = 1; last; }
	}
	ok($settled, 'ticks stop within seconds of the reload to 60s');
	my @seen = quiet_window($node, 'SELECT tick FROM sim_status()', 3);
	is(scalar(@seen), 1, "no tick in a 3 s window at 60 s interval (seen: @seen)");
}
is(worker_pid($node), $pid, 'same worker pid after the reload');

my $slow_tick = sim_tick_now($node);
$node->safe_psql('postgres', 'ALTER SYSTEM RESET sim_metrics.tick_interval');
$node->reload;
ok(wait_until($node, 'SHOW sim_metrics.tick_interval', '200ms', 10),
	'SHOW back at 200ms');
{
	my $start = time;
	ok(defined wait_value($node, 'SELECT tick FROM sim_status()',
			sub { $_[0] >= $slow_tick + 5 }, 15),
		'ticks resume at the fast rate');
	cmp_ok(time - $start, '<', 15, 'five ticks well within 15 s');
}
is(worker_pid($node), $pid, 'still the same worker pid');
is($node->safe_psql('postgres', 'SELECT tick_interval_ms, pid FROM sim_status()'),
	"200|$pid", 'sim_status() agrees');

# ---------------------------------------------------------------------------
# 3. Template edits reach the running worker without a restart
# ---------------------------------------------------------------------------

$node->safe_psql('postgres', q{
	INSERT INTO server_templates (id, name, hostname, role, location, baseline_cpu)
	VALUES ('tap-web-99', 'TAP Web 99', 'tap-web-99.example', 'web', 'Lab-1', 33)});
ok(wait_until($node,
		"SELECT name, role, location FROM sim_current_metrics() WHERE server_id = 'tap-web-99'",
		'TAP Web 99|web|Lab-1', 5),
	'inserted template appears in sim_current_metrics within 5 s');
is($node->safe_psql('postgres', 'SELECT count(*) FROM sim_current_metrics()'),
	'16', '16 servers now');
is($node->safe_psql('postgres', 'SELECT servers, skipped_servers FROM sim_status()'),
	'16|0', 'sim_status counts 16');

# the new server is ticked like the others
my $tnew = sim_tick_now($node);
ok(wait_until($node,
		"SELECT tick > $tnew AND cpu_usage BETWEEN 0 AND 100
		   FROM sim_current_metrics() WHERE server_id = 'tap-web-99'",
		't', 10),
	'new server advances with the fleet');

$node->safe_psql('postgres',
	"UPDATE server_templates SET name = 'TAP Web 99 renamed' WHERE id = 'tap-web-99'");
ok(wait_until($node,
		"SELECT name FROM sim_current_metrics() WHERE server_id = 'tap-web-99'",
		'TAP Web 99 renamed', 5),
	'renamed template is reflected');

$node->safe_psql('postgres',
	"UPDATE server_templates SET enabled = false WHERE id = 'tap-web-99'");
ok(wait_until($node,
		"SELECT count(*) FILTER (WHERE server_id = 'tap-web-99'), count(*) FROM sim_current_metrics()",
		'0|15', 5),
	'disabled template disappears');

# an aborted edit changes nothing
$node->safe_psql('postgres', q{
	BEGIN;
	UPDATE server_templates SET enabled = false WHERE id = 'web-nginx-icn-01';
	ROLLBACK;});
my @seen = quiet_window($node,
	"SELECT count(*) FROM sim_current_metrics() WHERE server_id = 'web-nginx-icn-01'", 1);
is("@seen", '1', 'rolled-back disable leaves the server in place');

$node->safe_psql('postgres', "DELETE FROM server_templates WHERE id = 'web-nginx-icn-01'");
ok(wait_until($node, 'SELECT servers FROM sim_status()', '14', 5),
	'deleted template disappears');

is(worker_pid($node), $pid, 'no worker restart through all of this');
is($node->safe_psql('postgres', 'SELECT errors FROM sim_status()'), '0',
	'no tick errors recorded');

# checked before shutdown, which logs the worker's (expected) FATAL
unlike(crash_lines(log_since($node, 0)), qr/sim_metrics|terminated by signal/,
	'no sim_metrics errors or crashes in the server log');
$node->stop;

done_testing();
