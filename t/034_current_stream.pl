
# sim_current (1.10), the live fleet as a foreign table that streams, as
# users run it: the worker ticking every 100 ms.
#  1. the update from 1.9: sim_current_metrics() gives the same rows
#     before (a C set-returning function) and after (inlined over
#     sim_current);
#  2. every read is one tick and the whole fleet, while the fleet moves;
#     lookups by id find each server;
#  3. no temporary file with work_mem at its floor, where the old
#     materialising read and a sort of the same rows write them;
#  4. the worker killed: the last tick is still read, then ticks go on;
#  5. DROP EXTENSION takes the wrapper, its server and the table with it.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

my $N = 3000;
my $node = sim_node('stream', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.enabled = on
sim_metrics.seed = 34
sim_metrics.start_time = '2026-01-05 00:00:00+00'
sim_metrics.tick_interval = '100ms'
sim_metrics.max_servers = 5000
sim_metrics.redis_host = ''
work_mem = '64kB'
EOC
sub q1 { return $node->safe_psql('postgres', $_[0]); }

# ---- 1. the update from 1.9
q1(q{CREATE EXTENSION sim_metrics VERSION '1.9'});
ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30), '1.9: the fleet of 15 loaded');
q1('SELECT sim_stop()');
ok(wait_until($node, 'SELECT paused FROM sim_status()', 't', 30), 'paused');
q1('CREATE TABLE before_update AS SELECT * FROM sim_current_metrics()');
# a site that closed the read to PUBLIC keeps it closed
q1(q{CREATE ROLE stream_reader; CREATE ROLE stream_other;
	REVOKE EXECUTE ON FUNCTION sim_current_metrics() FROM PUBLIC;
	GRANT EXECUTE ON FUNCTION sim_current_metrics() TO stream_reader});
is(q1(q{SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
	WHERE p.proname = 'sim_current_metrics'}), 'c', '1.9: sim_current_metrics() is the C function');
q1(q{ALTER EXTENSION sim_metrics UPDATE TO '1.10'});
is(q1(q{SELECT extversion FROM pg_extension WHERE extname = 'sim_metrics'}), '1.10', 'updated to 1.10');
is(q1(q{SELECT (SELECT count(*) FROM (SELECT * FROM before_update EXCEPT SELECT * FROM sim_current_metrics()) a),
	(SELECT count(*) FROM (SELECT * FROM sim_current_metrics() EXCEPT SELECT * FROM before_update) b),
	(SELECT count(*) FROM sim_current)}), '0|0|15',
	'the same rows before and after the update, from sim_current too');
is(q1(q{SELECT has_table_privilege('stream_reader', 'sim_current', 'SELECT'),
	has_table_privilege('stream_other', 'sim_current', 'SELECT')}), 't|f',
	'the update gives SELECT on sim_current to whoever may run sim_current_metrics(), PUBLIC not');
q1(q{GRANT EXECUTE ON FUNCTION sim_current_metrics() TO PUBLIC; GRANT SELECT ON sim_current TO PUBLIC});
like(q1(q{EXPLAIN (COSTS OFF) SELECT * FROM sim_current_metrics() WHERE server_id = 'web-nginx-icn-01'}),
	qr/Foreign Scan on sim_current\n\s+Pushed Down: \(server_id = 'web-nginx-icn-01'\)/,
	'after the update the function is inlined and its filter pushed down');

# ---- 2. one tick a read while the fleet moves
q1(qq{INSERT INTO server_templates (id, name, hostname, role, location)
	SELECT format('load-%s', lpad(g::text, 5, '0')), format('Load %s', g), format('load-%s.example', g),
	       (ARRAY['web','app','database','cache','storage','load-balancer'])[1 + g % 6],
	       (ARRAY['Seoul-ICN-AZ1','Seoul-ICN-AZ2','Busan-PUS-DR'])[1 + g % 3]
	  FROM generate_series(1, $N - 15) g});
q1('SELECT sim_start()');
ok(wait_until($node, 'SELECT servers, paused FROM sim_status()', "$N|f", 60), "$N servers, ticking");
my $t0 = q1('SELECT tick FROM sim_status()');
ok(wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= $t0 + 5 }, 30), 'the worker ticks every 100 ms');

