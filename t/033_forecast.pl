
# Forecasts and predicted alerts (1.9) as a user meets them: an update
# from 1.8 whose exposed schema gains the new reads when sim_expose() runs
# again; on 16 days of history with automatic incidents (a fixed seed),
# backtests of sim_forecast() against what happened and against the value
# a day before, the intervals' coverage, and sim_alert_report()'s floor;
# the same forecaster on NAB's AWS series (test/nab) through
# sim_forecast_series().
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

my $node = sim_node('forecast', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.enabled = off
sim_metrics.seed = 33
sim_metrics.incident_rate = 2
sim_metrics.start_time = '2026-01-05 00:00:00+00'
EOC
sub q1 { return $node->safe_psql('postgres', $_[0]); }

# 1. from 1.8: sim_expose() run again adds the forecast reads to its schema
q1(q{CREATE EXTENSION sim_metrics VERSION '1.8'});
ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30), 'fleet loaded, paused');
q1(q{CREATE ROLE dash LOGIN; CREATE SCHEMA api});
is(q1(q{SELECT count(*) FROM sim_expose('api', ARRAY['dash'])}), '6', 'at 1.8, six wrappers');
q1(q{ALTER EXTENSION sim_metrics UPDATE TO '1.9'});
is(q1(q{SELECT extversion FROM pg_extension WHERE extname = 'sim_metrics'}), '1.9', 'updated to 1.9');
is(q1(q{SELECT count(*) FROM pg_proc WHERE pronamespace = 'api'::regnamespace}), '6', 'the wrappers made before stay as they were');
is(q1(q{SELECT count(*) FROM sim_expose('api', ARRAY['dash'])}), '8', 'sim_expose() again: eight, with sim_forecast and sim_predict_alerts');

# 2. 16 days of history with automatic incidents
q1('TRUNCATE server_metrics_history, scenario_execution_log');
is(q1(q{SELECT sim_backfill('16 days')}), 15 * 16 * 2880, '16 days backfilled (from start_time)');
q1('SELECT sim_tick(1)');

# backtests: as of every 6 hours of the last two days (a day of actuals
# after each), every server and metric, horizons 1 h and 6 h
q1(q{CREATE TABLE bt AS
     WITH o AS (SELECT s.sim_time - interval '1 day' - g * interval '6 hours' AS as_of
                  FROM sim_status() s, generate_series(0, 7) g),
          m AS (SELECT unnest(ARRAY['cpu_usage', 'memory_usage', 'disk_usage', 'network_usage']) AS metric)
     SELECT t.id AS server_id, m.metric, o.as_of, f.sim_time, f.forecast, f.lo_80, f.hi_80, f.lo_95, f.hi_95,
            f.sim_time - o.as_of AS ahead
       FROM o CROSS JOIN m CROSS JOIN server_templates t
      CROSS JOIN LATERAL sim_forecast(t.id, m.metric, '6 hours', '14 days', o.as_of) f
      WHERE f.sim_time - o.as_of IN (interval '1 hour', interval '6 hours')});
q1(q{CREATE TABLE actual AS
     SELECT h.server_id, h."timestamp", v.metric, v.value
       FROM server_metrics_history h
      CROSS JOIN LATERAL (VALUES ('cpu_usage', h.cpu_usage), ('memory_usage', h.memory_usage),
            ('disk_usage', h.disk_usage),
            ('network_usage', h.network_io::float8 * 100 / 1250000000)) v(metric, value)
      WHERE h."timestamp" >= (SELECT sim_time - interval '4 days' FROM sim_status())});
q1('CREATE INDEX ON actual (server_id, metric, "timestamp")');
my %h = map { my @f = split /\|/; ($f[0] => \@f) } split /\n/, q1(q{
	SELECT b.ahead, count(*), round((avg(abs(b.forecast - a.value)) / avg(abs(y.value - a.value)))::numeric, 3),
	       round(avg((a.value BETWEEN b.lo_80 AND b.hi_80)::int)::numeric, 3),
	       round(avg((a.value BETWEEN b.lo_95 AND b.hi_95)::int)::numeric, 3)
	  FROM bt b
	  JOIN actual a ON a.server_id = b.server_id AND a.metric = b.metric AND a."timestamp" = b.sim_time
	  JOIN actual y ON y.server_id = b.server_id AND y.metric = b.metric AND y."timestamp" = b.sim_time - interval '1 day'
	 GROUP BY b.ahead});
