
# The anomaly detector (1.8) as a user meets it: an upgrade from 1.7 that
# keeps sim_expose()'s wrappers working; the score of every sample against
# the ground truth of a backfill with automatic incidents (a floor on a
# fixed seed); the same detector on real data no one here made, NAB's AWS
# CloudWatch series (test/nab), through sim_anomaly_scores() and
# sim_score_detector().
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

my $node = sim_node('detect', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.enabled = off
sim_metrics.seed = 31
sim_metrics.incident_rate = 2
sim_metrics.start_time = '2026-01-05 00:00:00+00'
EOC
sub q1 { return $node->safe_psql('postgres', $_[0]); }

# 1. from 1.7: the exposed wrappers follow the new columns, grants kept
q1(q{CREATE EXTENSION sim_metrics VERSION '1.7'});
ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30), 'fleet loaded, paused');
q1(q{CREATE ROLE dash LOGIN; CREATE ROLE "Dash Board" LOGIN; CREATE SCHEMA api});
q1(q{SELECT count(*) FROM sim_expose('api', ARRAY['dash', 'Dash Board'])});
q1(q{ALTER EXTENSION sim_metrics UPDATE TO '1.8'});
is(q1(q{SELECT extversion FROM pg_extension WHERE extname = 'sim_metrics'}), '1.8', 'updated to 1.8');
q1('SELECT sim_tick(80)');
is($node->safe_psql('postgres', q{SET ROLE dash; SELECT count(*), count(anomaly_score), count(*) FILTER (WHERE anomaly_score BETWEEN 0 AND 1) FROM api.sim_current_metrics()}),
	'15|15|15', 'the wrapper of sim_current_metrics() shows the score, to the role it was exposed to');
is($node->safe_psql('postgres', q{SET ROLE dash; SELECT server_id, source, anomaly_score IS NOT NULL FROM api.sim_server_metrics('web-nginx-icn-01')}),
	'web-nginx-icn-01|memory|t', 'and so does the wrapper of sim_server_metrics()');
is(q1(q{SELECT has_function_privilege('public', 'api.sim_current_metrics()', 'EXECUTE'),
               has_function_privilege('dash', 'api.sim_current_metrics()', 'EXECUTE'),
               pg_get_userbyid(proowner) FROM pg_proc WHERE oid = 'api.sim_current_metrics()'::regprocedure}),
	'f|t|' . q1('SELECT current_user'), 'the wrapper keeps its owner and grants');
is($node->safe_psql('postgres', q{SET ROLE "Dash Board"; SELECT count(anomaly_score) FROM api.sim_current_metrics()}),
	'15', 'and its grant to a role whose name needs quoting');
is(q1(q{SELECT count(*) FROM pg_depend WHERE deptype = 'e'
	AND objid IN ('api.sim_current_metrics()'::regprocedure, 'api.sim_server_metrics(text)'::regprocedure)}),
	'0', 'the re-created wrappers stay the user\'s, not the extension\'s (pg_dump keeps them)');

# 2. a week of history with automatic incidents (2 a day), scored against its truth
q1('TRUNCATE server_metrics_history, scenario_execution_log');
is(q1(q{SELECT sim_backfill('7 days')}), 15 * 20160, 'a week backfilled (from start_time)');
my $runs = q1(q{SELECT count(DISTINCT (server_id, run_id)) FROM sim_incident_labels});
cmp_ok($runs, '>=', 10, "$runs runs on servers to find");
my %r = map { my @f = split /\|/; ($f[0] => \@f) } split /\n/, q1(q{
	SELECT profile, round(score::numeric, 1), threshold, true_positives, false_positives, false_negatives,
	       round(recall::numeric, 3), median_delay
	  FROM sim_detector_report((SELECT min("timestamp") FROM server_metrics_history),
	                           (SELECT max("timestamp") + interval '1 second' FROM server_metrics_history))});
is(join(',', sort keys %r), 'reward_low_fn,reward_low_fp,standard', 'one row per NAB profile');
my $s = $r{standard};
diag "standard: score $s->[1] at threshold $s->[2]: $s->[3] TP, $s->[4] FP, $s->[5] FN, recall $s->[6], median delay $s->[7]";
is($s->[3] + $s->[5], $runs, 'every run on a server is one window');
cmp_ok($s->[6], '>=', 0.7, 'recall at the best threshold: at least 0.7 (seed 31)');
cmp_ok($s->[4], '<=', 15, 'false alarms: at most one per server-week');
cmp_ok($s->[1], '>=', 50, 'NAB standard score: at least 50 (seed 31)');

# 3. NAB's AWS CloudWatch series, through the SQL functions
my $nab = "$FindBin::RealBin/../test/nab";
q1(q{CREATE TABLE nab_raw (file text, "timestamp" timestamp, value float8);
     CREATE TABLE nab_windows (server_id text, window_start timestamptz, window_end timestamptz)});
opendir(my $dh, "$nab/realAWSCloudwatch") or die "cannot read $nab: $!";
my @files = sort grep { /\.csv$/ } readdir $dh;
closedir $dh;
is(scalar(@files), 17, '17 AWS series vendored');
for my $f (@files)
{
	q1(qq{CREATE TEMP TABLE t ("timestamp" timestamp, value float8);
	      COPY t FROM '$nab/realAWSCloudwatch/$f' (FORMAT csv, HEADER true);
	      INSERT INTO nab_raw SELECT 'realAWSCloudwatch/$f', "timestamp", value FROM t});
}
q1(qq{CREATE TEMP TABLE w (file text, a timestamp, b timestamp);
      COPY w FROM '$nab/windows.csv' (FORMAT csv, HEADER true);
      INSERT INTO nab_windows SELECT file, a AT TIME ZONE 'UTC', b AT TIME ZONE 'UTC' FROM w});
is(q1('SELECT count(*), count(DISTINCT file) FROM nab_raw'), '67740|17', 'the series loaded');
q1(q{CREATE TABLE nab_scores AS
     SELECT f.file AS server_id, s.ts AS "timestamp", s.onset AS score
       FROM (SELECT DISTINCT file FROM nab_raw) f
      CROSS JOIN LATERAL sim_anomaly_scores(
            (SELECT array_agg("timestamp" AT TIME ZONE 'UTC' ORDER BY "timestamp") FROM nab_raw r WHERE r.file = f.file),
            (SELECT array_agg(value ORDER BY "timestamp") FROM nab_raw r WHERE r.file = f.file)) s});
is(q1('SELECT count(*), count(score) FROM nab_scores'), '67740|67740', 'every row scored');
my %n = map { my @f = split /\|/; ($f[0] => \@f) } split /\n/, q1(q{
	SELECT profile, round(score::numeric, 1), true_positives, false_negatives
	  FROM sim_score_detector('nab_scores', 'nab_windows')});
diag "NAB realAWSCloudwatch: standard $n{standard}[1], reward_low_fp $n{reward_low_fp}[1], reward_low_fn $n{reward_low_fn}[1]";
is($n{standard}[2] + $n{standard}[3], 30, 'the 30 labelled windows');
cmp_ok($n{standard}[1], '>=', 50, 'NAB standard on the AWS series (the onset reading): at least 50');

done_testing();
