
# sim_metrics.history_retention: the worker deletes history rows older than
# the retention (in simulated time), in batches of 10000 rows (a transaction
# each, for about two seconds a run), and keeps writing new ones.
#
# Retention runs when a worker starts and then once a minute. To keep this
# test short the runs are triggered by restarting the worker with
# pg_terminate_backend() (a new one starts 5 s later), with the simulation
# paused so that the simulated "now", and so the cutoff, stay fixed.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

# 100 ms ticks of 6 simulated seconds: 10 simulated minutes = 100 ticks
my $node = sim_node('retention', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '100ms'
sim_metrics.time_scale = 60
sim_metrics.flush_interval = '1s'
sim_metrics.history_retention = 600
EOC
my $off0 = log_offset($node);
$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30), 'fleet loaded');
is($node->safe_psql('postgres', 'SHOW sim_metrics.history_retention'), '10min',
	'history_retention = 600 s');

# Freeze the simulated clock, then make 300 ticks (30 simulated minutes) of
# history at once and write it out.
$node->safe_psql('postgres', 'SELECT sim_stop()');
my $tick = $node->safe_psql('postgres', 'SELECT sim_tick(300)');
cmp_ok($tick, '>=', 300, "sim_tick(300) reaches tick $tick");
$node->safe_psql('postgres', 'SELECT sim_flush()');
is($node->safe_psql('postgres', 'SELECT paused, pending_samples FROM sim_status()'),
	't|0', 'paused, everything written');

# 120000 rows of a retired server, days older than anything simulated: with
# the fleet's own old rows more than one run's 10 x 10000 can delete
$node->safe_psql('postgres', q{
	INSERT INTO server_metrics_history
	       (server_id, cpu_usage, memory_usage, disk_usage, network_io, status, "timestamp", tick)
	SELECT 'retired-old-01', 10, 20, 30, 1000, 'online',
	       (SELECT min("timestamp") FROM server_metrics_history) - interval '2 days'
	         - g * interval '1 s', NULL
	  FROM generate_series(1, 120000) g});

my $cutoff = $node->safe_psql('postgres',
	"SELECT sim_time - interval '600 s' FROM sim_status()");
my $count_sql = qq{
	SELECT count(*) FILTER (WHERE "timestamp" < '$cutoff'),
	       count(*) FILTER (WHERE "timestamp" >= '$cutoff'),
	       min("timestamp") FILTER (WHERE "timestamp" >= '$cutoff')
	  FROM server_metrics_history};
my ($old0, $kept0, $first_kept) = split /\|/, $node->safe_psql('postgres', $count_sql);
cmp_ok($old0, '>', 120000, "rows older than the cutoff $cutoff: $old0 (the fleet's too)");
cmp_ok($kept0, '>=', 15 * 99, "rows within the retention: $kept0");

# Restart the worker; the new one runs retention at once. Returns the number
# of old rows once it changed (one run is one transaction).
sub retention_run
{
	my ($before, $what) = @_;
	my $pid = worker_pid($node, 'writer');
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	ok(defined wait_new_worker($node, $pid, "writer for $what", 30, 'writer'), "$what: a new writer");
	my $v = wait_value($node,
		qq{SELECT count(*) FROM server_metrics_history WHERE "timestamp" < '$cutoff'},
		sub { $_[0] < $before }, 30, "$what: old rows deleted");
	ok(defined $v, "$what: the new worker deletes old rows");
	return $v // $before;
}

my $old1 = retention_run($old0, 'first run');
cmp_ok($old0 - $old1, '>=', 10000, 'first run: whole batches of old rows deleted');
my $old2 = wait_value($node,
	qq{SELECT count(*) FROM server_metrics_history WHERE "timestamp" < '$cutoff'},
	sub { $_[0] == 0 }, 60, 'all old rows deleted');
is($old2, 0, 'no row older than the retention is left');
my ($o, $kept2, $first2) = split /\|/, $node->safe_psql('postgres', $count_sql);
is($kept2, $kept0, 'no row within the retention was deleted');
is($node->safe_psql('postgres', 'SELECT min("timestamp") FROM server_metrics_history'),
	$first_kept, "the oldest row left is the first one at or after the cutoff ($first_kept)");
is( $node->safe_psql('postgres',
		q{SELECT min("timestamp") >= (SELECT sim_time - interval '600 s' FROM sim_status())
		    FROM server_metrics_history}),
	't', 'min(timestamp) >= sim_now - retention');

# the worker keeps writing after retention
is($node->safe_psql('postgres', 'SELECT sim_start()'), 't', 'resume');
ok(defined wait_value($node, 'SELECT max(tick) FROM server_metrics_history',
		sub { $_[0] >= $tick + 20 }, 30),
	'new ticks are written after retention');
is( $node->safe_psql('postgres', q{
		SELECT count(*), bool_and(n = nd AND nd = hi - lo + 1)
		  FROM (SELECT server_id, count(*) AS n, count(DISTINCT tick) AS nd,
		               min(tick) AS lo, max(tick) AS hi
		          FROM server_metrics_history GROUP BY server_id) s}),
	'15|t', 'the 15 servers: one row per tick from the first kept one, no gap, no duplicate');
is($node->safe_psql('postgres', 'SELECT flush_errors, errors FROM sim_status()'),
	'0|0', 'no flush or worker errors');
my @bad = grep { !/background worker "sim_metrics (?:ticker|writer|mirror)" \(PID \d+\) exited with exit code 1/ }
  split /\n/, crash_lines(log_since($node, $off0));
is(join("\n", @bad), '', 'no errors in the log (besides the terminated workers)');

$node->stop;
done_testing();
