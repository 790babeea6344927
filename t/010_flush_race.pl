# Flushers never write a sample twice: sim_flush() calls from a session race
# the worker's own frequent flushes; every (server, tick) is stored once.
# A writer flush that gives way to a session's sim_flush() is postponed:
# logged, neither an error nor a failed flush.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

my $node = sim_node('flushrace', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '50ms'
sim_metrics.flush_interval = '100ms'
EOC
$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(defined wait_value($node, 'SELECT flushed_samples FROM sim_status()',
		sub { $_[0] > 0 }, 30),
	'the worker flushes by itself');

# 300 sim_flush() calls, each its own transaction, while the worker flushes
my $written = $node->safe_psql('postgres', q{
	DO $$ DECLARE n bigint := 0; BEGIN
	  FOR i IN 1..300 LOOP
	    n := n + sim_flush();
	    COMMIT;
	    PERFORM pg_sleep(0.01);
	  END LOOP;
	  RAISE NOTICE 'written %', n;
	END $$;
	SELECT 1});
is($written, '1', 'sim_flush() loop ran');

$node->safe_psql('postgres', 'SELECT sim_stop()');
ok(defined wait_until($node, 'SELECT pending_samples FROM sim_status()', '0', 30),
	'everything flushed');
is( $node->safe_psql('postgres', q{
		SELECT count(*) = count(DISTINCT (server_id, tick)) FROM server_metrics_history}),
	't', 'no (server, tick) stored twice');
is( $node->safe_psql('postgres', q{
		SELECT bool_and(n = hi - lo + 1)
		  FROM (SELECT server_id, count(*) AS n, min(tick) AS lo, max(tick) AS hi
		          FROM server_metrics_history GROUP BY server_id) s}),
	't', 'no tick missing for any server');
is( $node->safe_psql('postgres',
		'SELECT flushed_samples = (SELECT count(*) FROM server_metrics_history) FROM sim_status()'),
	't', 'flushed_samples counts the rows stored');

# a transaction that called sim_flush() holds the flush until it ends
my $off = log_offset($node);
my $bg = $node->background_psql('postgres');
$bg->query_safe('BEGIN');
$bg->query_safe('SELECT sim_flush()');
$node->safe_psql('postgres', 'SELECT sim_tick(5)');
ok(defined wait_until($node, 'SELECT writer_state FROM sim_status()', 'flush postponed, retrying', 30),
	'the writer gives way: flush postponed, retrying');
is($node->safe_psql('postgres', 'SELECT errors, flush_errors FROM sim_status()'), '0|0',
	'giving way is neither an error nor a failed flush');
$bg->query_safe('COMMIT');
$bg->quit;
ok(defined wait_until($node, 'SELECT pending_samples FROM sim_status()', '0', 30),
	'flushed once the session\'s transaction ended');
my $log = log_since($node, $off);
like($log, qr/LOG:  another session is flushing history; flush postponed/, 'the postponement is logged');
unlike($log, qr/ERROR:/, 'not as an error');

$node->stop;
done_testing();
