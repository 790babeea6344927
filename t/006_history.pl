
# History durability: the samples buffered in the shared-memory ring reach
# server_metrics_history across a clean shutdown (fast and smart), a
# pg_terminate_backend() of the worker, and (bounded by one flush interval)
# a crash restart; after each the worker continues the tick numbering and
# the values from where the table stops.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SimMetricsTest;

# 100 ms ticks of 6 simulated seconds; flush_interval 1h keeps every sample
# in the ring until something forces a flush.
my $node = sim_node('history', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '100ms'
sim_metrics.time_scale = 60
sim_metrics.flush_interval = '1h'
# PostgreSQL::Test::Cluster turns this off; part 3 needs the crash restart
restart_after_crash = on
EOC

my $step_s = 6;    # simulated seconds per tick

$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30),
	'fleet of 15 loaded');

# Per-server shape of the table, in one row:
#   servers | servers with a duplicate tick | servers with a missing tick |
#   lowest first tick | lowest last tick | highest last tick | rows |
#   largest number of missing ticks of one server
my $shape_sql = q{
	SELECT count(*), count(*) FILTER (WHERE n <> nd),
	       count(*) FILTER (WHERE nd <> hi - lo + 1),
	       min(lo), min(hi), max(hi), sum(n), max(hi - lo + 1 - nd)
	  FROM (SELECT server_id, count(*) AS n, count(DISTINCT tick) AS nd,
	               min(tick) AS lo, max(tick) AS hi
	          FROM server_metrics_history WHERE %s GROUP BY server_id) s};

# The shape of the rows up to tick $upto (all rows without it).
sub shape
{
	my ($upto) = @_;
	my $where = defined $upto ? "tick <= $upto" : 'true';
	my @f = split /\|/, $node->safe_psql('postgres', sprintf($shape_sql, $where));
	my %h;
	@h{qw(servers dup_servers gap_servers first_lo last_lo last_hi rows max_missing)} = @f;
	return \%h;
}

# The table up to tick $last: 15 servers, each with exactly one row per tick
# from tick 1 to $last (no duplicate, no gap). Rows above $last, if any,
# belong to the next worker and are checked separately.
sub complete_up_to
{
	my ($last, $what) = @_;
	my $s = shape($last);
	is($s->{servers}, 15, "$what: 15 servers in the table");
	is($s->{dup_servers}, 0, "$what: no server has a duplicate tick");
	is($s->{gap_servers}, 0, "$what: no server misses a tick (count = max - min + 1)");
	is($s->{first_lo}, 1, "$what: every server starts at tick 1");
	is("$s->{last_lo}|$s->{last_hi}", "$last|$last",
		"$what: every server ends at tick $last");
	is($s->{rows}, 15 * $last, "$what: 15 x $last rows");
	return $s;
}

# Wait (bounded) for the ring to hold buffered samples and the tick to pass
# $min_tick; returns (tick, pending, flushed) read in one sim_status() call.
sub buffered_state
{
	my ($min_tick) = @_;
	my $v = wait_value($node,
		'SELECT tick, pending_samples, flushed_samples FROM sim_status()',
		sub { my ($t, $p) = split /\|/, $_[0]; $t >= $min_tick && $p > 0 },
		30, "tick >= $min_tick with samples pending");
	return defined $v ? split(/\|/, $v) : (-1, -1, -1);
}

# The restart log line: "continued N of 15 servers ... at tick T"; returns T.
sub restored_tick
{
	my ($off, $what) = @_;
	my $ok = eval {
		$node->wait_for_log(
			qr/sim_metrics: continued 15 of 15 servers from server_metrics_history at tick \d+/,
			$off);
		1;
	};
	ok($ok, "$what: the new worker continued 15 of 15 servers from the table");
	my ($t) = log_since($node, $off) =~
	  /continued 15 of 15 servers from server_metrics_history at tick (\d+)/;
	return $t // -1;
}

# ---------------------------------------------------------------------------
# 1. Clean shutdown loses nothing (fast, then smart)
# ---------------------------------------------------------------------------

