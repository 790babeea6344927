
# The anomaly detectors across restarts (detect_store.c):
#  1. a clean restart keeps them: the postmaster saves them at shutdown
#     (pg_stat/sim_metrics_detect.stat), the first load gives each server
#     its own back. Node A (restarted at tick N) against twin B (never
#     restarted), twin C (restarted at N, the file removed) and twin D
#     (restarted at N like A): after the restart A's scores are D's bit for
#     bit (the same seed, the same restart, the same scores); the model's
#     values are A's = C's = D's, and not B's (the restore continues from the
#     stored, rounded row, without the model's bursts: see the diag), so
#     scores can only stay near B's, which A's do while C's detectors sit
#     in their warm-up;
#  2. the load removes the file; a crash restart saves nothing, so the
#     detectors start over (the first SMX_DETECT_WARMUP samples score 0),
#     even right after a clean restart whose file was used;
#  3. a short, damaged, foreign or other-format file: a LOG line saying
#     why, a normal start, the detectors starting over.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

# paused (sim_tick() steps), 30 simulated seconds a tick, incidents often
my $conf = <<'EOC';
sim_metrics.database_name = 'postgres'
sim_metrics.enabled = off
sim_metrics.seed = 32
sim_metrics.start_time = '2026-01-05 00:00:00+00'
sim_metrics.tick_interval = '500ms'
sim_metrics.time_scale = 60
sim_metrics.incident_rate = 24
sim_metrics.flush_interval = '1s'
# PostgreSQL::Test::Cluster turns this off; part 2 needs the crash restart
restart_after_crash = on
EOC
my $N = 300;       # ticks before the restart, well past the warm-up
my $M = 100;       # ticks after it
my $WARMUP = 64;   # SMX_DETECT_WARMUP
my $file = 'pg_stat/sim_metrics_detect.stat';

my $a = sim_node('dr_a', $conf);
my $b = sim_node('dr_b', $conf);
my $c = sim_node('dr_c', $conf);
my $d = sim_node('dr_d', $conf);
for my $node ($a, $b, $c, $d)
{
	$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
	ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30),
		$node->name . ': fleet of 15 loaded, paused');
}

sub stat_file { return $_[0]->data_dir . "/$file"; }

# Start $node and wait for the first load; returns (tick, detectors kept)
# from its log line.
sub start_loaded
{
	my ($node, $what) = @_;
	my $off = log_offset($node);
	$node->start;
	my $ok = eval {
		$node->wait_for_log(
			qr/continued 15 of 15 servers from server_metrics_history at tick \d+\n.*DETAIL:\s+\d+ of them kept/,
			$off);
		1;
	};
	ok($ok, "$what: the first load continued the 15 servers");
	my ($t, $kept) = log_since($node, $off) =~
	  /continued 15 of 15 servers from server_metrics_history at tick (\d+)\n.*DETAIL:\s+(\d+) of them kept/;
	return ($t // -1, $kept // -1, $off);
}

# Rows of ticks $lo..$hi as text, one a line: the model's columns, or the
# score's bits (float4send).
sub values_text
{
	my ($node, $lo, $hi) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(concat_ws(',', tick, server_id, "timestamp", cpu_usage, memory_usage,
		                            disk_usage, network_io, status, scenario_run_id),
		                  E'\\n' ORDER BY tick, server_id)
		  FROM server_metrics_history WHERE tick BETWEEN $lo AND $hi});
}

sub scores
{
	my ($node, $lo, $hi) = @_;
	my %s;
	for (split /\n/, $node->safe_psql('postgres', qq{
		SELECT tick, server_id, encode(float4send(anomaly_score), 'hex'), anomaly_score, status
		  FROM server_metrics_history WHERE tick BETWEEN $lo AND $hi ORDER BY tick, server_id}))
	{
		my ($t, $id, $bits, $v, $st) = split /\|/;
		$s{"$t $id"} = [ $bits, $v, $st ];
	}
	return \%s;
}

sub score_bits
{
	my ($node, $lo, $hi) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(encode(float4send(anomaly_score), 'hex'), ',' ORDER BY tick, server_id)
		  FROM server_metrics_history WHERE tick BETWEEN $lo AND $hi});
}

# Online samples of ticks $lo..$hi that score above 0.
sub scored
{
	my ($node, $lo, $hi) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT count(*) FILTER (WHERE anomaly_score > 0) || '/' || count(*)
		  FROM server_metrics_history
		 WHERE tick BETWEEN $lo AND $hi AND status <> 'offline'});
}

# ---------------------------------------------------------------------------
# 1. a clean restart keeps the detectors
# ---------------------------------------------------------------------------
$a->safe_psql('postgres', "SELECT sim_tick($N)");
$c->safe_psql('postgres', "SELECT sim_tick($N)");
$d->safe_psql('postgres', "SELECT sim_tick($N)");
$b->safe_psql('postgres', "SELECT sim_tick($N + $M)");
$_->safe_psql('postgres', 'SELECT sim_flush()') for ($a, $b, $c, $d);

