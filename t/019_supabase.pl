
# A cluster shaped like self-hosted Supabase: the bootstrap superuser
# supabase_admin; a non-superuser postgres with pg_monitor and
# pg_read_all_data; anon, authenticated and service_role reached through
# authenticator; the schema extensions with the default privileges of
# Supabase's migration 20230224042246_grant_extensions_perms_for_postgres
# (everything the superuser creates there: ALL to postgres WITH GRANT
# OPTION), and public's (ALL to the API roles). CREATE EXTENSION runs as
# supabase_admin. Proves, with pgTAP where it reads better:
#  - postgres cannot escalate through a trigger (or TRUNCATE, or a write
#    to the history) that the privileged writer would run;
#  - anon and authenticated can run the reads only;
#  - postgres can run and grant the control functions; service_role after
#    a grant;
#  - no function is SECURITY DEFINER; every one pins its search_path;
#  - the same in public, where the API roles get ALL by default.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use SimMetricsTest;

$ENV{PGUSER} = 'supabase_admin';
my $node = PostgreSQL::Test::Cluster->new('supabase');
$node->init(extra => [ '-U', 'supabase_admin' ]);
$node->append_conf('postgresql.conf', <<'EOC');
shared_preload_libraries = 'sim_metrics'
sim_metrics.database_name = 'postgres'
sim_metrics.enabled = off
sim_metrics.seed = 42
sim_metrics.start_time = '2026-01-05 00:00:00+00'
sim_metrics.flush_interval = '1h'
EOC
$node->start;

supabase_shape($node);

my @reads = ('sim_current_metrics()', 'sim_status()', 'sim_history(text,timestamp with time zone,timestamp with time zone)',
	'sim_server_metrics(text)', 'sim_scenario_runs()', 'sim_scenarios()',
	'sim_dashboard(text,integer,integer)',
	'sim_forecast(text,text,interval,interval,timestamp with time zone)',
	'sim_forecast_series(timestamp with time zone[],double precision[],interval)',
	'sim_predict_alerts(interval)', 'sim_alert_report(timestamp with time zone,timestamp with time zone,interval)');
my @controls = ('sim_start()', 'sim_stop()', 'sim_tick(integer)', 'sim_reload()', 'sim_flush()',
	'sim_scenario_start(text,text[],real,interval)', 'sim_scenario_stop(bigint)',
	'sim_expose(name,name[])');
my @tables = qw(server_templates server_metrics_history scenario_execution_log sim_scenarios
  server_metrics_rejected sim_current);

# pgTAP checks of the privileges in schema $s, run as the superuser; each
# of its lines becomes one test here
sub privilege_checks
{
	my ($s) = @_;
	my @q;
	for my $role (qw(anon authenticated service_role))
	{
		for my $t (@tables)
		{
			my $privs = $t eq 'server_metrics_rejected' ? q{'{}'::text[]} : q{ARRAY['SELECT']};
			push @q, "tap.table_privs_are('$s', '$t', '$role', $privs, '$s.$t: $role reads at most')";
		}
		for my $f (@reads, @controls)
		{
			my ($name, $args) = $f =~ /^(\w+)\((.*)\)$/;
			my $want = (grep { $_ eq $f } @reads) ? q{ARRAY['EXECUTE']} : q{'{}'::text[]};
			push @q, "tap.function_privs_are('$s', '$name', string_to_array('$args', ',')::name[], '$role', $want, "
			  . "'$s.$f: $role " . ((grep { $_ eq $f } @reads) ? 'may' : 'may not') . " run it')";
		}
	}
	for my $t (qw(server_metrics_history scenario_execution_log sim_current))
	{
		push @q, "tap.table_privs_are('$s', '$t', 'postgres', ARRAY['SELECT'], "
		  . "'$s.$t: postgres reads it, no TRIGGER, TRUNCATE, REFERENCES or write')";
	}
	for my $t (qw(server_templates sim_scenarios))
	{
		push @q, "tap.table_privs_are('$s', '$t', 'postgres', ARRAY['DELETE','INSERT','SELECT','UPDATE'], "
		  . "'$s.$t: postgres edits it, no TRIGGER, TRUNCATE or REFERENCES')";
	}
	for my $f (@controls)
	{
		my ($name, $args) = $f =~ /^(\w+)\((.*)\)$/;
		push @q, "tap.function_privs_are('$s', '$name', string_to_array('$args', ',')::name[], 'postgres', "
		  . "ARRAY['EXECUTE'], '$s.$f: postgres may run it')";
		push @q, "tap.isnt_definer('$s', '$name', string_to_array('$args', ',')::name[], '$s.$f is not SECURITY DEFINER')";
	}
	for my $f (@reads)
	{
		my ($name, $args) = $f =~ /^(\w+)\((.*)\)$/;
		push @q, "tap.isnt_definer('$s', '$name', string_to_array('$args', ',')::name[], '$s.$f is not SECURITY DEFINER')";
	}
	push @q, "tap.is((SELECT count(*)::int FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid
		AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
		JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'sim_metrics'
		WHERE NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search\\_path=%')
		  AND p.proname NOT IN ('sim_history_labelled_rows', 'sim_current_metrics')), 0,
		'every function of the extension pins its search_path')";
	# sim_current_metrics() (1.10) is inlined over sim_current for the same
	# reason, and its wrapper too
	push @q, "tap.is((SELECT pg_get_functiondef(p.oid) ~ 'SELECT \\* FROM [a-z_]+\\.sim_current\\\$' FROM pg_proc p
		WHERE p.proname = 'sim_current_metrics' AND p.pronamespace = '$s'::regnamespace), true,
		'sim_current_metrics() names sim_current by schema')";
	push @q, "tap.function_privs_are('$s', 'sim_fdw_handler', '{}'::name[], 'postgres', '{}'::text[], "
	  . "'$s.sim_fdw_handler(): default privileges gave postgres nothing')";
	# sim_history_labelled_rows() is left unpinned so that the planner inlines it
	# into its view (a pinned setting stops that); its body names every object
	# and operator by schema, so no search_path changes what it runs
	push @q, "tap.is((SELECT pg_get_functiondef(p.oid) !~ ' (FROM|JOIN) [a-z_]+ ' FROM pg_proc p
		WHERE p.proname = 'sim_history_labelled_rows'), true,
		'sim_history_labelled_rows() names its tables by schema')";
	return join("\n", map { "SELECT $_;" } @q);
}

