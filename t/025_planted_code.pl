
# The Supabase shape after Supabase's after-create script for a privileged
# extension: GRANT ALL on every table, routine and sequence of the schema to
# postgres WITH GRANT OPTION, which includes TRIGGER. postgres then plants
# code on everything sim_metrics writes and deletes, each piece trying
# ALTER ROLE postgres SUPERUSER and recording the role it ran as:
#  - statement- and row-level INSERT triggers on the history, the scenario
#    log and the dead letters; DELETE triggers on the history (retention);
#  - after the history is partitioned and handed to postgres, who runs
#    pg_partman: on its partitions an ENABLE ALWAYS trigger, a CHECK and an
#    index expression calling its functions, and a column default.
# The writer's flush, sim_flush() called by postgres, the scenario log,
# retention, the dead letters and the recovery from Redis after a crash all
# run the planted code: always as sim_metrics_writer, never as a superuser;
# postgres stays a plain role, and history keeps flowing.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;
use SimRedis;

plan skip_all => 'redis-server is not installed' unless -x '/usr/bin/redis-server';
my $sharedir = `pg_config --sharedir 2>/dev/null`;
chomp $sharedir;
my $have_partman = -f "$sharedir/extension/pg_partman.control";

my $port = redis_port();
ok(redis_start(), "redis-server on port $port");

$ENV{PGUSER} = 'supabase_admin';
my $node = PostgreSQL::Test::Cluster->new('planted');
$node->init(extra => [ '-U', 'supabase_admin' ]);
$node->append_conf('postgresql.conf', <<"EOC");
shared_preload_libraries = 'sim_metrics'
sim_metrics.database_name = 'postgres'
sim_metrics.seed = 42
sim_metrics.start_time = '2026-01-05 00:00:00+00'
sim_metrics.tick_interval = '100ms'
sim_metrics.time_scale = 60
sim_metrics.flush_interval = '1s'
sim_metrics.redis_host = '127.0.0.1'
sim_metrics.redis_port = $port
restart_after_crash = on
EOC
$node->start;
supabase_shape($node);

sub q1 { return $node->safe_psql('postgres', $_[0]); }

sub as_postgres
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE postgres; $sql");
	return ($ret, $out, $err);
}

