
# server_metrics_history turned into a time-partitioned table managed by
# pg_partman 4.x (Debian 12: postgresql-15-partman): the worker keeps writing
# into it (its kept INSERT plan follows the new table), sim_history() reads
# it, a restart continues from it, and retention leaves it to pg_partman.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

my $sharedir = `pg_config --sharedir 2>/dev/null`;
chomp $sharedir;
$sharedir = '/usr/share/postgresql/15' unless $sharedir && -d $sharedir;
plan skip_all => "pg_partman is not installed ($sharedir/extension/pg_partman.control)"
  unless -f "$sharedir/extension/pg_partman.control";

# The simulated clock starts at today's midnight (UTC), so that pg_partman's
# premade daily partitions (from the start partition to now + 4 days) cover
# it. One tick is one simulated minute: 1440 ticks a day.
my @g = gmtime(time);
my $start = sprintf('%04d-%02d-%02d 00:00:00+00', $g[5] + 1900, $g[4] + 1, $g[3]);

my $node = sim_node('partman', <<"EOC");
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '100ms'
sim_metrics.time_scale = 600
sim_metrics.start_time = '$start'
sim_metrics.flush_interval = '1s'
EOC
my $off0 = log_offset($node);
$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30), 'fleet loaded');
ok(defined wait_value($node, 'SELECT flushed_samples FROM sim_status()',
		sub { $_[0] >= 15 * 10 }, 30),
	'the worker writes to the plain table');

$node->safe_psql('postgres', 'CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman');
my $partman_version = $node->safe_psql('postgres',
	"SELECT extversion FROM pg_extension WHERE extname = 'pg_partman'");
like($partman_version, qr/^4\./, "pg_partman $partman_version (4.x)");

# ---------------------------------------------------------------------------
# Conversion. The simulation is paused and the ring written out first, so
# nothing is waiting to be flushed while the table is swapped (a flush that
# met the conversion's lock would only be retried, but would count as a
# flush error).
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'SELECT sim_stop()');
$node->safe_psql('postgres', 'SELECT sim_flush()');
ok(wait_until($node, 'SELECT paused, pending_samples FROM sim_status()', 't|0', 10),
	'paused, ring empty');
my $t1 = $node->safe_psql('postgres', 'SELECT tick FROM sim_status()');
my $rows1 = $node->safe_psql('postgres', 'SELECT count(*) FROM server_metrics_history');
is($rows1, 15 * $t1, "$rows1 rows = 15 servers x $t1 ticks before the conversion");

# The table and its identity sequence leave the extension (both are
# extension members and pg_dump config objects). The new id is a plain
# bigint with a sequence default rather than an identity column.
$node->safe_psql('postgres', qq{
BEGIN;
ALTER EXTENSION sim_metrics DROP TABLE server_metrics_history;
ALTER EXTENSION sim_metrics DROP SEQUENCE server_metrics_history_id_seq;
ALTER TABLE server_metrics_history RENAME TO server_metrics_history_old;
ALTER INDEX server_metrics_history_server_time RENAME TO server_metrics_history_old_server_time;
CREATE TABLE server_metrics_history (
    LIKE server_metrics_history_old INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS
) PARTITION BY RANGE ("timestamp");
CREATE SEQUENCE server_metrics_history_rowid_seq AS bigint OWNED BY server_metrics_history.id;
ALTER TABLE server_metrics_history
    ALTER COLUMN id SET DEFAULT nextval('server_metrics_history_rowid_seq');
CREATE INDEX server_metrics_history_server_time
    ON server_metrics_history (server_id, "timestamp" DESC);
GRANT SELECT ON server_metrics_history TO PUBLIC;
GRANT SELECT, INSERT, DELETE ON server_metrics_history TO sim_metrics_writer;
GRANT USAGE ON SEQUENCE server_metrics_history_rowid_seq TO sim_metrics_writer;
SELECT partman.create_parent('public.server_metrics_history', 'timestamp', 'native', 'daily',
                             p_start_partition := '$start');
INSERT INTO server_metrics_history SELECT * FROM server_metrics_history_old;
SELECT setval('server_metrics_history_rowid_seq', (SELECT max(id) FROM server_metrics_history));
DROP TABLE server_metrics_history_old;
COMMIT;
});

