
# The baseline an SRE would believe: seven simulated days of the default
# fleet (seed 7, 30 s ticks, from Monday 2026-01-05, no scenarios) stepped
# with sim_tick(), then bench/realism.sql on the history: every property
# meets its target. The same figures as bench/realism.sh prints.
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
sim_metrics.seed = 7
sim_metrics.start_time = '2026-01-05 00:00:00+00'
sim_metrics.tick_interval = '30s'
sim_metrics.flush_interval = '1h'
EOC
my $node = sim_node('realism', $conf);
sub q1 { return $node->safe_psql('postgres', $_[0]); }

q1('CREATE EXTENSION sim_metrics');
ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30), 'the default fleet of 15');
for (my $done = 0; $done < 7 * 2880; $done += 1440)
{
	q1('SELECT sim_tick(1440)');
	q1('SELECT sim_flush()');
}
is(q1('SELECT count(*), count(DISTINCT tick) FROM server_metrics_history'), (15 * 7 * 2880) . '|' . (7 * 2880),
	'seven days of 30 s ticks in history');

my $sql = slurp_file("$FindBin::RealBin/../bench/realism.sql");
my $out = $node->safe_psql('postgres', $sql);
my @rows = grep { /\|/ } split /\n/, $out;
is(scalar(@rows), 17, '17 properties measured');
for my $row (@rows)
{
	my ($property, $measured, $target, $met) = split /\|/, $row;
	is($met, 'yes', "$property: $measured (target $target)");
}

# the same bits again from the same seed: a second node, the same history
my $twin = sim_node('realism_twin', $conf);
$twin->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($twin, 'SELECT servers FROM sim_status()', '15', 30), 'a twin node');
$twin->safe_psql('postgres', 'SELECT sim_tick(200)');
$twin->safe_psql('postgres', 'SELECT sim_flush()');
my $digest = q{SELECT md5(string_agg(concat_ws(',', server_id, tick, cpu_usage, memory_usage,
	disk_usage, network_io, status), ';' ORDER BY server_id, tick))
	FROM server_metrics_history WHERE tick <= 200};
is($twin->safe_psql('postgres', $digest), q1($digest), 'the same seed gives the same 200 ticks, bit for bit');

$twin->stop;
$node->stop;
done_testing();
