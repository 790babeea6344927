
# Every install and update path guards against a schema where a plain role
# put operators (the tables' CHECKs bind them when they are created), and an
# operator bound anyway runs only as sim_metrics_writer:
#  - mallory, with CREATE on schema ext, makes ext.>=(numeric, integer),
#    which tries ALTER ROLE mallory SUPERUSER when someone else runs it;
#  - CREATE EXTENSION ... SCHEMA ext is refused at 1.6 and at 1.0, so the
#    old base script is no way around the guard;
#  - an install made before the guard (a CHECK bound to mallory's
#    operator) is refused by ALTER EXTENSION UPDATE, with the culprit named;
#  - while it stays, the writer evaluates that CHECK as sim_metrics_writer:
#    mallory stays a plain role.
# And the update from 1.5 made before 1.6 (no sim_metrics_writer yet)
# creates the role and its grants; a role of that name with more than it
# needs is refused.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

my $node = sim_node('paths', <<'EOC');
sim_metrics.database_name = 'postgres'
sim_metrics.enabled = off
sim_metrics.seed = 42
sim_metrics.start_time = '2026-01-05 00:00:00+00'
sim_metrics.flush_interval = '1h'
EOC
sub q1 { return $node->safe_psql('postgres', $_[0]); }
sub try { my ($ret, $out, $err) = $node->psql('postgres', $_[0]); return $err; }

q1(q{CREATE ROLE mallory LOGIN; CREATE SCHEMA ext; GRANT CREATE, USAGE ON SCHEMA ext TO mallory});
my $evil = q{
SET ROLE mallory;
CREATE FUNCTION ext.evil_ge(numeric, integer) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    IF current_user <> 'mallory' THEN
        EXECUTE 'ALTER ROLE mallory SUPERUSER';
    END IF;
    RETURN $1 OPERATOR(pg_catalog.>=) $2::numeric;
END $f$;
CREATE OPERATOR ext.>= (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = ext.evil_ge);
RESET ROLE;
};
q1($evil);

like(try('CREATE EXTENSION sim_metrics SCHEMA ext'),
	qr/cannot be installed into schema "ext": it holds (?:operator|function) .* \(owner mallory\)/,
	'1.6 into the schema mallory filled: refused');
like(try(q{CREATE EXTENSION sim_metrics VERSION '1.0' SCHEMA ext}),
	qr/cannot be installed into schema "ext": it holds (?:operator|function) .* \(owner mallory\)/,
	'1.0 as well: the old base script guards too');
is(q1(q{SELECT count(*) FROM pg_extension WHERE extname = 'sim_metrics'}), '0', 'nothing installed');

# An install from before the guard, whose CHECK bound mallory's operator:
# installed at 1.5 while the schema was clean, the operator put back, and
# a CHECK as 1.0's bound it (cpu_usage >= 0 with ext first on the path).
q1('DROP OPERATOR ext.>= (numeric, integer); DROP FUNCTION ext.evil_ge(numeric, integer)');
q1(q{CREATE EXTENSION sim_metrics VERSION '1.5' SCHEMA ext});
q1($evil);
q1(q{SET search_path = ext, pg_catalog;
	ALTER TABLE ext.server_metrics_history ADD CONSTRAINT old_check CHECK (cpu_usage >= 0) NOT VALID});
like(q1(q{SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'old_check'}),
	qr/OPERATOR\(ext\.>=\)/, 'the CHECK is bound to mallory\'s operator');
my $err = try('ALTER EXTENSION sim_metrics UPDATE');
like($err, qr/sim_metrics cannot be updated: constraint old_check of (?:ext\.)?server_metrics_history uses operator (?:ext\.)?>=\(numeric,integer\) of schema ext/,
	'the update refuses it and names the operator');
like($err, qr/HINT:.*drop that object/, 'with a hint');
is(q1(q{SELECT extversion FROM pg_extension WHERE extname = 'sim_metrics'}), '1.5', 'still at 1.5');

# at 1.5 the install path's writer role exists (the 1.0 base made it); an
# install made with 1.5's own scripts had none: take it away, and let the
# operator's table write through the workers meanwhile
q1(q{ALTER TABLE ext.server_metrics_history DROP CONSTRAINT old_check});
q1(q{DROP OWNED BY sim_metrics_writer; DROP ROLE sim_metrics_writer});
q1(q{ALTER EXTENSION sim_metrics UPDATE TO '1.6'});
is(q1(q{SELECT extversion FROM pg_extension WHERE extname = 'sim_metrics'}), '1.6', 'updated from 1.5 to 1.6');
is(q1(q{SELECT rolsuper OR rolcanlogin FROM pg_roles WHERE rolname = 'sim_metrics_writer'}), 'f',
	'the update made sim_metrics_writer');
