
# sim_backfill(): months of labelled history from the same model as live.
#  1. on a fresh install with the worker live, one call writes the span
#     ending at the current simulated time and replaces the few rows the
#     fleet wrote since it started;
#  2. every backfilled row, and the scenario log, equal bit for bit what a
#     paused twin cluster started at the backfill's origin and stepped with
#     sim_tick() writes (automatic incidents and one placed by hand);
#  3. live continues from the backfill's end: tick K + 1 is the twin's
#     tick K + 1, one step later, no gap, no duplicate;
#  4. a database with history is refused; bad input is refused before a
#     row is written;
#  5. progress is visible (pg_stat_progress_copy, sim_status()), and
#     pg_cancel_backend and statement_timeout leave nothing, the fleet as
#     it was, the ticker going on;
#  6. rows the table refuses go to the dead letters; whatever is attached
#     to the table runs as sim_metrics_writer;
#  7. sim_history_labelled labels every sample.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SimMetricsTest;

# 30 simulated seconds a tick; incidents often enough to have several a day
my $common = <<'EOC';
sim_metrics.database_name = 'postgres'
sim_metrics.seed = 4242
sim_metrics.tick_interval = '500ms'
sim_metrics.time_scale = 60
sim_metrics.incident_rate = 24
sim_metrics.max_incidents = 2
sim_metrics.history_buffer = 4000
sim_metrics.flush_interval = '1s'
sim_metrics.backfill_workers = 2
EOC
my $step = 30;
my $ticks = 86400 / $step;    # one simulated day

my $live = sim_node('bf_live', $common);
$live->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
my $n = $live->safe_psql('postgres', 'SELECT count(*) FROM server_templates WHERE enabled');

# ---------------------------------------------------------------------------
# 1. a fresh install: the worker is live and has written its first rows
# ---------------------------------------------------------------------------
ok( defined wait_value($live, 'SELECT tick FROM sim_status()', sub { $_[0] >= 20 }, 30),
	'the live fleet ticks (its samples wait in the ring for the writer)');

my $placed_at = $live->safe_psql('postgres',
	"SELECT (sim_time - interval '8 hours')::text FROM sim_current_metrics() LIMIT 1");
my $incidents = qq{[{"scenario": "memory_leak", "servers": ["api-was-icn-02"], "at": "$placed_at",
	"intensity": 0.9, "duration": "40 min"}]};
my ($ret, $out, $err) = $live->psql('postgres',
	"SET client_min_messages = debug1; SELECT sim_backfill('1 day', '$incidents')");
is($ret, 0, 'sim_backfill(1 day) on a fresh install') or diag $err;
is($out, $ticks * $n, "it wrote $ticks ticks x $n servers");
like($err, qr/replaces the \d+ rows the fleet wrote since it started/,
	'it said it replaced the running session\'s first rows');
like($err, qr/rows with 2 insert workers/, 'two insert workers took their share');

