# Errors inside the worker never stop the simulation: a broken
# server_templates makes the reload fail (recorded in sim_status, retried
# with backoff) while the loaded fleet keeps ticking under the same pid;
# a session holding an ACCESS EXCLUSIVE lock on the templates does not
# stall ticks either.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

my $node = sim_node('errors', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.tick_interval = '200ms'
EOC
$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(defined wait_value($node, 'SELECT tick FROM sim_status()', sub { $_[0] >= 3 }, 30),
	'worker ticks');
my $pid = worker_pid($node);
like($pid, qr/^\d+$/, 'one worker');

# ---------------------------------------------------------------------------
# A template reload that fails
# ---------------------------------------------------------------------------

my $offset = log_offset($node);
$node->safe_psql('postgres', q{
	ALTER TABLE server_templates RENAME COLUMN baseline_cpu TO baseline_cpu_renamed;
	INSERT INTO server_templates (id, name, hostname, role, location)
	VALUES ('web-err-01', 'Err', 'web-err-01.example', 'web', 'Lab-1');
});

ok(wait_until($node,
		"SELECT errors > 0, last_error ~ 'baseline_cpu' FROM sim_status()",
		't|t', 20),
	'the failed reload is recorded in sim_status().last_error');
my $tick_at_error = sim_tick_now($node);
ok(defined wait_value($node, 'SELECT tick FROM sim_status()',
		sub { $_[0] >= $tick_at_error + 10 }, 20),
	'the loaded fleet keeps ticking while the reload fails');
is($node->safe_psql('postgres', 'SELECT servers, running FROM sim_status()'),
	'15|t', 'the old fleet of 15 servers is kept');
is(worker_pid($node), $pid, 'same worker pid');

# the reload is retried with backoff, not in a hot loop: at 200 ms ticks a
# retry every tick would give ~25 errors in 5 s
my $e0 = $node->safe_psql('postgres', 'SELECT errors FROM sim_status()');
my @seen = quiet_window($node, 'SELECT 1', 5);
my $e1 = $node->safe_psql('postgres', 'SELECT errors FROM sim_status()');
cmp_ok($e1 - $e0, '<=', 4, "retries back off ($e0 -> $e1 errors in 5 s)");

# repaired: the next retry loads the new server
$node->safe_psql('postgres',
	'ALTER TABLE server_templates RENAME COLUMN baseline_cpu_renamed TO baseline_cpu');
ok(wait_until($node, 'SELECT servers FROM sim_status()', '16', 70),
	'after the repair the retry loads the new template');
is(worker_pid($node), $pid, 'still the same worker pid');

my $log = log_since($node, $offset);
like($log, qr/ERROR:.*baseline_cpu/, 'the reload error is in the server log');
unlike($log, qr/FATAL|PANIC|terminated by signal|exited with exit code/,
	'no crash, no worker exit');

# ---------------------------------------------------------------------------
# Templates locked by another session: ticks go on
# ---------------------------------------------------------------------------

my $locker = $node->background_psql('postgres');
$locker->query_safe(
	'BEGIN; LOCK TABLE server_templates IN ACCESS EXCLUSIVE MODE;');
my $t0 = sim_tick_now($node);
ok(defined wait_value($node, 'SELECT tick FROM sim_status()',
		sub { $_[0] >= $t0 + 10 }, 20),
	'ticks continue while server_templates is locked');
is($node->safe_psql('postgres', 'SELECT count(*) FROM sim_current_metrics()'),
	'16', 'readers are not blocked by the lock');
$locker->query_safe('ROLLBACK;');
$locker->quit;

# ---------------------------------------------------------------------------
# pg_cancel_backend(worker) has nothing to cancel: the worker stays
# ---------------------------------------------------------------------------

$offset = log_offset($node);
$pid = worker_pid($node);
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)") for 1 .. 3;
my $t1 = sim_tick_now($node);
ok(defined wait_value($node, 'SELECT tick FROM sim_status()',
		sub { $_[0] >= $t1 + 10 }, 20),
	'ticks continue after pg_cancel_backend(worker)');
is(worker_pid($node), $pid, 'same worker pid after cancel');
unlike(log_since($node, $offset), qr/exited with exit code/, 'the worker did not exit');

# ---------------------------------------------------------------------------
# A REPEATABLE READ sim_reload() with an old snapshot does not bring back an
# old fleet for good
# ---------------------------------------------------------------------------

my $rr = $node->background_psql('postgres');
$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ;');
$rr->query_safe('SELECT count(*) FROM server_templates;');    # snapshot taken
$node->safe_psql('postgres', q{
	INSERT INTO server_templates (id, name, hostname, role, location)
	VALUES ('web-rr-01', 'RR', 'web-rr-01.example', 'web', 'Lab-1');});
ok(wait_until($node, 'SELECT servers FROM sim_status()', '17', 20),
	'the worker loads the new template');
$rr->query_safe('SELECT sim_reload();');
$rr->query_safe('COMMIT;');
$rr->quit;
ok(wait_until($node, 'SELECT servers FROM sim_status()', '17', 20),
	'after a REPEATABLE READ reload the fleet is the committed one again');
my @still = quiet_window($node, 'SELECT servers FROM sim_status()', 2);
is("@still", '17', 'and stays so');

$node->stop;
done_testing();
