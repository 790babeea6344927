
# Configuration edges: the extension without shared_preload_libraries, and a
# fleet larger than sim_metrics.max_servers.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

# ---------------------------------------------------------------------------
# 7. Without shared_preload_libraries: CREATE EXTENSION works, the functions
#    fail with SQLSTATE 55000 and point at shared_preload_libraries
# ---------------------------------------------------------------------------
{
	my $node = sim_node('nopreload', undef, no_preload => 1);

	# psql() rather than safe_psql(): a failure here must not hide test 9
	my $q = sub {
		my ($r, $o, $e) = $node->psql('postgres', $_[0]);
		return $r == 0 ? $o : "ERROR($r): $e";
	};
	my ($ret, $out, $err) =
	  $node->psql('postgres', 'CREATE EXTENSION sim_metrics');
	is($ret, 0, 'CREATE EXTENSION succeeds without preloading')
	  or diag "psql exit $ret: $err";
	unlike($err, qr/FATAL/, 'no FATAL while loading the library');
	is($q->("SELECT count(*) FROM server_templates WHERE is_default"),
		'15', 'default templates installed');
	is($q->("SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'sim_metrics %'"),
		'0', 'no worker runs');

	for my $call ('SELECT * FROM sim_current_metrics()',
		'SELECT * FROM sim_status()',
		'SELECT sim_tick()',
		'SELECT sim_tick(5)',
		'SELECT sim_start()',
		'SELECT sim_stop()',
		'SELECT sim_reload()')
	{
		($ret, $out, $err) =
		  $node->psql('postgres', "\\set VERBOSITY verbose\n$call");
		isnt($ret, 0, "$call fails");
		like($err, qr/ERROR:  55000: sim_metrics must be loaded via shared_preload_libraries/,
			"$call: SQLSTATE 55000, message names shared_preload_libraries");
		like($err, qr/HINT:  .*shared_preload_libraries/,
			"$call: hint names shared_preload_libraries");
	}

	# template edits do not fail for want of the worker
	($ret, $out, $err) = $node->psql('postgres', q{
		INSERT INTO server_templates (id, name, hostname, role, location)
		VALUES ('np-1', 'np', 'np.example', 'cache', 'Lab');
		UPDATE server_templates SET enabled = false WHERE id = 'np-1';
		DELETE FROM server_templates WHERE id = 'np-1';});
	is($ret, 0, 'template edits work without preloading') or diag $err;

	# -----------------------------------------------------------------------
	# The extension also created (without preloading, so unguarded) in a
	# second database: once preloaded, only sim_metrics.database_name owns
	# the one fleet; calls from the other database are refused, and its
	# edits do not disturb the fleet.
	# -----------------------------------------------------------------------
	$node->safe_psql('postgres', 'CREATE DATABASE elsewhere');
	$node->safe_psql('elsewhere', 'CREATE EXTENSION sim_metrics');
	$node->append_conf('postgresql.conf', <<'EOC');
shared_preload_libraries = 'sim_metrics'
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '200ms'
EOC
	$node->restart;
	ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30),
		'preloaded: the fleet of database postgres is loaded');
	for my $call ('SELECT * FROM sim_current_metrics()', 'SELECT * FROM sim_status()',
		'SELECT sim_tick()', 'SELECT sim_reload()')
	{
		($ret, $out, $err) =
		  $node->psql('elsewhere', "\\set VERBOSITY verbose\n$call");
		like($err, qr/ERROR:  55000: sim_metrics runs in database "postgres", not in "elsewhere"/,
			"$call from another database is refused");
	}
	$node->safe_psql('elsewhere', 'DELETE FROM server_templates');
	my @seen = quiet_window($node, 'SELECT servers FROM sim_status()', 2);
	is("@seen", '15', "the other database's edits leave the fleet alone");

	$node->stop;
}

# ---------------------------------------------------------------------------
# 9. max_servers smaller than the enabled templates
# ---------------------------------------------------------------------------
{
	my $node = sim_node('maxservers', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '200ms'
sim_metrics.max_servers = 10
EOC
	my $off = log_offset($node);
	$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');

	ok(wait_until($node,
			'SELECT servers, skipped_servers, max_servers FROM sim_status()',
			'10|5|10', 30),
		'servers = 10, skipped_servers = 5, max_servers = 10');
	my $pid = worker_pid($node);
	like($pid, qr/^\d+$/, 'worker runs');

	my $first10_sql = q{SELECT string_agg(id, ',' ORDER BY id COLLATE "C")
	                      FROM (SELECT id FROM server_templates WHERE enabled
	                            ORDER BY id COLLATE "C" LIMIT 10) s};
	my $live_sql = q{SELECT string_agg(server_id, ',' ORDER BY server_id COLLATE "C")
	                   FROM sim_current_metrics()};
	is($node->safe_psql('postgres', 'SELECT count(*) FROM sim_current_metrics()'),
		'10', 'sim_current_metrics() returns 10 rows');
	is($node->safe_psql('postgres', $live_sql),
		$node->safe_psql('postgres', $first10_sql),
		'the first 10 enabled templates by id (byte order)');

	ok(eval {
			$node->wait_for_log(
				qr/WARNING:  sim_metrics: 15 enabled templates exceed sim_metrics\.max_servers = 10/,
				$off);
			1;
		},
		'server log has the WARNING naming sim_metrics.max_servers');

	my $t = sim_tick_now($node);
	ok(defined wait_value($node, 'SELECT tick FROM sim_status()',
			sub { $_[0] >= $t + 3 }, 30),
		'the 10 servers tick');

	my ($ret, $out, $err) = $node->psql('postgres', 'SELECT sim_reload()');
	is($ret, 0, 'sim_reload() succeeds');
	is($out, '10', 'sim_reload() returns 10');
	like($err, qr/WARNING:  sim_metrics: 15 enabled templates exceed sim_metrics\.max_servers = 10/,
		'sim_reload() warns the client');
	like($err, qr/HINT:  .*sim_metrics\.max_servers/, '... with a hint naming the setting');

	# an id that sorts first in byte order ('Z' < 'a') pushes the 10th out
	$node->safe_psql('postgres', q{
		INSERT INTO server_templates (id, name, hostname, role, location)
		VALUES ('Zz-edge-01', 'Edge', 'zz-edge-01.example', 'web', 'Lab')});
	ok(wait_until($node, 'SELECT servers, skipped_servers FROM sim_status()', '10|6', 10),
		'16 enabled templates: 10 simulated, 6 skipped');
	ok(wait_until($node, $live_sql, $node->safe_psql('postgres', $first10_sql), 10),
		'the live fleet follows the new byte order');
	like($node->safe_psql('postgres', $live_sql), qr/^Zz-edge-01,/,
		'the new id is first');

	# disabling enough templates brings everything back under the cap
	$node->safe_psql('postgres', q{
		UPDATE server_templates SET enabled = false
		 WHERE id IN ('Zz-edge-01', 'web-nginx-icn-01', 'web-nginx-icn-02',
		              'web-nginx-pus-01', 'storage-s3gw-pus-01', 'storage-nfs-icn-01')});
	ok(wait_until($node, 'SELECT servers, skipped_servers FROM sim_status()', '10|0', 10),
		'exactly 10 enabled: none skipped');

	is(worker_pid($node), $pid, 'worker pid stable (no crash)');
	is($node->safe_psql('postgres', 'SELECT errors FROM sim_status()'), '0', 'no tick errors');
	my @bad = grep { !/WARNING/ } split /\n/, crash_lines(log_since($node, $off));
	is(join("\n", @bad), '', 'no errors or crashes in the log');

	$node->stop;
}

done_testing();
