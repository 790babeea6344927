
# The Prometheus scrape target: the real prometheus-postgres-exporter
# (Debian's package) with contrib/postgres_exporter/queries.yaml against a
# test cluster, scraped with curl; the 15 servers' values in /metrics equal
# sim_current_metrics() at the same tick, and the sim_status() counters are
# there.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use SimMetricsTest;

my $exporter = '/usr/bin/prometheus-postgres-exporter';
plan skip_all => "$exporter is not installed" unless -x $exporter;

my $node = sim_node('prometheus', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.enabled = off
sim_metrics.seed = 42
sim_metrics.start_time = '2026-01-05 00:00:00+00'
sim_metrics.flush_interval = '1h'
EOC
$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30), 'fleet loaded');
# a server in an incident, so the status gauge has more than one value
$node->safe_psql('postgres', q{SELECT sim_scenario_start('server_down', '{web-nginx-icn-02}', 1, '20 min');
	SELECT sim_tick(8)});

my $port = PostgreSQL::Test::Cluster::get_free_port();
my $dsn = sprintf('host=%s port=%d user=%s dbname=postgres sslmode=disable',
	$node->host, $node->port, $ENV{USER} // getpwuid($<));
my ($out, $err) = ('', '');
local $ENV{DATA_SOURCE_NAME} = $dsn;
my $h = IPC::Run::start([ $exporter, "--web.listen-address=127.0.0.1:$port",
		"--extend.query-path=$FindBin::RealBin/../contrib/postgres_exporter/queries.yaml",
		'--disable-default-metrics', '--disable-settings-metrics' ],
	'>', \$out, '2>', \$err);

sub scrape
{
	my ($body, $cerr) = ('', '');
	IPC::Run::run([ 'curl', '-s', '--max-time', '5', "http://127.0.0.1:$port/metrics" ],
		'>', \$body, '2>', \$cerr);
	return $body;
}
my $metrics = '';
for (1 .. 100)
{
	$metrics = scrape();
	last if $metrics =~ /^sim_metrics_worker_tick/m;
	usleep(100_000);
}
like($metrics, qr/^sim_metrics_cpu_usage\{/m, 'the exporter serves sim_metrics_cpu_usage') or diag $err;

# the per-server gauges equal the SQL read, value for value
my %scraped;
while ($metrics =~ /^sim_metrics_(cpu_usage|memory_usage|disk_usage|network_usage|network_io|status_code)\{([^}]*)\} (\S+)$/mg)
{
	my ($name, $labels, $value) = ($1, $2, $3);
	my ($id) = $labels =~ /server_id="([^"]+)"/;
	my ($role) = $labels =~ /role="([^"]+)"/;
	my ($loc) = $labels =~ /location="([^"]+)"/;
	$scraped{$id}{$name} = $value + 0;
	$scraped{$id}{labels} = "$role|$loc";
}
is(scalar keys %scraped, 15, 'the 15 servers are in /metrics');
my $rows = $node->safe_psql('postgres', q{SELECT server_id, role || '|' || location, cpu_usage, memory_usage,
	disk_usage, network_usage, network_io,
	CASE status WHEN 'online' THEN 0 WHEN 'warning' THEN 1 WHEN 'critical' THEN 2 ELSE 3 END
	FROM sim_current_metrics() ORDER BY 1});
my ($same, $total) = (0, 0);
for my $row (split /\n/, $rows)
{
	my ($id, $labels, @v) = split /\|/, $row, -1;
	($labels, @v) = ("$labels|$v[0]", @v[1 .. $#v]);
	my @names = qw(cpu_usage memory_usage disk_usage network_usage network_io status_code);
	$total++;
	my $ok = ($scraped{$id}{labels} // '') eq $labels;
	for my $i (0 .. $#names)
	{
		$ok &&= defined $scraped{$id}{ $names[$i] } && abs($scraped{$id}{ $names[$i] } - $v[$i]) < 1e-6;
	}
	$same++ if $ok;
	diag "$id differs: $row" unless $ok;
}
is("$same/$total", '15/15', 'every server: labels and the six gauges equal sim_current_metrics() at the same tick');
like($metrics, qr/^sim_metrics_status_code\{[^}]*server_id="web-nginx-icn-02"[^}]*\} 3$/m,
	'the server that is down has status code 3');
my $tick = $node->safe_psql('postgres', 'SELECT tick FROM sim_status()');
like($metrics, qr/^sim_metrics_worker_tick\{[^}]*\} $tick$/m, "sim_metrics_worker_tick = $tick");
like($metrics, qr/^sim_metrics_worker_active_scenarios\{[^}]*\} 1$/m, 'sim_metrics_worker_active_scenarios = 1');
like($metrics, qr/^sim_metrics_worker_servers\{[^}]*\} 15$/m, 'sim_metrics_worker_servers = 15');

$h->kill_kill;
$node->stop;
done_testing();
