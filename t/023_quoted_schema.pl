
# The extension installed in a schema whose name needs quoting ("Sim Metrics":
# a space and capitals), with the worker running: every SQL entry point and
# the worker's own reads and writes find their tables there, and the wrappers
# sim_expose() makes in another such schema call through to it.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

my $node = sim_node('quoted', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '100ms'
sim_metrics.flush_interval = '1s'
sim_metrics.time_scale = 60
sim_metrics.seed = 42
EOC
sub q1 { return $node->safe_psql('postgres', $_[0]); }

# the schema is never on the search path: every name below is qualified
my $s = '"Sim Metrics"';

q1(qq{CREATE SCHEMA $s; CREATE EXTENSION sim_metrics WITH SCHEMA $s});
is(q1(q{SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
	WHERE e.extname = 'sim_metrics'}), 'Sim Metrics', 'installed in "Sim Metrics"');

# the worker loads the fleet and runs
ok(wait_until($node, qq{SELECT servers, running FROM $s.sim_status()}, '15|t', 30),
	'sim_status(): the worker loaded 15 servers');
my $t0 = q1(qq{SELECT tick FROM $s.sim_status()});
ok(defined wait_value($node, qq{SELECT tick FROM $s.sim_status()}, sub { $_[0] > $t0 }, 30),
	'sim_status(): ticks advance');
is(q1(qq{SELECT count(*), count(DISTINCT server_id) FROM $s.sim_current_metrics()}), '15|15',
	'sim_current_metrics(): one row a server');
my $t1 = q1(qq{SELECT tick FROM $s.sim_status()});
cmp_ok(q1(qq{SELECT $s.sim_tick(3)}), '>=', $t1 + 3, 'sim_tick(3) advances three ticks');

# the catalog reads, in SQL and by the engine (sim_scenario_start)
is(q1(qq{SELECT count(*) > 0 FROM $s.sim_scenarios}), 't', 'the sim_scenarios table has the catalog');
is(q1(qq{SELECT count(*) FROM $s.sim_scenarios()}), q1(qq{SELECT count(*) FROM $s.sim_scenarios}),
	'sim_scenarios() lists the catalog');
my ($ret, $out, $err) = $node->psql('postgres',
	qq{SELECT $s.sim_scenario_start('memory_leak', '{cache-redis-icn-01}', 0.9, '2 hours')});
is($ret, 0, 'sim_scenario_start() finds the scenario') or diag $err;
my $run = $out;
like($run, qr/^\d+$/, "sim_scenario_start() returns run id $run");
is(q1(qq{SELECT scenario, servers FROM $s.sim_scenario_runs() WHERE run_id = $run}),
	'memory_leak|{cache-redis-icn-01}', 'sim_scenario_runs() shows the run');
ok(wait_until($node, qq{SELECT scenario FROM $s.sim_current_metrics() WHERE server_id = 'cache-redis-icn-01'},
	'memory_leak', 30), 'sim_current_metrics(): the run acts on its server');
is(q1(qq{SELECT source, scenario FROM $s.sim_server_metrics('cache-redis-icn-01')}), 'memory|memory_leak',
	'sim_server_metrics(): a live server from memory, with its scenario');

# the worker flushes history into the schema, and logs the run there
ok(defined wait_value($node, qq{SELECT count(*) FROM $s.server_metrics_history WHERE scenario_run_id = $run},
	sub { $_[0] > 0 }, 30), 'the worker flushes samples of the run into "Sim Metrics".server_metrics_history');
ok(defined wait_value($node, qq{SELECT count(*) FROM $s.scenario_execution_log WHERE run_id = $run},
	sub { $_[0] > 0 }, 30), 'the worker logs the run into "Sim Metrics".scenario_execution_log');
ok(defined wait_value($node, qq{SELECT count(*) FROM $s.sim_incident_labels WHERE run_id = $run
	AND server_id = 'cache-redis-icn-01'}, sub { $_[0] > 0 }, 30), 'sim_incident_labels labels the run');
cmp_ok(q1(qq{SELECT $s.sim_flush()}), '>=', 0, 'sim_flush()');
cmp_ok(q1(qq{SELECT count(*) FROM $s.sim_history('web-nginx-icn-01', '-infinity', 'infinity')}), '>', 0,
	'sim_history(): the samples of a server');
is(q1(qq{SELECT count(*) FILTER (WHERE source = 'table') > 0
	FROM $s.sim_history('web-nginx-icn-01', '-infinity', 'infinity')}), 't',
	'sim_history(): some from the table');
($ret, $out, $err) = $node->psql('postgres', qq{SELECT * FROM $s.sim_history('no-such-server', '-infinity')});
like($err, qr/unknown server "no-such-server"/, 'sim_history(): an unknown server is an error');

# stop: the run leaves the list of running ones
q1(qq{SELECT $s.sim_scenario_stop($run)});
like(q1(qq{SELECT state FROM $s.sim_scenario_runs() WHERE run_id = $run}), qr/^(stopping|stopped)$/,
	'sim_scenario_stop(): the run is stopping');

# the dashboard
is(q1(qq{SELECT d->'success', jsonb_array_length(d->'data') FROM $s.sim_dashboard() d}), 'true|15',
	'sim_dashboard(): the fleet');

# a server out of the fleet: from the table, described from server_templates
q1(qq{INSERT INTO $s.server_metrics_history (server_id, cpu_usage, memory_usage, disk_usage, network_io,
	status, "timestamp", tick) VALUES ('retired-01', 12.5, 40, 50, 1000, 'online', now(), 7)});
is(q1(qq{SELECT source, cpu_usage, status FROM $s.sim_server_metrics('retired-01')}), 'table|12.5|online',
	'sim_server_metrics(): a server out of the fleet from the table');
($ret, $out, $err) = $node->psql('postgres', qq{SELECT * FROM $s.sim_server_metrics('no-such-server')});
like($err, qr/unknown server "no-such-server"/, 'sim_server_metrics(): an unknown server is an error');

# the wrappers, in another schema that needs quoting, for a role of its own
q1(q{CREATE ROLE "Web Anon" LOGIN; CREATE SCHEMA "Api V1"});
q1(qq{GRANT USAGE ON SCHEMA $s TO "Web Anon"});
is(q1(qq{SELECT count(*) FROM $s.sim_expose('Api V1', ARRAY['Web Anon'])}), '8', 'sim_expose() makes eight wrappers');
is($node->safe_psql('postgres', q{SET ROLE "Web Anon";
	SELECT (SELECT count(*) FROM "Api V1".sim_current_metrics()),
	       (SELECT source FROM "Api V1".sim_server_metrics('web-nginx-icn-01')),
	       (SELECT running FROM "Api V1".sim_status()),
	       (SELECT count(*) > 0 FROM "Api V1".sim_history('web-nginx-icn-01', '-infinity', 'infinity')),
	       (SELECT count(*) > 0 FROM "Api V1".sim_scenario_runs()),
	       (SELECT d->'success' FROM "Api V1".sim_dashboard() d)}),
	'15|memory|t|t|t|true', 'the wrappers in "Api V1" answer for "Web Anon"');

# a template edit, then sim_reload(): the worker reads the templates from the schema
q1(qq{UPDATE $s.server_templates SET enabled = false WHERE id = 'web-nginx-pus-01'});
is(q1(qq{SELECT $s.sim_reload()}), '14', 'sim_reload() after a template edit: 14 servers');
ok(wait_until($node, qq{SELECT servers FROM $s.sim_status()}, '14', 30), 'sim_status(): 14 servers');
is(q1(qq{SELECT count(*) FROM $s.sim_current_metrics() WHERE server_id = 'web-nginx-pus-01'}), '0',
	'the disabled server left the fleet');
q1(qq{UPDATE $s.server_templates SET enabled = true WHERE id = 'web-nginx-pus-01'});
is(q1(qq{SELECT $s.sim_reload()}), '15', 'and comes back with sim_reload()');

# the engine's own copy of the catalog: automatic incidents draw from it
# (a session may try a rate with sim_tick())
is($node->safe_psql('postgres', qq{SET sim_metrics.incident_rate = 1000; SELECT $s.sim_tick(300) > 0;
	SELECT count(*) > 0 FROM $s.sim_scenario_runs() WHERE automatic}), "t\nt",
	'automatic incidents draw from the catalog the engine read');

# the worker goes on flushing after all that
my $n0 = q1(qq{SELECT count(*) FROM $s.server_metrics_history});
ok(defined wait_value($node, qq{SELECT count(*) FROM $s.server_metrics_history}, sub { $_[0] > $n0 }, 30),
	'the worker keeps flushing into "Sim Metrics"');
is(q1(qq{SELECT last_error IS NULL OR last_error !~ 'does not exist', flush_errors FROM $s.sim_status()}),
	't|0', 'no relation was missed, no flush failed');
is(join("\n", grep { /(?:ERROR|WARNING):.*does not exist/ } split /\n/, slurp_file($node->logfile)), '',
	'nothing in the server log about a relation that does not exist');

$node->stop;
done_testing();
