
# sim_metrics.enabled = off (the worker starts paused; sim_start/sim_stop),
# and reproducibility: same seed + start_time + ticks give the same fleet on
# clusters started at different moments; another seed gives another fleet.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SimMetricsTest;

# 200 ms x 300 = one simulated minute per tick
sub conf
{
	my ($seed) = @_;
	return <<"EOC";
sim_metrics.database_name = 'postgres'
sim_metrics.enabled = off
sim_metrics.seed = $seed
sim_metrics.start_time = '2026-01-05 00:00:00+00'
sim_metrics.tick_interval = '200ms'
sim_metrics.time_scale = 300
EOC
}

my $fleet_sql =
  'SELECT server_id, cpu_usage, memory_usage, disk_usage, network_io, status, sim_time
     FROM sim_current_metrics() ORDER BY 1';

# ---------------------------------------------------------------------------
# 8. enabled = off: the worker starts paused with the templates loaded
# ---------------------------------------------------------------------------

my $node_a = sim_node('repro_a', conf(42));
$node_a->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');

ok(wait_until($node_a,
		'SELECT running, paused, servers, worker_state FROM sim_status()',
		't|t|15|paused', 30),
	'enabled = off: worker runs paused with the 15 templates loaded');
like(worker_pid($node_a), qr/^\d+$/, 'the worker is in pg_stat_activity');

{
	# at 200 ms the worker would tick ~10 times here
	my @seen = quiet_window($node_a, 'SELECT tick FROM sim_status()', 2);
	is("@seen", '0', 'no automatic tick while paused (2 s window)');
}
is($node_a->safe_psql('postgres', 'SELECT count(*), min(tick), max(tick) FROM sim_current_metrics()'),
	'15|0|0', '15 servers at tick 0');

# ---------------------------------------------------------------------------
# 10. Reproducibility across clusters
# ---------------------------------------------------------------------------

is($node_a->safe_psql('postgres', 'SELECT sim_tick(200)'), '200', 'A: sim_tick(200)');
my $fleet_a = $node_a->safe_psql('postgres', $fleet_sql);
is( $node_a->safe_psql('postgres', 'SELECT DISTINCT sim_time FROM sim_current_metrics()'),
	'2026-01-05 03:20:00+00',
	'A: sim_time = start_time + 200 ticks x 60 s');
is(scalar(split /\n/, $fleet_a), 15, 'A: 15 rows');

# B is created and started only now, after A has done its work
my $node_b = sim_node('repro_b', conf(42));
$node_b->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($node_b, 'SELECT paused, servers FROM sim_status()', 't|15', 30),
	'B: paused with 15 servers');
is($node_b->safe_psql('postgres', 'SELECT sim_tick(100)'), '100', 'B: sim_tick(100)');
is($node_b->safe_psql('postgres', 'SELECT sim_tick(100)'), '200', 'B: sim_tick(100) again');
my $fleet_b = $node_b->safe_psql('postgres', $fleet_sql);
is($fleet_b, $fleet_a, 'B (2 x 100 ticks) = A (200 ticks), row for row');

# a different seed gives a different fleet
my $node_c = sim_node('repro_c', conf(43));
$node_c->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($node_c, 'SELECT paused, servers FROM sim_status()', 't|15', 30),
	'C: paused with 15 servers');
is($node_c->safe_psql('postgres', 'SELECT sim_tick(200)'), '200', 'C: sim_tick(200)');
my $fleet_c = $node_c->safe_psql('postgres', $fleet_sql);
isnt($fleet_c, $fleet_a, 'C (seed 43) differs from A (seed 42)');
is( $node_c->safe_psql('postgres',
		'SELECT string_agg(server_id || sim_time, \',\' ORDER BY 1) FROM sim_current_metrics()'),
	$node_a->safe_psql('postgres',
		'SELECT string_agg(server_id || sim_time, \',\' ORDER BY 1) FROM sim_current_metrics()'),
	'... with the same servers and simulated clock');
{
	# not just one value: most servers differ
	my %a = map { (split /\|/)[0] => $_ } split /\n/, $fleet_a;
	my $differ = grep { $a{ (split /\|/)[0] } ne $_ } split /\n/, $fleet_c;
	cmp_ok($differ, '>=', 10, "C differs on $differ of 15 servers");
}
$node_c->stop;
$node_b->stop;

# ---------------------------------------------------------------------------
# 8 (cont.). sim_start() resumes the automatic loop, sim_stop() pauses it
# ---------------------------------------------------------------------------

is($node_a->safe_psql('postgres', 'SELECT sim_start()'), 't',
	'sim_start() reports a running worker');
is($node_a->safe_psql('postgres', 'SELECT paused FROM sim_status()'), 'f',
	'no longer paused');
ok(defined wait_value($node_a, 'SELECT tick FROM sim_status()',
		sub { $_[0] >= 205 }, 30, 'tick 205'),
	'ticks advance after sim_start()');
ok(wait_until($node_a, 'SELECT worker_state FROM sim_status()', 'running', 10),
	'worker_state running');

$node_a->safe_psql('postgres', 'SELECT sim_stop()');
my $stopped_at = sim_tick_now($node_a);
is($node_a->safe_psql('postgres', 'SELECT paused FROM sim_status()'), 't',
	'paused after sim_stop()');
{
	# a tick already under way when sim_stop() ran may still land
	my @first = quiet_window($node_a, 'SELECT tick FROM sim_status()', 1);
	cmp_ok($first[-1] - $stopped_at, '<=', 1, 'at most one in-flight tick after sim_stop()');
	my @seen = quiet_window($node_a, 'SELECT tick FROM sim_status()', 2);
	is("@seen", $first[-1], 'no tick in the following 2 s window');
}
ok(wait_until($node_a, 'SELECT worker_state FROM sim_status()', 'paused', 10),
	'worker_state paused');

# sim_tick() still works while paused
my $t = sim_tick_now($node_a);
is($node_a->safe_psql('postgres', 'SELECT sim_tick(3)'), $t + 3, 'sim_tick(3) while paused');

is($node_a->safe_psql('postgres', 'SELECT errors FROM sim_status()'), '0', 'no tick errors');
$node_a->stop;

done_testing();