# 300 reads in one session, 5 ms apart: each one tick and every server
my ($out, $err) = ('', '');
$node->psql('postgres', qq{DO \$\$
DECLARE
    n bigint; ticks bigint; t bigint; last_t bigint := -1; seen int := 0; bad int := 0;
BEGIN
    FOR i IN 1..300 LOOP
        SELECT count(*), count(DISTINCT tick), min(tick) INTO n, ticks, t FROM sim_current;
        IF n <> $N OR ticks <> 1 OR t < last_t THEN bad := bad + 1; END IF;
        IF t > last_t THEN seen := seen + 1; END IF;
        last_t := t;
        PERFORM pg_sleep(0.005);
    END LOOP;
    RAISE NOTICE 'bad % seen %', bad, seen;
END \$\$}, stdout => \$out, stderr => \$err);
my ($bad, $seen) = $err =~ /bad (\d+) seen (\d+)/;
is($bad, 0, '300 reads while ticking: each read is one tick and the whole fleet, ticks never go back');
cmp_ok($seen // 0, '>=', 5, "the reads saw the fleet move (" . ($seen // 'no') . " ticks)");
is(q1(qq{SELECT count(*) FROM generate_series(1, $N - 15) g,
	LATERAL (SELECT 1 FROM sim_current WHERE server_id = format('load-%s', lpad(g::text, 5, '0'))) x}),
	$N - 15, 'a lookup by id finds each added server while ticking');
is(q1(q{SELECT count(*) FROM sim_current WHERE server_id = ANY (ARRAY['load-00001', 'web-nginx-icn-01', 'nope'])}),
	'2', 'a lookup of several ids');
# a correlated lookup over 300 servers, 1 ms a row (past three ticks): one
# tick, as the function's one read of 1.9 gave
is(q1(q{SELECT count(*), count(DISTINCT tk) FROM (SELECT (SELECT tick FROM sim_current_metrics() m
	WHERE m.server_id = t.id) AS tk, pg_sleep(0.001) FROM (SELECT id FROM server_templates ORDER BY id LIMIT 300) t) x}),
	'300|1', 'a correlated lookup reads one tick for the whole statement while the fleet ticks');

# ---- 3. temporary files
sub temp_files
{
	q1('SELECT pg_stat_force_next_flush()');
	return q1('SELECT temp_files FROM pg_stat_database WHERE datname = current_database()');
}
# the C function 1.9 had, materialising into a tuplestore
q1(q{CREATE FUNCTION materialised_current(OUT server_id text, OUT name text, OUT hostname text, OUT role text,
	OUT location text, OUT environment text, OUT cpu_usage double precision, OUT memory_usage double precision,
	OUT disk_usage double precision, OUT network_io bigint, OUT network_usage double precision,
	OUT response_time_ms double precision, OUT status text, OUT scenario text, OUT tick bigint,
	OUT sim_time timestamptz, OUT updated_at timestamptz, OUT anomaly_score double precision,
	OUT anomaly_metric text) RETURNS SETOF record AS '$libdir/sim_metrics', 'sim_current_metrics' LANGUAGE C});
my $tf = temp_files();
q1('SELECT * FROM sim_current') for 1 .. 5;
q1('SELECT * FROM sim_current_metrics()') for 1 .. 5;
q1('SELECT count(*) FROM sim_current') for 1 .. 5;
is(temp_files(), $tf, "15 reads of $N servers with work_mem = 64kB: no temporary file");
q1('SELECT * FROM materialised_current()');
my $tf2 = temp_files();
cmp_ok($tf2, '>', $tf, 'the materialising read of the same rows writes one (the check can fail)');
q1('SELECT * FROM sim_current ORDER BY cpu_usage');
cmp_ok(temp_files(), '>', $tf2, 'and so does a sort of them');

# ---- 4. the worker killed
my $pid = worker_pid($node);
like($pid, qr/^\d+$/, 'one ticker');
q1("SELECT pg_terminate_backend($pid)");
is(q1('SELECT count(*), count(DISTINCT tick) FROM sim_current'), "$N|1",
	'with the worker gone the last tick is read whole');
ok(defined wait_new_worker($node, $pid, 'a new ticker'), 'the postmaster starts a new ticker');
$t0 = q1('SELECT tick FROM sim_status()');
ok(wait_value($node, 'SELECT min(tick) FROM sim_current', sub { $_[0] > $t0 }, 30),
	'sim_current follows the new ticker');

# ---- 5. DROP EXTENSION
q1('DROP FUNCTION materialised_current()');
q1('DROP EXTENSION sim_metrics');
is(q1(q{SELECT (SELECT count(*) FROM pg_foreign_data_wrapper WHERE fdwname = 'sim_metrics_fdw'),
	(SELECT count(*) FROM pg_foreign_server WHERE srvname = 'sim_metrics_hot'),
	(SELECT count(*) FROM pg_class WHERE relname = 'sim_current')}), '0|0|0',
	'DROP EXTENSION takes the wrapper, its server and sim_current');
q1('CREATE EXTENSION sim_metrics');
ok(wait_until($node, 'SELECT count(*) FROM sim_current', '15', 60), 'made again, sim_current reads the fleet');

$node->stop;
done_testing();
