
# The foundation: nobody without a grant can stall or slow the simulation,
# a refused row never blocks the others, the writer's SQL cannot be shaped
# by a neighbour, a cancel cancels nothing, the restore continues the tick
# numbering after the newest stored tick, a fast shutdown with a large
# backlog is quick, and simulated time cannot leave the timestamp range.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use Time::HiRes qw(time usleep);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

my $node = sim_node('foundation', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.max_servers = 20000
sim_metrics.tick_interval = '100ms'
sim_metrics.flush_interval = '200ms'
EOC
$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30), 'fleet loaded');
$node->safe_psql('postgres', 'CREATE ROLE nobody LOGIN');

sub q1 { return $node->safe_psql('postgres', $_[0]); }

sub status_of
{
	my ($col) = @_;
	return q1("SELECT $col FROM sim_status()");
}

# Wait until flushed_samples grew by $n; true on success.
sub flushes_go_on
{
	my ($n, $secs) = @_;
	my $f0 = status_of('flushed_samples');
	return defined wait_value($node, 'SELECT flushed_samples FROM sim_status()',
		sub { $_[0] >= $f0 + $n }, $secs // 20);
}

# ---------------------------------------------------------------------------
# 1. An unprivileged login holding every advisory lock shape does not stop
#    flushing: the flusher's lock is not in the advisory space
# ---------------------------------------------------------------------------
{
	my $bg = $node->background_psql('postgres', extra_params => [ '-U', 'nobody' ]);
	# 0x534d58 = 5459288: the key pair the flusher once used, and around it
	$bg->query_safe(q{
		SELECT count(pg_advisory_lock(5459288, k)) FROM generate_series(-2, 64) k;
		SELECT count(pg_advisory_lock(k, 1)) FROM generate_series(5459280, 5459300) k;
		SELECT count(pg_advisory_lock(k)) FROM generate_series(0, 64) k;
		SELECT count(pg_advisory_lock(x'534d5800000001'::bigint + k)) FROM generate_series(-2, 2) k;
		SELECT count(pg_advisory_lock(-1)), count(pg_advisory_lock(1, 5459288)),
		       count(pg_advisory_lock(oid::int, 5459288)) FROM pg_database;
		BEGIN;
		SELECT count(pg_advisory_xact_lock(5459288 + k, 1)) FROM generate_series(0, 3) k;
		LOCK TABLE server_metrics_history IN ACCESS SHARE MODE;
	});
	cmp_ok(q1(q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'}), '>', 150,
		'nobody holds over 150 advisory locks, a transaction open on the history table');
	ok(flushes_go_on(15 * 20), 'flushing goes on (300 more samples written)');
	cmp_ok(status_of('pending_samples'), '<', 15 * 20, 'the ring does not fill');
	is(status_of('dropped_samples'), '0', 'no sample dropped');
	$bg->quit;
}

# ---------------------------------------------------------------------------
# 2. Two unprivileged sessions loop sim_history() at 10,000 servers; the
#    ticker keeps time
# ---------------------------------------------------------------------------
{
	q1(q{ALTER SYSTEM SET sim_metrics.tick_interval = '250ms'});
	q1(q{ALTER SYSTEM SET sim_metrics.flush_interval = '30s'});
	$node->reload;
	q1(q{INSERT INTO server_templates (id, name, hostname, role, location)
	       SELECT 'load-' || i, 'Load ' || i, 'load-' || i || '.test', 'web', 'Lab'
	         FROM generate_series(1, 9985) i});
	ok(wait_until($node, 'SELECT servers FROM sim_status()', '10000', 30), '10,000 servers');
	ok(wait_until($node, 'SHOW sim_metrics.tick_interval', '250ms', 10), 'ticks of 250 ms');
	ok(defined wait_value($node, 'SELECT pending_samples FROM sim_status()',
			sub { $_[0] >= 10000 * 8 }, 30),
		'the ring holds at least 8 ticks of 10,000 servers for the readers to scan');

	my $loop = q{DO $$
		DECLARE t0 timestamptz := clock_timestamp(); n int := 0; r int := 0;
		BEGIN
			WHILE clock_timestamp() < t0 + interval '8 s' LOOP
				SELECT count(*) INTO r FROM sim_history('load-' || (1 + (random() * 9984)::int),
				                                        '-infinity', 'infinity');
				n := n + 1;
			END LOOP;
			RAISE NOTICE 'calls % last %', n, r;
		END $$;};
	my ($t0, $late0) = split /\|/, q1('SELECT tick, late_ticks FROM sim_status()');
	my $w0 = time;
	my (@h, @out, @err);
	for my $i (0, 1)
	{
		$out[$i] = $err[$i] = '';
		$h[$i] = IPC::Run::start(
			[ 'psql', '-X', '-q', '-U', 'nobody', '-d', $node->connstr('postgres'), '-c', $loop ],
			'>', \$out[$i], '2>', \$err[$i]);
	}
	$_->finish for @h;
	my ($t1, $late1) = split /\|/, q1('SELECT tick, late_ticks FROM sim_status()');
	my $expected = (time - $w0) / 0.25;
	for my $i (0, 1)
	{
		my ($calls, $rows) = $err[$i] =~ /calls (\d+) last (\d+)/;
		cmp_ok($calls // 0, '>=', 20, "reader $i: " . ($calls // 0) . " sim_history() calls");
		cmp_ok($rows // 0, '>', 0, "reader $i: the last call returned rows");
	}
	cmp_ok($t1 - $t0, '>=', int($expected) - 2,
		sprintf('the ticker kept time: %d ticks in %.1f s of 250 ms', $t1 - $t0, $expected / 4));
	cmp_ok($late1 - $late0, '<=', 2, 'at most 2 late ticks meanwhile (' . ($late1 - $late0) . ')');
	is(status_of('dropped_samples'), '0', 'no sample dropped');

	q1(q{DELETE FROM server_templates WHERE id LIKE 'load-%'});
	q1(q{ALTER SYSTEM SET sim_metrics.tick_interval = '100ms'});
	q1(q{ALTER SYSTEM SET sim_metrics.flush_interval = '200ms'});
	$node->reload;
	ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30), 'back to 15 servers');
	ok(wait_until($node, 'SELECT pending_samples < 15 * 20 FROM sim_status()', 't', 60),
		'the writer drains the ring');
}

# ---------------------------------------------------------------------------
# 3. A refused row never blocks the others: dead letters
# ---------------------------------------------------------------------------
sub rejected_by
{
	my ($where) = @_;
	return q1("SELECT count(*), count(DISTINCT server_id), min(sqlstate), max(sqlstate)
	             FROM server_metrics_rejected WHERE $where");
}
{
	is(status_of('rejected_samples'), '0', 'nothing rejected so far');

	# a NOT VALID CHECK that refuses one server
	q1(q{ALTER TABLE server_metrics_history
	       ADD CONSTRAINT refuse_web01 CHECK (server_id <> 'web-nginx-icn-01') NOT VALID});
	my $tick_c = status_of('tick');
	ok(defined wait_value($node, 'SELECT rejected_samples FROM sim_status()',
			sub { $_[0] >= 20 }, 30),
		'CHECK: samples of web-nginx-icn-01 are rejected');
	ok(flushes_go_on(14 * 20), 'CHECK: the other 14 servers flow on');
	my ($n, $servers, $s1, $s2) = split /\|/, rejected_by('true');
	is("$servers|$s1|$s2", '1|23514|23514', "CHECK: $n dead letters, one server, SQLSTATE 23514");
	# one query: the writer keeps adding dead letters meanwhile
	is(q1(q{SELECT count(*) FILTER (WHERE message LIKE '%refuse_web01%' AND sample ? 'cpu_usage'
	                                  AND tick IS NOT NULL AND "timestamp" IS NOT NULL) = count(*)
	         FROM server_metrics_rejected WHERE server_id = 'web-nginx-icn-01'}),
		't', 'CHECK: each dead letter has the sample, its tick and time, and the message');
	is(q1(qq{SELECT count(*) FROM server_metrics_history
	          WHERE server_id = 'web-nginx-icn-01' AND tick > $tick_c + 2}),
		'0', 'CHECK: none of them in the history table');
	q1('ALTER TABLE server_metrics_history DROP CONSTRAINT refuse_web01');

	# a trigger that raises on some rows
	q1(q{CREATE FUNCTION public.refuse_db() RETURNS trigger LANGUAGE plpgsql AS $$
	     BEGIN
	       IF NEW.server_id LIKE 'db-%' THEN
	         RAISE EXCEPTION 'no database rows today';
	       END IF;
	       RETURN NEW;
	     END $$;
	     CREATE TRIGGER refuse_db BEFORE INSERT ON server_metrics_history
	       FOR EACH ROW EXECUTE FUNCTION public.refuse_db()});
	my $r0 = status_of('rejected_samples');
	ok(defined wait_value($node, 'SELECT rejected_samples FROM sim_status()',
			sub { $_[0] >= $r0 + 30 }, 30),
		'trigger: database rows are rejected');
	ok(flushes_go_on(12 * 20), 'trigger: the other 12 servers flow on');
	($n, $servers, $s1, $s2) = split /\|/, rejected_by(q{message = 'no database rows today'});
	is("$servers|$s1|$s2", '3|P0001|P0001', "trigger: $n dead letters of the 3 databases, P0001");
	q1('DROP TRIGGER refuse_db ON server_metrics_history');

	# a partitioned history table with no partition yet for the simulated future
	# (one transaction: no flush sees the table without its first partition)
	my $cut = q1(q{SELECT sim_time + interval '2 s' FROM sim_status()});
	q1(qq{ALTER TABLE server_metrics_history RENAME TO server_metrics_history_plain;
	      CREATE TABLE server_metrics_history
	        (LIKE server_metrics_history_plain INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
	        PARTITION BY RANGE ("timestamp");
	      ALTER TABLE server_metrics_history ALTER COLUMN id DROP NOT NULL;
	      GRANT SELECT, INSERT, DELETE ON server_metrics_history TO sim_metrics_writer;
	      CREATE TABLE smh_past PARTITION OF server_metrics_history
	        FOR VALUES FROM (MINVALUE) TO ('$cut')});
	$r0 = status_of('rejected_samples');
	ok(defined wait_value($node, 'SELECT rejected_samples FROM sim_status()',
			sub { $_[0] >= $r0 + 15 * 10 }, 30),
		'partition: samples past the last partition are rejected');
	like(q1(qq{SELECT min(sqlstate) || ' ' || min(message) FROM server_metrics_rejected
	            WHERE "timestamp" >= '$cut'}),
		qr/^23514 no partition of relation "server_metrics_history" found for row/,
		'partition: 23514, no partition found');
	is(q1(qq{SELECT count(*) FROM server_metrics_rejected WHERE "timestamp" < '$cut'
	          AND message LIKE 'no partition%'}), '0', 'partition: rows with a partition were written');
	q1(qq{CREATE TABLE smh_future PARTITION OF server_metrics_history
	        FOR VALUES FROM ('$cut') TO (MAXVALUE)});
	ok(flushes_go_on(15 * 10), 'partition: once the partition exists, rows flow');
	my $r1 = status_of('rejected_samples');
	ok(flushes_go_on(15 * 10), 'partition: and keep flowing');
	is(status_of('rejected_samples'), $r1, 'partition: nothing more is rejected');
	q1(q{SELECT sim_stop()});
	q1(q{SELECT sim_flush()});
	q1(q{DROP TABLE server_metrics_history;
	     ALTER TABLE server_metrics_history_plain RENAME TO server_metrics_history});
	q1(q{SELECT sim_start()});
	ok(flushes_go_on(15 * 10), 'back to the plain table: rows flow');

	is(status_of('rejected_samples'), q1('SELECT count(*) FROM server_metrics_rejected'),
		'rejected_samples counts the dead letters');
	is(status_of('dropped_samples'), '0', 'nothing dropped');
	is(q1(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'sim_metrics %'}),
		'3', 'the three workers still run');
}

# ---------------------------------------------------------------------------
# 4. The writer's SQL cannot be shaped by a neighbour: a hostile public.=
#    (and <, >, >=, <=) with ALTER DATABASE ... SET search_path = public
# ---------------------------------------------------------------------------
{
	q1(q{CREATE ROLE mallory LOGIN; GRANT CREATE ON SCHEMA public TO mallory});
	my $trap = q{
		CREATE TABLE public.pwned (who text, op text);
		GRANT INSERT ON public.pwned TO PUBLIC;
		CREATE FUNCTION public.evil(text, text) RETURNS boolean LANGUAGE plpgsql AS
		  $$ BEGIN INSERT INTO public.pwned VALUES (current_user, 'text ='); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
		CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.evil);
	};
	for my $op ('<', '<=', '>=', '>')
	{
		(my $name = "evil_ts_$op") =~ tr/<>=/lge/;
		$trap .= qq{
		CREATE FUNCTION public.$name(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS
		  \$\$ BEGIN INSERT INTO public.pwned VALUES (current_user, 'timestamptz $op'); RETURN \$1 OPERATOR(pg_catalog.$op) \$2; END \$\$;
		CREATE OPERATOR public.$op (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = public.$name);
		CREATE FUNCTION public.${name}_i8(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS
		  \$\$ BEGIN INSERT INTO public.pwned VALUES (current_user, 'bigint $op'); RETURN \$1 OPERATOR(pg_catalog.$op) \$2; END \$\$;
		CREATE OPERATOR public.$op (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.${name}_i8);};
	}
	$node->safe_psql('postgres', $trap, extra_params => [ '-U', 'mallory' ]);
	# the trap works on anyone who searches public first
	$node->safe_psql('postgres',
		q{SET search_path = public, pg_catalog; SELECT 'a'::text = 'a'::text});
	is(q1('SELECT count(*) > 0 FROM public.pwned'), 't', 'the hostile operator is armed');
	q1('TRUNCATE public.pwned');

	q1(q{ALTER DATABASE postgres SET search_path = public, pg_catalog});
	q1(q{ALTER SYSTEM SET sim_metrics.history_retention = '1d'});
	my $off = log_offset($node);
	$node->restart;
	ok(eval { $node->wait_for_log(qr/continued 15 of 15 servers/, $off); 1 },
		'hostile search_path: the restart restores from history');
	ok(flushes_go_on(15 * 20), 'hostile search_path: flushes go on');
	ok(wait_until($node, q{SELECT count(*) > 0 FROM sim_history('web-nginx-icn-01', '-infinity', 'infinity')},
			't', 10),
		'hostile search_path: sim_history() reads');
	$node->safe_psql('postgres', 'SELECT sim_flush()');
	is(q1(q{SELECT count(*) FROM public.pwned}), '0',
		'no hostile operator ran (restore, flush, retention, sim_history, sim_flush)');
	q1(q{ALTER DATABASE postgres RESET search_path});
	q1(q{ALTER SYSTEM RESET sim_metrics.history_retention});
	$node->reload;
}

# ---------------------------------------------------------------------------
# 4b. GRANT EXECUTE ON FUNCTION sim_flush() is all a role needs to flush
# ---------------------------------------------------------------------------
{
	q1(q{CREATE ROLE flusher LOGIN; GRANT EXECUTE ON FUNCTION sim_flush() TO flusher});
	# the writer must not flush the three ticks first
	q1(q{ALTER SYSTEM SET sim_metrics.flush_interval = '1h'});
	$node->reload;
	ok(wait_until($node, 'SHOW sim_metrics.flush_interval', '1h', 10), 'flushes every hour meanwhile');
	q1('SELECT sim_stop()');
	q1('SELECT sim_flush()');
	q1('SELECT sim_tick(3)');
	my ($ret, $out, $err) = $node->psql('postgres', 'SELECT sim_flush()',
		extra_params => [ '-U', 'flusher' ]);
	is("$ret|$err", '0|', 'sim_flush() as a role with EXECUTE only: no error');
	cmp_ok($out, '>=', 45, "it wrote the buffered samples ($out rows)");
	($ret, $out, $err) = $node->psql('postgres', 'SELECT sim_flush()',
		extra_params => [ '-U', 'nobody' ]);
	like($err, qr/permission denied for function sim_flush/, 'without the grant: permission denied');
	q1(q{ALTER SYSTEM RESET sim_metrics.flush_interval});
	$node->reload;
	ok(wait_until($node, 'SHOW sim_metrics.flush_interval', '200ms', 10), 'flushes every 200 ms again');
	q1('SELECT sim_start()');
}

# ---------------------------------------------------------------------------
# 4c. sim_history() streams: a '-infinity' range over 1M rows keeps the
#     backend's private memory bounded
# ---------------------------------------------------------------------------
{
	q1(q{INSERT INTO server_metrics_history (server_id, cpu_usage, memory_usage, disk_usage,
	        network_io, status, "timestamp", tick)
	      SELECT 'web-nginx-icn-01', 10, 20, 30, 1000, 'online',
	             timestamptz '2000-01-01' + i * interval '1 s', -i
	        FROM generate_series(1, 1000000) i});
	my $bg = $node->background_psql('postgres', extra_params => [ '-U', 'nobody' ]);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$pid =~ s/\D//g;
	my $anon = sub {
		my $s = eval { slurp_file("/proc/$pid/status") } // '';
		return $s =~ /^RssAnon:\s+(\d+) kB/m ? $1 : 0;
	};
	my $before = $anon->();
	$bg->query_until(qr/started/, q{\echo started
		SET work_mem = '1MB';
		SELECT count(*) FROM sim_history('web-nginx-icn-01', '-infinity', 'infinity');
		\echo finished
	});
	my ($peak, $deadline) = (0, time + 120);
	while (time < $deadline)
	{
		my $a = $anon->();
		$peak = $a if $a > $peak;
		$bg->{run}->pump_nb;
		last if $bg->{stdout} =~ /finished/;
		usleep(20_000);
	}
	like($bg->{stdout}, qr/finished/, 'sim_history over 1M rows completed');
	like($bg->{stdout}, qr/\b10\d{5}\b/, 'and returned the million rows (and the recent ones)');
	my $grew_mb = ($peak - $before) / 1024;
	cmp_ok($grew_mb, '<', 64,
		sprintf('private memory grew by %.1f MB at most (1M rows would take hundreds)', $grew_mb));
	$bg->quit;
	q1(q{DELETE FROM server_metrics_history WHERE tick < 0});
}

# ---------------------------------------------------------------------------
# 5. pg_cancel_backend() of either worker cancels nothing, even mid-flush
# ---------------------------------------------------------------------------
{
	my ($writer, $ticker) = (worker_pid($node, 'writer'), worker_pid($node));
	my $e0 = status_of('errors');
	for (1 .. 40)
	{
		q1("SELECT pg_cancel_backend($writer), pg_cancel_backend($ticker)");
		usleep(25_000);    # spread the cancels over flushes (200 ms interval)
	}
	ok(flushes_go_on(15 * 10), 'cancel: flushes go on');
	is(status_of('errors'), $e0, 'cancel: no error from 80 cancels');
	is(worker_pid($node, 'writer') . '|' . worker_pid($node), "$writer|$ticker",
		'cancel: same writer and ticker');
}

# ---------------------------------------------------------------------------
# 6. The restore continues after the newest tick stored, of any server
#    (say, a dump restored with rows of a retired server further ahead)
# ---------------------------------------------------------------------------
{
	$node->safe_psql('postgres', 'SELECT sim_stop()');
	$node->safe_psql('postgres', 'SELECT sim_flush()');
	my $tick = status_of('tick');
	my $ghost = $tick + 5000;
	q1(qq{INSERT INTO server_metrics_history (server_id, cpu_usage, memory_usage, disk_usage,
	        network_io, status, "timestamp", tick)
	      VALUES ('ghost-01', 1, 1, 1, 1, 'online', now() - interval '1 day', $ghost),
	             ('ghost-02', 1, 1, 1, 1, 'online', 'infinity', $ghost + 1000)});
	my $off = log_offset($node);
	$node->restart;
	ok(eval { $node->wait_for_log(qr/continued 15 of 15 servers from server_metrics_history at tick $ghost\b/, $off); 1 },
		"restore: continues at tick $ghost, the newest finite tick stored (not $tick)");
	cmp_ok(status_of('tick'), '>=', $ghost, 'restore: sim_status().tick');
	is(q1('SELECT sim_time IS NOT NULL FROM sim_status()'), 't',
		'restore: an infinite timestamp is not taken for the clock');
	q1(q{DELETE FROM server_metrics_history WHERE server_id LIKE 'ghost-%'});
}

# ---------------------------------------------------------------------------
# 7. A fast shutdown with a large backlog finishes within 10 s and says
#    what was left
# ---------------------------------------------------------------------------
{
	q1(q{ALTER SYSTEM SET sim_metrics.flush_interval = '1h'});
	$node->reload;
	ok(wait_until($node, 'SHOW sim_metrics.flush_interval', '1h', 10), 'flush_interval 1h');
	q1(q{INSERT INTO server_templates (id, name, hostname, role, location)
	       SELECT 'bulk-' || i, 'Bulk ' || i, 'bulk-' || i || '.test', 'app', 'Lab'
	         FROM generate_series(1, 19985) i});
	q1('SELECT sim_reload()');
	q1('SELECT sim_tick(50)');
	my $pending = status_of('pending_samples');
	cmp_ok($pending, '>=', 900000, "backlog of $pending samples");
	my $off = log_offset($node);
	my $t0 = time;
	$node->stop('fast');
	my $took = time - $t0;
	my $log = log_since($node, $off);
	like($log,
		qr/sim_metrics writer (?:flushed its buffered samples \(\d+ rows|is exiting with \d+ samples not flushed)/,
		'the writer said what it wrote or left');
	# the writer's part, from the log's own clock: its exit flush is bounded
	# (2 s for locks, 8 s in all); the shutdown checkpoint that follows
	# writes what it flushed, which a loaded machine makes slower
	my $request = log_time($log, qr/received fast shutdown request/);
	my $exit = log_time($log, qr/sim_metrics writer (?:flushed its buffered|is exiting with)/);
	ok(defined $request && defined $exit, 'the log dates the request and the writer\'s exit');
	cmp_ok($exit - $request, '<', 10,
		sprintf('the writer left %.1f s after the fast shutdown request (the whole stop %.1f s)',
				$exit - $request, $took));
	cmp_ok($took, '<', 60, 'the fast stop ended');
	$node->start;
	q1(q{DELETE FROM server_templates WHERE id LIKE 'bulk-%'});
	ok(wait_until($node, 'SELECT servers, tick > 0 FROM sim_status()', '15|t', 30),
		'after the restart: 15 servers, ticking');
}

# ---------------------------------------------------------------------------
# 8. Simulated time cannot leave the timestamp range
# ---------------------------------------------------------------------------
{
	q1(q{ALTER SYSTEM SET sim_metrics.start_time = '9999-12-01 00:00:00+00'});
	q1(q{ALTER SYSTEM SET sim_metrics.time_scale = 1000000});
	q1(q{ALTER SYSTEM SET sim_metrics.tick_interval = '1d'});
	$node->reload;
	ok(wait_until($node, 'SHOW sim_metrics.tick_interval', '1d', 10), 'one tick = 2,738 simulated years');
	my $tick = status_of('tick');
	my ($ret, $out, $err) = $node->psql('postgres', 'SELECT sim_tick(200)');
	like($err, qr/ERROR:  simulated time of tick \d+ is past the end of the timestamp range/,
		'sim_tick() past the end of the timestamp range: a clear error');
	like($err, qr/HINT:  Lower sim_metrics.time_scale/, 'with a hint');
	is(status_of('tick'), $tick, 'no tick was taken');
	is(q1(q{SELECT count(*) FROM server_metrics_history WHERE NOT isfinite("timestamp")}), '0',
		'no infinite timestamp reaches the history');
}

my @bad = grep { !/background worker "(?:sim_metrics (?:ticker|writer|mirror)|logical replication launcher)" \(PID \d+\) exited with exit code 1/ }
  grep { /PANIC|terminated by signal|exited with exit code/ } split /\n/, slurp_file($node->logfile);
is(join("\n", @bad), '', 'no crash in the server log');
$node->stop;
done_testing();