my ($h1, $h6) = ($h{'01:00:00'}, $h{'06:00:00'});
diag "1 h: $h1->[1] points, MAE $h1->[2] of the day before's, coverage $h1->[3] (80 %), $h1->[4] (95 %)";
diag "6 h: $h6->[1] points, MAE $h6->[2] of the day before's, coverage $h6->[3] (80 %), $h6->[4] (95 %)";
cmp_ok($h1->[1], '>=', 400, 'every backtest point has its actual and the value a day before');
cmp_ok($h1->[2], '<=', 0.8, '1 h ahead: at most 0.8 of the error of the value a day before (seed 33)');
cmp_ok($h6->[2], '<=', 1.0, '6 h ahead: no worse than the value a day before');
cmp_ok($h1->[3], '>=', 0.7, 'the 80 % interval holds at least 70 % of what happened');
cmp_ok($h1->[4], '>=', 0.88, 'the 95 % interval at least 88 %');

# predicted alerts, replayed over the last 14 days and scored
my @a = split /\|/, q1(q{
	SELECT crossings, reachable, predicted, round(recall::numeric, 2), median_lead,
	       predictions, false_predictions, round(false_per_server_day::numeric, 3)
	  FROM sim_alert_report((SELECT sim_time - interval '14 days' FROM sim_status()),
	                        (SELECT sim_time - interval '1 hour' FROM sim_status()))});
diag "alerts: $a[0] leak/disk_full critical crossings ($a[1] reachable 5 min ahead), $a[2] predicted, median lead $a[4]; "
  . "$a[5] predictions, $a[6] false, $a[7] a server-day";
cmp_ok($a[0], '>=', 3, 'the span has leak and full-disk crossings to predict');
# measured: 5 of 7 predicted, 0.067 false a server-day (the floors leave room)
cmp_ok($a[2], '>=', 3, 'at least three are predicted 5 minutes ahead (seed 33)');
cmp_ok($a[7], '<=', 0.15, 'at most 0.15 false predictions a server-day (seed 33)');

# 3. NAB's AWS series: a day ahead from the last day but one, against what happened
my $nab = "$FindBin::RealBin/../test/nab";
q1(q{CREATE TABLE nab_raw (file text, "timestamp" timestamp, value float8)});
opendir(my $dh, "$nab/realAWSCloudwatch") or die "cannot read $nab: $!";
my @files = sort grep { /\.csv$/ } readdir $dh;
closedir $dh;
for my $f (@files)
{
	q1(qq{CREATE TEMP TABLE t ("timestamp" timestamp, value float8);
	      COPY t FROM '$nab/realAWSCloudwatch/$f' (FORMAT csv, HEADER true);
	      INSERT INTO nab_raw SELECT '$f', "timestamp", value FROM t});
}
my @n = split /\|/, q1(q{
	WITH cut AS (SELECT file, max("timestamp") - interval '1 day' AS at FROM nab_raw GROUP BY file),
	f AS (SELECT c.file, s.ts, s.forecast, s.lo_95, s.hi_95
	        FROM cut c CROSS JOIN LATERAL sim_forecast_series(
	             (SELECT array_agg(r."timestamp" AT TIME ZONE 'UTC' ORDER BY r."timestamp") FROM nab_raw r WHERE r.file = c.file AND r."timestamp" <= c.at),
	             (SELECT array_agg(r.value ORDER BY r."timestamp") FROM nab_raw r WHERE r.file = c.file AND r."timestamp" <= c.at),
	             '1 day') s)
	SELECT count(DISTINCT f.file), count(*),
	       round((avg(abs(f.forecast - a.value)) / avg(abs(y.value - a.value)))::numeric, 3),
	       round(avg((a.value BETWEEN f.lo_95 AND f.hi_95)::int)::numeric, 3)
	  FROM f JOIN nab_raw a ON a.file = f.file AND a."timestamp" AT TIME ZONE 'UTC' = f.ts
	  JOIN nab_raw y ON y.file = f.file AND y."timestamp" AT TIME ZONE 'UTC' = f.ts - interval '1 day'});
diag "NAB AWS: $n[0] series, $n[1] points a day ahead: MAE $n[2] of the value a day before's, 95 % coverage $n[3]";
is($n[0], '17', 'every AWS series forecast');
cmp_ok($n[2], '<=', 1.0, 'no worse than the value a day before');

done_testing();