my $last_stored = 0;
my $life_start = 0;    # tick at which this postmaster's worker started
for my $mode ('fast', 'smart')
{
	my ($tick, $pending, $flushed) = buffered_state($last_stored + 20);
	cmp_ok($pending, '>', 0, "$mode: $pending samples wait in the ring before the stop");
	# the counters start with shared memory, at tick $life_start
	is($pending + $flushed, 15 * ($tick - $life_start),
		"$mode: every tick since the start is either flushed or buffered (tick $tick)");
	my $session = $node->safe_psql('postgres', 'SELECT session_id FROM sim_status()');

	my $off = log_offset($node);
	my $t0 = time;
	$node->stop($mode);
	cmp_ok(time - $t0, '<', 30, "$mode stop completes");
	like(log_since($node, $off),
		qr/sim_metrics writer flushed its buffered samples \(\d+ rows, up to tick \d+\) and is exiting/,
		"$mode: the writer logged its final flush");

	$off = log_offset($node);
	$node->start;
	my $restored = restored_tick($off, $mode);
	cmp_ok($restored, '>=', $tick,
		"$mode: the table reaches tick $restored >= $tick, the tick seen before the stop");

	# flush_interval is 1h: the new worker's samples stay in the ring, so the
	# table now holds exactly what the old worker wrote
	complete_up_to($restored, "$mode: after restart");

	# the new worker goes on from there: tick numbers above the last stored
	# one, the simulated clock one step on, values continued
	ok(defined wait_value($node, 'SELECT tick FROM sim_status()',
			sub { $_[0] >= $restored + 3 }, 30, 'ticks after restart'),
		"$mode: the new worker ticks on from $restored");
	my $new_session = $node->safe_psql('postgres', 'SELECT session_id FROM sim_status()');
	isnt($new_session, $session, "$mode: new session after the restart");

	# first new sample (from the ring, via sim_history) against the last row
	is( $node->safe_psql('postgres', qq{
			SELECT count(*),
			       count(*) FILTER (WHERE n.timestamp = o.timestamp + interval '$step_s s'),
			       count(*) FILTER (WHERE abs(n.cpu_usage - o.cpu_usage::float8) < 15
			                          AND abs(n.memory_usage - o.memory_usage::float8) < 15
			                          AND abs(n.disk_usage - o.disk_usage::float8) < 15)
			  FROM server_metrics_history o
			  CROSS JOIN LATERAL (SELECT * FROM sim_history(o.server_id, '-infinity', 'infinity') h
			                       WHERE h.tick = $restored + 1) n
			 WHERE o.tick = $restored AND n.session_id = '$new_session'}),
		'15|15|15',
		"$mode: tick " . ($restored + 1)
		  . " of every server is one step after the last stored row, within 15 points of it");

	# write the new ticks: still one row per tick, no tick used twice
	cmp_ok($node->safe_psql('postgres', 'SELECT sim_flush()'), '>', 0,
		"$mode: sim_flush() writes the new worker's samples");
	my $s = shape();
	is("$s->{servers}|$s->{dup_servers}|$s->{gap_servers}|$s->{first_lo}",
		'15|0|0|1', "$mode: after the flush still no duplicate and no gap, from tick 1");
	is( $node->safe_psql('postgres', qq{
			SELECT count(*) FILTER (WHERE tick <= $restored AND session_id = '$new_session'),
			       count(*) FILTER (WHERE tick > $restored AND session_id IS DISTINCT FROM '$new_session')
			  FROM server_metrics_history}),
		'0|0', "$mode: the new session wrote only ticks above $restored");
	$last_stored = $s->{last_lo};
	is($s->{last_hi}, $last_stored, "$mode: all servers end at the same tick");
	$life_start = $restored;
}

