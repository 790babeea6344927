
# The writer as a least-privileged role (sim_metrics.role): a LOGIN role
# that is not a superuser and owns nothing, through every path the writer
# takes: reload, flush, retention, restore after a restart, the scenario
# log, and the recovery from Redis after a crash.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;
use SimRedis;

my $port = redis_port();
my $node = sim_node('worker_role', <<"EOC", start => 0);
sim_metrics.database_name = 'postgres'
sim_metrics.role = 'sim_worker'
sim_metrics.enabled = off
sim_metrics.seed = 42
sim_metrics.start_time = '2026-01-05 00:00:00+00'
sim_metrics.flush_interval = '1h'
sim_metrics.redis_host = '127.0.0.1'
sim_metrics.redis_port = $port
restart_after_crash = on
EOC
$node->start;
ok(redis_start(), "redis-server on port $port");
$node->safe_psql('postgres', 'CREATE ROLE sim_worker LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE');
$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
# the writer started before its role existed: it comes back as it
ok(wait_until($node, q{SELECT usename FROM pg_stat_activity WHERE backend_type = 'sim_metrics writer'},
	'sim_worker', 60), 'the writer runs as sim_worker');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
	WHERE r.rolname = 'sim_worker'}), '0', 'sim_worker owns no relation');
ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30), 'reload: the fleet loaded');

# reload of an edit
$node->safe_psql('postgres', q{UPDATE server_templates SET enabled = false WHERE id = 'lb-haproxy-pus-01'});
ok(wait_until($node, 'SELECT servers FROM sim_status()', '14', 30), 'reload: an edit is picked up');
$node->safe_psql('postgres', q{UPDATE server_templates SET enabled = true WHERE id = 'lb-haproxy-pus-01'});
ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30), 'reload: and undone');

# a scenario, its log and labels, flushed by the writer
$node->safe_psql('postgres', q{SELECT sim_scenario_start('slow_database', '{db-mysql-icn-primary}', 0.8, '5 min')});
$node->safe_psql('postgres', 'SELECT sim_tick(12)');
$node->safe_psql('postgres', q{ALTER SYSTEM SET sim_metrics.flush_interval = '1s'; SELECT pg_reload_conf()});
ok(defined wait_until($node, 'SELECT pending_samples FROM sim_status()', '0', 30), 'flush: the writer wrote the samples');
ok(wait_until($node, q{SELECT count(*) FILTER (WHERE ended_at IS NULL) = 0 AND count(*) >= 4
	FROM scenario_execution_log WHERE run_id = 1}, 't', 30), 'scenario log: the run is logged, closed');
is($node->safe_psql('postgres', 'SELECT count(*) > 0 FROM server_metrics_history WHERE scenario_run_id = 1'),
	't', 'labels reached the history');
is($node->safe_psql('postgres', 'SELECT flush_errors, last_error IS NULL FROM sim_status()'), '0|t',
	'no flush error, no error at all');

# retention, as the table's owner
$node->safe_psql('postgres', q{ALTER SYSTEM SET sim_metrics.history_retention = '2min'; SELECT pg_reload_conf()});
ok(wait_until($node, q{SELECT max("timestamp") - min("timestamp") <= interval '2 min' FROM server_metrics_history},
	't', 90), 'retention: rows older than 2 simulated minutes are gone');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET sim_metrics.history_retention; SELECT pg_reload_conf()});

# restore after a restart
my $tick = $node->safe_psql('postgres', 'SELECT max(tick) FROM server_metrics_history');
$node->restart;
ok(wait_until($node, 'SELECT tick FROM sim_status()', $tick, 30), "restore: the fleet continues at tick $tick");

# recovery from Redis after a crash: ticks only in the ring come back
ok(wait_until($node, q{SELECT redis_state FROM sim_status()}, 'connected', 30), 'Redis: connected');
$node->safe_psql('postgres', q{ALTER SYSTEM SET sim_metrics.flush_interval = '1h'; SELECT pg_reload_conf()});
$node->safe_psql('postgres', 'SELECT sim_tick(5)');
my $want = $tick + 5;
ok(defined rwait(sub { $_[0] =~ /^\d+$/ && $_[0] >= $want }, 'mirror mark', 'HGET', 'sim:mirror', 'tick'),
	'Redis holds the unflushed ticks');
my $pid = worker_pid($node);
kill 'KILL', $pid;
ok(wait_new_worker($node, $pid), 'a new ticker after SIGKILL');
ok(wait_until($node, 'SELECT max(tick) FROM server_metrics_history', "$want", 30),
	"recovery: the ticks up to $want were inserted from Redis");
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'sim_worker'}), 'f',
	'the writer stayed a plain role');

$node->stop;
redis_stop();
done_testing();
