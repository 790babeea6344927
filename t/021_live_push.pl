
# Live push from the writer: a real LISTEN client gets one NOTIFY
# sim_metrics_status a status change, with the payload the history agrees
# with; sim_metrics.realtime sends one message a tick through a stand-in
# realtime.send(), run as that function's owner (not the privileged
# writer); a failing or missing realtime.send is counted, never fatal.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use SimMetricsTest;

my $node = sim_node('live_push', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.enabled = off
sim_metrics.seed = 42
sim_metrics.start_time = '2026-01-05 00:00:00+00'
sim_metrics.flush_interval = '1h'
sim_metrics.realtime = 'public'
sim_metrics.realtime_topic = 'fleet'
EOC
$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30), 'fleet loaded');

# no realtime.send yet: nothing sent, nothing failed
$node->safe_psql('postgres', 'SELECT sim_tick(1)');
ok(wait_until($node, 'SELECT realtime_messages, realtime_errors FROM sim_status()', '0|0', 10),
	'no realtime.send: nothing sent, no error');

# a stand-in realtime.send, owned by a plain role as on Supabase
$node->safe_psql('postgres', <<'EOS');
CREATE ROLE supabase_realtime_admin NOLOGIN;
CREATE SCHEMA realtime AUTHORIZATION supabase_realtime_admin;
SET ROLE supabase_realtime_admin;
CREATE TABLE realtime.sent (payload jsonb, event text, topic text, private boolean,
                            sender name DEFAULT current_user, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF topic = 'fail' THEN RAISE EXCEPTION 'stand-in failure'; END IF;
  INSERT INTO realtime.sent (payload, event, topic, private) VALUES (payload, event, topic, private);
END $$;
RESET ROLE;
EOS

# a LISTEN client
my $listener = $node->background_psql('postgres', on_error_stop => 0);
$listener->query_safe('LISTEN sim_metrics_status');

# a status change: a server goes down and comes back
$node->safe_psql('postgres', q{SELECT sim_scenario_start('server_down', '{web-nginx-icn-02}', 1, '10 min')});
$node->safe_psql('postgres', 'SELECT sim_tick(25)');
my $got = '';
for (1 .. 100)
{
	$got .= $listener->query('SELECT 1') // '';
	last if ($got =~ tr/\n//) > 2 && $got =~ /"to": "online"/;
	usleep(100_000);
}
my @notes = $got =~ /Asynchronous notification "sim_metrics_status" with payload "(.*?)" received/g;
my @down = grep { /web-nginx-icn-02/ } @notes;
cmp_ok(scalar @down, '>=', 2, 'the LISTEN client got the server going down and coming back')
  or diag $got;
my ($first) = grep { /"to": "offline"/ } @down;
like($first // '', qr/^\{"server_id": "web-nginx-icn-02", "from": "(online|warning)", "to": "offline", "tick": \d+, "sim_time": "[^"]+", "scenario_run_id": 1\}$/,
	'payload: server, from, to, tick, sim time, run id');
my ($tick) = ($first // '') =~ /"tick": (\d+)/;
$node->safe_psql('postgres', 'SELECT sim_flush()');
is($node->safe_psql('postgres', "SELECT string_agg(status, ',' ORDER BY tick) FROM server_metrics_history
	WHERE server_id = 'web-nginx-icn-02' AND tick BETWEEN " . (($tick // 1) - 1) . " AND " . ($tick // 1)),
	($first // '') =~ /"from": "(\w+)"/ ? "$1,offline" : 'no tick',
	"the history agrees: the change is at tick " . ($tick // '?'));
my @back = grep { /"to": "online"/ } @down;
is(scalar @back, 1, 'and one notification of its return');
cmp_ok($node->safe_psql('postgres', 'SELECT notifications FROM sim_status()'), '>=', scalar @notes,
	'sim_status().notifications counts them');
$listener->quit;

# Realtime: one message a tick, as the function's owner
ok(wait_until($node, 'SELECT count(*) > 0 FROM realtime.sent', 't', 30), 'realtime.send was called');
$node->safe_psql('postgres', 'SELECT sim_tick(3)');
my $tick_now = $node->safe_psql('postgres', 'SELECT tick FROM sim_status()');
ok(wait_until($node, "SELECT max((payload->>'tick')::int) FROM realtime.sent", $tick_now, 30),
	"a message for the current tick ($tick_now)");
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT concat_ws(',', event, topic, private, sender), ';')
	FROM realtime.sent}), 'tick,fleet,f,supabase_realtime_admin',
	'event tick, topic from sim_metrics.realtime_topic, public, run as the function\'s owner');
is($node->safe_psql('postgres', q{SELECT payload->'summary'->'total', jsonb_array_length(payload->'data'),
	payload ? 'pagination' FROM realtime.sent ORDER BY at DESC LIMIT 1}), '15|15|t',
	'the message is the dashboard document of the fleet');
is($node->safe_psql('postgres', 'SELECT realtime_errors FROM sim_status()'), '0', 'no error');

# owned by a superuser: never run as its owner, but as sim_metrics.admin_role
$node->safe_psql('postgres', q{CREATE ROLE dash_admin NOLOGIN;
	GRANT USAGE ON SCHEMA realtime TO dash_admin; GRANT INSERT ON realtime.sent TO dash_admin;
	ALTER FUNCTION realtime.send(jsonb, text, text, boolean) OWNER TO CURRENT_USER;
	ALTER SYSTEM SET sim_metrics.admin_role = 'dash_admin'; SELECT pg_reload_conf()});
$node->safe_psql('postgres', 'SELECT sim_tick(1)');
ok(wait_until($node, q{SELECT count(*) > 0 FROM realtime.sent WHERE sender = 'dash_admin'}, 't', 30),
	'realtime.send owned by a superuser runs as the admin role');
is($node->safe_psql('postgres', q{SELECT count(*) FROM realtime.sent WHERE sender NOT IN ('supabase_realtime_admin', 'dash_admin')}),
	'0', 'and never as its owner or the writer');
# and with no plain role to run it as: not called, counted
$node->safe_psql('postgres', q{ALTER SYSTEM SET sim_metrics.admin_role = 'no_such_role'; SELECT pg_reload_conf()});
$node->safe_psql('postgres', 'SELECT sim_tick(1)');
ok(wait_until($node, 'SELECT realtime_errors > 0 FROM sim_status()', 't', 30),
	'owned by a superuser and no admin role: not called, counted');
like(slurp_file($node->logfile), qr/not calling realtime\.send: its owner is a superuser/, 'and logged');
$node->safe_psql('postgres', q{ALTER FUNCTION realtime.send(jsonb, text, text, boolean) OWNER TO supabase_realtime_admin;
	ALTER SYSTEM RESET sim_metrics.admin_role; SELECT pg_reload_conf()});

# a failing realtime.send: counted, logged, the writer goes on
my $errors = $node->safe_psql('postgres', 'SELECT realtime_errors FROM sim_status()');
$node->safe_psql('postgres', q{ALTER SYSTEM SET sim_metrics.realtime_topic = 'fail'; SELECT pg_reload_conf()});
$node->safe_psql('postgres', 'SELECT sim_tick(2)');
ok(wait_until($node, "SELECT realtime_errors > $errors FROM sim_status()", 't', 30), 'a failing send is counted');
$node->safe_psql('postgres', q{SELECT sim_scenario_start('server_down', '{web-nginx-icn-01}', 1, '5 min')});
$node->safe_psql('postgres', 'SELECT sim_tick(12)');
ok(wait_until($node, q{SELECT count(*) >= 4 FROM scenario_execution_log WHERE run_id = 2 AND ended_at IS NOT NULL}, 't', 30),
	'the writer still logs');
ok(wait_until($node, 'SELECT sim_flush() >= 0 AND pending_samples = 0 FROM sim_status()', 't', 30),
	'and flushes');
like(slurp_file($node->logfile), qr/sim_metrics: realtime\.send failed: stand-in failure/, 'the failure is logged');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'sim_metrics writer'}),
	'1', 'the writer runs');

