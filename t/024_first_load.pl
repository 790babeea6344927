
# The first load after a crash-restart (Redis recovery, then the restore
# from history) is the writer's alone: a backend's sim_reload() that comes
# first waits for it instead of making it in its own transaction. Redis
# holds 30 unflushed ticks at each crash; the writer is kept from
# connecting (its role loses LOGIN) while a backend runs
#   1. BEGIN; SELECT sim_reload(); ROLLBACK  before the writer is back;
#   2. BEGIN; SELECT sim_reload();  while the writer comes back, ROLLBACK
#      once the writer has loaded.
# Counted per server and tick: no sample lost, none written twice.
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
use SimRedis;

plan skip_all => 'redis-server is not installed' unless -x '/usr/bin/redis-server';

my $port = redis_port();
my $node = sim_node('first_load', <<"EOC");
sim_metrics.database_name = 'postgres'
sim_metrics.role = 'sim_worker'
sim_metrics.tick_interval = '100ms'
sim_metrics.flush_interval = '1h'
restart_after_crash = on
sim_metrics.redis_host = '127.0.0.1'
sim_metrics.redis_port = $port
EOC
sub q1 { return $node->safe_psql('postgres', $_[0]); }

my $writer_as_role = q{SELECT count(*) FROM pg_stat_activity
	WHERE backend_type = 'sim_metrics writer' AND usename = 'sim_worker'};

ok(redis_start(), "redis-server on port $port");
q1('CREATE ROLE sim_worker LOGIN');
q1('CREATE EXTENSION sim_metrics');
ok(wait_until($node, $writer_as_role, '1', 60), 'the writer runs as sim_worker');
ok(wait_until($node, q{SELECT servers, redis_state FROM sim_status()}, '15|connected', 30),
	'15 servers, Redis connected');

# Some history in the table, 30 ticks more only in the ring and in Redis.
# Returns the tick flushed and the mirror mark.
sub unflushed
{
	my ($what) = @_;
	my $t = q1('SELECT tick FROM sim_status()');
	ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= $t + 10 }, 30),
		"$what: ticking");
	q1('SELECT sim_flush()');
	my $flushed = q1('SELECT max(tick) FROM server_metrics_history');
	ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= $flushed + 30 }, 30),
		"$what: 30 ticks not flushed");
	my $now = q1('SELECT tick FROM sim_status()');
	my $mark = rwait(sub { $_[0] =~ /^\d+$/ && $_[0] >= $now }, 'mirror mark',
		'HGET', 'sim:mirror', 'tick');
	ok(defined $mark, "$what: the mirror mark reached tick " . ($mark // '?'));
	return ($flushed, $mark // $now);
}

# The writer cannot connect after the crash (its role lost LOGIN); SIGKILL
# a backend, wait for the crash-restart and a new ticker.
sub crash_without_writer
{
	my ($what) = @_;
	q1('ALTER ROLE sim_worker NOLOGIN');
	my $off = crash_restart($node, $what);
	ok(eval { $node->wait_for_log(qr/role "sim_worker" is not permitted to log in/, $off); 1 },
		"$what: the writer cannot connect yet");
	is(q1('SELECT servers FROM sim_status()'), '0', "$what: no fleet loaded");
	return $off;
}

# The writer back: it connects and loads; the fleet ticks.
sub writer_back
{
	my ($what, $upto) = @_;
	q1('ALTER ROLE sim_worker LOGIN');
	ok(wait_until($node, $writer_as_role, '1', 30), "$what: the writer is back");
	ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= $upto + 10 }, 30),
		"$what: ticking again past tick $upto");
}

# Every sample of ticks flushed+1 .. mark of the 15 servers once, and every
# server's ticks without a hole or a second copy.
sub check
{
	my ($what, $flushed, $mark, $off) = @_;
	q1('SELECT sim_flush()');
	my $n = 15 * ($mark - $flushed);
	is(q1("SELECT count(*) || '|' || count(DISTINCT (server_id, tick)) FROM server_metrics_history
	       WHERE tick > $flushed AND tick <= $mark"), "$n|$n",
		"$what: all $n samples of ticks " . ($flushed + 1) . "..$mark, each once");
	is(q1(q{SELECT count(*) FROM (SELECT server_id FROM server_metrics_history GROUP BY server_id
	        HAVING count(*) <> count(DISTINCT tick) OR count(*) <> max(tick) - min(tick) + 1) x}),
		'0', "$what: per server every tick once, none missing, none twice");
	my @rec = slurp_file($node->logfile, $off) =~ /^(.*recovered \d+ unflushed samples.*)$/mg;
	is(scalar(@rec), 1, "$what: recovered once");
	unlike($rec[0] // '', qr/024_first_load/, "$what: by the writer, not by the backend");
}

# 1. BEGIN; SELECT sim_reload(); ROLLBACK before the writer is back
my ($flushed, $mark) = unflushed('rollback');
my $off = crash_without_writer('rollback');
my ($ret, $out, $err) = $node->psql('postgres', "BEGIN;\nSELECT sim_reload();\nROLLBACK;");
like($err, qr/the writer has not made the first load of the fleet yet/,
	'rollback: the backend does not make the first load') or diag "sim_reload(): $out";
writer_back('rollback', $mark);
check('rollback', $flushed, $mark, $off);

# 2. the backend's transaction open while the writer comes back
($flushed, $mark) = unflushed('race');
$off = crash_without_writer('race');
my ($in, $bout, $berr) = ('', '', '');
my $h = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres') ],
	'<', \$in, '>', \$bout, '2>', \$berr, IPC::Run::timeout(90));
$in .= "BEGIN;\nSELECT sim_reload();\n\\echo reload returned\n";
ok(defined wait_value($node, q{SELECT count(*) FROM pg_stat_activity
	WHERE query LIKE 'SELECT sim_reload()%' AND backend_type = 'client backend'},
	sub { $h->pump_nb; $_[0] eq '1' }, 30), 'race: the backend called sim_reload()');
writer_back('race', $mark);
{
	my $deadline = time + 30;
	while (time < $deadline && $bout !~ /reload returned/) { $h->pump_nb; usleep(50_000); }
}
like($bout, qr/^15\nreload returned/, 'race: the backend\'s sim_reload() returned after the writer\'s load')
  or diag "stderr: $berr";
$in .= "ROLLBACK;\n\\q\n";
$h->finish;
check('race', $flushed, $mark, $off);

$node->stop;
redis_stop();
done_testing();