sub run_pgtap
{
	my ($s) = @_;
	my $out = $node->safe_psql('postgres', "SET search_path = tap, public;\nSELECT * FROM tap.no_plan();\n"
		  . privilege_checks($s) . "\nSELECT * FROM tap.finish();");
	for my $line (split /\n/, $out)
	{
		next unless $line =~ /^(not )?ok \d+ - (.*)$/;
		ok(!defined $1, $2);
		diag $out if defined $1;
	}
}

sub as_role
{
	my ($role, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE $role; $sql");
	return ($ret, $out, $err);
}

sub scenario
{
	my ($s) = @_;

	run_pgtap($s);

	# the escalation of the report: a trigger on the history the writer fills
	my ($ret, $out, $err) = as_role('postgres', qq{
		CREATE FUNCTION public.escalate() RETURNS trigger LANGUAGE plpgsql AS
		  'BEGIN ALTER ROLE postgres SUPERUSER; RETURN NULL; END';
		CREATE TRIGGER escalate AFTER INSERT ON $s.server_metrics_history
		  FOR EACH STATEMENT EXECUTE FUNCTION public.escalate()});
	like($err, qr/permission denied|must be owner/, "$s: postgres cannot put a trigger on the history");
	for my $t (qw(scenario_execution_log server_templates sim_scenarios))
	{
		($ret, $out, $err) = as_role('postgres',
			"CREATE TRIGGER escalate AFTER INSERT ON $s.$t FOR EACH STATEMENT EXECUTE FUNCTION public.escalate()");
		like($err, qr/permission denied|must be owner/, "$s: nor on $t");
	}
	for my $stmt ("TRUNCATE $s.server_metrics_history", "DELETE FROM $s.server_metrics_history",
		"DELETE FROM $s.scenario_execution_log", "INSERT INTO $s.scenario_execution_log (run_id, scenario_name, phase, started_at) VALUES (1, 'x', 'peak', now())")
	{
		($ret, $out, $err) = as_role('postgres', $stmt);
		like($err, qr/permission denied/, "$s: postgres: $stmt is refused");
	}
	# the paths the privileged writer takes, driven by postgres
	($ret, $out, $err) = as_role('postgres', "SELECT $s.sim_scenario_start('memory_leak', '{cache-redis-icn-01}');
		SELECT $s.sim_tick(25); SELECT $s.sim_flush() > 0");
	is($ret, 0, "$s: postgres starts a scenario, ticks and flushes") or diag $err;
	if ($s eq 'extensions')
	{
		# once a minute: the first time only
		$node->safe_psql('postgres', "ALTER SYSTEM SET sim_metrics.history_retention = '1min'; SELECT pg_reload_conf()");
		ok(wait_until($node, "SELECT count(*) < 15 * 25 FROM $s.server_metrics_history", 't', 30),
			"$s: the writer's retention ran");
		$node->safe_psql('postgres', "ALTER SYSTEM RESET sim_metrics.history_retention; SELECT pg_reload_conf()");
	}
	is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'}), 'f',
		"$s: postgres is still not a superuser");

	# anon and authenticated: the reads, nothing else
	for my $role (qw(anon authenticated))
	{
		($ret, $out, $err) = as_role($role, "SELECT count(*) FROM $s.sim_current_metrics()");
		is($out, '15', "$s: $role reads the fleet");
		for my $stmt ("SELECT $s.sim_stop()", "SELECT $s.sim_tick(5)",
			"SELECT $s.sim_scenario_start('cpu_spike')", "DELETE FROM $s.server_metrics_history",
			"TRUNCATE $s.server_metrics_history", "UPDATE $s.server_templates SET enabled = false")
		{
			($ret, $out, $err) = as_role($role, $stmt);
			like($err, qr/permission denied/, "$s: $role: $stmt is refused");
		}
	}

	# postgres passes a control function on
	($ret, $out, $err) = as_role('service_role', "SELECT $s.sim_tick(1)");
	like($err, qr/permission denied/, "$s: service_role cannot tick before a grant");
	($ret, $out, $err) = as_role('postgres', "GRANT EXECUTE ON FUNCTION $s.sim_tick(integer) TO service_role");
	is($ret, 0, "$s: postgres grants sim_tick to service_role") or diag $err;
	($ret, $out, $err) = as_role('service_role', "SELECT $s.sim_tick(1) > 0");
	is($out, 't', "$s: service_role ticks after it") or diag $err;
	($ret, $out, $err) = as_role('postgres', "DROP FUNCTION IF EXISTS public.escalate()");
}

$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics WITH SCHEMA extensions');
ok(wait_until($node, 'SELECT servers FROM extensions.sim_status()', '15', 30), 'extensions: fleet loaded');
scenario('extensions');

# postgres exposes the reads in public, where default privileges give the
# API roles ALL on what it creates: only the roles named may run them
my ($ret, $out, $err) = as_role('postgres', q{SELECT count(*) FROM extensions.sim_expose('public', ARRAY['authenticated'])});
is($out, '8', 'postgres: sim_expose creates the eight wrappers in public (with sim_forecast and sim_predict_alerts)') or diag $err;
is($node->safe_psql('postgres', q{SELECT string_agg(r || ':' || has_function_privilege(r, 'public.sim_dashboard(text,integer,integer)', 'EXECUTE'), ',')
	FROM unnest(ARRAY['anon', 'authenticated', 'service_role']) r}), 'anon:false,authenticated:true,service_role:false',
	'the wrapper is executable by authenticated only, whatever the default privileges');
($ret, $out, $err) = as_role('authenticated', q{SELECT public.sim_dashboard()->'summary'->>'total'});
is($out, '15', 'authenticated calls public.sim_dashboard()') or diag $err;
($ret, $out, $err) = as_role('authenticated', q{SELECT count(*) >= 0 FROM public.sim_predict_alerts()});
is($out, 't', 'authenticated calls public.sim_predict_alerts() (the dashboard\'s prediction panel), its default horizon') or diag $err;
($ret, $out, $err) = as_role('anon', q{SELECT count(*) FROM public.sim_predict_alerts()});
like($err, qr/permission denied for function sim_predict_alerts/, 'anon may not') or diag $out;

# the README's plain CREATE EXTENSION lands in public: just as safe. A
# public holding functions a plain role made (the wrappers) is refused.
$node->safe_psql('postgres', 'DROP EXTENSION sim_metrics');
($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION sim_metrics');
like($err, qr/cannot be installed into schema "public": it holds function (?:public\.)?\w+\(.*\) \(owner postgres\).*\n.*HINT:.*WITH SCHEMA extensions/,
	'CREATE EXTENSION into a public holding postgres\'s functions is refused, with a hint');
$node->safe_psql('postgres', q{DROP FUNCTION public.sim_current_metrics(), public.sim_status(),
	public.sim_history(text, timestamptz, timestamptz), public.sim_server_metrics(text),
	public.sim_scenario_runs(), public.sim_dashboard(text, integer, integer),
	public.sim_forecast(text, text, interval, interval, timestamptz), public.sim_predict_alerts(interval)});
($ret, $out, $err) = as_role('postgres', q{CREATE SCHEMA own;
	CREATE FUNCTION own.ge(numeric, integer) RETURNS boolean LANGUAGE sql AS 'SELECT $1 >= $2::numeric';
	CREATE OPERATOR public.>= (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = own.ge)});
is($ret, 0, 'postgres made an operator numeric >= integer in public') or diag $err;
($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION sim_metrics');
like($err, qr/it holds operator (?:public\.)?>=\(numeric,integer\) \(owner postgres\)/,
	'and so is one holding an operator postgres made (the CHECKs would bind to it)');
as_role('postgres', 'CREATE SCHEMA empty_owned');
($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION sim_metrics WITH SCHEMA empty_owned');
like($err, qr/cannot be installed into schema "empty_owned": it holds the schema itself \(owner postgres\)/,
	'and so is a schema postgres owns (it could rename it and put another in its place)');
$node->safe_psql('postgres', 'DROP OPERATOR public.>= (numeric, integer); DROP SCHEMA own CASCADE; DROP SCHEMA empty_owned');
$node->safe_psql('postgres', 'CREATE EXTENSION sim_metrics');
ok(wait_until($node, 'SELECT servers FROM public.sim_status()', '15', 30), 'public: fleet loaded');
scenario('public');

$node->stop;
done_testing();