is( $node->safe_psql('postgres',
		"SELECT relkind FROM pg_class WHERE oid = 'public.server_metrics_history'::regclass"),
	'p', 'server_metrics_history is now a partitioned table');
is( $node->safe_psql('postgres',
		"SELECT partition_interval, partition_type FROM partman.part_config
		  WHERE parent_table = 'public.server_metrics_history'"),
	'1 day|native', 'pg_partman manages it: daily native partitions');
my $nparts = $node->safe_psql('postgres',
	"SELECT count(*) FROM pg_inherits WHERE inhparent = 'public.server_metrics_history'::regclass");
cmp_ok($nparts, '>=', 6, "$nparts partitions (today + 4 premade days + default)");
is($node->safe_psql('postgres', 'SELECT count(*) FROM server_metrics_history'),
	$rows1, 'the old rows were moved');
is($node->safe_psql('postgres', 'SELECT count(*) FROM server_metrics_history_default'),
	'0', 'none of them in the default partition');


# ---------------------------------------------------------------------------
# The worker writes into the partitioned table. sim_tick(1500) carries the
# simulated clock past midnight (1440 ticks), into the next partition.
# ---------------------------------------------------------------------------
my $t2 = $node->safe_psql('postgres', 'SELECT sim_tick(1500)');
is($t2, $t1 + 1500, "sim_tick(1500) reaches tick $t2");
is($node->safe_psql('postgres', 'SELECT sim_start()'), 't', 'resume the worker');
ok(defined wait_value($node, 'SELECT max(tick) FROM server_metrics_history',
		sub { $_[0] >= $t2 + 20 }, 30),
	'the worker flushes new ticks into the partitioned table');

my $shape_sql = q{
	SELECT count(*), bool_and(n = nd), bool_and(nd = hi - lo + 1), min(lo)
	  FROM (SELECT server_id, count(*) AS n, count(DISTINCT tick) AS nd,
	               min(tick) AS lo, max(tick) AS hi
	          FROM server_metrics_history GROUP BY server_id) s};
is($node->safe_psql('postgres', $shape_sql), '15|t|t|1',
	'15 servers, one row per tick from tick 1: no gap, no duplicate across the conversion');
is($node->safe_psql('postgres', 'SELECT flush_errors, errors, coalesce(last_error, \'\') FROM sim_status()'),
	'0|0|', 'flush_errors stays 0, no error');
cmp_ok( $node->safe_psql('postgres',
		'SELECT count(DISTINCT tableoid) FROM server_metrics_history WHERE tick > ' . $t1),
	'>=', 2, 'the new rows went into more than one daily partition');
is($node->safe_psql('postgres', 'SELECT count(*) FROM server_metrics_history_default'),
	'0', 'nothing in the default partition');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM server_metrics_history h
		  JOIN pg_class c ON c.oid = h.tableoid
		 WHERE c.relname <> 'server_metrics_history_p' || to_char(h."timestamp" AT TIME ZONE 'UTC', 'YYYY_MM_DD')}),
	'0', 'every row is in the partition of its simulated day');

# sim_history over the partitioned table, across the partition boundary:
# 23:00 to 01:00 the next day is 121 one-minute ticks
is( $node->safe_psql('postgres', qq{
		SELECT count(*), count(DISTINCT tick), max(tick) - min(tick) + 1,
		       min("timestamp" AT TIME ZONE 'UTC'), max("timestamp" AT TIME ZONE 'UTC')
		  FROM sim_history('api-was-icn-01', timestamptz '$start' + interval '23 hours',
		                   timestamptz '$start' + interval '25 hours')}),
	"121|121|121|" . substr($start, 0, 10) . " 23:00:00|"
	  . $node->safe_psql('postgres', "SELECT to_char(date '" . substr($start, 0, 10)
		  . "' + 1, 'YYYY-MM-DD')") . ' 01:00:00',
	'sim_history() reads both partitions around midnight: 121 ticks, no gap');