is(values_text($a, 1, $N), values_text($b, 1, $N), "ticks 1..$N: A's values are twin B's");
is(score_bits($a, 1, $N), score_bits($b, 1, $N), "ticks 1..$N: A's scores are twin B's, bit for bit");
cmp_ok(scored($a, $WARMUP + 1, $N) =~ s{/.*}{}r, '>', 0, 'and some of them are above 0');

ok(!-e stat_file($a), 'no saved detectors while the server runs');
$_->stop('fast') for ($a, $c, $d);
ok(-s stat_file($a), "the clean shutdown saved the detectors in $file");
ok(!-e stat_file($a) . '.tmp', 'and left no temporary file');
is(slurp_file(stat_file($c)), slurp_file(stat_file($a)),
	'two twins stopped at the same tick save the same bytes');
my $saved = slurp_file(stat_file($a));    # for part 3
unlink(stat_file($c)) or die "unlink: $!";

my ($ta, $kept_a) = start_loaded($a, 'A');
is("$ta|$kept_a", "$N|15", "A continued from tick $N, all 15 servers kept their detector");
ok(!-e stat_file($a), 'the load removed the file');
my ($tc, $kept_c) = start_loaded($c, 'C (file removed)');
is("$tc|$kept_c", "$N|0", "C continued from tick $N, no detector kept");
my ($td, $kept_d) = start_loaded($d, 'D');
is("$td|$kept_d", "$N|15", "D continued from tick $N, all 15 kept");

$a->safe_psql('postgres', "SELECT sim_tick($M)");
$c->safe_psql('postgres', "SELECT sim_tick($M)");
$d->safe_psql('postgres', "SELECT sim_tick($M)");
$_->safe_psql('postgres', 'SELECT sim_flush()') for ($a, $c, $d);

my ($lo, $hi) = ($N + 1, $N + $M);
# the model: a restart continues from the stored row (values in hundredths,
# no burst, no status hysteresis, no disk accumulation), not from the
# model's full state, so the values part from the uninterrupted twin's
is(values_text($a, $lo, $hi), values_text($c, $lo, $hi),
	"ticks $lo..$hi: A's values are C's (both restarted from the same rows)");
is(values_text($a, $lo, $hi), values_text($d, $lo, $hi), "ticks $lo..$hi: and D's");
is(score_bits($a, $lo, $hi), score_bits($d, $lo, $hi),
	"ticks $lo..$hi: A's scores are D's, bit for bit (same seed, same restart)");
isnt(score_bits($a, $lo, $hi), score_bits($c, $lo, $hi), "ticks $lo..$hi: and not C's (detectors started over)");
my $va = values_text($a, $lo, $hi);
my $vb = values_text($b, $lo, $hi);
my @la = split /\n/, $va;
my @lb = split /\n/, $vb;
is(scalar(@la), 15 * $M, "A wrote $M ticks x 15 after the restart");
my $same_values = grep { $la[$_] eq $lb[$_] } 0 .. $#la;
diag "model values after the restart: $same_values of " . scalar(@la)
  . " rows equal to the uninterrupted twin's";
# why: the restore puts the stored value (bursts included) into the
# mean-reverting part and zeroes the bursts (smx_state_restore), and takes
# the values rounded to hundredths, so cpu and network part from the twin's
# at the first tick (a known limit, not asserted here)
diag "tick $lo, A then B:\n" . values_text($a, $lo, $lo) =~ s/\n.*//sr . "\n"
  . values_text($b, $lo, $lo) =~ s/\n.*//sr;

my $sa = scores($a, $lo, $hi);
my $sb = scores($b, $lo, $hi);
my $sc = scores($c, $lo, $hi);
my $w_hi = $N + $WARMUP;
# C's detectors warm up again: nothing online scores in its first 64 samples
is(scored($c, $lo, $w_hi) =~ s{/.*}{}r, '0', "C (detectors start over): no online sample of ticks $lo..$w_hi scores");
my $a_warm = scored($a, $lo, $w_hi);
cmp_ok($a_warm =~ s{/.*}{}r, '>', 0, "A (detectors kept): $a_warm online samples of ticks $lo..$w_hi score");

# A's scores against the uninterrupted twin's: the same detector fed nearly
# the same values, so nearly the same scores; C's are far off in the warm-up
my ($n, $eq_a, $eq_c, $close_a, $close_c, $max_a) = (0, 0, 0, 0, 0, 0);
for my $k (keys %$sb)
{
	next unless exists $sa->{$k} && exists $sc->{$k};
	$n++;
	$eq_a++ if $sa->{$k}[0] eq $sb->{$k}[0];
	$eq_c++ if $sc->{$k}[0] eq $sb->{$k}[0];
	my $da = abs($sa->{$k}[1] - $sb->{$k}[1]);
	$close_a++ if $da <= 0.05;
	$close_c++ if abs($sc->{$k}[1] - $sb->{$k}[1]) <= 0.05;
	$max_a = $da if $da > $max_a;
}
diag sprintf("ticks %d..%d, %d samples: equal to B's bit for bit: A %d, C %d; within 0.05: A %d, C %d; A's largest difference %.4f",
	$lo, $hi, $n, $eq_a, $eq_c, $close_a, $close_c, $max_a);