# ---------------------------------------------------------------------------
# 2. pg_terminate_backend(writer): it flushes before it exits, the ticker
#    goes on, the next writer continues from shared memory
# ---------------------------------------------------------------------------
{
	my ($tick, $pending) = buffered_state($last_stored + 20);
	cmp_ok($pending, '>', 0, "terminate: $pending samples buffered");
	my $pid = worker_pid($node, 'writer');
	like($pid, qr/^\d+$/, 'terminate: one writer');
	my $ticker = worker_pid($node);

	my $off = log_offset($node);
	is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"), 't',
		'terminate: pg_terminate_backend(writer)');
	ok(eval {
			$node->wait_for_log(
				qr/sim_metrics writer flushed its buffered samples \(\d+ rows, up to tick \d+\) and is exiting/, $off);
			1;
		},
		'terminate: the writer logged its final flush');
	my ($at_exit) = log_since($node, $off) =~ /up to tick (\d+)\) and is exiting/;
	$at_exit //= -1;
	cmp_ok($at_exit, '>=', $tick, "terminate: flushed up to tick $at_exit");
	complete_up_to($at_exit, 'terminate: after the exit flush');

	my $pid2 = wait_new_worker($node, $pid, 'writer after terminate', 30, 'writer');
	ok(defined $pid2, 'terminate: a new writer starts');
	is(worker_pid($node), $ticker, 'terminate: the ticker was not touched');
	ok(defined wait_value($node, 'SELECT tick FROM sim_status()',
			sub { $_[0] >= $at_exit + 5 }, 30),
		'terminate: the ticks go on');
	unlike(log_since($node, $off), qr/continued \d+ of \d+ servers/,
		'terminate: no restore from the table (shared memory kept the fleet)');

	cmp_ok($node->safe_psql('postgres', 'SELECT sim_flush()'), '>', 0,
		'terminate: flush the new samples');
	my $s = shape();
	is("$s->{servers}|$s->{dup_servers}|$s->{gap_servers}|$s->{first_lo}",
		'15|0|0|1', 'terminate: no duplicate, no gap across the writer restart');
	cmp_ok($s->{last_lo}, '>', $at_exit, 'terminate: the table grows past the exit tick');
	is( $node->safe_psql('postgres',
			"SELECT count(DISTINCT session_id) FROM server_metrics_history WHERE tick > $at_exit"),
		'1', 'terminate: ticks after the exit come from one session (the ticker\'s)');
	$last_stored = $s->{last_lo};
}

# ---------------------------------------------------------------------------
# 3. Crash restart: shared memory is gone; the loss is bounded by one flush
#    interval (1 s = 10 ticks of 100 ms)
# ---------------------------------------------------------------------------
{
	my $flush_ticks = 10;
	my $margin = 5;

	$node->safe_psql('postgres', "ALTER SYSTEM SET sim_metrics.flush_interval = '1s'");
	$node->reload;
	ok(wait_until($node, 'SHOW sim_metrics.flush_interval', '1s', 10), 'flush_interval 1s');
	# flushes now happen on their own, every second
	my $f0 = $node->safe_psql('postgres', 'SELECT flushed_samples FROM sim_status()');
	ok(defined wait_value($node, 'SELECT flushed_samples FROM sim_status()',
			sub { $_[0] >= $f0 + 15 * 20 }, 30),
		'the worker flushes on its own');

	my $old_pid = worker_pid($node);
	my $old_session = $node->safe_psql('postgres', 'SELECT session_id FROM sim_status()');
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $victim = $bg->query_safe('SELECT pg_backend_pid()');
	my $off = log_offset($node);
	my $tick_before = sim_tick_now($node);
	ok(kill('KILL', $victim), "crash: SIGKILL to backend $victim at tick $tick_before");
	ok(eval { $node->wait_for_log(qr/all server processes terminated; reinitializing/, $off); 1 },
		'crash: postmaster reinitialises');
	eval { $bg->quit };

	my $restored = restored_tick($off, 'crash');
	cmp_ok($tick_before - $restored, '<=', $flush_ticks + $margin,
		"crash: lost at most $flush_ticks + $margin ticks (tick $tick_before seen, "
		  . "$restored stored)");
	ok(defined wait_new_worker($node, $old_pid, 'worker after crash'), 'crash: new worker');

	# wait for the new worker's samples in the table
	ok(defined wait_value($node, 'SELECT max(tick) FROM server_metrics_history',
			sub { $_[0] >= $restored + 20 }, 30),
		'crash: the new worker writes ticks above the restored one');
	my $new_session = $node->safe_psql('postgres', 'SELECT session_id FROM sim_status()');
	isnt($new_session, $old_session, 'crash: new session');
	my $s = shape();
	is("$s->{servers}|$s->{dup_servers}|$s->{first_lo}", '15|0|1',
		'crash: 15 servers from tick 1, no duplicate tick');
	cmp_ok($s->{max_missing}, '<=', $flush_ticks + $margin,
		"crash: at most $flush_ticks + $margin missing ticks per server ($s->{max_missing})");
	is( $node->safe_psql('postgres', qq{
			SELECT count(DISTINCT server_id), min(tick) > $restored
			  FROM server_metrics_history WHERE session_id = '$new_session'}),
		'15|t', "crash: the new session numbers its ticks above $restored");
	is($node->safe_psql('postgres', 'SELECT flush_errors, errors FROM sim_status()'),
		'0|0', 'crash: no flush or tick errors');
}

$node->stop;
done_testing();