sub still_plain
{
	my ($what) = @_;
	is(q1(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'}), 'f',
		"$what: postgres is still not a superuser");
	is(q1(q{SELECT count(*) FROM public.fired f JOIN pg_roles r ON r.rolname = f.who WHERE r.rolsuper}), '0',
		"$what: no planted code ran as a superuser");
}

# the kinds of planted code that ran as the writer role
sub fired_as_writer
{
	my ($like) = @_;
	return q1(qq{SELECT count(*) FROM public.fired WHERE who = 'sim_metrics_writer' AND what LIKE '$like'});
}

q1('CREATE EXTENSION sim_metrics WITH SCHEMA extensions');
ok(wait_until($node, 'SELECT servers, redis_state FROM extensions.sim_status()', '15|connected', 30),
	'fleet loaded, Redis connected');
is(q1(q{SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolcanlogin OR rolreplication OR rolbypassrls
	FROM pg_roles WHERE rolname = 'sim_metrics_writer'}), 'f', 'the install made sim_metrics_writer, with no attribute');

# supabase/postgres ansible/files/postgresql_extension_custom_scripts/*/after-create.sql, in effect
q1(q{GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA extensions TO postgres WITH GRANT OPTION;
	GRANT ALL PRIVILEGES ON ALL ROUTINES IN SCHEMA extensions TO postgres WITH GRANT OPTION;
	GRANT ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA extensions TO postgres WITH GRANT OPTION});

# postgres's code: each piece records who ran it, then tries to escalate
my ($ret, $out, $err) = as_postgres(q{
CREATE TABLE public.fired (who name NOT NULL, what text NOT NULL);
GRANT INSERT ON public.fired TO PUBLIC;
CREATE FUNCTION public.plant(what text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO public.fired VALUES (current_user, what);
    BEGIN
        ALTER ROLE postgres SUPERUSER;
    EXCEPTION WHEN OTHERS THEN NULL;  -- stay quiet, try again next time
    END;
END $f$;
CREATE FUNCTION public.plant_trigger() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM public.plant(TG_TABLE_NAME || ' ' || TG_OP || ' ' || TG_LEVEL);
    RETURN NULL;
END $f$;
-- refuses one server's rows, so that the dead letters are written too
CREATE FUNCTION public.plant_check(sid text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM public.plant('check');
    RETURN sid <> 'web-nginx-icn-01';
END $f$;
CREATE FUNCTION public.plant_index(v numeric) RETURNS numeric LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
    PERFORM public.plant('index');
    RETURN v;
END $f$;
CREATE FUNCTION public.plant_default() RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM public.plant('default');
    RETURN NULL;
END $f$;
});
is($ret, 0, 'postgres made its functions') or diag $err;

for my $t (qw(server_metrics_history scenario_execution_log server_metrics_rejected))
{
	($ret, $out, $err) = as_postgres(qq{
		CREATE TRIGGER plant_s AFTER INSERT ON extensions.$t FOR EACH STATEMENT EXECUTE FUNCTION public.plant_trigger();
		CREATE TRIGGER plant_r AFTER INSERT ON extensions.$t FOR EACH ROW EXECUTE FUNCTION public.plant_trigger();
		CREATE TRIGGER plant_ds AFTER DELETE ON extensions.$t FOR EACH STATEMENT EXECUTE FUNCTION public.plant_trigger();
		CREATE TRIGGER plant_dr AFTER DELETE ON extensions.$t FOR EACH ROW EXECUTE FUNCTION public.plant_trigger()});
	is($ret, 0, "the grant lets postgres put INSERT and DELETE triggers on $t") or diag $err;
}

# 1. the writer's flush
ok(wait_until($node, q{SELECT count(*) > 0 FROM public.fired WHERE what = 'server_metrics_history INSERT STATEMENT'}, 't', 30),
	'the writer\'s flush fired the statement trigger');
cmp_ok(fired_as_writer('server_metrics_history INSERT ROW'), '>', 0, 'and the row trigger, as sim_metrics_writer');
is(q1(q{SELECT string_agg(DISTINCT who, ',') FROM public.fired}), 'sim_metrics_writer', 'all of it as sim_metrics_writer');
still_plain('flush');

# 2. sim_flush() by postgres, and a scenario whose phases are logged
my $before = q1('SELECT count(*) FROM extensions.server_metrics_history');
($ret, $out, $err) = as_postgres(q{SELECT extensions.sim_scenario_start('memory_leak', '{cache-redis-icn-01}', 0.9, '2 min') > 0;
	SELECT extensions.sim_flush() >= 0});
is($ret, 0, 'postgres starts a scenario and calls sim_flush()') or diag $err;
ok(wait_until($node, q{SELECT count(*) > 0 FROM public.fired WHERE what LIKE 'scenario_execution_log INSERT %'}, 't', 30),
	'the scenario log fired its triggers');
cmp_ok(fired_as_writer('scenario_execution_log %'), '>', 0, 'as sim_metrics_writer');
ok(defined wait_value($node, 'SELECT count(*) FROM extensions.server_metrics_history', sub { $_[0] > $before }, 30),
	'history keeps flowing');
still_plain('sim_flush and the scenario log');

# 3. retention: DELETE triggers
q1(q{ALTER SYSTEM SET sim_metrics.history_retention = '1min'; SELECT pg_reload_conf()});
ok(wait_until($node, q{SELECT count(*) > 0 FROM public.fired WHERE what = 'server_metrics_history DELETE ROW'}, 't', 90),
	'retention deleted rows and fired the DELETE triggers');
cmp_ok(fired_as_writer('server_metrics_history DELETE STATEMENT'), '>', 0, 'as sim_metrics_writer');
q1(q{ALTER SYSTEM RESET sim_metrics.history_retention; SELECT pg_reload_conf()});
still_plain('retention');

# 4. the recovery from Redis after a crash: samples only in the ring come
# back through the planted triggers
q1(q{ALTER SYSTEM SET sim_metrics.flush_interval = '1h'; SELECT pg_reload_conf()});
q1('SELECT extensions.sim_flush()');
my $ticks = q1('SELECT tick FROM extensions.sim_status()');
ok(defined wait_value($node, 'SELECT tick FROM extensions.sim_status()', sub { $_[0] >= $ticks + 10 }, 30),
	'ten more ticks only in the ring and in Redis');
my $fired_before = q1('SELECT count(*) FROM public.fired');
my $off = crash_restart($node, 'crash');
ok(eval { $node->wait_for_log(qr/recovered \d+ unflushed samples of 15 servers from Redis/, $off); 1 },
	'the writer recovered the samples from Redis');
cmp_ok(q1('SELECT count(*) FROM public.fired'), '>', $fired_before, 'the recovery fired the planted triggers');
still_plain('recovery');
q1(q{ALTER SYSTEM SET sim_metrics.flush_interval = '1s'; SELECT pg_reload_conf()});
ok(wait_until($node, 'SELECT servers FROM extensions.sim_status()', '15', 30), 'fleet loaded after the crash');

# 5. a partitioned history that postgres owns and manages with pg_partman:
# its partitions carry an ENABLE ALWAYS trigger, a CHECK, an index
# expression and a default that postgres wrote
SKIP:
{
	skip 'pg_partman is not installed', 14 unless $have_partman;

	q1('SELECT extensions.sim_stop(); SELECT extensions.sim_flush()');
	ok(wait_until($node, 'SELECT paused, pending_samples FROM extensions.sim_status()', 't|0', 30), 'paused, ring empty');
	q1(q{
	CREATE SCHEMA partman;
	CREATE EXTENSION pg_partman SCHEMA partman;
	GRANT ALL ON SCHEMA partman TO postgres;
	GRANT ALL ON ALL TABLES IN SCHEMA partman TO postgres;
	GRANT ALL ON ALL SEQUENCES IN SCHEMA partman TO postgres;
	GRANT EXECUTE ON ALL ROUTINES IN SCHEMA partman TO postgres;
	GRANT CREATE ON SCHEMA extensions TO postgres;
	BEGIN;
	ALTER EXTENSION sim_metrics DROP TABLE extensions.server_metrics_history;
	ALTER EXTENSION sim_metrics DROP SEQUENCE extensions.server_metrics_history_id_seq;
	ALTER TABLE extensions.server_metrics_history RENAME TO server_metrics_history_old;
	ALTER INDEX extensions.server_metrics_history_server_time RENAME TO server_metrics_history_old_server_time;
	CREATE TABLE extensions.server_metrics_history (
	    LIKE extensions.server_metrics_history_old INCLUDING DEFAULTS INCLUDING CONSTRAINTS
	) PARTITION BY RANGE ("timestamp");
	CREATE SEQUENCE extensions.server_metrics_history_rowid_seq AS bigint OWNED BY extensions.server_metrics_history.id;
	ALTER TABLE extensions.server_metrics_history ALTER COLUMN id SET DEFAULT nextval('extensions.server_metrics_history_rowid_seq');
	CREATE INDEX server_metrics_history_server_time ON extensions.server_metrics_history (server_id, "timestamp" DESC);
	GRANT SELECT ON extensions.server_metrics_history TO PUBLIC;
	GRANT SELECT, INSERT, DELETE ON extensions.server_metrics_history TO sim_metrics_writer;
	GRANT USAGE ON SEQUENCE extensions.server_metrics_history_rowid_seq TO sim_metrics_writer;
	ALTER TABLE extensions.server_metrics_history OWNER TO postgres;
	ALTER SEQUENCE extensions.server_metrics_history_rowid_seq OWNER TO postgres;
	COMMIT;
	});
	($ret, $out, $err) = as_postgres(q{
	SELECT partman.create_parent('extensions.server_metrics_history', 'timestamp', 'native', 'daily',
	                             p_start_partition := '2026-01-04');
	SELECT count(*) > 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	 WHERE i.inhparent = 'extensions.server_metrics_history'::regclass AND c.relowner = 'postgres'::regrole});
	is($ret, 0, 'postgres partitioned the history with pg_partman') or diag $err;
	like($out, qr/t$/, 'its partitions belong to postgres');

	# on every partition: a row trigger set ENABLE ALWAYS, a CHECK, an
	# index expression, a default
	($ret, $out, $err) = as_postgres(q{
	DO $d$
	DECLARE p regclass;
	BEGIN
	    FOR p IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'extensions.server_metrics_history'::regclass LOOP
	        EXECUTE format('CREATE TRIGGER plant_p AFTER INSERT ON %s FOR EACH ROW EXECUTE FUNCTION public.plant_trigger()', p);
	        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER plant_p', p);
	        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT plant_c CHECK (public.plant_check(server_id)) NOT VALID', p);
	        EXECUTE format('ALTER TABLE %s ALTER COLUMN session_id SET DEFAULT public.plant_default()', p);
	        EXECUTE format('CREATE INDEX ON %s (public.plant_index(cpu_usage))', p);
	    END LOOP;
	END $d$});
	is($ret, 0, 'postgres planted a trigger, a CHECK, an index and a default on each partition') or diag $err;
	q1('DELETE FROM public.fired');

	$before = q1('SELECT count(*) FROM extensions.server_metrics_history');
	my $rejected0 = q1('SELECT rejected_samples FROM extensions.sim_status()');
	q1('SELECT extensions.sim_start()');
	ok(defined wait_value($node, 'SELECT count(*) FROM extensions.server_metrics_history', sub { $_[0] > $before + 15 * 5 }, 60),
		'history keeps flowing into the partitions');
	for my $kind ('check', 'index')
	{
		cmp_ok(fired_as_writer($kind), '>', 0, "the partition's $kind ran as sim_metrics_writer");
	}
	ok(wait_until($node, q{SELECT count(*) > 0 FROM public.fired WHERE what LIKE 'server_metrics_history_p% INSERT ROW'}, 't', 30),
		'the ENABLE ALWAYS trigger of the partition fired');
	cmp_ok(fired_as_writer('server_metrics_history_p% INSERT ROW'), '>', 0, 'as sim_metrics_writer');
	ok(defined wait_value($node, 'SELECT rejected_samples FROM extensions.sim_status()', sub { $_[0] > $rejected0 }, 30),
		'the rows the CHECK refuses go to the dead letters, counted');
	like(q1(q{SELECT message FROM extensions.server_metrics_rejected ORDER BY id DESC LIMIT 1}), qr/plant_c/,
		'the dead letter names the constraint');
	ok(wait_until($node, q{SELECT count(*) > 0 FROM public.fired WHERE what LIKE 'server_metrics_rejected INSERT %'}, 't', 30),
		'the dead-letter triggers fired');
	is(q1(q{SELECT string_agg(DISTINCT who, ',') FROM public.fired}), 'sim_metrics_writer',
		'everything the workers ran, ran as sim_metrics_writer');
	($ret, $out, $err) = as_postgres('SELECT extensions.sim_flush() >= 0');
	is($ret, 0, 'sim_flush() by postgres into its partitions') or diag $err;
	still_plain('partitions');
}

# the writer role cannot be turned into a superuser behind the writer's back
q1('ALTER ROLE sim_metrics_writer SUPERUSER');
my $errors0 = q1('SELECT flush_errors FROM extensions.sim_status()');
ok(defined wait_value($node, 'SELECT flush_errors FROM extensions.sim_status()', sub { $_[0] > $errors0 }, 30),
	'a superuser sim_metrics_writer: the flush refuses');
like(q1('SELECT last_error FROM extensions.sim_status()'), qr/sim_metrics_writer.*superuser/,
	'last_error says why');
q1('ALTER ROLE sim_metrics_writer NOSUPERUSER');
$errors0 = q1('SELECT pending_samples FROM extensions.sim_status()');
ok(wait_until($node, 'SELECT pending_samples < 15 * 20 FROM extensions.sim_status()', 't', 60),
	'NOSUPERUSER again: the buffered samples are written');
still_plain('the end');

$node->stop;
redis_stop();
done_testing();