my ($bf_first, $bf_last, $bf_ticks, $bf_runs) = split /\|/, $live->safe_psql('postgres',
	"SELECT min(\"timestamp\"), max(\"timestamp\"), count(DISTINCT tick), count(DISTINCT scenario_run_id)
	   FROM server_metrics_history WHERE session_id LIKE 'backfill-%'");
is($bf_ticks, $ticks, "ticks 1..$ticks");
cmp_ok($bf_runs, '>=', 2, "$bf_runs scenario runs acted in the backfilled day");
is( $live->safe_psql('postgres',
		"SELECT count(*) FROM server_metrics_history WHERE session_id NOT LIKE 'backfill-%' AND tick <= $ticks"),
	'0', 'no row of the replaced session is left');

# ---------------------------------------------------------------------------
# 3. live goes on from the backfill's end
# ---------------------------------------------------------------------------
ok( defined wait_value($live,
		"SELECT count(*) FROM server_metrics_history WHERE tick > $ticks",
		sub { $_[0] >= 3 * $n }, 30),
	'live ticks follow the backfill');
is( $live->safe_psql('postgres',
		"SELECT min(tick) || '|' || (min(\"timestamp\") - '$bf_last'::timestamptz)
		   FROM server_metrics_history WHERE tick > $ticks"),
	($ticks + 1) . '|00:00:30', 'the first live tick is K + 1, one step after the last backfilled one');
is( $live->safe_psql('postgres',
		"SELECT count(*) FROM (SELECT server_id, tick FROM server_metrics_history
		   GROUP BY 1, 2 HAVING count(*) > 1) d"),
	'0', 'no duplicate (server, tick)');
$live->safe_psql('postgres', 'SELECT sim_stop()');
$live->safe_psql('postgres', 'SELECT sim_flush()');
is( $live->safe_psql('postgres',
		"SELECT count(*) FROM (SELECT server_id, max(tick) - min(tick) + 1 = count(*) AS whole
		   FROM server_metrics_history GROUP BY 1) s WHERE whole"),
	$n, 'no gap: every server has every tick from 1 on');
my $live_end = $live->safe_psql('postgres', 'SELECT max(tick) FROM server_metrics_history');

# ---------------------------------------------------------------------------
# 2. the twin: paused, started at the backfill's origin, stepped by sim_tick()
# ---------------------------------------------------------------------------
my $origin = $live->safe_psql('postgres',
	"SELECT to_char((min(\"timestamp\") - interval '$step seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
	   FROM server_metrics_history");
my $twin = sim_node('bf_twin', $common . "sim_metrics.enabled = off\nsim_metrics.start_time = '$origin'\n");
$twin->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($twin, 'SELECT servers FROM sim_status()', $n, 30), 'twin loaded');
my $placed_tick = $live->safe_psql('postgres',
	"SELECT (parameters->'ticks'->>0)::int FROM scenario_execution_log
	  WHERE scenario_name = 'memory_leak' AND parent_run_id IS NULL
	    AND affected_servers = '[\"api-was-icn-02\"]' AND intensity = 0.90 LIMIT 1");
ok($placed_tick > 1, "the placed incident starts at tick $placed_tick");
# Stepped as live ticking steps it: a minute of ticks at a time, the writer
# keeping up with the log between them (a finished run's slot is reused once
# it is logged; sim_tick(2880) at once would outrun the writer).
sub twin_steps
{
	my ($from, $to) = @_;
	my $sql = '';
	for (my $t = $from; $t < $to; $t += 60)
	{
		my $k = $to - $t < 60 ? $to - $t : 60;
		$sql .= "SELECT sim_tick($k);\nSELECT sim_flush();\n";
	}
	$twin->safe_psql('postgres', $sql) if $sql ne '';
}
twin_steps(0, $placed_tick - 1);
$twin->safe_psql('postgres',
	"SELECT sim_scenario_start('memory_leak', ARRAY['api-was-icn-02'], 0.9, '40 min')");
twin_steps($placed_tick - 1, $live_end);

my $rows_sql = "SELECT md5(string_agg(concat_ws(',', server_id, tick, \"timestamp\", cpu_usage,
		memory_usage, disk_usage, network_io, status, scenario_run_id, anomaly_score), ';' ORDER BY server_id, tick)),
		count(*) FROM server_metrics_history WHERE tick <= %d";
is( $live->safe_psql('postgres', sprintf($rows_sql, $ticks)),
	$twin->safe_psql('postgres', sprintf($rows_sql, $ticks)),
	'every backfilled row equals the twin\'s, bit for bit');
is( $live->safe_psql('postgres', sprintf($rows_sql, $live_end)),
	$twin->safe_psql('postgres', sprintf($rows_sql, $live_end)),
	"and the live ticks after it too, up to tick $live_end");

