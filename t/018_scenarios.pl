
# Scenarios across clusters and restarts:
#  - servers no run touches are bit for bit a run-free twin's, at every tick;
#  - automatic incidents are the same live (the ticker) and via sim_tick();
#  - a run continues after a postmaster restart and after a worker crash;
#    a run whose time passed while the simulator was down is closed as
#    'interrupted'.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

my $conf = <<'EOC';
sim_metrics.database_name = 'postgres'
sim_metrics.enabled = off
sim_metrics.seed = 42
sim_metrics.start_time = '2026-01-05 00:00:00+00'
sim_metrics.flush_interval = '1h'
restart_after_crash = on
EOC

my $values_sql = q{SELECT md5(string_agg(concat_ws(',', server_id, tick, cpu_usage, memory_usage,
	disk_usage, network_io, status), ';' ORDER BY server_id, tick)), count(*)
	FROM server_metrics_history WHERE server_id <> ALL (string_to_array('%s', ','))};

# ---------------------------------------------------------------------------
# twins: the same fleet with and without incidents
# ---------------------------------------------------------------------------
my $a = sim_node('with_runs', $conf);
my $b = sim_node('twin', $conf);
for my $n ($a, $b)
{
	$n->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
	ok(wait_until($n, 'SELECT servers FROM sim_status()', '15', 30), $n->name . ': fleet loaded');
}
$a->safe_psql('postgres', q{SELECT sim_scenario_start('memory_leak', '{cache-redis-icn-01}');
	SELECT sim_tick(5); SELECT sim_scenario_start('slow_database', '{db-mysql-icn-primary}', 0.9)});
$a->safe_psql('postgres', 'SELECT sim_tick(55)');
$b->safe_psql('postgres', 'SELECT sim_tick(60)');
$_->safe_psql('postgres', 'SELECT sim_flush()') for ($a, $b);
my $touched = $a->safe_psql('postgres',
	q{SELECT string_agg(DISTINCT server_id, ',' ORDER BY server_id) FROM sim_incident_labels});
my @touched = split /,/, $touched;
cmp_ok(scalar @touched, '>=', 3, "the runs touched @touched");
cmp_ok(scalar @touched, '<', 15, 'and left some servers alone');
my ($va, $vb) = map { $_->safe_psql('postgres', sprintf($values_sql, $touched)) } ($a, $b);
like($va, qr/\|\d+$/, 'untouched servers have history');
is($va, $vb, 'every sample of every untouched server equals the run-free twin\'s (' . (split /\|/, $va)[1] . ' samples)');
isnt($a->safe_psql('postgres', sprintf($values_sql, 'none')), $b->safe_psql('postgres', sprintf($values_sql, 'none')),
	'the touched servers differ from the twin');
is($a->safe_psql('postgres', q{SELECT count(*) FROM server_metrics_history h
	WHERE scenario_run_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sim_incident_labels l
	  WHERE l.run_id = h.scenario_run_id AND l.server_id = h.server_id
	  AND h."timestamp" >= l.started_at AND h."timestamp" < l.ended_at)}), '0',
	'every labelled sample falls in a logged phase of its run and server');
$b->stop;

# ---------------------------------------------------------------------------
# automatic incidents: live ticker = sim_tick()
# ---------------------------------------------------------------------------
my $auto_conf = $conf . <<'EOC';
sim_metrics.tick_interval = '100ms'
sim_metrics.time_scale = 300
sim_metrics.incident_rate = 150
sim_metrics.max_incidents = 2
EOC
my $live = sim_node('auto_live', $auto_conf);
my $step = sim_node('auto_step', $auto_conf);
for my $n ($live, $step)
{
	$n->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
	ok(wait_until($n, 'SELECT servers FROM sim_status()', '15', 30), $n->name . ': fleet loaded');
}
$step->safe_psql('postgres', 'SELECT sim_tick(150)');
$live->safe_psql('postgres', 'SELECT sim_start()');
ok(wait_value($live, 'SELECT tick FROM sim_status()', sub { $_[0] >= 150 }, 60),
	'the live ticker passed tick 150');
$live->safe_psql('postgres', 'SELECT sim_stop()');
my $runs_sql = q{SELECT sim_flush() >= 0;
	SELECT string_agg(concat_ws(' ', run_id, parent_run_id, scenario_name, affected_servers, intensity,
	  started_at, ended_at), E'\n' ORDER BY run_id)
	FROM scenario_execution_log WHERE phase = 'warning' AND started_at < '2026-01-05 00:50:00+00'};
my $runs_step = $step->safe_psql('postgres', $runs_sql);
my $runs_live = $live->safe_psql('postgres', $runs_sql);
my $nauto = grep { /^\d+ [a-z_]+ / } split /\n/, $runs_step;
cmp_ok($nauto, '>=', 2, "sim_tick(150) started $nauto automatic incidents in the first 100 ticks");
is($runs_live, $runs_step, 'the live ticker started the same runs (and cascades) at the same ticks');
$_->stop for ($live, $step);

# ---------------------------------------------------------------------------
# restart continuity
# ---------------------------------------------------------------------------
my $run = $a->safe_psql('postgres',
	q{SELECT sim_scenario_start('memory_leak', '{web-nginx-icn-01}', 0.7, '30 min')});