is($n, 15 * $M, 'every sample of the three nodes compared');
cmp_ok($close_a, '>=', 0.95 * $n, 'A (kept): at least 95% of the scores within 0.05 of the uninterrupted twin\'s');
cmp_ok($close_a, '>', $close_c, 'A is closer to the uninterrupted twin than C (started over)');

# ---------------------------------------------------------------------------
# 2. a detector is kept only for the row it last scored; a crash saves
#    nothing: the detectors start over, even right after a clean restart
#    whose file was used (the load removed it)
# ---------------------------------------------------------------------------
my $t2 = $N + $M;
# one server's last row lost (as when the exit flush could not write it):
# the tick saved with its detector is ahead of the row it continues from
$a->safe_psql('postgres', "DELETE FROM server_metrics_history WHERE tick = $t2 AND server_id = 'api-was-icn-02'");
$a->stop('fast');
my ($ta2, $kept_a2) = start_loaded($a, 'A again');
is("$ta2|$kept_a2", "$t2|14",
	"A restarted cleanly at tick $t2: 14 kept their detector, not the server whose last row is missing");
ok(!-e stat_file($a), 'the file is gone after the load');
my $off = crash_restart($a, 'crash right after the load');
ok(eval { $a->wait_for_log(qr/continued 15 of 15 servers from server_metrics_history at tick $t2\n.*DETAIL:\s+0 of them kept/, $off); 1 },
	"after the crash: continued at tick $t2, no detector kept");
ok(!-e stat_file($a), 'the crash wrote no file');
$a->safe_psql('postgres', "SELECT sim_tick($WARMUP + 20)");
$a->safe_psql('postgres', 'SELECT sim_flush()');
is(scored($a, $t2 + 1, $t2 + $WARMUP) =~ s{/.*}{}r, '0',
	"after the crash: no online sample of the first $WARMUP scores (warm-up)");
cmp_ok(scored($a, $t2 + $WARMUP + 1, $t2 + $WARMUP + 20) =~ s{/.*}{}r, '>', 0,
	'and the detectors score again after it');

# ---------------------------------------------------------------------------
# 3. a file not to be trusted: LOG, normal start, detectors start over
# ---------------------------------------------------------------------------
sub put
{
	my ($path, $bytes) = @_;
	open(my $fh, '>:raw', $path) or die "open $path: $!";
	print $fh $bytes;
	close($fh) or die "close $path: $!";
}

my $hdr = 16;    # magic, version, detector size, count
my @bad = (
	[ 'empty', '', qr/the file is too short/ ],
	[ 'truncated', substr($saved, 0, int(length($saved) / 2)), qr/its checksum does not match/ ],
	[ 'one byte flipped', substr($saved, 0, 200) . chr(ord(substr($saved, 200, 1)) ^ 1) . substr($saved, 201),
	  qr/its checksum does not match/ ],
	[ 'garbage', join('', map { chr(($_ * 37 + 11) % 256) } 1 .. length($saved)), qr/not a sim_metrics detector file \(wrong magic number\)/ ],
	[ 'another format version', substr($saved, 0, 4) . pack('L', 99) . substr($saved, 8), qr/format version 99, this build reads version 1/ ],
	[ 'another detector size', substr($saved, 0, 8) . pack('L', unpack('L', substr($saved, 8, 4)) + 4) . substr($saved, 12),
	  qr/detectors of \d+ bytes, this build's take \d+/ ],
	[ 'a count past max_servers', substr($saved, 0, 12) . pack('l', 2_000_000) . substr($saved, $hdr),
	  qr/2000000 servers, more than sim_metrics.max_servers/ ],
);
for my $case (@bad)
{
	my ($what, $bytes, $why) = @$case;
	my $t0 = sim_tick_now($c);
	$c->stop('fast');
	put(stat_file($c), $bytes);
	my $off3 = log_offset($c);
	my ($t3, $kept3) = start_loaded($c, "$what file");
	is("$t3|$kept3", "$t0|0", "$what file: a normal start at tick $t0, no detector kept");
	like(log_since($c, $off3), qr/LOG:\s+sim_metrics: ignoring the saved anomaly detectors in "pg_stat\/sim_metrics_detect.stat": $why/,
		"$what file: a LOG line says why");
	is(crash_lines(log_since($c, $off3)) =~ s/.*exited with exit code 1.*\n?//gr, '',
		"$what file: no ERROR, no crash");
	ok(!-e stat_file($c), "$what file: removed");
}
# the detectors of the last start over really start over
$c->safe_psql('postgres', "SELECT sim_tick(10)");
$c->safe_psql('postgres', 'SELECT sim_flush()');
my $t4 = sim_tick_now($c);
is(scored($c, $t4 - 9, $t4) =~ s{/.*}{}r, '0', 'after a refused file the detectors are in their warm-up');
ok(sim_tick_now($c) > 0, 'and the fleet ticks');

$_->stop for ($a, $b, $c, $d);
done_testing();