my $log_sql = "SELECT md5(string_agg(concat_ws(',', run_id, parent_run_id, scenario_name, phase,
		affected_servers, intensity, started_at, duration_seconds, parameters), ';' ORDER BY run_id, started_at, phase)),
		count(*) FROM scenario_execution_log WHERE started_at <= '$bf_last'";
my $log_live = $live->safe_psql('postgres', $log_sql);
like($log_live, qr/\|[1-9]\d*$/, "the backfill logged its runs ($log_live)");
is($log_live, $twin->safe_psql('postgres', $log_sql),
	'the scenario log equals the twin\'s');
is( $live->safe_psql('postgres',
		"SELECT count(*) FROM scenario_execution_log WHERE ended_at <= '$bf_last'"),
	$twin->safe_psql('postgres',
		"SELECT count(*) FROM scenario_execution_log WHERE ended_at <= '$bf_last'"),
	'the same phases ended within the day');

# ---------------------------------------------------------------------------
# 7. the labelled view
# ---------------------------------------------------------------------------
is( $live->safe_psql('postgres',
		"SELECT count(*) FILTER (WHERE is_incident) = count(*) FILTER (WHERE run_id IS NOT NULL)
		    AND count(*) FILTER (WHERE is_incident AND phase IS NULL) = 0
		    AND count(*) FILTER (WHERE NOT is_incident AND (phase IS NOT NULL OR scenario IS NOT NULL)) = 0
		    AND count(*) FILTER (WHERE is_incident) > 0
		   FROM sim_history_labelled WHERE tick <= $ticks"),
	't', 'sim_history_labelled: every incident sample has its scenario and phase, normal ones none');
is( $live->safe_psql('postgres',
		"SELECT string_agg(DISTINCT phase, ',' ORDER BY phase) FROM sim_history_labelled
		  WHERE run_id = (SELECT run_id FROM scenario_execution_log WHERE scenario_name = 'memory_leak'
		                   AND affected_servers = '[\"api-was-icn-02\"]' AND intensity = 0.90 LIMIT 1)"),
	'onset,peak,recovery,warning', 'the placed incident shows its four phases');

# ---------------------------------------------------------------------------
# 4. history already there; bad input
# ---------------------------------------------------------------------------
my $count = $live->safe_psql('postgres', 'SELECT count(*) FROM server_metrics_history');
($ret, $out, $err) = $live->psql('postgres', "SELECT sim_backfill('1 hour')");
like($err, qr/writes the past of a fleet that has none, and this one has history/,
	'a second backfill is refused: the fleet has history');
like($err, qr/HINT:.*TRUNCATE/, 'with a hint');

# bad input is checked on an empty fleet (one with history is refused first)
my $fresh = sim_node('bf_fresh', $common . "sim_metrics.enabled = off\n");
$fresh->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($fresh, 'SELECT servers FROM sim_status()', $n, 30), 'a paused fresh fleet');
my $at = $fresh->safe_psql('postgres',
	"SELECT (sim_time - interval '30 min')::text FROM sim_current_metrics() LIMIT 1");
my @bad = (
	["NULL", qr/span must not be NULL/],
	["'-1 day'", qr/span must be a positive interval/],
	["'1 second'", qr/span is shorter than one tick/],
	["'1 hour', '{\"scenario\": \"cpu_spike\"}'", qr/incidents must be a JSON array/],
	["'1 hour', '[5]'", qr/each incident must be a JSON object/],
	["'1 hour', '[{\"scenario\": \"nope\", \"servers\": [\"web-nginx-icn-01\"], \"at\": \"$at\"}]'",
		qr/scenario "nope" does not exist/],
	["'1 hour', '[{\"scenario\": \"cpu_spike\", \"servers\": [\"web-nginx-icn-99\"], \"at\": \"$at\"}]'",
		qr/incidents\[0\]: server "web-nginx-icn-99" is not in the fleet/],
	["'1 hour', '[{\"scenario\": \"cpu_spike\", \"servers\": [\"web-nginx-icn-01\"], \"at\": \"2001-01-01\"}]'",
		qr/incident at 2001-01-01 is outside the backfill/],
	["'1 hour', '[{\"scenario\": \"cpu_spike\", \"servers\": [\"web-nginx-icn-01\"], \"at\": \"$at\", \"when\": 1}]'",
		qr/unknown incident field: when/],
	["'1 hour', '[{\"scenario\": \"cpu_spike\", \"servers\": [\"web-nginx-icn-01\"], \"at\": \"$at\", \"intensity\": 2}]'",
		qr/intensity must be greater than 0 and at most 1/],
	["'1 hour', '[{\"scenario\": \"cpu_spike\", \"servers\": [\"web-nginx-icn-01\"], \"at\": \"not a time\"}]'",
		qr/invalid input syntax for type timestamp with time zone.*\n.*incidents\[0\]\.at/s],
	["'1 hour', '[{\"scenario\": \"slow_database\", \"servers\": [\"web-nginx-icn-01\"], \"at\": \"$at\"}]'",
		qr/scenario "slow_database" suits database; server "web-nginx-icn-01" is web/],
	["'1 hour', '[{\"scenario\": \"cpu_spike\", \"at\": \"$at\"}]'",
		qr/an incident needs "servers"/],
);
foreach my $b (@bad)
{
	my ($args, $re) = @$b;
	($ret, $out, $err) = $fresh->psql('postgres', "SELECT sim_backfill($args)");
	like($err, $re, "refused: sim_backfill($args)");
}
is($fresh->safe_psql('postgres', 'SELECT count(*) FROM server_metrics_history'), '0',
	'nothing written by refused calls');
is($fresh->safe_psql('postgres', "SELECT worker_state NOT LIKE 'backfilling%' FROM sim_status()"), 't',
	'and the fleet is not held');

# ---------------------------------------------------------------------------
# 5. progress, cancel, statement_timeout
# ---------------------------------------------------------------------------
my $bg = $fresh->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/started/, "\\echo started\nSELECT sim_backfill('120 days');\n");
my $pid = wait_value($fresh,
	"SELECT p.pid FROM pg_stat_progress_copy p JOIN pg_stat_activity a USING (pid)
	  WHERE a.backend_type = 'client backend' AND p.tuples_processed > 0",
	sub { $_[0] =~ /^\d+$/ }, 30, 'a COPY in progress');
