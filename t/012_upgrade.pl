
# The update path: install 1.0, write history under it, ALTER EXTENSION
# sim_metrics UPDATE, and compare the result with a fresh install of the
# new version (pg_dump --schema-only of both, members and grants included:
# --binary-upgrade dumps extension members one by one). The history rows
# written under 1.0 survive the update.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

my $conf = <<'EOC';
sim_metrics.database_name = 'postgres'
sim_metrics.enabled = off
sim_metrics.seed = 42
sim_metrics.start_time = '2026-01-05 00:00:00+00'
EOC
my $old = sim_node('updated', $conf);
my $new = sim_node('fresh', $conf);

my $default = $new->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'sim_metrics'});
isnt($default, '1.0', "the default version is $default");

# 1.0, with history written under it by the current library
$old->safe_psql('postgres', q{CREATE EXTENSION sim_metrics VERSION '1.0'});
is($old->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'sim_metrics'}),
	'1.0', 'installed 1.0');
ok(wait_until($old, 'SELECT servers FROM sim_status()', '15', 30),
	'1.0: the fleet loads (sim_status() of 1.0 works with this library)');
is($old->safe_psql('postgres', 'SELECT sim_tick(10)'), '10', '1.0: sim_tick(10)');
is($old->safe_psql('postgres', 'SELECT sim_flush()'), '150', '1.0: 150 rows flushed');
my $rows_sql = q{SELECT count(*), md5(string_agg(concat_ws(',', id, server_id, cpu_usage,
	memory_usage, disk_usage, network_io, status, "timestamp", tick), ';' ORDER BY id))
	FROM server_metrics_history};
my $before = $old->safe_psql('postgres', $rows_sql);
# a default server the user edited keeps the user's values through updates
$old->safe_psql('postgres', q{UPDATE server_templates SET baseline_network = 33 WHERE id = 'web-nginx-pus-01'});

$old->safe_psql('postgres', 'ALTER EXTENSION sim_metrics UPDATE');
is($old->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'sim_metrics'}),
	$default, "updated to $default");
is($old->safe_psql('postgres', $rows_sql), $before, 'the 150 rows written under 1.0 survive the update');
like($old->safe_psql('postgres', 'SELECT writer_pid > 0, rejected_samples, late_ticks FROM sim_status()'),
	qr/^t\|0\|0$/, 'sim_status() has the new columns');
is($old->safe_psql('postgres', 'SELECT sim_tick(1)'), '11', 'ticks go on after the update');
is($old->safe_psql('postgres', 'SELECT sim_flush()'), '15', 'flushes go on after the update');

$new->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');

# The schema of both, as pg_dump writes it, less what differs by nature
# (OIDs, frozen xids and sequence positions of binary upgrade, the random
# \restrict key, comments).
sub schema_dump
{
	my ($node) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'pg_dump', '--schema-only', '--binary-upgrade', '-d', $node->connstr('postgres') ],
		'>', \$out, '2>', \$err)
	  or die "pg_dump failed: $err";
	return join "\n",
	  grep { !/binary_upgrade|^\\(?:un)?restrict |^--|^\s*$|^UPDATE pg_catalog\.pg_class$|^SET relfrozenxid|^WHERE oid = |pg_catalog\.setval\(/ }
	  split /\n/, $out;
}
my ($d_old, $d_new) = (schema_dump($old), schema_dump($new));
cmp_ok(scalar(() = $d_new =~ /ALTER EXTENSION sim_metrics ADD/g), '>', 12,
	'the dump lists the extension members');
like($d_new, qr/GRANT SELECT ON TABLE public.server_metrics_history TO PUBLIC/, 'the dump has the grants');
like($d_new, qr/CREATE TABLE public.server_metrics_rejected/, 'the dump has the dead-letter table');
is($d_old, $d_new, 'updated schema = fresh schema (pg_dump --schema-only, with grants)');

# the default servers as the new version installs them (1.3: baselines off
# the thresholds), in both
my $defaults_sql = q{SELECT string_agg(concat_ws(',', id, role, baseline_cpu, baseline_memory,
	baseline_disk, baseline_network, disk_growth, depends_on), ';' ORDER BY id)
	FROM server_templates WHERE is_default AND id <> 'web-nginx-pus-01'};
is($old->safe_psql('postgres', $defaults_sql), $new->safe_psql('postgres', $defaults_sql),
	'updated default servers = fresh default servers');
is($old->safe_psql('postgres', q{SELECT baseline_cpu, baseline_network, disk_growth IS NULL
	FROM server_templates WHERE id = 'web-nginx-pus-01'}), '25|33|t',
	'a default server edited before the update keeps its values; disk_growth NULL: the role\'s rate');
# 1.4: the scenario catalog, the same in both; and the update path runs scenarios
my $catalog_sql = q{SELECT md5(string_agg(s::text, ';' ORDER BY name)) FROM sim_scenarios s};
is($old->safe_psql('postgres', $catalog_sql), $new->safe_psql('postgres', $catalog_sql),
	'updated scenario catalog = fresh catalog');
is($old->safe_psql('postgres', q{SELECT sim_scenario_start('memory_leak', '{cache-redis-icn-01}') > 0;
	SELECT sim_tick(25) > 0; SELECT sim_flush() >= 0;
	SELECT count(*) FROM scenario_execution_log WHERE scenario_name = 'memory_leak' AND ended_at IS NOT NULL}),
	"t
t
t
4", 'after the update a scenario runs and is logged through its four phases');
$old->safe_psql('postgres', q{UPDATE server_templates SET disk_growth = 5 WHERE id = 'db-mysql-pus-dr'});
my ($ret, $o, $e) = $old->psql('postgres', q{UPDATE server_templates SET disk_growth = -1 WHERE id = 'db-mysql-pus-dr'});
like($e, qr/violates check constraint/, 'a negative disk_growth is refused');
if ($d_old ne $d_new)
{
	my @a = split /\n/, $d_old;
	my @b = split /\n/, $d_new;
	for my $i (0 .. ($#a > $#b ? $#a : $#b))
	{
		next if ($a[$i] // '') eq ($b[$i] // '');
		diag "first difference at line $i:\n updated: " . ($a[$i] // '') . "\n fresh:   " . ($b[$i] // '');
		last;
	}
}

# what pg_dump keeps of the data: the same tables, the same conditions
my $config_sql = q{SELECT string_agg(c.relname || ':' || coalesce(x.cond, ''), ',' ORDER BY c.relname)
	FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(cfg, cond)
	JOIN pg_class c ON c.oid = x.cfg WHERE e.extname = 'sim_metrics'};
is($old->safe_psql('postgres', $config_sql), $new->safe_psql('postgres', $config_sql),
	'the same tables are marked for pg_dump, with the same conditions');

$old->stop;
$new->stop;
done_testing();