is( $node->safe_psql('postgres', q{
		SELECT count(*) = count(DISTINCT tick), count(*) = max(tick) - min(tick) + 1, min(tick)
		  FROM sim_history('api-was-icn-01', '-infinity', 'infinity')}),
	't|t|1', 'sim_history() over everything: table and ring merged, no gap, no duplicate');

# pg_partman's own maintenance works on the set
my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT partman.run_maintenance('public.server_metrics_history')");
is($ret, 0, 'partman.run_maintenance() on the set succeeds') or diag $err;

# ---------------------------------------------------------------------------
# Restart: the worker continues from the partitioned table; retention (set
# to one simulated minute) leaves a partitioned table to pg_partman.
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'ALTER SYSTEM SET sim_metrics.history_retention = 60');
$node->safe_psql('postgres', 'SELECT sim_stop()');
ok(defined wait_until($node, 'SELECT pending_samples FROM sim_status()', '0', 10),
	'ring written out');
my $t3 = $node->safe_psql('postgres', 'SELECT max(tick) FROM server_metrics_history');
my $rows3 = $node->safe_psql('postgres', 'SELECT count(*) FROM server_metrics_history');
is($rows3, 15 * $t3, "15 x $t3 rows before the restart");
$node->safe_psql('postgres', 'SELECT sim_start()');

my $off = log_offset($node);
$node->restart;
ok(eval {
		$node->wait_for_log(
			qr/continued 15 of 15 servers from server_metrics_history at tick \d+/, $off);
		1;
	},
	'restart: the worker continued the 15 servers from the partitioned table');
my ($restored) = log_since($node, $off) =~ /from server_metrics_history at tick (\d+)/;
cmp_ok($restored // -1, '>=', $t3, "restart: from tick " . ($restored // 'none'));
is($node->safe_psql('postgres', 'SHOW sim_metrics.history_retention'), '1min',
	'retention of one simulated minute is set');
ok(defined wait_value($node, 'SELECT max(tick) FROM server_metrics_history',
		sub { $_[0] >= ($restored // 0) + 10 }, 30),
	'restart: new ticks are written to the partitioned table');
is($node->safe_psql('postgres', "SELECT count(*) FROM server_metrics_history WHERE tick <= $t3"),
	$rows3, 'retention left the partitioned table alone (old rows all kept)');
is($node->safe_psql('postgres', $shape_sql), '15|t|t|1',
	'after the restart still one row per tick from tick 1, no gap, no duplicate');
is($node->safe_psql('postgres', 'SELECT flush_errors, errors FROM sim_status()'),
	'0|0', 'no flush or worker errors after the restart');
# (the restart's shutdown logs the exit of the background workers)
my @bad = grep { !/background worker "(?:sim_metrics (?:ticker|writer|mirror)|logical replication launcher)" \(PID \d+\) exited with exit code 1/ }
  split /\n/, crash_lines(log_since($node, $off0));
is(join("\n", @bad), '', 'no errors in the log');

# a replacement table without the writer role's grants: a clear refusal,
# naming the grant to make
$node->safe_psql('postgres', 'REVOKE INSERT ON server_metrics_history FROM sim_metrics_writer; SELECT sim_tick(1)');
my ($fret, $fout, $ferr) = $node->psql('postgres', 'SELECT sim_flush()');
like($ferr, qr/role "sim_metrics_writer" may not write server_metrics_history.*\n.*\n?.*HINT:  GRANT SELECT, INSERT, DELETE ON public.server_metrics_history TO sim_metrics_writer/s,
	'without the grant, sim_flush() refuses and names the grant to make');
$node->safe_psql('postgres', 'GRANT INSERT ON server_metrics_history TO sim_metrics_writer');
($fret, $fout, $ferr) = $node->psql('postgres', 'SELECT sim_flush() >= 0');
is($fout, 't', 'with it, sim_flush() writes again') or diag $ferr;

$node->stop;
done_testing();
