
# sim_backfill() into a history partitioned by pg_partman (daily, no default
# partition): a past with no partition is refused with the range to create,
# nothing written; once the partitions exist, the rows land in the
# partition of their simulated day.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

my $node = sim_node('bf_parts', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.enabled = off
sim_metrics.seed = 11
sim_metrics.tick_interval = '1s'
sim_metrics.time_scale = 60
EOC
$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30), 'fleet loaded, paused');
$node->safe_psql('postgres', 'CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman');

# today's and the premade days' partitions only: the default one is dropped
my $today = $node->safe_psql('postgres',
	"SELECT (date_trunc('day', sim_time AT TIME ZONE 'UTC'))::date FROM sim_current_metrics() LIMIT 1");
$node->safe_psql('postgres', qq{
SET TIME ZONE 'UTC';
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
                             p_start_partition := '$today');
DROP TABLE server_metrics_history_default;
DROP TABLE server_metrics_history_old;
COMMIT;
});

my ($ret, $out, $err) = $node->psql('postgres', "SELECT sim_backfill('3 days')");
isnt($ret, 0, 'a backfill into days with no partition is refused');
like($err, qr/server_metrics_history has no partition for part of the backfill's time/,
	'it says what is missing');
like($err, qr/HINT:  Create partitions covering \d{4}-\d\d-\d\d .* to \d{4}-\d\d-\d\d /,
	'and names the range to create');
is($node->safe_psql('postgres', 'SELECT count(*) FROM server_metrics_history'), '0',
	'nothing was written');
is($node->safe_psql('postgres', "SELECT worker_state NOT LIKE 'backfilling%' FROM sim_status()"),
	't', 'the fleet is released');

# the partitions for the past, then the same call works
$node->safe_psql('postgres', qq{
SELECT partman.create_partition_time('public.server_metrics_history',
    ARRAY(SELECT generate_series('$today'::date - 4, '$today'::date - 1, interval '1 day')::timestamptz));
});
($ret, $out, $err) = $node->psql('postgres', "SELECT sim_backfill('3 days')");
is($ret, 0, 'with the partitions created, the backfill works') or diag $err;
is($out, 15 * 3 * 1440, '3 days x 1440 ticks x 15 servers');
is( $node->safe_psql('postgres',
		"SELECT count(DISTINCT tableoid) >= 3 FROM server_metrics_history"),
	't', 'the rows went into several daily partitions');
is( $node->safe_psql('postgres',
		"SET TIME ZONE 'UTC';
		 SELECT count(*) FROM server_metrics_history h
		   JOIN pg_class c ON c.oid = h.tableoid
		  WHERE c.relname <> 'server_metrics_history_p' || to_char(h.\"timestamp\", 'YYYY_MM_DD')"),
	'0', 'every row is in the partition of its simulated day');

done_testing();