# A realtime.send that takes too long: one that sleeps (and turns
# statement_timeout off first, which must not help it), one that waits on a
# lock another session holds. A background worker arms no statement timer
# of its own: the writer's limit has to be real.
$node->safe_psql('postgres', <<'EOS');
SET ROLE supabase_realtime_admin;
CREATE OR REPLACE FUNCTION realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF topic = 'fail' THEN RAISE EXCEPTION 'stand-in failure'; END IF;
  IF topic = 'sleep' THEN
    PERFORM pg_catalog.set_config('statement_timeout', '0', true);
    PERFORM pg_catalog.pg_sleep(60);
  END IF;
  INSERT INTO realtime.sent (payload, event, topic, private) VALUES (payload, event, topic, private);
END $$;
RESET ROLE;
ALTER SYSTEM SET sim_metrics.flush_interval = '1s';
ALTER SYSTEM SET sim_metrics.realtime_topic = 'sleep';
SELECT pg_reload_conf();
EOS
ok(wait_until($node, 'SHOW sim_metrics.realtime_topic', 'sleep', 10), 'topic sleep');
$errors = $node->safe_psql('postgres', 'SELECT realtime_errors FROM sim_status()');
my $writer_in = sub {
	my ($event) = @_;
	return qq{SELECT count(*) FROM pg_stat_activity
	          WHERE backend_type = 'sim_metrics writer' AND wait_event = '$event'};
};
my $t0 = time;
$node->safe_psql('postgres', 'SELECT sim_tick(1)');
ok(wait_until($node, $writer_in->('PgSleep'), '1', 20), 'the writer is in the sleeping realtime.send');
# the ring does not wait for it: ticks keep coming, the writer's flush takes
# them once the send is cut off (at most 5 s), and while it backs off
for my $round (1 .. 3)
{
	$node->safe_psql('postgres', 'SELECT sim_tick(3)');
	ok(wait_until($node, 'SELECT pending_samples = 0 FROM sim_status()', 't', 15),
		"round $round: the writer flushed the new ticks meanwhile");
}
ok(wait_until($node, "SELECT realtime_errors > $errors FROM sim_status()", 't', 20),
	'the sleeping send is cut off and counted');
