
# History table locked by another session: ticks go on, flushes fail and are
# retried, the ring keeps the samples (and, when full, drops only new ones),
# and once the lock goes the backlog is written without gaps or duplicates.
# A shutdown while the table is locked is not held up.
#
# The issue describes a lock held for 2 minutes; here it is held for 10 s to
# keep CI fast. With 100 ms ticks and a 1 s flush_interval that is still
# 100 ticks and several failed flush attempts (each waits lock_timeout).
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SimMetricsTest;

my $tick_ms = 100;
my $lock_secs = 10;

# Per-server shape: servers | with a duplicate tick | with a missing tick |
# lowest first tick | lowest last tick | highest last tick | rows
my $shape_sql = q{
	SELECT count(*), count(*) FILTER (WHERE n <> nd),
	       count(*) FILTER (WHERE nd <> hi - lo + 1),
	       min(lo), min(hi), max(hi), sum(n)
	  FROM (SELECT server_id, count(*) AS n, count(DISTINCT tick) AS nd,
	               min(tick) AS lo, max(tick) AS hi
	          FROM server_metrics_history GROUP BY server_id) s};

sub status
{
	my ($node) = @_;
	my @f = split /\|/, $node->safe_psql('postgres',
		'SELECT tick, pending_samples, flush_errors, dropped_samples, flushed_samples,
		        coalesce(last_error, \'\'), servers
		   FROM sim_status()');
	my %h;
	@h{qw(tick pending flush_errors dropped flushed last_error servers)} = @f;
	return \%h;
}

# Stop the node with pg_ctl's wait limited to $secs; returns the seconds it
# took, or undef when pg_ctl gave up (the node is then stopped 'immediate').
sub timed_stop
{
	my ($node, $mode, $secs) = @_;
	local $ENV{PGCTLTIMEOUT} = $secs;
	my $t0 = time;
	my $ok = $node->stop($mode, fail_ok => 1);
	my $took = time - $t0;
	return $took if $ok;
	diag "pg_ctl -m $mode stop gave up after ${secs}s; stopping immediate";
	$node->stop('immediate', fail_ok => 1);
	return undef;
}

# ---------------------------------------------------------------------------
# 4. Locked history table
# ---------------------------------------------------------------------------
my $node = sim_node('lock', <<"EOC");
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '${tick_ms}ms'
sim_metrics.flush_interval = '1s'
# a prepared transaction holds the lock through a shutdown (no session left)
max_prepared_transactions = 2
EOC
$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30), 'lock: fleet loaded');
ok(defined wait_value($node, 'SELECT flushed_samples FROM sim_status()',
		sub { $_[0] >= 15 * 10 }, 30),
	'lock: the worker flushes on its own');

# the pace of ticks over a window of $secs seconds: (ticks, seconds, expected)
sub tick_pace
{
	my ($node, $secs, $each) = @_;
	my $s0 = status($node);
	my $t0 = time;
	my $s1 = $s0;
	while (time < $t0 + $secs)
	{
		usleep(100_000);
		$s1 = status($node);
		$each->($s1) if $each;
	}
	my $elapsed = time - $t0;
	return ($s0, $s1, $elapsed, $elapsed * 1000 / $tick_ms);
}