$a->safe_psql('postgres', 'SELECT sim_tick(40); SELECT sim_flush()');
my $before = $a->safe_psql('postgres', "SELECT phase, progress FROM sim_scenario_runs() WHERE run_id = $run");
my $mem_sql = q{SELECT memory_usage FROM sim_current_metrics() WHERE server_id = 'web-nginx-icn-01'};
my $mem_before = $a->safe_psql('postgres', $mem_sql);
$a->restart;
ok(wait_until($a, 'SELECT servers FROM sim_status()', '15', 30), 'restarted: fleet loaded');
is($a->safe_psql('postgres', "SELECT state, phase, progress, servers FROM sim_scenario_runs() WHERE run_id = $run"),
	"active|$before|{web-nginx-icn-01}", "after a postmaster restart run $run goes on where it was ($before)");
is($a->safe_psql('postgres', q{SELECT scenario FROM sim_current_metrics() WHERE server_id = 'web-nginx-icn-01'}),
	'memory_leak', 'the hot row shows it');

$a->safe_psql('postgres', 'SELECT sim_tick(1)');
my $mem_after = $a->safe_psql('postgres', $mem_sql);
cmp_ok(abs($mem_after - $mem_before), '<', 8,
	"the run is laid over the model's values once, not twice, after the restart (memory $mem_before -> $mem_after)");

# a worker crash (SIGKILL: the postmaster restarts everything)
$a->safe_psql('postgres', 'SELECT sim_tick(9); SELECT sim_flush()');
my $pid = worker_pid($a);
kill 'KILL', $pid;
ok(wait_new_worker($a, $pid), 'a new ticker after SIGKILL');
ok(wait_until($a, "SELECT state FROM sim_scenario_runs() WHERE run_id = $run", 'active', 30),
	"run $run is still active after the crash");
$a->safe_psql('postgres', 'SELECT sim_tick(15); SELECT sim_flush()');
is($a->safe_psql('postgres', "SELECT string_agg(phase, ',' ORDER BY id), count(*) FILTER (WHERE ended_at IS NULL)
	FROM scenario_execution_log WHERE run_id = $run"), 'warning,onset,peak,recovery|0',
	'its log: each phase once, all closed');
my ($t0, $t4) = split /\|/, $a->safe_psql('postgres',
	"SELECT parameters->'ticks'->>0, parameters->'ticks'->>4 FROM scenario_execution_log WHERE run_id = $run AND phase = 'recovery'");
is($a->safe_psql('postgres', "SELECT count(*), min(tick), max(tick) FROM server_metrics_history WHERE scenario_run_id = $run"),
	($t4 - $t0) . "|$t0|" . ($t4 - 1), "its samples carry the run id for exactly its ticks [$t0, $t4)");

# a stop outlives a restart: the run keeps recovering on the new plan
my $stopped = $a->safe_psql('postgres', q{SELECT sim_scenario_start('cpu_spike', '{web-nginx-pus-01}', 0.8, '20 min')});
$a->safe_psql('postgres', "SELECT sim_tick(3); SELECT sim_scenario_stop($stopped); SELECT sim_flush()");
my $plan = $a->safe_psql('postgres', "SELECT state, ends_at FROM sim_scenario_runs() WHERE run_id = $stopped");
like($plan, qr/^stopping\|/, "run $stopped is stopping");
$a->restart;
ok(wait_until($a, "SELECT state, ends_at FROM sim_scenario_runs() WHERE run_id = $stopped", $plan, 30),
	'after a restart it goes on with the stop\'s plan (the same end)');
$a->safe_psql('postgres', 'SELECT sim_tick(15); SELECT sim_flush()');
is($a->safe_psql('postgres', "SELECT string_agg(phase, ',' ORDER BY id), count(*) FILTER (WHERE ended_at IS NULL)
	FROM scenario_execution_log WHERE run_id = $stopped"), 'warning,recovery|0',
	'its log: the warning it was in, then the recovery');

# a run whose end passed while the simulator was down: interrupted
my $gone = $a->safe_psql('postgres', q{SELECT sim_scenario_start('cpu_spike', '{lb-haproxy-icn-01}')});
$a->safe_psql('postgres', 'SELECT sim_tick(5); SELECT sim_flush()');
# the history goes on 100 ticks later (as if ticks ran while this run's record was lost)
$a->safe_psql('postgres', q{INSERT INTO server_metrics_history (server_id, cpu_usage, memory_usage,
	disk_usage, network_io, status, "timestamp", tick)
	SELECT server_id, cpu_usage, memory_usage, disk_usage, network_io, status,
	  "timestamp" + interval '50 min', tick + 100
	FROM server_metrics_history WHERE tick = (SELECT max(tick) FROM server_metrics_history)});
$a->restart;
ok(wait_until($a, "SELECT state FROM sim_scenario_runs() WHERE run_id = $gone", 'interrupted', 30),
	"run $gone is closed as interrupted");
ok(wait_until($a, "SELECT string_agg(phase, ',' ORDER BY id), count(*) FILTER (WHERE ended_at IS NULL)
	FROM scenario_execution_log WHERE run_id = $gone", qr/^warning(?:,onset)?(?:,peak)?(?:,recovery)?,interrupted\|0$/, 30),
	'its log ends with an interrupted row, nothing left open');
is($a->safe_psql('postgres', q{SELECT scenario FROM sim_current_metrics() WHERE server_id = 'lb-haproxy-icn-01'}),
	'', 'its server is free');
is($a->safe_psql('postgres', q{SELECT count(*) FROM sim_incident_labels WHERE phase = 'interrupted'}), '0',
	'sim_incident_labels leaves the interrupted marker out');
$a->stop;
done_testing();