my $elapsed = time - $t0;
cmp_ok($elapsed, '<', 15, sprintf('within the limit (%.1f s), not the 60 s it asked for', $elapsed));
like($node->safe_psql('postgres', 'SELECT last_error FROM sim_status()'),
	qr/^realtime\.send failed: canceling statement due to statement timeout$/,
	'last_error says it ran out of time');
ok(eval { $node->wait_for_log(qr/realtime\.send failed: canceling statement due to statement timeout.*\n.*DETAIL:  .*the next is tried in 5 s/); 1 },
	'logged, with the backoff');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'sim_metrics writer'}),
	'1', 'the writer runs');

# a lock held by another session: lock_timeout cuts the wait short
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE realtime.sent IN ACCESS EXCLUSIVE MODE');
$errors = $node->safe_psql('postgres', 'SELECT realtime_errors FROM sim_status()');
$node->safe_psql('postgres', q{ALTER SYSTEM SET sim_metrics.realtime_topic = 'lock'; SELECT pg_reload_conf()});
ok(wait_until($node, 'SHOW sim_metrics.realtime_topic', 'lock', 10), 'topic lock');
$node->safe_psql('postgres', 'SELECT sim_tick(1)');
ok(wait_until($node, $writer_in->('relation'), '1', 20), 'after the backoff the writer waits on the lock');
$node->safe_psql('postgres', 'SELECT sim_tick(3)');
ok(wait_until($node, "SELECT realtime_errors > $errors FROM sim_status()", 't', 20),
	'the waiting send is cut off and counted');
like($node->safe_psql('postgres', 'SELECT last_error FROM sim_status()'),
	qr/^realtime\.send failed: canceling statement due to (lock|statement) timeout$/,
	'last_error says it ran out of time');
ok(wait_until($node, 'SELECT pending_samples = 0 FROM sim_status()', 't', 15),
	'the writer flushed the ticks that came meanwhile');
$locker->query_safe('ROLLBACK');
$locker->quit;

# a fast shutdown while the writer sits in a sleeping send is not held up by it
$node->safe_psql('postgres', q{ALTER SYSTEM SET sim_metrics.realtime_topic = 'sleep'; SELECT pg_reload_conf()});
ok(wait_until($node, 'SHOW sim_metrics.realtime_topic', 'sleep', 10), 'topic sleep again');
$node->safe_psql('postgres', 'SELECT sim_tick(1)');
ok(wait_until($node, $writer_in->('PgSleep'), '1', 40), 'the writer is in the sleeping send again');
$node->safe_psql('postgres', 'SELECT sim_tick(2)');
my $off = log_offset($node);
$t0 = time;
$node->stop('fast');
$elapsed = time - $t0;
cmp_ok($elapsed, '<', 10, sprintf('pg_ctl stop -m fast took %.1f s', $elapsed));
my $tail = slurp_file($node->logfile, $off);
like($tail, qr/realtime\.send failed: canceling statement due to user request/,
	'the shutdown cancelled the send');
like($tail, qr/sim_metrics writer flushed its buffered samples/, 'and the writer flushed before it left');
done_testing();