ok(defined $pid, 'pg_stat_progress_copy shows the backfill');
$pid //= 0;
is( $fresh->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'sim_metrics backfill'"),
	'2', 'two insert workers help it (sim_metrics.backfill_workers = 2)');
like($fresh->safe_psql('postgres', 'SELECT worker_state FROM sim_status()'),
	qr/^backfilling: \d+% \(\d+ of 345600 ticks, \d+ rows\)$/, 'sim_status() shows its progress');
like($fresh->psql('postgres', 'SELECT sim_tick()', stderr => \$err) && $err,
	qr/sim_tick\(\) is not possible while a backfill holds the fleet/, 'sim_tick() is refused meanwhile');
$fresh->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
ok(defined wait_until($fresh, "SELECT count(*) FROM pg_stat_progress_copy", '0', 30), 'cancelled');
ok( defined wait_until($fresh,
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'sim_metrics backfill'", '0', 30),
	'its insert workers are gone');
$bg->quit;
is($fresh->safe_psql('postgres', 'SELECT count(*) FROM server_metrics_history'), '0',
	'pg_cancel_backend left nothing');
is($fresh->safe_psql('postgres', "SELECT worker_state NOT LIKE 'backfilling%' FROM sim_status()"), 't',
	'the fleet is released');

($ret, $out, $err) = $fresh->psql('postgres',
	"SET statement_timeout = '300ms'; SELECT sim_backfill('120 days')");
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout stops it');
is($fresh->safe_psql('postgres', 'SELECT count(*) FROM server_metrics_history'), '0',
	'and leaves nothing');
is($fresh->safe_psql('postgres', 'SELECT tick FROM sim_status()'), '0',
	'the fleet is as it was');
$fresh->safe_psql('postgres', 'SELECT sim_tick(2)');
is($fresh->safe_psql('postgres', 'SELECT tick FROM sim_status()'), '2',
	'and steps again');

# ---------------------------------------------------------------------------
# 6. refused rows, and what runs attached to the table
# ---------------------------------------------------------------------------
$fresh->safe_psql('postgres', q{
SELECT sim_flush();
TRUNCATE server_metrics_history;
CREATE TABLE seen_as (who text);
GRANT INSERT ON seen_as TO PUBLIC;
CREATE FUNCTION note_user() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO public.seen_as VALUES (current_user); RETURN NULL; END$$;
CREATE TRIGGER note_user AFTER INSERT ON server_metrics_history
  FOR EACH STATEMENT EXECUTE FUNCTION note_user();
CREATE FUNCTION note_user_deferred() RETURNS trigger LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO public.seen_as VALUES ('deferred ' || current_user); RETURN NULL; END$$;
CREATE CONSTRAINT TRIGGER note_user_deferred AFTER INSERT ON server_metrics_history
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION note_user_deferred();
ALTER TABLE server_metrics_history ADD CONSTRAINT no_replica CHECK (server_id <> 'db-mysql-icn-replica');
});
# a day: the insert workers meet the refusal too
($ret, $out, $err) = $fresh->psql('postgres', "SELECT sim_backfill('1 day')");
is($ret, 0, 'a backfill into a table that refuses some rows') or diag $err;
is($out, $ticks * ($n - 1), 'it wrote the rows the table takes');
is( $fresh->safe_psql('postgres',
		"SELECT count(*) || ' ' || min(sqlstate) FROM server_metrics_rejected WHERE server_id = 'db-mysql-icn-replica'"),
	"$ticks 23514", 'the refused rows are dead letters, with their SQLSTATE');
is($fresh->safe_psql('postgres', 'SELECT count(*) FROM server_metrics_history'), $ticks * ($n - 1),
	'and the history holds the others, once');
$fresh->safe_psql('postgres', 'SELECT sim_tick(1); SELECT sim_flush();');
is($fresh->safe_psql('postgres', 'SELECT string_agg(DISTINCT who, \',\' ORDER BY who) FROM seen_as'),
	'deferred sim_metrics_writer,sim_metrics_writer',
	'the triggers ran as sim_metrics_writer, the deferred one too (at its statement\'s end, not at commit), in the backend and in its workers');

# in a transaction block: the workers keep their rows open until its commit
$fresh->safe_psql('postgres', q{
TRUNCATE server_metrics_history, scenario_execution_log, server_metrics_rejected;
ALTER TABLE server_metrics_history DROP CONSTRAINT no_replica;
DROP TRIGGER note_user_deferred ON server_metrics_history;
});
is( $fresh->safe_psql('postgres', "BEGIN;
		SELECT sim_backfill('1 day') = $ticks * $n;
		SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'sim_metrics backfill';
		SELECT count(*) FROM generate_series(1, 200000);
		COMMIT;"),
	"t\n2\n200000", 'in a transaction block, its two workers wait for the commit');
is($fresh->safe_psql('postgres', 'SELECT count(*) FROM server_metrics_history'), $ticks * $n,
	'and their rows commit with it');
ok( defined wait_until($fresh,
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'sim_metrics backfill'", '0', 30),
	'then they are gone');
$fresh->safe_psql('postgres', q{
TRUNCATE server_metrics_history, scenario_execution_log;
});
is( $fresh->safe_psql('postgres', "BEGIN; SELECT sim_backfill('1 day') > 0; ROLLBACK;
		SELECT count(*) FROM server_metrics_history;"),
	"t\n0", 'rolled back, the workers\' rows go too');

done_testing();
