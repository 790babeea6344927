
# The worker under faults: terminated, extension dropped under it, databases
# created and dropped around it, and a crash restart of the whole server.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SimMetricsTest;

my $node = sim_node('faults', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '200ms'
# PostgreSQL::Test::Cluster turns this off; test 11 needs the crash restart
restart_after_crash = on
EOC

$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($node, 'SELECT servers, tick >= 3 FROM sim_status()', '15|t', 30),
	'fleet loaded and ticking');

# ---------------------------------------------------------------------------
# 4. pg_terminate_backend(worker): a new worker continues the same fleet
# ---------------------------------------------------------------------------
{
	my $pid1 = worker_pid($node);
	like($pid1, qr/^\d+$/, 'one worker');
	my $session1 = $node->safe_psql('postgres', 'SELECT session_id FROM sim_status()');
	# jump far ahead, so that a reset to 0 could not climb back unnoticed
	cmp_ok($node->safe_psql('postgres', 'SELECT sim_tick(1000)'), '>=', 1000,
		'sim_tick(1000) while the worker runs');
	my $tick_before = sim_tick_now($node);

	is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid1)"),
		't', 'worker terminated');

	# the restart comes bgw_restart_time (5 s) later; meanwhile the fleet
	# stays in shared memory
	my $gap = wait_until($node,
		"SELECT running, servers, (SELECT count(*) FROM sim_current_metrics()), tick
		   FROM sim_status()",
		qr/^f\|15\|15\|\d+$/, 4);
	ok(defined $gap, 'while no worker runs: running = false, 15 servers still readable');
	my $tick_gap = defined $gap ? (split /\|/, $gap)[3] : -1;
	cmp_ok($tick_gap, '>=', $tick_before, 'tick kept during the gap');

	my $pid2 = wait_new_worker($node, $pid1, 'new worker pid');
	ok(defined $pid2, 'a new worker appears');
	$pid2 //= '';
	isnt($pid2, $pid1, "new worker pid ($pid2) differs from the old ($pid1)");

	# every tick seen from now on must be >= the tick before the restart
	my @ticks;
	my $after = wait_value($node, 'SELECT tick FROM sim_status()',
		sub { push @ticks, $_[0]; $_[0] >= $tick_gap + 3 }, 30, 'ticks resume');
	ok(defined $after, 'ticks resume after the restart');
	my ($min) = sort { $a <=> $b } @ticks;
	cmp_ok($min // -1, '>=', $tick_gap,
		"tick continues from $tick_gap, not from 0 (lowest seen: " . ($min // 'none') . ')');
	my $st = sim_status_hash($node);
	is($st->{pid}, $pid2, 'sim_status().pid is the new worker');
	is($st->{running}, 't', 'running again');
	is($st->{servers}, '15', 'same 15 servers');
	isnt($st->{session_id}, $session1, 'new session_id for the new worker');
}

# ---------------------------------------------------------------------------
# 5. DROP EXTENSION while the worker runs: no crash loop; CREATE brings it back
# ---------------------------------------------------------------------------
{
	my $pid = worker_pid($node);
	my $off = log_offset($node);

	$node->safe_psql('postgres', 'DROP EXTENSION sim_metrics');

	# longer than bgw_restart_time: a worker that died would show up as a
	# different pid (or none)
	my @pids = quiet_window($node, worker_pids_sql(), 7);
	is("@pids", $pid, 'same single worker pid for 7 s after DROP EXTENSION');

	my $log = log_since($node, $off);
	is(crash_lines($log), '', 'no ERROR/FATAL/crash lines in the log after DROP EXTENSION');

	my ($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM sim_status()');
	isnt($ret, 0, 'sim_status() is gone with the extension');
	like($err, qr/function sim_status\(\) does not exist/, '... because it was dropped');
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM pg_proc WHERE proname LIKE 'sim\\_%'"),
		'0', 'no sim_ functions remain');

	$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
	ok(wait_until($node, 'SELECT servers, (SELECT count(*) FROM sim_current_metrics()) FROM sim_status()',
			'15|15', 30),
		'fleet comes back after CREATE EXTENSION');
	my $t = sim_tick_now($node);
	ok(defined wait_value($node, 'SELECT tick FROM sim_status()',
			sub { $_[0] >= $t + 3 }, 30),
		'ticks resume after re-creation');
	is(worker_pid($node), $pid, 'the same worker serves the new extension');
	is($node->safe_psql('postgres', 'SELECT running, worker_state FROM sim_status()'),
		"t|running", 'worker running');
}

# ---------------------------------------------------------------------------
# 6. CREATE/DROP DATABASE complete promptly while the worker runs
# ---------------------------------------------------------------------------

# Run $sql (one statement) with a 10 s client timeout and statement_timeout.
sub timed_sql
{
	my ($sql, $what) = @_;
	my ($out, $err, $timed_out) = ('', '', 0);
	my $start = time;
	my $ret = $node->psql('postgres',
		"SET statement_timeout = '10s';\n$sql",
		stdout => \$out, stderr => \$err,
		timeout => 10, timed_out => \$timed_out);
	my $elapsed = time - $start;
	ok(!$timed_out && defined $ret && $ret == 0, "$what succeeds")
	  or diag "ret=" . ($ret // 'undef') . " timed_out=$timed_out stderr=$err";
	cmp_ok($elapsed, '<', 10, sprintf("$what within 10 s (%.2f s)", $elapsed));
}

sub db_round
{
	my ($label) = @_;
	my $pid = worker_pid($node);
	my $off = log_offset($node);

	timed_sql('CREATE DATABASE x', "$label: CREATE DATABASE x");
	timed_sql('DROP DATABASE x', "$label: DROP DATABASE x");

	# WITH (FORCE), with a session open in the database
	timed_sql('CREATE DATABASE x', "$label: CREATE DATABASE x again");
	my $bg = $node->background_psql('x', on_error_stop => 0);
	is($bg->query_safe('SELECT current_database()'), 'x', "$label: session open on x");
	timed_sql('DROP DATABASE x WITH (FORCE)', "$label: DROP DATABASE x WITH (FORCE)");
	eval { $bg->quit };
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'x'"),
		'0', "$label: x is gone");

	is(worker_pid($node), $pid, "$label: worker untouched");
	my $log = log_since($node, $off);
	# the FORCE-terminated session logs a FATAL; nothing else may
	my @bad = grep { !/terminating connection due to administrator command/ }
	  split /\n/, crash_lines($log);
	is(join("\n", @bad), '', "$label: no errors in the log");
}

db_round('ticking every 200ms');
{
	my $t = sim_tick_now($node);
	ok(defined wait_value($node, 'SELECT tick FROM sim_status()',
			sub { $_[0] > $t }, 10),
		'worker still ticks after the database round');
}

# the same with the worker asleep in a long wait
$node->safe_psql('postgres', "ALTER SYSTEM SET sim_metrics.tick_interval = '1h'");
$node->reload;
ok(wait_until($node, 'SHOW sim_metrics.tick_interval', '1h', 10), 'interval now 1h');
db_round('sleeping for 1h');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET sim_metrics.tick_interval');
$node->reload;
ok(wait_until($node, 'SHOW sim_metrics.tick_interval', '200ms', 10), 'interval back to 200ms');

# ---------------------------------------------------------------------------
# 11. Crash restart: kill -9 of a plain backend reinitialises shared memory;
#     the worker comes back and reloads the fleet from the templates
# ---------------------------------------------------------------------------
{
	my $old_pid = worker_pid($node);
	my $old_session = $node->safe_psql('postgres', 'SELECT session_id FROM sim_status()');
	my $off = log_offset($node);

	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $victim = $bg->query_safe('SELECT pg_backend_pid()');
	like($victim, qr/^\d+$/, "backend to kill: $victim");
	ok(kill('KILL', $victim), 'SIGKILL sent to the backend');

	ok(eval { $node->wait_for_log(qr/all server processes terminated; reinitializing/, $off); 1 },
		'postmaster reinitialises after the crash');
	like(log_since($node, $off),
		qr/server process \(PID $victim\) was terminated by signal 9/,
		'the killed backend is the cause');
	eval { $bg->quit };

	my $new_pid = wait_new_worker($node, $old_pid, 'worker after crash');
	ok(defined $new_pid, 'a worker runs again after the crash restart');
	$new_pid //= '';
	isnt($new_pid, $old_pid, "new worker pid ($new_pid vs $old_pid)");

	ok(wait_until($node,
			'SELECT servers, (SELECT count(*) FROM sim_current_metrics()), pid FROM sim_status()',
			"15|15|$new_pid", 30),
		'15 servers again, reloaded from the templates');
	my $t = sim_tick_now($node);
	ok(defined wait_value($node, 'SELECT tick FROM sim_status()',
			sub { $_[0] >= $t + 3 }, 30),
		'ticks advance after the crash restart');
	isnt($node->safe_psql('postgres', 'SELECT session_id FROM sim_status()'),
		$old_session, 'new session after the crash');
	is($node->safe_psql('postgres', 'SELECT errors FROM sim_status()'), '0',
		'no tick errors after the crash');
}

$node->stop;
done_testing();