is(q1(q{SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) FROM information_schema.role_table_grants
	WHERE grantee = 'sim_metrics_writer' AND table_name = 'server_metrics_history'}), 'DELETE,INSERT,SELECT',
	'with SELECT, INSERT, DELETE on the history, nothing more');

# now bind mallory's operator again, as an old install would have it: the
# writer runs it as sim_metrics_writer
q1(q{SET search_path = ext, pg_catalog;
	ALTER TABLE ext.server_metrics_history ADD CONSTRAINT old_check CHECK (cpu_usage >= 0) NOT VALID});
ok(wait_until($node, 'SELECT servers FROM ext.sim_status()', '15', 30), 'fleet loaded');
q1('SELECT ext.sim_tick(3)');
q1('SELECT ext.sim_flush()');
is(q1(q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}), 'f',
	'the flush evaluated mallory\'s operator, and mallory is still not a superuser');
is(q1('SELECT pending_samples FROM ext.sim_status()'), '0', 'and nothing was left behind (written or kept as dead letters)');
like(q1(q{SELECT string_agg(DISTINCT message, ';') FROM ext.server_metrics_rejected}), qr/must be superuser to alter superuser roles/,
	'the rows the operator refused by failing are dead letters saying why');

# a role named sim_metrics_writer with more than it needs: refused
q1('DROP EXTENSION sim_metrics');
q1('DROP SCHEMA ext CASCADE');
q1('ALTER ROLE sim_metrics_writer LOGIN');
like(try('CREATE EXTENSION sim_metrics'),
	qr/role sim_metrics_writer exists and holds more than writing history needs/,
	'a sim_metrics_writer that can log in is refused');
q1('ALTER ROLE sim_metrics_writer NOLOGIN; GRANT pg_read_server_files TO sim_metrics_writer');
like(try('CREATE EXTENSION sim_metrics'),
	qr/role sim_metrics_writer exists and holds more than writing history needs/,
	'and so is one that is a member of another role');
q1('REVOKE pg_read_server_files FROM sim_metrics_writer');
q1('CREATE EXTENSION sim_metrics');
ok(wait_until($node, 'SELECT servers FROM sim_status()', '15', 30), 'a bare one is used again');

# missing, or made a superuser: the writer refuses, saying why
q1('SELECT sim_tick(1)');
q1('ALTER ROLE sim_metrics_writer SUPERUSER');
like(try('SELECT sim_flush()'), qr/role "sim_metrics_writer" is a superuser: sim_metrics writes nothing as a superuser.*HINT:  ALTER ROLE sim_metrics_writer NOSUPERUSER/s,
	'a superuser sim_metrics_writer: sim_flush() refuses, with a hint');
q1('ALTER ROLE sim_metrics_writer NOSUPERUSER');
is(q1('SELECT sim_flush()'), '15', 'NOSUPERUSER: the sample is written');

# a membership granted to the role after the install: refused at use too
q1('SELECT sim_tick(1)');
q1('GRANT pg_read_server_files TO sim_metrics_writer');
like(try('SELECT sim_flush()'), qr/role "sim_metrics_writer" holds more than writing history needs.*HINT:.*REVOKE its memberships/s,
	'a membership granted later: sim_flush() refuses, with a hint');
q1('REVOKE pg_read_server_files FROM sim_metrics_writer');
is(q1('SELECT sim_flush()'), '15', 'revoked: the sample is written');

# a setting that code on the table makes does not outlive the writer role's
# statement: not in the session that called sim_flush()
q1(q{CREATE FUNCTION public.set_work_mem() RETURNS trigger LANGUAGE plpgsql AS $f$
	BEGIN PERFORM set_config('work_mem', '77kB', false); RETURN NULL; END $f$;
	CREATE TRIGGER set_work_mem AFTER INSERT ON server_metrics_history
	  FOR EACH STATEMENT EXECUTE FUNCTION public.set_work_mem()});
like(q1(q{SELECT sim_tick(1); SELECT sim_flush(); SHOW work_mem}), qr/^\d+\n15\n4MB$/,
	'the trigger ran (15 rows) and its set_config did not reach the caller\'s session');
q1('DROP TRIGGER set_work_mem ON server_metrics_history; DROP FUNCTION public.set_work_mem()');

$node->stop;
done_testing();