{
	# the pace without the lock, on this machine, for comparison
	my ($b0, $b1, $belapsed, $bexpected) = tick_pace($node, 2);
	my $bticks = $b1->{tick} - $b0->{tick};
	cmp_ok($bticks, '>=', 0.8 * $bexpected,
		sprintf('lock: unlocked, %d ticks in %.1f s (%.0f expected)',
			$bticks, $belapsed, $bexpected));

	my $locker = $node->background_psql('postgres');
	$locker->query_safe(
		'BEGIN; LOCK TABLE server_metrics_history IN ACCESS EXCLUSIVE MODE;');

	# watch sim_status() (it does not touch the table) while the lock is held
	my ($s0, $s1, $elapsed, $expected) = tick_pace($node, $lock_secs);
	my $ticks = $s1->{tick} - $s0->{tick};
	cmp_ok($ticks, '>=', 0.8 * $expected,
		sprintf('lock: ticks keep their pace while the table is locked: %d ticks in %.1f s '
			  . '(%.0f expected, need 80%%)', $ticks, $elapsed, $expected));
	cmp_ok($s1->{flush_errors} - $s0->{flush_errors}, '>=', 2,
		"lock: flush_errors grows ($s0->{flush_errors} -> $s1->{flush_errors})");
	like($s1->{last_error}, qr/lock timeout|locked/, "lock: last_error names the lock ($s1->{last_error})");
	is($s1->{pending} - $s0->{pending}, 15 * $ticks,
		"lock: every new sample stays buffered (pending $s0->{pending} -> $s1->{pending})");
	is($s1->{flushed}, $s0->{flushed}, 'lock: nothing was written meanwhile');
	is($s1->{dropped}, 0, 'lock: nothing dropped (the ring has room)');

	$locker->query_safe('COMMIT;');
	$locker->quit;
	my $t_rel = time;
	my $done = wait_value($node, 'SELECT pending_samples FROM sim_status()',
		sub { $_[0] <= 15 * 5 }, 15, 'backlog flushed');
	ok(defined $done,
		sprintf('lock released: the backlog is flushed (pending down to %s in %.1f s)',
			$done // 'n/a', time - $t_rel));

	my ($servers, $dups, $gaps, $lo, $last_lo, $last_hi, $rows) =
	  split /\|/, $node->safe_psql('postgres', $shape_sql);
	is("$servers|$dups|$gaps|$lo", '15|0|0|1',
		'lock: after the backlog, every server has one row per tick from tick 1 (no gap, no duplicate)');
	cmp_ok($last_lo, '>=', $s1->{tick}, "lock: the table covers the locked period (to tick $last_lo)");
	my $st = status($node);
	is($st->{flushed}, $node->safe_psql('postgres', 'SELECT count(*) FROM server_metrics_history'),
		'lock: flushed_samples equals the rows in the table');
}

# ---------------------------------------------------------------------------
# 2 (cont.). The worker terminated while the table is locked: its exit flush
#    fails, the samples stay in shared memory for the next worker
# ---------------------------------------------------------------------------
{
	my $locker = $node->background_psql('postgres');
	$locker->query_safe(
		'BEGIN; LOCK TABLE server_metrics_history IN ACCESS EXCLUSIVE MODE;');
	my $fe = status($node)->{flush_errors};
	ok(defined wait_value($node, 'SELECT flush_errors FROM sim_status()',
			sub { $_[0] > $fe }, 15),
		'terminate while locked: flushes fail');
	my $pid = worker_pid($node, 'writer');
	my $off = log_offset($node);
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	my $gap = wait_until($node, 'SELECT writer_pid IS NULL, pending_samples, tick FROM sim_status()',
		qr/^t\|\d+\|\d+$/, 10);
	ok(defined $gap, 'terminate while locked: the writer exits (not held up by the lock)');
	my (undef, $pending, $tick) = split /\|/, $gap // 'f|0|0';
	cmp_ok($pending, '>', 0, "terminate while locked: $pending samples left in the ring");
	unlike(log_since($node, $off), qr/flushed its buffered samples/,
		'terminate while locked: no final flush claimed');
	my $pid2 = wait_new_worker($node, $pid, 'writer after terminate', 30, 'writer');
	ok(defined $pid2, 'terminate while locked: a new writer starts');
	my $p2 = status($node)->{pending};
	cmp_ok($p2, '>=', $pending, "terminate while locked: the new worker has them ($p2 pending)");
	$locker->query_safe('COMMIT;');
	$locker->quit;
	ok(defined wait_value($node, 'SELECT pending_samples FROM sim_status()',
			sub { $_[0] <= 15 * 5 }, 15),
		'terminate while locked: the new worker writes them once the lock is gone');
	my ($servers, $dups, $gaps, $lo, $last_lo) =
	  split /\|/, $node->safe_psql('postgres', $shape_sql);
	is("$servers|$dups|$gaps|$lo", '15|0|0|1',
		'terminate while locked: no gap, no duplicate');
	cmp_ok($last_lo, '>=', $tick, "terminate while locked: the table covers tick $tick");
}

# ---------------------------------------------------------------------------
# 4 (cont.). Shutdown while the table is locked is not held up. A session
#    holding the lock would itself hold up a smart shutdown (smart waits for
#    every session), so the lock is kept by a prepared transaction.
# ---------------------------------------------------------------------------
my $hold = q{BEGIN; LOCK TABLE server_metrics_history IN ACCESS EXCLUSIVE MODE;
             PREPARE TRANSACTION 'hold_history';};
for my $mode ('fast', 'smart')
{
	$node->safe_psql('postgres', $hold);
	my $fe = status($node)->{flush_errors};
	ok(defined wait_value($node, 'SELECT flush_errors FROM sim_status()',
			sub { $_[0] > $fe }, 15),
		"$mode shutdown: the worker's flushes now fail on the lock");

	my $off = log_offset($node);
	my $took = timed_stop($node, $mode, 30);
	ok(defined $took && $took < 15,
		sprintf("$mode shutdown with the table locked completes within 15 s (%s)",
			defined $took ? sprintf('%.1f s', $took) : 'gave up'));
	like(log_since($node, $off), qr/lock timeout|locked by another session/,
		"$mode shutdown: the worker's last flush gave up on the lock");

	# The prepared transaction comes back with the server and still holds the
	# lock. The new worker cannot read where each server stopped; it must
	# neither hang nor start the tick numbering over (that would duplicate
	# ticks in the table), so it retries until the lock goes.
	$off = log_offset($node);
	$node->start;
	ok(wait_until($node, 'SELECT servers, last_error ~ \'lock timeout|locked\' FROM sim_status()',
			'0|t', 15),
		"$mode restart: while the table stays locked the worker retries the restore (lock timeout)");
	$node->safe_psql('postgres', "ROLLBACK PREPARED 'hold_history'");
	ok(wait_until($node, 'SELECT servers, tick >= 5 FROM sim_status()', '15|t', 30),
		"$mode restart: the fleet ticks once the lock is gone");
	ok(eval {
			$node->wait_for_log(qr/continued 15 of 15 servers from server_metrics_history/, $off);
			1;
		},
		"$mode restart: the worker continued from the table");
	ok(wait_until($node, q{SELECT count(DISTINCT server_id) FROM server_metrics_history
	                        WHERE session_id = (SELECT session_id FROM sim_status())}, '15', 15),
		"$mode restart: the new worker's samples reach the table");
	my ($servers, $dups) = split /\|/, $node->safe_psql('postgres', $shape_sql);
	is("$servers|$dups", '15|0', "$mode restart: no duplicate ticks");
}

# A worker waiting at start for the locked table does not hold up a shutdown.
{
	$node->safe_psql('postgres', $hold);
	$node->stop('immediate');    # no final flush needed here
	$node->start;
	ok(wait_until($node, 'SELECT servers, last_error ~ \'lock timeout|locked\' FROM sim_status()',
			'0|t', 15),
		'locked at start: the worker waits for the table');
	my $took = timed_stop($node, 'fast', 20);
	ok(defined $took && $took < 15,
		sprintf('locked at start: fast shutdown completes within 15 s (%s)',
			defined $took ? sprintf('%.1f s', $took) : 'gave up'));
	$node->start;
	$node->safe_psql('postgres', "ROLLBACK PREPARED 'hold_history'");
	ok(wait_until($node, 'SELECT servers, tick >= 3 FROM sim_status()', '15|t', 30),
		'locked at start: ticks once the lock is gone');
	my ($servers, $dups) = split /\|/, $node->safe_psql('postgres', $shape_sql);
	is("$servers|$dups", '15|0', 'locked at start: no duplicate ticks');
}
$node->stop;

# ---------------------------------------------------------------------------
# 5. Ring full: a ring of 4 ticks per server (20 x 4 = 80 samples for 15
#    servers) and the table locked
# ---------------------------------------------------------------------------
my $small = sim_node('ringfull', <<"EOC");
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '${tick_ms}ms'
sim_metrics.flush_interval = '1s'
sim_metrics.max_servers = 20
sim_metrics.history_buffer = 4
EOC
$small->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($small, 'SELECT servers, buffer_capacity FROM sim_status()', '15|80', 30),
	'ring full: 15 servers, ring of 80 samples');
ok(defined wait_value($small, 'SELECT flushed_samples FROM sim_status()',
		sub { $_[0] >= 15 * 20 }, 30),
	'ring full: flushes keep up before the lock (3/4-full flushes)');
is(status($small)->{dropped}, 0, 'ring full: nothing dropped before the lock');

{
	my $off = log_offset($small);
	my $locker = $small->background_psql('postgres');
	$locker->query_safe(
		'BEGIN; LOCK TABLE server_metrics_history IN ACCESS EXCLUSIVE MODE;');

	ok(defined wait_value($small, 'SELECT dropped_samples FROM sim_status()',
			sub { $_[0] > 0 }, 15),
		'ring full: samples are dropped once the ring is full');
	my $s0 = status($small);
	is($s0->{pending}, 75, 'ring full: the ring holds 5 whole ticks (75 of 80 samples)');

	# ticks go on, every new tick is dropped, the pending ones stay
	my $t0 = time;
	my $s1 = $s0;
	my @pending_seen;
	while (time < $t0 + 5)
	{
		usleep(100_000);
		$s1 = status($small);
		push @pending_seen, $s1->{pending}
		  if !@pending_seen || $pending_seen[-1] != $s1->{pending};
	}
	cmp_ok($s1->{tick} - $s0->{tick}, '>=', 10,
		"ring full: ticks keep going ($s0->{tick} -> $s1->{tick})");
	is($s1->{dropped} - $s0->{dropped}, 15 * ($s1->{tick} - $s0->{tick}),
		'ring full: each new tick is dropped whole (dropped_samples grows by 15 a tick)');
	is("@pending_seen", '75', 'ring full: the pending samples are kept, not overwritten');

	my @full = log_since($small, $off) =~ /(sim_metrics: history ring full[^\n]*)/g;
	is(scalar(@full), 1, 'ring full: one "history ring full" line in the log (at most one a minute)')
	  or diag join "\n", @full;
	like($full[0] // '', qr/dropped the newest 15 samples/,
		'ring full: the line says how many were dropped');

	$locker->query_safe('COMMIT;');
	$locker->quit;

	# let a few ticks after the dropped block reach the table, so the drops
	# show as a hole between kept ticks
	my $tu = status($small)->{tick};
	ok(defined wait_value($small, 'SELECT max(tick) FROM server_metrics_history',
			sub { $_[0] >= $tu + 2 }, 15),
		'ring full: after the lock, new ticks are written');

	# freeze the simulation, let the worker drain the ring
	$small->safe_psql('postgres', 'SELECT sim_stop()');
	ok(wait_until($small, 'SELECT paused, pending_samples FROM sim_status()', 't|0', 15),
		'ring full: after the lock the ring drains');
	my $st = status($small);
	my $rows = $small->safe_psql('postgres', 'SELECT count(*) FROM server_metrics_history');
	is($rows + $st->{dropped}, 15 * $st->{tick},
		"ring full: rows ($rows) + dropped ($st->{dropped}) = 15 x tick $st->{tick}");
	is($st->{flushed}, $rows, 'ring full: flushed_samples equals the rows in the table');
	# per server: no duplicate; the dropped ticks form one block, the same
	# for every server, after the kept ones
	is( $small->safe_psql('postgres', q{
			SELECT count(DISTINCT server_id), bool_and(n = nd),
			       count(DISTINCT missing), min(holes), max(holes)
			  FROM (SELECT server_id, count(*) AS n, count(DISTINCT tick) AS nd,
			               max(tick) - min(tick) + 1 - count(DISTINCT tick) AS missing,
			               count(*) FILTER (WHERE tick - prev > 1) AS holes
			          FROM (SELECT server_id, tick,
			                       lag(tick) OVER (PARTITION BY server_id ORDER BY tick) AS prev
			                  FROM server_metrics_history) x
			         GROUP BY server_id) s}),
		'15|t|1|1|1',
		'ring full: per server no duplicate tick, one block of dropped ticks, the same for all');
	is( $small->safe_psql('postgres', q{
			SELECT max(tick) - min(tick) + 1 - count(*) FROM server_metrics_history
			 WHERE server_id = 'api-was-icn-01'}),
		$st->{dropped} / 15, 'ring full: the block is exactly the dropped ticks');
	is($small->safe_psql('postgres', 'SELECT sim_start()'), 't', 'ring full: resume');
	my $t = $st->{tick};
	ok(defined wait_value($small, 'SELECT max(tick) FROM server_metrics_history',
			sub { $_[0] >= $t + 10 }, 15),
		'ring full: new ticks are written again');
	is(status($small)->{dropped}, $st->{dropped}, 'ring full: no more drops');
}
$small->stop;

done_testing();
